import { spawn } from "node:child_process";
import { randomUUID } from "node:crypto";
import { availableParallelism } from "node:os";
import pRetry from "p-retry";
import {
  AttemptError,
  BackupFailedError,
  MANIFEST_VERSION_SET,
  backupSize,
  partKey,
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

  // A read-only repeatable-read transaction exports its snapshot; every pg_dump of the attempt dumps exactly that
  // snapshot (--snapshot), and the same transaction counts the dumped tables afterwards (row counts).
  const counting = job.dump.format === "custom" && job.dump.rowCounts;
  const jobs = job.dump.format === "custom" ? dumpJobs(job.dump) : 1;
  const session = counting || jobs > 1 ? await PsqlSession.open(conn) : undefined;
  // the session's own reads (table sizes, row counts) lock tables as pg_dump does: they wait for a lock no longer than
  // pg_dump may, and an aborted run (SIGTERM, maxRunMinutes) ends the session at once
  const killSession = () => session?.kill();
  if (session) job.signal?.addEventListener("abort", killSession, { once: true });
  try {
    if (job.signal?.aborted) throw abortedAttempt(job.signal.reason);
    const snapshot = session
      ? (await session.query(`set lock_timeout = '${job.dump.lockWaitTimeoutSeconds}s'; begin isolation level repeatable read, read only; select pg_export_snapshot();`))[0]?.[0]
      : undefined;
    const compressed = compression.method !== "none";
    const tail = [...(snapshot ? [`--snapshot=${snapshot}`] : []), `--dbname=${conninfo(conn)}`];
    // parallel: the largest tables' data each as a part of its own, the rest in the base archive
    const planned = session && jobs > 1 ? await planParts(session, job.dump, jobs, log, job.target) : [];
    const streams: Stream[] = [
      { key: keys.dump, args: [...compressArgs, ...planned.map((p) => `--exclude-table-data=${p.pattern}`), ...tail], bound: dumpSizeBound(server.sizeBytes, compressed) },
      ...planned.map((p, i) => ({ key: partKey(keys.dump, i + 1), table: p.table, args: [...compressArgs, "--data-only", `--table=${p.pattern}`, ...tail], bound: dumpSizeBound(p.bytes, compressed) })),
    ];
    if (planned.length) log.log("info", "parallel dump", { target: job.target, jobs, parts: planned.map((p) => p.table) });
    const stored: string[] = [];
    const dumped = await dumpStreams(job, conn, pgDump, streams, Math.max(1, jobs), started, secrets, counting, stored);
    return await manifestOrNothing(job, stored, async () => {
      const finished = new Date();
      let tables: Manifest["tables"];
      let tocSummary: TocSummary | undefined;
      let rowCountMs: number | undefined;
      if (session && counting) {
        const t0 = Date.now();
        const entries = (await Promise.all(dumped.map((d) => d.toc!.listing()))).flatMap((listing) => parseToc(listing));
        tocSummary = summarizeToc(entries);
        tables = await countRows(session, entries.filter((e) => e.type === "TABLE DATA").map((e) => e.oid));
        rowCountMs = Date.now() - t0;
        log.log("info", "rows counted in the dump's snapshot", { target: job.target, tables: tables.length, ms: rowCountMs });
      }
      if (session) await session.query("commit");
      const [base, ...parts] = dumped.map((d, i) => ({ key: streams[i]!.key, size: d.bytes, sha256: d.sha256, table: streams[i]!.table }));
      return await completeBackup(job, keys, {
        ...manifestRun(job, attempt, runId, id, started, finished),
        ...(parts.length ? { manifestVersion: MANIFEST_VERSION_SET } : {}),
        database: postgresDatabase(conn, server),
        pgDump: { version: pgDump.version, major: pgDump.major },
        format: job.dump.format,
        compression: compressionText(compression),
        object: { key: base!.key, size: base!.size, sha256: base!.sha256 },
        ...(parts.length ? { parts: parts.map((p) => ({ key: p.key, size: p.size, sha256: p.sha256, table: p.table! })) } : {}),
        ...(snapshot ? { snapshot } : {}),
        ...(tables ? { tables } : {}),
        ...(rowCountMs !== undefined ? { rowCountMs } : {}),
        ...(tocSummary ? { toc: tocSummary } : {}),
      });
    });
  } catch (err) {
    throw job.signal?.aborted ? abortedAttempt(job.signal.reason) : err;
  } finally {
    job.signal?.removeEventListener("abort", killSession);
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

/** How many pg_dump processes a custom-format dump may run: dump.jobs, else the CPUs available, at most 4. */
export function dumpJobs(dump: DumpOptions): number {
  return dump.jobs ?? Math.min(4, availableParallelism());
}

/** A table whose data is dumped as a part of its own. */
export interface PlannedPart {
  /** schema.name, quoted where needed (as format('%I.%I')). */
  table: string;
  /** The pg_dump pattern that names exactly this table: "schema"."name" with quotes doubled. */
  pattern: string;
  oid: number;
  bytes: number;
}

/**
 * The tables worth a stream of their own, largest first: ordinary tables of at least dump.parallelMinTableMB, not
 * belonging to an extension, at most 4 per job. Read in the dump's snapshot transaction. Only when the dump selects
 * everything: with schema or table filters, pg_dump's own pattern matching decides what is dumped, and one archive is
 * made (logged).
 */
export async function planParts(session: PsqlSession, dump: DumpOptions, jobs: number, log: Logger, target: string): Promise<PlannedPart[]> {
  if (dump.schemas.length || dump.excludeSchemas.length || dump.tables.length || dump.excludeTables.length) {
    log.log("info", "one archive: parallel dumps need a dump without schema or table filters", { target });
    return [];
  }
  const minBytes = Math.round(dump.parallelMinTableMB * 1024 * 1024);
  const rows = await session.query(
    `select c.oid, format('%I.%I', n.nspname, c.relname), n.nspname, c.relname, pg_table_size(c.oid)
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%'
       and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
       and pg_table_size(c.oid) >= ${minBytes}
     order by 5 desc, 2 limit ${jobs * 4}`,
  );
  const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
  return rows.map(([oid, table, schema, name, bytes]) => ({ oid: Number(oid), table: table!, pattern: `${quote(schema!)}.${quote(name!)}`, bytes: Number(bytes) }));
}

interface Stream {
  key: string;
  args: string[];
  /** An upper bound on the stream's size (multipart part sizes). */
  bound: number;
  /** A part's table. */
  table?: string | undefined;
}

/**
 * Runs the streams of one attempt, at most `jobs` at once, each pg_dump -> SHA-256 -> store. Progress is their sum.
 * When one fails, the others are stopped, what was stored is deleted, and its error is the attempt's. Keys of the
 * stored objects are added to `stored` as they complete.
 */
async function dumpStreams(
  job: BackupJob,
  conn: ConnectionInfo,
  pgDump: { path: string; major: number },
  streams: Stream[],
  jobs: number,
  started: Date,
  secrets: Set<string | undefined>,
  counting: boolean,
  stored: string[],
): Promise<(Dumped & { toc?: Awaited<ReturnType<typeof startTocReader>> })[]> {
  const inner = new AbortController();
  const onOuterAbort = () => inner.abort(job.signal?.reason);
  if (job.signal?.aborted) onOuterAbort();
  job.signal?.addEventListener("abort", onOuterAbort, { once: true });
  const bytes = streams.map(() => 0);
  const out: (Dumped & { toc?: Awaited<ReturnType<typeof startTocReader>> })[] = [];
  let failure: { err: unknown } | undefined;
  let next = 0;
  const worker = async () => {
    while (next < streams.length && !failure) {
      const i = next++;
      const s = streams[i]!;
      try {
        const toc = counting ? await startTocReader(pgDump.major) : undefined;
        const streamJob: BackupJob = {
          ...job,
          signal: inner.signal,
          onProgress: job.onProgress && ((p) => ((bytes[i] = p.bytes), job.onProgress!({ bytes: bytes.reduce((a, b) => a + b, 0), elapsedMs: p.elapsedMs }))),
        };
        const d = await dumpAndStore(streamJob, conn, pgDump.path, s.args, { dump: s.key }, started, secrets, toc?.feed, s.bound);
        stored.push(s.key);
        out[i] = { ...d, ...(toc ? { toc } : {}) };
      } catch (err) {
        if (!failure) {
          failure = { err };
          inner.abort(err);
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: Math.min(jobs, streams.length) }, worker));
  } finally {
    job.signal?.removeEventListener("abort", onOuterAbort);
  }
  if (failure) {
    if (stored.length) await job.store.delete(stored.splice(0)).catch(() => {});
    throw failure.err;
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
  if (dumpError) {
    // stopped (another part failed, SIGTERM) just as the store completed the object: it must not stay behind
    await job.store.delete([keys.dump]).catch(() => {});
    throw dumpError;
  }
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
        size: backupSize(result.manifest),
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
