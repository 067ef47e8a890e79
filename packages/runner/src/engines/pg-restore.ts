// PostgreSQL's own restore (the engine's, engines/postgres.ts): the target checked first (reachable, not the source,
// empty or not, the roles the archive names), the backup read through fetch.ts, then pg_restore or psql: one
// transaction, parallel jobs into an empty database (undone if they fail), a backup set's parts at once.
import { createReadStream } from "node:fs";
import { Readable } from "node:stream";
import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { createGunzip } from "node:zlib";
import { spawn } from "node:child_process";
import { missingRoles, missingRolesError, rolesInArchive } from "../pg/roles.js";
import { restoreMark, undoRestore, type RestoreMark } from "../pg/undo.js";
import { ChecksumMismatchError, LifeboatError, errorMessage, backupSize, manifestCompression, redact, silentLogger, type Logger, type Manifest, type ObjectStore } from "@lifeboat/core";
import { conninfo, displayUrl, sameEndpoint, toolEnv, type ConnectionInfo } from "../pg/connection.js";
import { preflight, query } from "../pg/psql.js";
import { findTool } from "../pg/tools.js";
import { checkIdentities } from "../encryption.js";
import { heldChunks, streamedSet, verifiedDump, type Archive, type FetchDecrypting as Decrypting, type FetchProgress as Progress } from "../fetch.js";
import type { RestoreResult } from "./engine.js";

export interface RestoreOptions {
  store: ObjectStore;
  manifest: Manifest;
  to: ConnectionInfo;
  /** Restore even into the database the backup was taken from. */
  force?: boolean;
  /** Skip restoring ownership (pg_restore --no-owner), for servers without the original roles. */
  noOwner?: boolean;
  /** Restore no privileges (GRANT/REVOKE): for servers without the roles they name. */
  noAcl?: boolean;
  /**
   * Parallel pg_restore jobs for custom archives restored into an empty database. Default: a backup set, the CPUs
   * available (its parts load at once; each in one transaction); a single archive, 1: one transaction, so that a
   * restore that fails changes nothing (pg_restore cannot use --single-transaction with --jobs).
   */
  jobs?: number;
  /** Identities that decrypt an encrypted backup (checked against its recipients before anything else). */
  identities?: string[] | undefined;
  signal?: AbortSignal;
  log?: Logger;
  onProgress?: (p: { phase: "download" | "restore"; done: number; total: number }) => void;
}

/** Does the database hold any user relation (table, view, sequence, ...)? */
export async function isEmptyDatabase(c: ConnectionInfo): Promise<boolean> {
  const [[n]] = (await query(
    c,
    `select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%'
       and c.relkind in ('r', 'p', 'v', 'm', 'S', 'f');`,
  )) as [[string]];
  return Number(n) === 0;
}

export interface RestoreIntoOptions {
  jobs: number;
  noOwner?: boolean | undefined;
  noAcl?: boolean | undefined;
  signal?: AbortSignal | undefined;
  log?: Logger | undefined;
  onProgress?: ((done: number, total: number) => void) | undefined;
}

/**
 * Restores a verified local dump into a database. Custom archives: pg_restore, with --jobs when jobs > 1, else in
 * one transaction. Plain dumps: psql in one transaction (streamed, gunzipped when compressed).
 */
