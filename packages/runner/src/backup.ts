import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import pRetry from "p-retry";
import {
  AttemptError,
  BackupFailedError,
  CONFIG_ERROR,
  compressionText,
  defaultCompression,
  pgDumpCompressArg,
  type Compression,
  backupKeys,
  abortedAttempt,
  dumpExtension,
  dumpSizeBound,
  newBackupId,
  restoreCommandFor,
  silentLogger,
  type AttemptRecord,
  type BackupFailedEvent,
  type BackupSucceededEvent,
  type DumpOptions,
  type LocalEventBus,
  type Logger,
  type Manifest,
  type ObjectStore,
  type RetryPolicy,
} from "@lifeboat/core";
import { classifyPgMessage, toAttemptError } from "./pg/classify.js";
import { Digest } from "./digest.js";
import { completeBackup, manifestOrNothing, manifestRun } from "./complete.js";
import { conninfo, type ConnectionInfo } from "./pg/connection.js";
import { toolEnv } from "./pg/connection.js";
import { preflight, type ServerInfo } from "./pg/psql.js";
import { findTool } from "./pg/tools.js";
import { PsqlSession, literal } from "./pg/session.js";
import { backupSqlite } from "./sqlite.js";
import { parseToc, summarizeToc, type TocSummary } from "./pg/toc.js";

export interface Progress {
  bytes: number;
  elapsedMs: number;
}

export interface BackupJob {
  target: string;
  /** Resolves the connection for each attempt (secrets and RDS endpoints are looked up again on a retry). */
  resolveSource: () => Promise<ConnectionInfo>;
  store: ObjectStore;
  dump: DumpOptions;
  retries: RetryPolicy;
  trigger?: Manifest["trigger"];
  runId?: string;
  signal?: AbortSignal;
  log?: Logger;
  onProgress?: (p: Progress) => void;
  bus?: LocalEventBus;
  /** How a person restores this target's backups, for events and summaries: the part before --to. */
  restoreHint?: string;
  /** Dump this database of the server instead of the connection's (targets with several databases). */
  database?: string;
  /** Dump roles and tablespaces (pg_dumpall --globals-only) instead of a database. */
  globals?: { passwords: boolean };
  /** A SQLite database file instead of PostgreSQL (resolveSource is not called). */
  sqlite?: { path: string };
}

export interface BackupResult {
  manifest: Manifest;
  location: string;
  manifestLocation: string;
  attempts: AttemptRecord[];
}

/**
 * pg_dump arguments from validated dump options and the pg_dump that runs (its version decides the default
 * compression and how --compress is spelled): every value is one argv item, no shell ever sees them.
 */
export function pgDumpArgs(dump: DumpOptions, pgDump: { major: number; version: string }): string[] {
  const compress = pgDumpCompressArg(dumpCompression(dump, pgDump.major), pgDump);
  const args = [`--format=${dump.format}`, compress, "--no-password", `--lock-wait-timeout=${dump.lockWaitTimeoutSeconds}s`];
  for (const s of dump.schemas) args.push(`--schema=${s}`);
  for (const s of dump.excludeSchemas) args.push(`--exclude-schema=${s}`);
  for (const t of dump.tables) args.push(`--table=${t}`);
  for (const t of dump.excludeTables) args.push(`--exclude-table=${t}`);
  return args;
}

/** The compression a dump runs with: the configured one, else the default of this pg_dump. */
export function dumpCompression(dump: DumpOptions, pgDumpMajor: number): Compression {
  return dump.compression ?? defaultCompression(pgDumpMajor);
}

const STDERR_LIMIT = 64 * 1024;

