import { randomUUID } from "node:crypto";
import { createHash } from "node:crypto";
import { BackupFailedError, DeadlineExceeded, LAST_RUN_FILE, RUNS_FOLDER, compactTime, LATEST_FILE, MANIFEST_SUFFIX, besideDump, type ObjectStore, errorMessage, joinKey, redact, type BackupFailedEvent, type BackupSucceededEvent, type DatabaseOutcome, type LocalEventBus, type TargetConfig, backupSize } from "@lifeboat/core";
import { runBackup, type BackupJob, type BackupResult } from "./backup.js";
import { readJsonIfExists, readObject, replaceJson, storeOnce, updateJson } from "./catalog.js";
import type { ConnectionInfo } from "./pg/connection.js";
import { query } from "./pg/psql.js";

/**
 * One run of a configured target. A plain target is one backup (runBackup, one event). A target with `databases`,
 * `all` or `globals` backs up each database (and the globals) as its own backup with its own manifest, one after the
 * other, each with the target's retries; then one summary event carries every database's outcome. The run fails
 * (BackupFailedError) if any database failed.
 */
export interface TargetRunResult {
  results: Array<{ database: string; result?: BackupResult; error?: string }>;
}

export function isMultiDatabase(t: TargetConfig): boolean {
  return Boolean(t.databases || t.all || t.globals);
}

/** Every database a target covers: its list, or every non-template database that accepts connections. */
export async function targetDatabases(t: TargetConfig, conn: ConnectionInfo): Promise<string[]> {
  if (t.databases) return t.databases;
  if (t.all) return (await query(conn, "select datname from pg_database where not datistemplate and datallowconn order by 1;")).map((r) => r[0]!);
  return [conn.database];
}

/** A run's signal: the caller's (SIGTERM), and the target's maximum run time. */
function withDeadline(signal: AbortSignal | undefined, minutes: number): { signal: AbortSignal; clear: () => void } {
  const deadline = new AbortController();
  const timer = setTimeout(() => deadline.abort(new DeadlineExceeded(minutes)), minutes * 60_000);
  timer.unref();
  return { signal: signal ? AbortSignal.any([signal, deadline.signal]) : deadline.signal, clear: () => clearTimeout(timer) };
}

export async function runTargetBackups(t: TargetConfig, given: Omit<BackupJob, "dump" | "retries">): Promise<TargetRunResult> {
  // one id for the run, in its events, its manifests and the record `lifeboat status` shows
  const job = { ...given, runId: given.runId ?? randomUUID() };
  const deadline = withDeadline(job.signal, t.maxRunMinutes);
  const startedAt = new Date().toISOString();
  try {
    const result = await runTargetUnits(t, { ...job, signal: deadline.signal });
    await recordLastRun(job, { outcome: "succeeded", startedAt, finishedAt: new Date().toISOString() });
    await recordLatest(job, result);
    return result;
  } catch (err) {
    const attempts = err instanceof BackupFailedError ? err.attempts : [];
    const last = attempts[attempts.length - 1];
    await recordLastRun(job, { outcome: "failed", startedAt, finishedAt: new Date().toISOString(), code: last?.code ?? "error", error: redact(errorMessage(err)).slice(0, 1000) });
    throw err;
  } finally {
    deadline.clear();
  }
}

/** How the last run of a target ended, kept in the store for `lifeboat status` (never a secret: messages are redacted). */
export interface LastRun {
  outcome: "succeeded" | "failed";
  /** The run's id, as in its events (set on every run; older records may lack it). */
  runId?: string | null;
  startedAt: string;
  finishedAt: string;
  code?: string;
  error?: string;
}
export { LAST_RUN_FILE };

async function recordLastRun(job: Omit<BackupJob, "dump" | "retries">, run: LastRun): Promise<void> {
  const record = { ...run, runId: job.runId, trigger: job.trigger ?? "manual" };
  try {
    await replaceJson(job.store, joinKey(job.target, LAST_RUN_FILE), record);
  } catch (err) {
    job.log?.log("warn", "could not record the run's outcome for `lifeboat status`", { target: job.target, error: errorMessage(err) });
  }
  try {
    await storeOnce(job.store, runRecordKey(job.target, run.startedAt, job.runId), record);
  } catch (err) {
    job.log?.log("warn", "could not add the run to the target's history (the dashboard and `lifeboat report`)", { target: job.target, error: errorMessage(err) });
  }
}

/** A run's entry in its target's history: <target>/.lifeboat-runs/<start, compact>-<a hash of the run id>.json */
export function runRecordKey(target: string, startedAt: string, runId: string | undefined): string {
  const suffix = createHash("sha256").update(runId ?? startedAt).digest("hex").slice(0, 8);
  return joinKey(target, RUNS_FOLDER, `${compactTime(new Date(startedAt))}-${suffix}.json`);
}

/** A run as its target's history holds it. */
export type RunRecord = LastRun & { trigger?: string };

/** A target's runs (newest first) that started at or after `since` (default: all kept). */
export async function runHistory(store: ObjectStore, target: string, since?: Date): Promise<RunRecord[]> {
  const out: RunRecord[] = [];
  const from = since ? compactTime(since) : "";
  const keys: string[] = [];
  for await (const o of store.list(joinKey(target, RUNS_FOLDER) + "/")) {
    const name = o.key.slice(o.key.lastIndexOf("/") + 1);
    if (name.endsWith(".json") && name >= from) keys.push(o.key);
  }
  for (let i = 0; i < keys.length; i += 8) {
    const batch = await Promise.all(keys.slice(i, i + 8).map((k) => readObject(store, k).then((b) => JSON.parse(b.toString("utf8")) as RunRecord, () => undefined)));
    for (const r of batch) if (r && (r.outcome === "succeeded" || r.outcome === "failed") && typeof r.startedAt === "string") out.push(r);
  }
  return out.sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1));
}