export async function restoreInto(files: string | Archive[], manifest: Manifest, to: ConnectionInfo, opts: RestoreIntoOptions): Promise<{ ms: number }> {
  const log = opts.log ?? silentLogger;
  const t1 = Date.now();
  const archives = typeof files === "string" ? [files] : files;
  const file = archives[0];
  if (manifest.parts?.length) {
    await restoreSet(archives, manifest, to, opts);
  } else if (file === undefined) {
    throw new LifeboatError(`backup ${manifest.id}: no archive to restore`);
  } else if (typeof file !== "string" && (opts.jobs > 1 || manifest.kind === "globals")) {
    throw new LifeboatError(`backup ${manifest.id} is a single archive: with parallel jobs it is restored from a checked file`);
  } else if (manifest.format === "custom") {
    const tool = await findTool("pg_restore", { minMajor: manifest.pgDump.major, for: "the archive (written by pg_dump " + manifest.pgDump.version + ")" });
    const args = ["--no-password", "--exit-on-error", "--verbose", `--dbname=${conninfo(to)}`];
    args.push(opts.jobs > 1 ? `--jobs=${opts.jobs}` : "--single-transaction");
    if (opts.noOwner) args.push("--no-owner");
    if (opts.noAcl) args.push("--no-acl");
    // a checked file, or a stream that pg_restore reads on its stdin (an encrypted backup's plaintext, one job)
    if (typeof file === "string") args.push(file);
    const input = typeof file === "string" ? undefined : await file.open(Promise.resolve(), () => {});
    // pg_restore --verbose says "processing data for table" once per table in either mode (its "launching" and
    // "finished item" lines come on top with --jobs): tables are counted by name, never beyond the archive's count
    const total = manifest.toc?.byType["TABLE DATA"] ?? manifest.tables?.length ?? 0;
    log.log("info", "pg_restore started", { to: displayUrl(to), pgRestore: tool.version, jobs: opts.jobs, ...(input ? { from: "stream" } : {}) });
    await runRestoreTool(tool.path, args, to, input, opts.signal, tableCounter(total, opts.onProgress));
  } else if (manifest.kind === "globals") {
    // Roles and tablespaces: some already exist on any server (the superuser at least). psql goes on past errors,
    // and only errors other than "already exists" fail the restore.
    const tool = await findTool("psql");
    const errors: string[] = [];
    await runRestoreTool(tool.path, ["-X", "-q", "--no-password", `--dbname=${conninfo(to)}`, "-f", file as string], to, undefined, opts.signal, (line) => {
      if (/ERROR:/.test(line) && !/(role|tablespace) "[^"]*" already exists/.test(line)) errors.push(line);
    });
    if (errors.length) throw new LifeboatError(`restoring roles and tablespaces failed: ${redact(errors.join("; "), [to.password])}`);
    log.log("info", "roles and tablespaces restored (existing ones kept)", { to: displayUrl(to) });
  } else {
    const tool = await findTool("psql");
    const args = ["-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "--single-transaction", `--dbname=${conninfo(to)}`, "-f", "-"];
    const input = plainSql(typeof file === "string" ? file : await file.open(Promise.resolve(), () => {}), manifest);
    log.log("info", "psql restore started", { to: displayUrl(to), ...(typeof file === "string" ? {} : { from: "stream" }) });
    await runRestoreTool(tool.path, args, to, input, opts.signal);
  }
  return { ms: Date.now() - t1 };
}

/** A plain dump's SQL text: a file or a stream, gunzipped when the dump is compressed. */
export function plainSql(source: string | Readable, manifest: Manifest): Readable {
  const raw = typeof source === "string" ? createReadStream(source) : source;
  return manifestCompression(manifest.compression).method === "gzip" ? raw.pipe(createGunzip()) : raw;
}

/** A pg_restore --verbose line reader that reports tables as their data starts ("processing data for table"). */
function tableCounter(total: number, onProgress: ((done: number, total: number) => void) | undefined, seen = new Set<string>()): (line: string) => void {
  return (line) => {
    const table = /processing data for table "(.*)"$/.exec(line)?.[1];
    if (table === undefined || seen.has(table)) return;
    seen.add(table);
    onProgress?.(seen.size, Math.max(total, seen.size));
  };
}

/**
 * A backup set into an empty database: the base archive's schema (pre-data, one transaction), then every table's
 * data at once, up to `jobs` pg_restore processes (the base's data section: small tables, sequences, large objects;
 * and each part, --data-only, one transaction each), then the base's indexes, constraints and triggers (post-data,
 * with --jobs). Parts given as StreamedArchive are piped into their pg_restore as they are read and checked: each
 * waits, its last bytes held back, until every part has matched the manifest, so a part that fails its check leaves
 * no data committed (every part's transaction is rolled back); a part's slot is free for the next as soon as it has
 * been read.
 */
async function restoreSet(files: Archive[], manifest: Manifest, to: ConnectionInfo, opts: RestoreIntoOptions): Promise<void> {
  const log = opts.log ?? silentLogger;
  const parts = manifest.parts ?? [];
  const base = files[0];
  if (files.length !== parts.length + 1 || typeof base !== "string") throw new LifeboatError(`backup ${manifest.id} is a set of ${parts.length + 1} archives, but ${files.length} were given`);
  const tool = await findTool("pg_restore", { minMajor: manifest.pgDump.major, for: "the archive (written by pg_dump " + manifest.pgDump.version + ")" });
  const common = ["--no-password", "--exit-on-error", "--verbose", `--dbname=${conninfo(to)}`, ...(opts.noOwner ? ["--no-owner"] : []), ...(opts.noAcl ? ["--no-acl"] : [])];
  const jobs = Math.max(1, opts.jobs);
  log.log("info", "pg_restore of a backup set started", { to: displayUrl(to), pgRestore: tool.version, archives: files.length, jobs, streamed: files.filter((f) => typeof f !== "string").length });
  await runRestoreTool(tool.path, [...common, "--section=pre-data", "--single-transaction", base], to, undefined, opts.signal);
  const total = manifest.toc?.byType["TABLE DATA"] ?? manifest.tables?.length ?? 0;
  const onLine = tableCounter(total, opts.onProgress);
  const partArgs = [...common, "--data-only", "--single-transaction"];
  // with streamed parts, the base's data (small tables, sequences, large objects) is held back with theirs
  const held = files.some((f) => typeof f !== "string");
  const baseData: Archive = held ? { location: base, open: async (release, read) => Readable.from(heldChunks(createReadStream(base), release, read), { objectMode: false }) } : base;
  const data: Archive[] = [baseData, ...files.slice(1)];
  const argsFor = (i: number) => (i === 0 ? [...common, "--section=data", ...(held ? ["--single-transaction"] : [])] : partArgs);
  let release!: () => void;
  let refuse!: (err: unknown) => void;
  const released = new Promise<void>((res, rej) => ((release = res), (refuse = rej)));
  released.catch(() => {}); // seen by every held stream
  const loading: Array<{ done: Promise<void>; input: Readable }> = [];
  let failure: { err: unknown } | undefined;
  // the first failure stops every part still loading: their pg_restore is killed, their transaction rolled back
  const fail = (err: unknown) => {
    if (failure) return;
    failure = { err };
    refuse(err);
    for (const l of loading) if (!l.input.destroyed) l.input.destroy(err as Error);
  };
  let next = 0;
  const worker = async () => {
    while (next < data.length && !failure) {
      const i = next++;
      const archive = data[i]!;
      if (typeof archive === "string") {
        await runRestoreTool(tool.path, [...argsFor(i), archive], to, undefined, opts.signal, onLine);
        continue;
      }
      let fullyRead = false;
      let read!: () => void;
      const allRead = new Promise<void>((r) => (read = () => ((fullyRead = true), r())));
      const input = await archive.open(released, read);
      const done = runRestoreTool(tool.path, argsFor(i), to, input, opts.signal, onLine).catch((err) => (fullyRead || opts.signal?.aborted ? Promise.reject(err) : diagnosed(err, input, allRead)));
      done.catch(fail);
      loading.push({ done, input });
      const stopped = failure as { err: unknown } | undefined; // another part failed while this one was opened
      if (stopped) input.destroy(stopped.err as Error);
      await Promise.race([allRead, done]);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, data.length) }, () => worker().catch(fail)));
  if (!failure) release();
  await Promise.allSettled(loading.map((l) => l.done));
  const failed = failure as { err: unknown } | undefined; // set by the workers
  if (failed) throw failed.err;
  await runRestoreTool(tool.path, [...common, "--section=post-data", jobs > 1 ? `--jobs=${jobs}` : "--single-transaction", base], to, undefined, opts.signal);
}