/** One attempt: preflight, pg_dump streamed through SHA-256 into the store, manifest last. */
async function attemptBackup(job: BackupJob, attempt: number, runId: string, secrets: Set<string | undefined>): Promise<BackupResult> {
  const log = job.log ?? silentLogger;
  if (job.sqlite) return backupSqlite({ ...job, sqlite: job.sqlite }, attempt, runId);
  const resolved = await job.resolveSource();
  const conn = job.database ? { ...resolved, database: job.database } : resolved;
  secrets.add(conn.password);
  const server = await preflight(conn, job.signal);
  const pgDump = await findTool(job.globals ? "pg_dumpall" : "pg_dump", { minMajor: server.major });
  log.log("info", "connected", { target: job.target, server: server.version, pgDump: pgDump.version, attempt });

  const started = new Date();
  const id = newBackupId(started);
  if (job.globals) {
    const keys = backupKeys(job.target, id, ".sql", "_globals");
    const args = ["--globals-only", "--no-password", ...(job.globals.passwords ? [] : ["--no-role-passwords"]), `--dbname=${conninfo(conn)}`];
    const dumped = await dumpAndStore(job, conn, pgDump.path, args, keys, started, secrets, undefined);
    return await manifestOrNothing(job, keys.dump, () => completeBackup(job, keys, {
      ...manifestRun(job, attempt, runId, id, started, new Date()),
      database: postgresDatabase(conn, server, "globals"),
      pgDump: { version: pgDump.version, major: pgDump.major },
      format: "plain",
      compression: 0,
      object: { key: keys.dump, size: dumped.bytes, sha256: dumped.sha256 },
      kind: "globals",
    }));
  }
  const compression = dumpCompression(job.dump, pgDump.major);
  let compressArgs: string[];
  try {
    compressArgs = pgDumpArgs(job.dump, pgDump);
  } catch (err) {
    // a method this pg_dump lacks (zstd on pg_dump 15): the user's to fix, not retried
    throw new AttemptError(CONFIG_ERROR, "permanent", (err as Error).message, { hint: "set dump.compression (or --compression) to gzip[:1-9] or none" });
  }
  const keys = backupKeys(job.target, id, dumpExtension(job.dump.format, compression.method !== "none"), job.database);

  // For row counts: a read-only repeatable-read transaction exports its snapshot, pg_dump dumps exactly that
  // snapshot (--snapshot), and the same transaction counts the dumped tables afterwards.
  const counting = job.dump.format === "custom" && job.dump.rowCounts;
  const session = counting ? await PsqlSession.open(conn) : undefined;
  try {
    const snapshot = session ? (await session.query("begin isolation level repeatable read, read only; select pg_export_snapshot();"))[0]?.[0] : undefined;
    const toc = counting ? await startTocReader(pgDump.major) : undefined;
    const args = [...compressArgs, ...(snapshot ? [`--snapshot=${snapshot}`] : []), `--dbname=${conninfo(conn)}`];
    const bound = dumpSizeBound(server.sizeBytes, compression.method !== "none");
    const dumped = await dumpAndStore(job, conn, pgDump.path, args, keys, started, secrets, toc?.feed, bound);
    return await manifestOrNothing(job, keys.dump, async () => {
      const finished = new Date();
      let tables: Manifest["tables"];
      let tocSummary: TocSummary | undefined;
      let rowCountMs: number | undefined;
      if (session && toc) {
        const t0 = Date.now();
        const entries = parseToc(await toc.listing());
        tocSummary = summarizeToc(entries);
        tables = await countRows(session, entries.filter((e) => e.type === "TABLE DATA").map((e) => e.oid));
        await session.query("commit");
        rowCountMs = Date.now() - t0;
        log.log("info", "rows counted in the dump's snapshot", { target: job.target, tables: tables.length, ms: rowCountMs });
      }
      return await completeBackup(job, keys, {
        ...manifestRun(job, attempt, runId, id, started, finished),
        database: postgresDatabase(conn, server),
        pgDump: { version: pgDump.version, major: pgDump.major },
        format: job.dump.format,
        compression: compressionText(compression),
        object: { key: keys.dump, size: dumped.bytes, sha256: dumped.sha256 },
        ...(snapshot ? { snapshot } : {}),
        ...(tables ? { tables } : {}),
        ...(rowCountMs !== undefined ? { rowCountMs } : {}),
        ...(tocSummary ? { toc: tocSummary } : {}),
      });
    });
  } finally {
    await session?.close();
  }
}

