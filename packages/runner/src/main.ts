/**
 * The runner container's entry point (packages/runner/Dockerfile runs it; tests run it as a plain Node entry point).
 *
 * Environment (from the task definition and the launcher's RunTask overrides; never a secret):
 *   LIFEBOAT_TARGET, LIFEBOAT_RUN_ID, LIFEBOAT_TRIGGER, LIFEBOAT_ATTEMPT    the run
 *   LIFEBOAT_MODE         "verify" for a restore drill of the target's latest backup (default: a backup)
 *   LIFEBOAT_CONFIG_KEY   the deployed config's key in LIFEBOAT_BUCKET, with LIFEBOAT_CONFIG_SHA256 its hash (deployed)
 *   LIFEBOAT_CONFIG       otherwise a config file (default /app/lifeboat.config.ts, else ./lifeboat.config.ts)
 *   LIFEBOAT_BUCKET       the deployed bucket (replaces storage.s3.bucket)
 *   LIFEBOAT_TOPIC_ARN    SNS topic for result events; without it, the config's Slack webhook is called directly
 *
 * Exit codes: 0 backup stored (or drill passed) and reported; 1 failed and reported; 2 configuration error (reported when
 * possible); 3 the run ended but its result could not be published. Any exit but 0 and 1 (3, killed, out of memory,
 * never started) means the runner could not report: the watcher reports those.
 */
import { LifeboatError, LocalEventBus, UsageError, errorMessage, prunedByRunner, pruneFailedEvent, redact, type LifeboatEvent, type Logger, type Manifest, backupSize } from "@lifeboat/core";
import { pruneCopies, pruneTarget } from "./prune.js";
import { runTargetBackups } from "./target-run.js";
import { latestToDrill, verifyBackup } from "./verify.js";
import { drillIdentities } from "./encryption.js";
import { findConfigFile, loadConfig } from "./config-file.js";
import { heartbeatStarted, subscribeNotifications } from "./notify/index.js";
import { heartbeatSubscriber } from "./notify/heartbeat.js";
import { DefaultSecretResolver } from "./secrets.js";
import { resolveDatabase } from "./source.js";
import { openCopiesForRun, openStore } from "./stores/index.js";
import { existsSync } from "node:fs";
import { randomUUID } from "node:crypto";

/** The run ended, but publishing its result failed (the watcher reports it instead). */
export const UNREPORTED = 3;

const jsonLogger: Logger = {
  log(level, msg, fields = {}) {
    process.stdout.write(JSON.stringify({ time: new Date().toISOString(), level, msg, ...fields }) + "\n");
  },
};

/** The deployed config (in the bucket, checked against its hash), else a config file. */
async function runnerConfig(env: NodeJS.ProcessEnv) {
  if (env.LIFEBOAT_CONFIG_KEY && env.LIFEBOAT_BUCKET) {
    const { readDeployedConfigFromS3 } = await import("./stores/s3.js");
    return readDeployedConfigFromS3(env.LIFEBOAT_BUCKET, env.LIFEBOAT_CONFIG_KEY, env.LIFEBOAT_CONFIG_SHA256);
  }
  const file = findConfigFile(env.LIFEBOAT_CONFIG ?? (existsSync("/app/lifeboat.config.ts") ? "/app/lifeboat.config.ts" : undefined));
  if (!file) throw new UsageError("no lifeboat.config.ts found", "set LIFEBOAT_CONFIG");
  return loadConfig(file);
}

