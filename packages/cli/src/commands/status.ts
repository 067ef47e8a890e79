import { MANIFEST_SUFFIX, UsageError, errorMessage, formatAge, formatBytes, formatDuration, redact, targetPrefix, type LifeboatConfig } from "@lifeboat/core";
import { DefaultSecretResolver, openCopies, schedulerState, targetStatuses, type TargetStatus } from "@lifeboat/runner";
import type { Context } from "../context.js";

/**
 * `lifeboat status [target]`: each target's newest backup and its age, its verdict, the latest drill, the next fire
 * time and a small trend. Exit 1 when any target is missed or failing, so that it works as a monitoring check.
 */
export async function statusCommand(ctx: Context, target: string | undefined, opts: { from?: string; format?: string } = {}): Promise<number> {
  if (opts.format !== undefined && opts.format !== "text" && opts.format !== "openmetrics") throw new UsageError(`--format ${opts.format} is not known`, "use --format openmetrics (Prometheus), --json, or neither");
  const { config } = await ctx.requireConfig("lifeboat status");
  if (target !== undefined && !config.targets[target]) throw new UsageError(`unknown target "${target}"`, `known targets: ${Object.keys(config.targets).join(", ")}`);
  // --from: the config's targets, as another store holds them (a copy, the bucket seen from a laptop)
  const store = await ctx.store(opts.from, "--from");
  const now = new Date();
  const statuses = await targetStatuses(config, store, target ? [target] : Object.keys(config.targets), now);
  const bad = statuses.filter((s) => s.verdict === "missed" || s.verdict === "failing");
  // copies (storage.copies) of the config's store: each target's newest backup must be in every copy, else the copy
  // is degraded (a failed or interrupted copy: `lifeboat copy` repairs it)
  const copies = opts.from ? [] : await copyStates(config, statuses);
  const degraded = copies.filter((c) => !c.holdsNewest);
  // on one server the daemon is what runs the schedules (on AWS, EventBridge does): a daemon that stopped renewing its
  // record is named, and makes the check fail while any target has a schedule
  const scheduled = statuses.some((s) => s.schedule);
  const scheduler = config.aws ? undefined : await schedulerState(store, now);
  const schedulerDown = Boolean(scheduled && scheduler?.state === "not running");
  const schedulerLine = !scheduler || !scheduled
    ? []
    : scheduler.state === "never seen"
      ? ["scheduler: never seen on this store (start `lifeboat schedule`, or run `lifeboat schedule --once` from cron)"]
      : scheduler.state === "once"
        ? [`scheduler: schedule --once last ran ${formatAge(scheduler.ageMs!)} ago on ${scheduler.record!.host}`]
        : scheduler.state === "running"
          ? [`scheduler: running on ${scheduler.record!.host} (pid ${scheduler.record!.pid}), alive ${formatAge(scheduler.ageMs!)} ago`]
          : [`scheduler NOT RUNNING: last alive ${formatAge(scheduler.ageMs!)} ago on ${scheduler.record!.host} (pid ${scheduler.record!.pid})${scheduler.record!.stoppedAt ? `, stopped at ${scheduler.record!.stoppedAt}` : ", then went silent"}: no scheduled backup runs until it is started again`];
  if (opts.format === "openmetrics") {
    // for node_exporter's textfile collector: the metrics on stdout, the exit code as always
    const { openMetrics } = await import("../metrics.js");
    process.stdout.write(await openMetrics(statuses, scheduler));
    return bad.length || schedulerDown || degraded.length ? 1 : 0;
  }
  const lines = statuses.flatMap((s) => {
    const newest = s.newestBackup ? `newest ${s.newestBackup.id}, ${formatAge(s.newestBackup.ageMs)} old, ${formatBytes(s.newestBackup.size)}` : "no backup yet";
    const out = [`${s.target.padEnd(16)} ${s.verdict.toUpperCase().padEnd(8)} ${newest}`];
    if (s.verdict === "failing" && s.lastRun) {
      // the whole cause: the first line says which attempts failed, the next ones why
      out.push(`  last run ${s.lastRun.runId ?? ""} failed at ${s.lastRun.finishedAt} (${s.lastRun.code}):`.replace("run  failed", "run failed"));
      out.push(...(s.lastRun.error ?? "").split("\n").map((l) => `    ${l.trim()}`));
    }
    if (s.missedFireTimes.length) out.push(`  missed: ${s.missedFireTimes.join(", ")}`);
    out.push(`  schedule ${s.schedule ?? "none (manual)"}${s.dueSince ? `, due since ${s.dueSince}` : s.nextFireTime ? `, next ${s.nextFireTime}` : ""}; drill ${s.latestDrill ? `${s.latestDrill.outcome} ${s.latestDrill.verifiedAt}` : "never"}`);
    if (s.trend.length > 1) out.push(`  trend: ${s.trend.map((b) => `${formatBytes(b.size)}/${formatDuration(b.durationMs)}`).join(" -> ")}`);
    for (const c of copies.filter((x) => x.target === s.target)) {
      out.push(c.holdsNewest ? `  copy ${c.copy}: holds the newest backup` : `  copy ${c.copy}: DEGRADED, ${c.error ? `cannot be read (${c.error})` : `lacks the newest backup ${s.newestBackup!.id}`}; repair: lifeboat copy ${s.target} --to ${c.copy}`);
    }
    return out;
  });
  ctx.out.result([...schedulerLine, ...lines].join("\n"), { store: store.url, ...(scheduler ? { scheduler } : {}), targets: statuses, ...(copies.length ? { copies } : {}), healthy: bad.length === 0 && !schedulerDown && degraded.length === 0 });
  return bad.length || schedulerDown || degraded.length ? 1 : 0;
}

/** Whether each copy holds each target's newest backup (its manifest), or cannot be read. */
async function copyStates(config: LifeboatConfig, statuses: TargetStatus[]): Promise<Array<{ target: string; copy: string; holdsNewest: boolean; error?: string }>> {
  const out: Array<{ target: string; copy: string; holdsNewest: boolean; error?: string }> = [];
  const secrets = new DefaultSecretResolver();
  for (const s of statuses) {
    if (!s.newestBackup) continue;
    let copies: Awaited<ReturnType<typeof openCopies>>;
    try {
      copies = await openCopies(config.storage, secrets, config.targets[s.target]);
    } catch (err) {
      // a copy's credentials that cannot be read: every copy of the target is unknown, which is degraded
      out.push({ target: s.target, copy: "(copies)", holdsNewest: false, error: redact(errorMessage(err)) });
      continue;
    }
    for (const c of copies) {
      try {
        let found = false;
        for await (const o of c.store.list(targetPrefix(s.target))) if (o.key.endsWith(`/${s.newestBackup.id}${MANIFEST_SUFFIX}`)) found = true;
        out.push({ target: s.target, copy: c.name, holdsNewest: found });
      } catch (err) {
        out.push({ target: s.target, copy: c.name, holdsNewest: false, error: redact(errorMessage(err)) });
      }
    }
  }
  return out;
}