/** `pg_restore --list` fed from the start of the dump stream: it reads the archive's table of contents and exits. */
async function startTocReader(major: number): Promise<{ feed: (chunk: Buffer) => void; listing: () => Promise<string> }> {
  const pgRestore = await findTool("pg_restore", { minMajor: major });
  const child = spawn(pgRestore.path, ["--list"], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let open = true;
  child.stdout.on("data", (d: Buffer) => (out += d.toString("utf8")));
  child.stderr.on("data", (d: Buffer) => (err += d.toString("utf8")));
  child.stdin.on("error", () => (open = false));
  const closed = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  child.on("close", () => (open = false));
  const LIMIT = 16 * 1024 * 1024; // the TOC comes first; never buffer more than this for a reader that stopped reading
  return {
    feed(chunk) {
      if (!open) return;
      if (child.stdin.writableLength > LIMIT) {
        open = false;
        child.stdin.end();
        return;
      }
      child.stdin.write(chunk);
    },
    async listing() {
      if (open) child.stdin.end();
      const code = await closed;
      if (code !== 0 && !out.includes("TOC Entries")) throw new AttemptError("toc_failed", "transient", `pg_restore --list could not read the archive: ${err.trim()}`);
      return out;
    },
  };
}

/** Exact counts, in the session's transaction (the dump's snapshot), of the tables the TOC says were dumped. */
async function countRows(session: PsqlSession, oids: number[]): Promise<NonNullable<Manifest["tables"]>> {
  if (oids.length === 0) return [];
  const names = await session.query(
    `select c.oid, format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid in (${oids.map(Number).join(",")}) order by 2`,
  );
  const out: NonNullable<Manifest["tables"]> = [];
  for (let i = 0; i < names.length; i += 50) {
    const batch = names.slice(i, i + 50);
    const rows = await session.query(batch.map(([, name]) => `select ${literal(name!)}, count(*) from only ${name}`).join(" union all "));
    for (const [name, count] of rows) out.push({ name: name!, rows: Number(count) });
  }
  return out;
}

interface Dumped {
  bytes: number;
  sha256: string;
}

/** pg_dump (or pg_dumpall) streamed through SHA-256 into the store. */
async function dumpAndStore(
  job: BackupJob,
  conn: ConnectionInfo,
  program: string,
  args: string[],
  keys: { dump: string },
  started: Date,
  secrets: Set<string | undefined>,
  tee: ((chunk: Buffer) => void) | undefined,
  expectedBytes?: number,
): Promise<Dumped> {
  const log = job.log ?? silentLogger;
  const child = spawn(program, args, {
    env: toolEnv(conn),
    stdio: ["ignore", "pipe", "pipe"],
  });
  log.log("info", "pg_dump started", { target: job.target, pid: child.pid, key: keys.dump });
  if (tee) child.stdout.on("data", tee);

  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    if (stderr.length < STDERR_LIMIT) stderr += d.toString("utf8");
  });

  let lastReport = 0;
  const digest = new Digest((bytes) => {
    const now = Date.now();
    if (job.onProgress && now - lastReport >= 200) {
      lastReport = now;
      job.onProgress({ bytes, elapsedMs: now - started.getTime() });
    }
  });

  // The body ends only when pg_dump has exited 0. Any other exit makes the body fail, so the store never completes
  // the object: a dump that stopped half way is never stored.
  let dumpError: AttemptError | undefined;
  const fail = (err: AttemptError) => {
    dumpError ??= err;
    if (!digest.destroyed) digest.destroy(err);
    if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
  };
  child.stdout.pipe(digest, { end: false });
  child.on("error", (err) => fail(toAttemptError(err, secrets)));
  child.on("close", (code, signal) => {
    if (code === 0) {
      digest.end();
      return;
    }
    const why = signal ? `pg_dump was killed by ${signal}` : `pg_dump exited with code ${code}`;
    const err = stderr.trim() ? classifyPgMessage(`${why}: ${stderr.trim()}`, secrets, "pg_dump_failed") : new AttemptError("pg_dump_failed", "transient", why);
    fail(err);
  });
  const onAbort = () => fail(abortedAttempt(job.signal?.reason));
  if (job.signal?.aborted) onAbort();
  job.signal?.addEventListener("abort", onAbort, { once: true });

  try {
    await job.store.put(keys.dump, digest, { contentType: "application/octet-stream", ...(expectedBytes ? { expectedBytes } : {}) });
  } catch (err) {
    fail(toAttemptError(err, secrets));
    throw dumpError ?? toAttemptError(err, secrets);
  } finally {
    job.signal?.removeEventListener("abort", onAbort);
  }
  if (dumpError) throw dumpError;
  job.onProgress?.({ bytes: digest.bytes, elapsedMs: Date.now() - started.getTime() });
  return { bytes: digest.bytes, sha256: digest.hex() };
}

