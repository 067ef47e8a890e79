import { UsageError, type LifeboatConfig } from "@lifeboat/core";
import { DefaultSecretResolver, Scheduler, acquireLease, checkFreshness, cleanLeftovers, lastVerifiedAt, latestToDrill, listBackups, openStore, pruneTarget, resolveDatabase, runTargetBackups, verifyBackup, type RunOutcome } from "@lifeboat/runner";
import type { Context } from "../context.js";
import { lifecycleManaged } from "./prune.js";

/** How often the daemon looks for missed backups (the cloud's freshness check runs every 15 minutes). */
const FRESHNESS_EVERY_MS = 5 * 60_000;

export interface ScheduleCliOptions {
  once?: boolean;
  only?: string;
}

/**
 * `lifeboat schedule`: the daemon. Runs the config's targets on their schedules (the same EventBridge expressions and
 * time zones as the cloud), with their retries and notifications, never overlapping a target with itself, pruning
 * after each successful backup, logging JSON lines. SIGTERM/SIGINT: runs in flight are aborted cleanly, then exit.
 * `--once`: run what is due now and exit (for a system cron or a Kubernetes CronJob).
 */
export async function scheduleCommand(ctx: Context, opts: ScheduleCliOptions): Promise<number> {
  const { config } = await ctx.requireConfig("lifeboat schedule");
  ctx.out.mode = "json"; // a daemon's logs are JSON lines, for journald and log shippers
  const only = opts.only?.split(",").map((s) => s.trim()).filter(Boolean);
  for (const name of only ?? []) {
    if (!config.targets[name]) throw new UsageError(`unknown target "${name}"`, `known targets: ${Object.keys(config.targets).join(", ")}`);
  }
  const store = openStore(config.storage);
  // SIGTERM/SIGINT end the daemon: runs in flight are aborted, and so is any wait on a notification
  const stop = new AbortController();
  const bus = await ctx.bus(config, stop.signal);
  const secrets = new DefaultSecretResolver();
  const log = ctx.out;
  const scheduler = new Scheduler({
    config,
    ...(only ? { only } : {}),
    log,
    lastRun: async (name, mode) => {
      if (mode === "verify") return lastVerifiedAt(store, name);
      const newest = (await listBackups(store, name, log))[0];
      return newest ? new Date(newest.startedAt) : undefined;
    },
    runTarget: async (name, signal, mode) => {
      // one run per target across schedulers sharing this store (two daemons, a daemon and a cron --once)
      const lease = await acquireLease(store, name, { log });
      if (!lease.taken) {
        log.log("info", "skipped: another scheduler runs this target", { target: name, mode, heldBy: `${lease.heldBy.host} pid ${lease.heldBy.pid}`, until: lease.heldBy.expiresAt });
        return "skipped";
      }
      try {
        return await runLeased(name, signal, mode);
      } finally {
        await lease.lease.release();
      }
    },
  });
  async function runLeased(name: string, signal: AbortSignal, mode: "backup" | "verify"): Promise<RunOutcome> {
    if (mode === "backup") return runScheduledTarget(config, name, signal, { store, bus, secrets, log });
    try {
      const manifest = await latestToDrill(store, name, log);
      if (!manifest) {
        log.log("info", "no backup to drill yet", { target: name, mode });
        return "succeeded";
      }
      const result = await verifyBackup({ store, manifest, bus, log, signal, trigger: "schedule" });
      return result.outcome === "passed" ? "succeeded" : "failed";
    } catch (err) {
      log.log("error", (err as Error).message, { target: name, mode });
      return "failed";
    }
  }
  if (scheduler.targets.length === 0) throw new UsageError("no target has a schedule", 'add schedule: "cron(0 2 * * ? *)" (or rate(...)), or verify: { schedule: ... }, to a target');

  // backup.missed: fire times that produced no backup, also those missed while no scheduler ran
  const freshness = async () => {
    try {
      await checkFreshness(config, store, { log, ...(only ? { only } : {}), publish: (e) => bus.publish(e) });
    } catch (err) {
      log.log("error", "the freshness check failed", { error: (err as Error).message });
    }
  };
  await freshness();

  if (opts.once) {
    // cron and Kubernetes record the exit code: a due run that failed is a failed job
    const { started, failed } = await scheduler.once();
    const summary = started.length ? `ran ${started.join(", ")}${failed.length ? `; failed: ${failed.join(", ")}` : ""}` : "nothing was due";
    ctx.out.result(summary, { ran: started, failed });
    return failed.length ? 1 : 0;
  }
  const onSignal = (sig: NodeJS.Signals) => {
    log.log("warn", `received ${sig}: stopping after aborting the runs in flight`);
    stop.abort(sig);
  };
  process.once("SIGTERM", onSignal);
  process.once("SIGINT", onSignal);
  const watch = setInterval(() => void freshness(), FRESHNESS_EVERY_MS);
  try {
    await scheduler.run(stop.signal);
  } finally {
    clearInterval(watch);
    process.removeListener("SIGTERM", onSignal);
    process.removeListener("SIGINT", onSignal);
  }
  return 0;
}

async function runScheduledTarget(
  config: LifeboatConfig,
  name: string,
  signal: AbortSignal,
  deps: { store: ReturnType<typeof openStore>; bus: Awaited<ReturnType<Context["bus"]>>; secrets: DefaultSecretResolver; log: Context["out"] },
): Promise<RunOutcome> {
  const t = config.targets[name]!;
  try {
    await runTargetBackups(t, {
      target: name,
      resolveSource: () => resolveDatabase(t.database, deps.secrets, `targets.${name}.database`),
      store: deps.store,
      trigger: "schedule",
      signal,
      log: deps.log,
      bus: deps.bus,
      restoreHint: `lifeboat restore ${name}`,
    });
  } catch (err) {
    deps.log.log("error", (err as Error).message, { target: name });
    return "failed";
  }
  if (!lifecycleManaged(config, undefined)) {
    if (t.retention) {
      const pruned = await pruneTarget(deps.store, name, t.retention, { log: deps.log });
      if (pruned.deleted.length) deps.log.log("info", "retention applied", { target: name, deleted: pruned.deleted });
    }
    await cleanLeftovers(deps.store, name, { log: deps.log });
  }
  return "succeeded";
}