/** What the freshness check reads instead of every manifest: the target's newest backup. */
export interface LatestBackup {
  id: string;
  startedAt: string;
  manifest: string;
}

/** The target's newest backup as its pointer says, if it has one. */
export function readLatest(store: ObjectStore, target: string): Promise<LatestBackup | undefined> {
  return readJsonIfExists<LatestBackup>(store, joinKey(target, LATEST_FILE));
}

/** Moves the target's pointer to the newest backup of this run (never back: a slower, older run does not win). */
async function recordLatest(job: Omit<BackupJob, "dump" | "retries">, run: TargetRunResult): Promise<void> {
  const newest = run.results
    .flatMap((r) => (r.result ? [r.result.manifest] : []))
    .sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1))[0];
  if (!newest) return;
  const latest: LatestBackup = { id: newest.id, startedAt: newest.startedAt, manifest: besideDump(newest, MANIFEST_SUFFIX) };
  try {
    // never back, and decided on the version that is swapped: a slower, older run that lost the race does not win
    await updateJson<LatestBackup>(job.store, joinKey(job.target, LATEST_FILE), (current) => (current && current.startedAt >= latest.startedAt ? undefined : latest));
  } catch (err) {
    // the freshness check then sees an older backup: a false "missed", never a silent one
    job.log?.log("warn", "could not record the target's newest backup for the freshness check", { target: job.target, error: errorMessage(err) });
  }
}

async function runTargetUnits(t: TargetConfig, job: Omit<BackupJob, "dump" | "retries">): Promise<TargetRunResult> {
  const base: BackupJob = {
    ...job,
    dump: t.dump,
    retries: t.retries,
    ...(t.engine === "sqlite" ? { sqlite: { path: t.database.path! } } : {}),
    // the job's own recipients (lifeboat run --recipient) come before the target's
    ...(job.encryption ? {} : t.encryption ? { encryption: { recipients: t.encryption.recipients } } : {}),
  };
  if (!isMultiDatabase(t)) {
    const result = await runBackup(base);
    return { results: [{ database: result.manifest.database.name, result }] };
  }
  const runId = job.runId!; // set by runTargetBackups
  const conn = await job.resolveSource();
  const databases = await targetDatabases(t, conn);
  job.log?.log("info", "backing up several databases", { target: job.target, databases, globals: Boolean(t.globals) });
  const results: TargetRunResult["results"] = [];
  const times = new Map<string, { startedAt: string; finishedAt: string }>();
  const { bus: _summaryOnly, ...unitJob } = base; // the units publish nothing: one summary event for the run
  const units: Array<{ name: string; unit: Partial<BackupJob> }> = databases.map((d) => ({ name: d, unit: { database: d } }));
  if (t.globals) units.push({ name: "globals", unit: { globals: { passwords: typeof t.globals === "object" && t.globals.passwords } } });
  for (const { name, unit } of units) {
    if (job.signal?.aborted) {
      results.push({ database: name, error: "cancelled before it started" });
      continue;
    }
    const startedAt = new Date().toISOString();
    try {
      results.push({ database: name, result: await runBackup({ ...unitJob, ...unit, runId }) });
    } catch (err) {
      results.push({ database: name, error: errorMessage(err) });
    }
    times.set(name, { startedAt, finishedAt: new Date().toISOString() });
  }
  await publishSummary(job.bus, job, runId, results);
  const failed = results.filter((r) => r.error);
  if (failed.length) {
    throw new BackupFailedError(
      job.target,
      failed.map((f, i) => ({ attempt: i + 1, code: "database_failed", kind: "permanent" as const, message: `${f.database}: ${f.error}`, ...times.get(f.database)! })),
    );
  }
  return { results };
}

async function publishSummary(bus: LocalEventBus | undefined, job: Omit<BackupJob, "dump" | "retries">, runId: string, results: TargetRunResult["results"]): Promise<void> {
  if (!bus) return;
  const databases: DatabaseOutcome[] = results.map((r) =>
    r.result
      ? { database: r.database, status: "succeeded", backupId: r.result.manifest.id, location: r.result.location, size: backupSize(r.result.manifest) }
      : { database: r.database, status: "failed", error: r.error! },
  );
  const time = new Date().toISOString();
  const trigger = job.trigger ?? "manual";
  const failed = results.filter((r) => r.error);
  if (failed.length === 0) {
    const first = results[0]!.result!;
    const event: BackupSucceededEvent = {
      version: 1,
      type: "backup.succeeded",
      status: "succeeded",
      time,
      target: job.target,
      runId,
      trigger,
      attempt: 1,
      backup: {
        id: first.manifest.id,
        location: first.location,
        key: first.manifest.object.key,
        size: results.reduce((n, r) => n + (r.result ? backupSize(r.result.manifest) : 0), 0),
        sha256: first.manifest.object.sha256,
        durationMs: results.reduce((n, r) => n + (r.result?.manifest.durationMs ?? 0), 0),
        format: first.manifest.format,
      },
      restoreCommand: `${job.restoreHint ?? `lifeboat restore ${job.target}`} --backup <id> --to <postgres-url>`,
      databases,
    };
    await bus.publish(event);
    return;
  }
  const message = failed.map((f) => `${f.database}: ${f.error}`).join("\n");
  const event: BackupFailedEvent = {
    version: 1,
    type: "backup.failed",
    status: "failed",
    time,
    target: job.target,
    runId,
    trigger,
    attempt: 1,
    error: { message, code: "database_failed", kind: "permanent", attempts: [] },
    databases,
  };
  await bus.publish(event);
}