export async function runnerMain(env: NodeJS.ProcessEnv = process.env, baseLog: Logger = jsonLogger): Promise<number> {
  const target = env.LIFEBOAT_TARGET;
  // every log line of the run carries its id (and target): one run's lines are found together, and matched to its events
  const runId = env.LIFEBOAT_RUN_ID || randomUUID();
  const log: Logger = { log: (level, msg, fields) => baseLog.log(level, msg, { runId, ...(target ? { target } : {}), ...fields }) };
  // a result that cannot be published must still reach a person: the runner then exits 3, and the watcher reports it
  let unreported = false;
  try {
    if (!target) throw new UsageError("LIFEBOAT_TARGET is not set", "the launcher sets it; locally use `lifeboat run <target>`");
    const config = await runnerConfig(env);
    const t = config.targets[target];
    if (!t) throw new UsageError(`unknown target "${target}"`, `known targets: ${Object.keys(config.targets).join(", ")}`);
    const storage = env.LIFEBOAT_BUCKET && config.storage.s3 ? { s3: { ...config.storage.s3, bucket: env.LIFEBOAT_BUCKET } } : config.storage;

    const abort = new AbortController();
    const bus = new LocalEventBus((err) => {
      unreported = true;
      log.log("error", "the run's result could not be published", { error: redact(errorMessage(err)) });
    });
    const secrets = new DefaultSecretResolver(env);
    let heartbeatUrl: string | undefined;
    if (env.LIFEBOAT_TOPIC_ARN) {
      // the SNS client and Powertools load with the first event, after the dump has streamed: not part of its peak RSS
      const topic = env.LIFEBOAT_TOPIC_ARN;
      let publish: Promise<(e: LifeboatEvent) => Promise<void>> | undefined;
      const publisher = async () => {
        const [{ SNSClient }, { snsPublisher }] = await Promise.all([import("@aws-sdk/client-sns"), import("./aws/sns.js")]);
        // where the run happened (stage, region, task, a link to its logs), on every event it publishes
        const [publishEvent, origin] = await Promise.all([snsPublisher(new SNSClient({}), topic), import("./aws/origin.js").then((m) => m.runOrigin(env)).catch(() => undefined)]);
        return (e: LifeboatEvent) => publishEvent(origin ? { ...e, origin } : e);
      };
      bus.subscribe(async (e) => (await (publish ??= publisher()))(e));
      bus.subscribe(async (e) => (await import("./aws/metrics.js")).emitBackupMetrics(e));
      // the heartbeat is the runner's own to ping (Slack and webhooks go through the topic's subscribers)
      const heartbeat = config.notifications.heartbeat;
      if (heartbeat) {
        heartbeatUrl = await secrets.resolve(heartbeat.url, "notifications.heartbeat.url");
        bus.subscribe(heartbeatSubscriber({ log, signal: abort.signal, url: heartbeatUrl, style: heartbeat.style }));
      }
    } else {
      await subscribeNotifications(bus, config, secrets, { log, signal: abort.signal });
    }

    if (env.LIFEBOAT_MODE === "verify") {
      const store = openStore(storage);
      const manifest = await latestToDrill(store, target, log);
      if (!manifest) {
        // nothing to drill is a failed drill, told like one (exit 1 alone would reach nobody: the watcher reports only
        // runners that could not report)
        const message = `no backup of "${target}" to drill in ${store.url}`;
        await bus.publish({
          version: 1,
          type: "backup.verify_failed",
          status: "failed",
          time: new Date().toISOString(),
          target,
          runId,
          trigger: env.LIFEBOAT_TRIGGER ?? "manual",
          attempt: 1,
          verification: { backupId: "none", location: store.url, durationMs: 0, restoreMs: 0, tables: 0, failures: [message] },
        });
        throw new LifeboatError(message);
      }
      // an encrypted target's identity is read here, for a drill, and nowhere else
      // (a secret that cannot be read fails the drill's decrypt check: reported like any failed drill)
      const result = await verifyBackup({
        store,
        manifest,
        ...(await drillIdentities(manifest, t.encryption?.identity, secrets, `targets.${target}.encryption.identity`)),
        checks: t.verify?.checks,
        log,
        bus,
        trigger: env.LIFEBOAT_TRIGGER ?? "manual",
        runId,
      });
      log.log(result.outcome === "passed" ? "info" : "error", `restore drill ${result.outcome}`, { target, backup: manifest.id, checks: result.checks });
      return unreported ? UNREPORTED : result.outcome === "passed" ? 0 : 1;
    }

    const onTerm = () => abort.abort("SIGTERM");
    process.once("SIGTERM", onTerm);
    const attempt = Number(env.LIFEBOAT_ATTEMPT ?? "1");
    const store = openStore(storage);
    // the target's copies (3-2-1): written at the same time as the bucket; one whose credentials cannot be read is left
    // out with an error logged (the backup still runs)
    const copies = await openCopiesForRun(storage, secrets, t, log);
    await heartbeatStarted(config, secrets, target, { log, signal: abort.signal, ...(heartbeatUrl ? { url: heartbeatUrl } : {}) });
    try {
      // the watcher relaunches tasks that died; within one task the target's retries apply to the remaining attempts
      const { results } = await runTargetBackups({ ...t, retries: { ...t.retries, attempts: Math.max(1, t.retries.attempts - (attempt - 1)) } }, {
        target,
        resolveSource: () => resolveDatabase(t.database, secrets, `targets.${target}.database`, undefined, env, { defaultSslmode: "require" }),
        store,
        trigger: (env.LIFEBOAT_TRIGGER as Manifest["trigger"]) ?? "manual",
        runId,
        signal: abort.signal,
        log,
        bus,
        restoreHint: `lifeboat restore ${target}`,
        copies,
        onProgress: (() => {
          let last = 0;
          return (p: { bytes: number; elapsedMs: number }) => {
            if (p.elapsedMs - last >= 30_000) {
              last = p.elapsedMs;
              log.log("info", "dumping", { target, bytes: p.bytes, elapsedMs: p.elapsedMs });
            }
          };
        })(),
      });
      for (const r of results) log.log("info", "backup succeeded", { target, database: r.database, id: r.result!.manifest.id, location: r.result!.location, bytes: backupSize(r.result!.manifest) });
      // counts (keepLast, daily, weekly, monthly) have no S3 lifecycle equivalent: the runner applies them itself
      if (t.retention && prunedByRunner(t.retention)) {
        try {
          const pruned = await pruneTarget(store, target, t.retention, { log });
          log.log("info", "pruned", { target, deleted: pruned.deleted.length, kept: pruned.decisions.filter((d) => d.keep).length });
        } catch (err) {
          const error = redact(errorMessage(err));
          log.log("error", `the backup succeeded, but pruning old backups failed: ${error}`, { target });
          await bus.publish(pruneFailedEvent(target, runId, env.LIFEBOAT_TRIGGER ?? "manual", "primary", error));
        }
      }
      // copies are pruned by the runner (no lifecycle rule in a bucket the deployment does not own): each by its own
      // retention, else the target's; none left to its store ("store")
      for (const copy of copies) {
        try {
          for (const c of await pruneCopies([copy], target, t.retention, { log })) {
            if (c.result) log.log("info", `pruned copy ${c.copy}`, { target, copy: c.copy, deleted: c.result.deleted.length, kept: c.result.decisions.filter((d) => d.keep).length });
          }
        } catch (err) {
          const error = redact(errorMessage(err));
          log.log("error", `the backup succeeded, but pruning copy ${copy.name} failed: ${error}`, { target, copy: copy.name });
          await bus.publish(pruneFailedEvent(target, runId, env.LIFEBOAT_TRIGGER ?? "manual", copy.name, error));
        }
      }
      return unreported ? UNREPORTED : 0;
    } finally {
      process.removeListener("SIGTERM", onTerm);
    }
  } catch (err) {
    const code = unreported ? UNREPORTED : err instanceof LifeboatError ? err.exitCode : 1;
    log.log("error", redact(errorMessage(err)), { target, exitCode: code, ...(err instanceof LifeboatError && err.hint ? { hint: err.hint } : {}) });
    return code;
  }
}

if (import.meta.url === `file://${process.argv[1]}`) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
  process.exitCode = await runnerMain();
}
