import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { BackupFailedError, LIFEBOAT_VERSION, UsageError, backupSize, errorMessage, formatBytes, formatDuration, pruneFailedEvent, redact, refreshFailedEvent, type LifeboatConfig } from "@lifeboat/core";
import { DefaultSecretResolver, displayUrl, drillIdentities, identitiesFromSecret, SCHEDULER_FILE, type ScheduledMode, SCHEDULER_RENEW_MS, Scheduler, StoreWatch, heartbeatStarted, storeJson, type SchedulerRecord, acquireLease, checkFreshness, cleanLeftovers, failedEvent, lastVerifiedAt, latestToDrill, listBackups, openCopiesForRun, openStore, pruneCopies, pruneTarget, resolveDatabase, runTargetBackups, verifyBackup, withRetries, type RunOutcome } from "@lifeboat/runner";
import type { Context } from "../context.js";
import { lifecycleManaged } from "./prune.js";
import { lastRefreshAt, runRefresh } from "./refresh.js";

/** How often the daemon looks for missed backups (the cloud's freshness check runs every 15 minutes). */
const FRESHNESS_EVERY_MS = 5 * 60_000;

export interface ScheduleCliOptions {
  once?: boolean;
  only?: string;
  /** [host:]port for a Prometheus /metrics endpoint (host 127.0.0.1 unless given). */
  metrics?: string;
}

/** "9187" or "0.0.0.0:9187": where the daemon's /metrics listens (loopback unless a host is given). */
export function metricsAddress(value: string): { host: string; port: number } {
  const m = /^(?:(.+):)?(\d{1,5})$/.exec(value.trim());
  const port = m ? Number(m[2]) : NaN;
  if (!m || port < 1 || port > 65535) throw new UsageError(`--metrics ${value}: expected a port or host:port`, "for example --metrics 9187 (127.0.0.1), or --metrics 0.0.0.0:9187 for a Prometheus on another host");
  return { host: (m[1] ?? "127.0.0.1").replace(/^\[|\]$/g, ""), port };
}

/**
 * The daemon's /metrics: the same facts as `lifeboat status --format openmetrics`, read from the store at each scrape
 * (a store that cannot be read is a 503 with the reason, which Prometheus records as a failed scrape).
 */
async function serveMetrics(address: { host: string; port: number }, config: LifeboatConfig, store: ReturnType<typeof openStore>, targets: string[], log: Context["out"]) {
  const [{ createServer }, { openMetrics }, { targetStatuses, schedulerState }] = await Promise.all([import("node:http"), import("../metrics.js"), import("@lifeboat/runner")]);
  const server = createServer((req, res) => {
    if (req.method !== "GET" || (req.url ?? "").split("?")[0] !== "/metrics") {
      res.writeHead(404, { "content-type": "text/plain" }).end("lifeboat: only GET /metrics is served here\n");
      return;
    }
    const now = new Date();
    void Promise.all([targetStatuses(config, store, targets, now), schedulerState(store, now)])
      .then(([statuses, scheduler]) => openMetrics(statuses, scheduler))
      .then(
      (body) => res.writeHead(200, { "content-type": "application/openmetrics-text; version=1.0.0; charset=utf-8" }).end(body),
      (err) => res.writeHead(503, { "content-type": "text/plain" }).end(`lifeboat: the store cannot be read: ${errorMessage(err)}\n`),
    );
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err) => reject(new UsageError(`--metrics ${address.host}:${address.port}: cannot listen (${(err as Error).message})`, "choose another port, or stop what uses it")));
    server.listen(address.port, address.host, resolve);
  });
  log.log("info", `metrics for Prometheus on http://${address.host.includes(":") ? `[${address.host}]` : address.host}:${address.port}/metrics`);
  return server;
}

/**
 * `lifeboat schedule`: the daemon. Runs the config's targets on their schedules (the same EventBridge expressions and
 * time zones as the cloud), with their retries and notifications, never overlapping a target with itself, pruning
 * after each successful backup, logging JSON lines. SIGTERM/SIGINT: runs in flight are aborted cleanly, then exit.
 * `--once`: run what is due now and exit (for a system cron or a Kubernetes CronJob).
 */