function postgresDatabase(conn: ConnectionInfo, server: ServerInfo, name = server.database): Manifest["database"] {
  return {
    name,
    host: conn.host,
    port: conn.port,
    serverVersion: server.version,
    serverVersionNum: server.versionNum,
    ...(server.systemIdentifier ? { systemIdentifier: server.systemIdentifier } : {}),
  };
}

/**
 * Runs a backup with the target's retries: transient failures are retried with capped exponential backoff and
 * jitter (p-retry), permanent ones stop at once. Publishes backup.succeeded or backup.failed on the bus.
 */
export async function runBackup(job: BackupJob): Promise<BackupResult> {
  const log = job.log ?? silentLogger;
  const runId = job.runId ?? randomUUID();
  const trigger = job.trigger ?? "manual";
  const secrets = new Set<string | undefined>();
  const attempts: AttemptRecord[] = [];
  let attemptStarted = new Date();
  let current = 0;
  try {
    const result = await pRetry(
      async (n: number) => {
        current = n;
        attemptStarted = new Date();
        if (n > 1) log.log("info", "retrying", { target: job.target, attempt: n });
        return attemptBackup(job, n, runId, secrets);
      },
      {
        retries: job.retries.attempts - 1,
        factor: 2,
        minTimeout: job.retries.delaySeconds * 1000,
        maxTimeout: job.retries.maxDelaySeconds * 1000,
        randomize: true,
        ...(job.signal ? { signal: job.signal } : {}),
        onFailedAttempt: ({ error, attemptNumber }) => {
          const e = toAttemptError(error, secrets);
          attempts.push({
            attempt: attemptNumber,
            code: e.code,
            kind: e.kind,
            message: e.message,
            startedAt: attemptStarted.toISOString(),
            finishedAt: new Date().toISOString(),
          });
          log.log("warn", "attempt failed", { target: job.target, attempt: attemptNumber, code: e.code, kind: e.kind, error: e.message });
        },
        shouldRetry: ({ error }) => toAttemptError(error, secrets).kind === "transient" && !job.signal?.aborted,
      },
    );
    result.attempts = attempts;
    const event: BackupSucceededEvent = {
      version: 1,
      type: "backup.succeeded",
      status: "succeeded",
      time: new Date().toISOString(),
      target: job.target,
      runId,
      trigger,
      attempt: result.manifest.attempt,
      backup: {
        id: result.manifest.id,
        location: result.location,
        key: result.manifest.object.key,
        size: result.manifest.object.size,
        sha256: result.manifest.object.sha256,
        durationMs: result.manifest.durationMs,
        format: result.manifest.format,
      },
      restoreCommand: restoreCommandFor(job.restoreHint ?? `lifeboat restore ${job.target}`, result.manifest),
    };
    await job.bus?.publish(event);
    return result;
  } catch (err) {
    const lastErr = job.signal?.aborted ? abortedAttempt(job.signal.reason) : toAttemptError(err, secrets);
    if (attempts.length === 0 || attempts[attempts.length - 1]!.attempt !== current) {
      // p-retry does not call onFailedAttempt when it is aborted by the signal
      attempts.push({ attempt: current || 1, code: lastErr.code, kind: lastErr.kind, message: lastErr.message, startedAt: attemptStarted.toISOString(), finishedAt: new Date().toISOString() });
    }
    const last = attempts[attempts.length - 1]!;
    const failed = new BackupFailedError(job.target, attempts, lastErr.hint);
    const event: BackupFailedEvent = {
      version: 1,
      type: "backup.failed",
      status: "failed",
      time: new Date().toISOString(),
      target: job.target,
      runId,
      trigger,
      attempt: last.attempt,
      error: { message: last.message, code: last.code, kind: last.kind, attempts },
    };
    await job.bus?.publish(event);
    throw failed;
  }
}
