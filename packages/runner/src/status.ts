import {
  defaultGraceMinutes,
  joinKey,
  missedFireTimes,
  nextRun,
  parseSchedule,
  type TargetConfig,
  type Manifest,
  type ObjectStore,
  backupSize,
} from "@lifeboat/core";
import { drillResults, listBackups, readJsonIfExists } from "./catalog.js";
import { sinceKey } from "./freshness.js";
import { readLease } from "./lease.js";
import { LAST_RUN_FILE, type LastRun } from "./target-run.js";

/**
 * `lifeboat status`: where each target stands, from the store alone (so it works from any machine, as a monitoring
 * check). Verdicts:
 *   running  a scheduler holds the target's lease now
 *   failing  its last run failed (and no backup came after it)
 *   missed   a fire time passed its grace period with no backup
 *   late     a fire time passed, its grace period has not
 *   ok       otherwise
 */
export type Verdict = "ok" | "running" | "late" | "missed" | "failing";

export interface TargetStatus {
  target: string;
  verdict: Verdict;
  schedule: string | null;
  newestBackup: { id: string; startedAt: string; ageMs: number; size: number } | null;
  lastRun: LastRun | null;
  latestDrill: { backupId: string; outcome: "passed" | "failed"; verifiedAt: string } | null;
  /** The next fire time still to come (null when the target is due now: see dueSince). */
  nextFireTime: string | null;
  /** The fire time that is due and has not run yet, if one is. */
  dueSince: string | null;
  missedFireTimes: string[];
  /** The last backups, oldest first: size and duration, for a trend. */
  trend: Array<{ id: string; size: number; durationMs: number }>;
}

/** What a status reads of the config: each target's schedule and grace (a store read without a config has none). */
export interface StatusConfig {
  targets: Record<string, Pick<TargetConfig, "schedule" | "timezone" | "freshness" | "maxRunMinutes">>;
}

/** Several targets' status, one after the other (each a few small reads of the store). */
export async function targetStatuses(config: StatusConfig, store: ObjectStore, targets: string[], now = new Date()): Promise<TargetStatus[]> {
  const out: TargetStatus[] = [];
  for (const name of targets) out.push(await targetStatus(config, store, name, now));
  return out;
}

/**
 * `known`: the target's backups (newest first) and drill verdicts when the caller has read them already (the
 * dashboard keeps them between refreshes): only the mutable records are read then.
 */
export async function targetStatus(
  config: StatusConfig,
  store: ObjectStore,
  target: string,
  now = new Date(),
  known?: { backups: Manifest[]; drills: Map<string, { outcome: "passed" | "failed"; verifiedAt: string }> },
): Promise<TargetStatus> {
  const t = config.targets[target]!;
  const backups: Manifest[] = known?.backups ?? (await listBackups(store, target));
  const newest = backups[0];
  const lastRun = (await readJsonIfExists<LastRun>(store, joinKey(target, LAST_RUN_FILE))) ?? null;
  const lease = await readLease(store, target);
  const drills = known?.drills ?? (await drillResults(store, target));
  const latestDrill = [...drills.entries()].map(([backupId, d]) => ({ backupId, ...d })).sort((a, b) => (a.verifiedAt < b.verifiedAt ? 1 : -1))[0] ?? null;

  let nextFireTime: string | null = null;
  let dueSince: string | null = null;
  let missed: Date[] = [];
  let late = false;
  const parsed = t.schedule ? parseSchedule(t.schedule) : undefined;
  if (parsed?.ok) {
    const since = await readJsonIfExists<{ since: string }>(store, sinceKey(target));
    const after = newest ? new Date(newest.startedAt) : since ? new Date(since.since) : undefined;
    const next = after ? nextRun(parsed.schedule, t.timezone, after, now) : now;
    if (next && next.getTime() > now.getTime()) nextFireTime = next.toISOString();
    else if (next) dueSince = next.toISOString();
    if (after) {
      const grace = (t.freshness?.graceMinutes ?? defaultGraceMinutes(parsed.schedule, t.timezone, t.maxRunMinutes, now)) * 60_000;
      missed = missedFireTimes(parsed.schedule, t.timezone, after, now, grace);
    }
    late = next !== undefined && next.getTime() <= now.getTime();
  }
  const failing = lastRun?.outcome === "failed" && (!newest || lastRun.finishedAt > newest.finishedAt);
  const running = lease !== undefined && Date.parse(lease.expiresAt) > now.getTime();
  const verdict: Verdict = running ? "running" : failing ? "failing" : missed.length ? "missed" : late ? "late" : "ok";
  return {
    target,
    verdict,
    schedule: t.schedule ?? null,
    newestBackup: newest ? { id: newest.id, startedAt: newest.startedAt, ageMs: now.getTime() - Date.parse(newest.startedAt), size: backupSize(newest) } : null,
    lastRun,
    latestDrill,
    nextFireTime,
    dueSince,
    missedFireTimes: missed.map((d) => d.toISOString()),
    trend: backups.slice(0, 5).reverse().map((m) => ({ id: m.id, size: backupSize(m), durationMs: m.durationMs })),
  };
}

/**
 * The `lifeboat schedule` daemon's sign of life, kept in the store it schedules for: renewed every minute, so that
 * `lifeboat status` (from any machine) can say when the scheduler was last alive, and that it is not running when
 * the record is stale. `--once` (a system cron) records its runs too, with no promise of the next.
 */
export const SCHEDULER_FILE = ".lifeboat-scheduler.json";
export const SCHEDULER_RENEW_MS = 60_000;

export interface SchedulerRecord {
  mode: "daemon" | "once";
  host: string;
  pid: number;
  lifeboatVersion: string;
  startedAt: string;
  aliveAt: string;
  stoppedAt?: string;
}

export interface SchedulerState {
  /** once: the last scheduler was `schedule --once` (a system cron), whose next start nothing here can foresee. */
  state: "running" | "not running" | "once" | "never seen";
  record: SchedulerRecord | null;
  /** How long ago it was last alive. */
  ageMs: number | null;
}

/** A daemon is running if it renewed its record within three renewals; one that said it stopped is not. */
export async function schedulerState(store: ObjectStore, now = new Date()): Promise<SchedulerState> {
  const record = (await readJsonIfExists<SchedulerRecord>(store, SCHEDULER_FILE)) ?? null;
  if (!record) return { state: "never seen", record: null, ageMs: null };
  const ageMs = now.getTime() - Date.parse(record.aliveAt);
  if (record.mode === "once") return { state: "once", record, ageMs };
  const running = !record.stoppedAt && ageMs <= 3 * SCHEDULER_RENEW_MS;
  return { state: running ? "running" : "not running", record, ageMs };
}
