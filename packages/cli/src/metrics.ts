// Lifeboat's state as Prometheus metrics, in the OpenMetrics text format: for node_exporter's textfile collector
// (`lifeboat status --format openmetrics > /var/lib/node_exporter/lifeboat.prom`). prom-client (Prometheus's own
// Node.js client, well kept) renders the format, escaping and metadata. Names and units follow Prometheus's
// conventions: seconds, bytes, _timestamp_seconds for points in time, a label per target, no derived values (an age
// is `time() - ..._timestamp_seconds` in a query).
import { Gauge, Registry } from "prom-client";
import type { SchedulerState, TargetStatus } from "@lifeboat/runner";

export const VERDICTS = ["ok", "running", "late", "missed", "failing"] as const;

export async function openMetrics(statuses: TargetStatus[], scheduler: SchedulerState | undefined): Promise<string> {
  const registry = new Registry<typeof Registry.OPENMETRICS_CONTENT_TYPE>();
  registry.setContentType(Registry.OPENMETRICS_CONTENT_TYPE);
  const gauge = (name: string, help: string, labelNames: string[] = ["target"]) => new Gauge({ name, help, labelNames, registers: [registry] });

  const lastSuccess = gauge("lifeboat_backup_last_success_timestamp_seconds", "Start time of the newest backup that was stored whole (its manifest written).");
  const size = gauge("lifeboat_backup_last_size_bytes", "Size of the newest stored backup, as stored (compressed, encrypted).");
  const duration = gauge("lifeboat_backup_last_duration_seconds", "How long the newest stored backup took, from dump start to manifest.");
  const lastRun = gauge("lifeboat_last_run_success", "1 if the target's last run succeeded, 0 if it failed (absent before its first run).");
  const lastRunTime = gauge("lifeboat_last_run_timestamp_seconds", "When the target's last run finished, succeeded or failed.");
  const drill = gauge("lifeboat_drill_last_success", "1 if the latest restore drill passed, 0 if it failed (absent before the first drill).");
  const drillTime = gauge("lifeboat_drill_last_timestamp_seconds", "When the latest restore drill ran.");
  const missed = gauge("lifeboat_missed_fire_times", "Scheduled fire times that produced no backup, since the newest backup.");
  const status = gauge("lifeboat_target_status", "The target's verdict: 1 for the current one (ok, running, late, missed, failing), 0 for the others.", ["target", "status"]);
  const seconds = (iso: string) => Date.parse(iso) / 1000;

  for (const s of statuses) {
    const t = { target: s.target };
    if (s.newestBackup) {
      lastSuccess.set(t, seconds(s.newestBackup.startedAt));
      size.set(t, s.newestBackup.size);
      const trend = s.trend.find((b) => b.id === s.newestBackup!.id);
      if (trend) duration.set(t, trend.durationMs / 1000);
    }
    if (s.lastRun) {
      lastRun.set(t, s.lastRun.outcome === "succeeded" ? 1 : 0);
      lastRunTime.set(t, seconds(s.lastRun.finishedAt));
    }
    if (s.latestDrill) {
      drill.set(t, s.latestDrill.outcome === "passed" ? 1 : 0);
      drillTime.set(t, seconds(s.latestDrill.verifiedAt));
    }
    missed.set(t, s.missedFireTimes.length);
    for (const v of VERDICTS) status.set({ ...t, status: v }, s.verdict === v ? 1 : 0);
  }
  if (scheduler) {
    // one server: the `lifeboat schedule` daemon's sign of life in the store
    const up = gauge("lifeboat_scheduler_up", "1 while the lifeboat schedule daemon renews its sign of life (or schedule --once ran recently), else 0.", []);
    up.set(scheduler.state === "running" || scheduler.state === "once" ? 1 : 0);
  }
  return registry.metrics();
}