export async function scheduleCommand(ctx: Context, opts: ScheduleCliOptions): Promise<number> {
  const { config, file } = await ctx.requireConfig("lifeboat schedule");
  // on a terminal, readable lines like every command; otherwise (journald, log shippers, CI, --json) JSON lines
  if (ctx.out.mode !== "tty") ctx.out.mode = "json";
  const only = opts.only?.split(",").map((s) => s.trim()).filter(Boolean);
  if (opts.metrics && opts.once) throw new UsageError("--metrics serves the daemon's metrics while it runs; --once exits at once", "for a cron job, write `lifeboat status --format openmetrics` to node_exporter's textfile directory instead");
  const metricsAt = opts.metrics ? metricsAddress(opts.metrics) : undefined;
  for (const name of only ?? []) {
    if (!config.targets[name]) throw new UsageError(`unknown target "${name}"`, `known targets: ${Object.keys(config.targets).join(", ")}`);
  }
  const store = openStore(config.storage);
  // SIGTERM/SIGINT end the daemon: runs in flight are aborted, and so is any wait on a notification
  const stop = new AbortController();
  const bus = await ctx.bus(config, stop.signal);
  const secrets = new DefaultSecretResolver();
  const log = ctx.out;
  // the store is a dependency like the database: when it cannot be reached, runs are retried, then reported as failed;
  // the daemon keeps going and says once per outage that the store is down, and once that it is back
  const storeWatch = new StoreWatch(store, log);
  const scheduler = new Scheduler({
    config,
    ...(only ? { only } : {}),
    log,
    lastRun: (name, mode) =>
      storeWatch.call("reading the newest backup", async () => {
        if (mode === "verify") return lastVerifiedAt(store, name);
        if (mode === "refresh") return lastRefreshAt(store, name);
        const newest = (await listBackups(store, name, log))[0];
        return newest ? new Date(newest.startedAt) : undefined;
      }),
    runTarget: async (name, signal, mode) => {
      // one run per target across schedulers sharing this store (two daemons, a daemon and a cron --once); taking
      // the lease is the run's first use of the store: retried like an attempt, and a failure is the run's, reported
      const t = config.targets[name]!;
      const runId = randomUUID();
      let lease;
      try {
        lease = (await withRetries(() => storeWatch.call("taking the run's lease", () => acquireLease(store, name, { log })), { target: name, policy: t.retries, signal, log })).value;
      } catch (err) {
        const attempts = err instanceof BackupFailedError ? err.attempts : [];
        log.log("error", `${mode === "verify" ? "drill" : "backup"} of "${name}" failed: the store cannot be used`, { target: name, mode, error: errorMessage(err) });
        // a drill's failure to start is reported by the target's backups, which meet the same store; a backup's here
        if (mode === "backup" && attempts.length) await bus.publish(failedEvent(name, runId, "schedule", attempts));
        return "failed";
      }
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
  async function runLeased(name: string, signal: AbortSignal, mode: ScheduledMode): Promise<RunOutcome | { outcome: RunOutcome; fields: Record<string, unknown> }> {
    if (mode === "backup") return runScheduledTarget(config, name, signal, { store, bus, secrets, log });
    if (mode === "refresh") {
      // a staging refresh (targets.<name>.refresh): one that fails is told (backup.refresh_failed); nothing swapped
      const runId = randomUUID();
      let backupId: string | undefined;
      let to = `targets.${name}.refresh.to`;
      try {
        const identity = config.targets[name]?.encryption?.identity;
        const res = await runRefresh(config, file, name, {
          store,
          log,
          secrets,
          signal,
          identities: async (m) => (m.encryption && identity ? identitiesFromSecret(identity, secrets, `targets.${name}.encryption.identity`) : undefined),
          onStart: (c, m) => {
            to = displayUrl(c);
            backupId = m.id;
            log.log("info", `refreshing ${to} from backup ${m.id}`, { target: name, mode });
          },
        });
        return { outcome: "succeeded", fields: { backup: res.manifest.id, to: displayUrl(res.to), how: res.how } };
      } catch (err) {
        if (signal.aborted) return "failed";
        const error = redact(errorMessage(err));
        log.log("error", `the refresh of ${to} failed: ${error}`, { target: name, mode });
        await bus.publish(refreshFailedEvent(name, runId, "schedule", to, error, backupId));
        return "failed";
      }
    }
    try {
      const manifest = await latestToDrill(store, name, log);
      if (!manifest) {
        log.log("info", "no backup to drill yet", { target: name, mode });
        return "succeeded";
      }
      // an encrypted target's identity, read for its drill as the AWS runner reads it
      const identities = await drillIdentities(manifest, config.targets[name]?.encryption?.identity, secrets, `targets.${name}.encryption.identity`);
      const result = await verifyBackup({ store, manifest, ...identities, bus, log, signal, trigger: "schedule", checks: config.targets[name]?.verify?.checks });
      return result.outcome === "passed" ? "succeeded" : "failed";
    } catch (err) {
      log.log("error", (err as Error).message, { target: name, mode });
      return "failed";
    }
  }
  if (scheduler.targets.length === 0) throw new UsageError("no target has a schedule", 'add schedule: "cron(0 2 * * ? *)" (or rate(...)), or verify: { schedule: ... } or refresh: { ..., schedule: ... }, to a target');

  // backup.missed: fire times that produced no backup, also those missed while no scheduler ran
  const freshness = async () => {
    try {
      await storeWatch.call("checking for missed backups", () => checkFreshness(config, store, { log, scheduler: "lifeboat schedule", ...(only ? { only } : {}), publish: (e) => bus.publish(e) }));
    } catch {
      /* said once per outage by storeWatch; the check runs again at its next interval */
    }
  };
  await freshness();

  // the sign of life `lifeboat status` reads (a daemon renews it every minute; --once records its run)
  const startedAt = new Date().toISOString();
  const alive = (extra: Partial<SchedulerRecord> = {}) =>
    storeWatch
      .call("recording that the scheduler is alive", () =>
        storeJson(store, SCHEDULER_FILE, { mode: opts.once ? "once" : "daemon", host: hostname(), pid: process.pid, lifeboatVersion: LIFEBOAT_VERSION, startedAt, aliveAt: new Date().toISOString(), ...extra } satisfies SchedulerRecord),
      )
      .catch(() => {});
  await alive();

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
  // started by a wrapper that does not pass signals on (npx, npm exec): when it exits, the daemon is re-parented and
  // stops as if it got SIGTERM, instead of running on as an orphan nobody manages
  const parent = process.ppid;
  const orphaned = setInterval(() => {
    if (process.ppid !== parent && !stop.signal.aborted) {
      log.log("warn", `the process that started the daemon (pid ${parent}) exited: stopping after aborting the runs in flight`);
      stop.abort("parent exited");
    }
  }, 2000);
  orphaned.unref();
  const watch = setInterval(() => void freshness(), FRESHNESS_EVERY_MS);
  const renewal = setInterval(() => void alive(), SCHEDULER_RENEW_MS);
  const metrics = metricsAt ? await serveMetrics(metricsAt, config, store, only ?? Object.keys(config.targets), log) : undefined;
  try {
    await scheduler.run(stop.signal);
  } finally {
    metrics?.close();
    metrics?.closeAllConnections();
    clearInterval(watch);
    clearInterval(renewal);
    clearInterval(orphaned);
    await alive({ stoppedAt: new Date().toISOString() });
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
): Promise<{ outcome: RunOutcome; fields: Record<string, unknown> }> {
  const t = config.targets[name]!;
  await heartbeatStarted(config, deps.secrets, name, { log: deps.log, signal });
  // the target's copies, opened (their credentials read) once: for the run, then for their retention
  const copies = await openCopiesForRun(config.storage, deps.secrets, t, deps.log);
  let run: Awaited<ReturnType<typeof runTargetBackups>>;
  const runId = randomUUID();
  try {
    run = await runTargetBackups(t, {
      runId,
      target: name,
      resolveSource: () => resolveDatabase(t.database, deps.secrets, `targets.${name}.database`),
      store: deps.store,
      trigger: "schedule",
      signal,
      log: deps.log,
      bus: deps.bus,
      restoreHint: `lifeboat restore ${name}`,
      copies,
    });
  } catch (err) {
    deps.log.log("error", (err as Error).message, { target: name });
    return { outcome: "failed", fields: {} };
  }
  // what the run stored, for the "run succeeded" line
  const stored = run.results.filter((r) => r.result).map((r) => r.result!.manifest);
  const fields =
    stored.length === 1
      ? { backup: stored[0]!.id, size: formatBytes(backupSize(stored[0]!)), duration: formatDuration(stored[0]!.durationMs) }
      : { backups: stored.map((m) => m.id), size: formatBytes(stored.reduce((n, m) => n + backupSize(m), 0)), duration: formatDuration(stored.reduce((n, m) => n + m.durationMs, 0)) };
  if (!lifecycleManaged(config, undefined)) {
    // housekeeping after a stored and reported backup: its failure is never the run's, but retention that could not
    // be applied is told (backup.prune_failed), per store; the cleanup of leftovers is tried again after the next backup
    const pruneFailed = async (store: string, err: unknown) => {
      const error = redact(errorMessage(err));
      deps.log.log("error", `the backup is stored, but retention could not be applied in ${store === "primary" ? "the primary store" : `copy ${store}`}`, { target: name, store, error });
      await deps.bus.publish(pruneFailedEvent(name, runId, "schedule", store, error));
    };
    if (t.retention) {
      try {
        const pruned = await pruneTarget(deps.store, name, t.retention, { log: deps.log });
        if (pruned.deleted.length) deps.log.log("info", "retention applied", { target: name, deleted: pruned.deleted });
      } catch (err) {
        await pruneFailed("primary", err);
      }
    }
    // the copies' retention: their own policy, else the target's; "store" copies are left to their store
    for (const copy of copies) {
      try {
        for (const c of await pruneCopies([copy], name, t.retention, { log: deps.log })) {
          if (c.result?.deleted.length) deps.log.log("info", "retention applied to a copy", { target: name, copy: c.copy, deleted: c.result.deleted });
        }
      } catch (err) {
        await pruneFailed(copy.name, err);
      }
    }
    try {
      await cleanLeftovers(deps.store, name, { log: deps.log });
    } catch (err) {
      deps.log.log("warn", "the backup is stored, but the cleanup of leftovers failed (tried again after the next backup)", { target: name, error: (err as Error).message });
    }
  }
  return { outcome: "succeeded", fields };
}