/**
 * pg_restore failed on a streamed part: a corrupted part can make it fail before the end of the part is read (bad
 * compressed data) - the rest is read and hashed (for a minute at most), so that a checksum mismatch is reported as
 * what it is. Not when the restore was stopped (its signal): then the stop is the answer.
 */
async function diagnosed(err: unknown, input: Readable, allRead: Promise<void>): Promise<never> {
  if (!input.destroyed && !(err instanceof ChecksumMismatchError)) {
    const verdict = await new Promise<unknown>((resolve) => {
      input.once("error", resolve);
      void allRead.then(() => resolve(undefined)); // every byte matched: pg_restore's own error stands
      // a source that stalls does not hold the failure back: after a minute, pg_restore's error is the answer
      setTimeout(() => resolve(undefined), 60_000).unref();
      input.resume();
    });
    if (verdict instanceof ChecksumMismatchError) throw verdict;
  }
  throw err;
}

/**
 * Restore: the target is checked first (it exists, we can log in, it is not the source database), then the verified
 * download, then restoreInto. Into an empty database a custom archive is restored with parallel jobs; into a database that already
 * holds objects, in one transaction, so that a conflict changes nothing. The temporary copy is always removed.
 */
export async function restorePostgres(opts: RestoreOptions): Promise<RestoreResult> {
  const log = opts.log ?? silentLogger;
  const { manifest, to } = opts;
  if (manifest.format === "sqlite") throw new LifeboatError(`backup ${manifest.id} is a SQLite database`, { exitCode: 2, hint: "restore it to a file: --to-file <path>" });
  // an encrypted backup: the identity first, before the target is even connected to
  await checkIdentities(manifest, opts.identities);
  // the target first: a missing database, a wrong password or the source itself is refused before any download
  const server = await preflight(to, opts.signal).catch((err: Error) => {
    throw new LifeboatError(`cannot connect to the restore target ${displayUrl(to)}: ${redact(err.message, [to.password])}`, {
      hint: (err as { hint?: string }).hint ?? "the target database must exist: createdb it first",
    });
  });
  const src = manifest.database;
  const same =
    src.systemIdentifier && server.systemIdentifier
      ? src.systemIdentifier === server.systemIdentifier && src.name === server.database
      : sameEndpoint({ host: src.host, port: src.port, database: src.name }, { host: to.host, port: to.port, database: server.database });
  if (same && !opts.force) {
    throw new LifeboatError(
      `refusing to restore into ${displayUrl(to)}: it is the database this backup was taken from ("${src.name}" on ${src.host}:${src.port})`,
      { exitCode: 2, hint: "restore into a new database (createdb), use --swap to replace it safely, or pass --force if you really mean to overwrite it" },
    );
  }
  const empty = await isEmptyDatabase(to);
  if (!empty && manifest.parts?.length) {
    throw new LifeboatError(`backup ${manifest.id} is a parallel backup set (${manifest.parts.length + 1} archives): it restores into an empty database only, and ${displayUrl(to)} is not empty`, {
      exitCode: 2,
      hint: "restore into a new database (createdb), or use --swap to replace this one",
    });
  }
  const set = Boolean(manifest.parts?.length);
  const jobs = manifest.format === "custom" && empty ? Math.max(1, opts.jobs ?? (set ? availableParallelism() : 1)) : 1;
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-restore-"));
  try {
    const checking: Progress & Decrypting = {
      identities: opts.identities,
      signal: opts.signal,
      onProgress: (done, total) => opts.onProgress?.({ phase: "download", done, total }),
    };
    // from a store without local files (S3), a set's data parts are not copied: each streams from the store into its
    // pg_restore, checked as it goes; a directory store's files are checked first and used where they lie. An
    // encrypted single archive restored by one process is decrypted as it streams into it: no plaintext on disk.
    const dump = set && manifest.format === "custom" && !opts.store.localPath ? await streamedSet(opts.store, manifest, dir, checking) : await verifiedDump(opts.store, manifest, dir, { ...checking, streamPlaintext: !set && jobs === 1 });
    const plaintext = "plaintext" in dump ? dump.plaintext : undefined;
    const files: Archive[] = "archives" in dump ? dump.archives : plaintext ? [{ location: dump.file, open: () => plaintext() }] : dump.files;
    const downloadMs = dump.ms;
    if ("archives" in dump) {
      log.log("info", "base archive verified; the data parts are checked as they stream into pg_restore, and none is committed until all match", { sha256: manifest.object.sha256, bytes: backupSize(manifest), archives: files.length });
    } else {
      log.log("info", dump.inPlace ? "checksum verified; restoring from the stored file where it lies" : "checksum verified", { sha256: manifest.object.sha256, bytes: backupSize(manifest), archives: files.length });
    }
    // before anything is written: every role a custom archive names must exist on the target (or be left out). Its
    // table of contents says (read in a moment); a plain dump would have to be read whole, and its restore is one
    // transaction anyway: a missing role there fails it with nothing changed, and the same hint.
    if (manifest.kind !== "globals" && manifest.format === "custom") {
      const base = files[0]!;
      const source = typeof base === "string" ? base : await base.open(Promise.resolve(), () => {});
      const roles = await rolesInArchive(source, manifest.pgDump);
      if (typeof source !== "string") source.destroy();
      const missing = await missingRoles(to, roles, { noOwner: opts.noOwner, noAcl: opts.noAcl });
      if (missing.owners.length || missing.grantees.length) throw missingRolesError(missing, `the restore target ${displayUrl(to)}`, manifest.target);
    }

    if (!empty) log.log("warn", "the target database is not empty: restoring in one transaction (no parallel jobs)", { to: displayUrl(to) });
    // a restore in several transactions (a set, --jobs N) into an empty database: what it created is dropped if it
    // fails or is stopped (pg/undo.ts), so that it changes nothing either
    const mark = empty && (set || jobs > 1) ? await restoreMark(to) : undefined;
    let restoreMs: number;
    try {
      ({ ms: restoreMs } = await restoreInto(files, manifest, to, {
        jobs,
        noOwner: opts.noOwner,
        noAcl: opts.noAcl,
        signal: opts.signal,
        log,
        onProgress: (done, total) => opts.onProgress?.({ phase: "restore", done, total }),
      }));
    } catch (err) {
      if (mark === undefined) throw err;
      throw await undone(err, to, mark, log);
    }
    await dump.unchanged();
    return { downloadMs, restoreMs, bytes: backupSize(manifest), jobs, singleTransaction: jobs === 1 && !manifest.parts?.length };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

/** After a failed restore in several transactions: its objects dropped, and the error says what state it left. */
async function undone(err: unknown, to: ConnectionInfo, mark: RestoreMark, log: Logger): Promise<unknown> {
  let left: number | string;
  try {
    left = await undoRestore(to, mark);
  } catch (undoErr) {
    left = redact((undoErr as Error).message, [to.password]);
  }
  log.log(left === 0 ? "info" : "error", left === 0 ? "the failed restore was undone: the target database is empty again" : "the failed restore could not be undone whole", { to: displayUrl(to), ...(left === 0 ? {} : { left }) });
  const state =
    left === 0
      ? "the target database was returned to empty (everything the restore created was dropped): run the same command again once the cause is fixed"
      : `the target database still holds part of the backup (${typeof left === "number" ? `${left} objects could not be dropped` : `undoing failed: ${left}`}): drop and recreate it before trying again`;
  if (err instanceof ChecksumMismatchError) {
    err.message = `${err.message.replace(/\.$/, "")}; ${state}.`;
    return err;
  }
  const hint = err instanceof LifeboatError && err.hint && !/drop and recreate|nothing was restored/.test(err.hint) ? err.hint : undefined;
  return new LifeboatError(`${errorMessage(err)}; ${state}`, { exitCode: err instanceof LifeboatError ? err.exitCode : 1, ...(hint ? { hint } : {}), cause: err });
}

function runRestoreTool(
  path: string,
  args: string[],
  to: ConnectionInfo,
  input: NodeJS.ReadableStream | undefined,
  signal?: AbortSignal,
  onLine?: (line: string) => void,
): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { env: toolEnv(to), stdio: [input ? "pipe" : "ignore", "ignore", "pipe"], ...(signal ? { signal } : {}) });
    let stderr = "";
    let partial = "";
    child.stderr!.on("data", (d: Buffer) => {
      const text = d.toString("utf8");
      partial += text;
      const lines = partial.split("\n");
      partial = lines.pop()!;
      for (const line of lines) {
        onLine?.(line);
        // --verbose narrates every item; keep the errors (and the last lines) for the message
        if (!/^pg_restore: (processing|creating|executing|launching|finished|connecting|entering|implied|disabling|enabling|setting|from)/.test(line) && stderr.length < 64 * 1024) stderr += line + "\n";
      }
    });
    if (input && child.stdin) {
      child.stdin.on("error", () => {});
      input.on("error", (err) => {
        child.kill();
        reject(err);
      });
      input.pipe(child.stdin);
    }
    child.on("error", reject);
    child.on("close", (code, sig) => {
      if (code === 0) return resolve();
      const text = redact((stderr + partial).trim(), [to.password]);
      const hint = /role "[^"]+" does not exist/.test(text)
        ? "the target server lacks the original roles: create them, or pass --no-owner"
        : args.some((a) => a.startsWith("--jobs="))
          ? "the restore ran with parallel jobs, so the target database now holds part of the backup: drop and recreate it before trying again"
          : "nothing was restored: the restore ran in one transaction and was rolled back";
      reject(new LifeboatError(`restore failed (${sig ? `killed by ${sig}` : `exit code ${code}`}): ${text}`, { hint }));
    });
  });
}
