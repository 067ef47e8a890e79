import { createReadStream, createWriteStream, type Stats } from "node:fs";
import { Writable } from "node:stream";
import { mkdtemp, open, rm, stat } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { spawn } from "node:child_process";
import { createHash } from "node:crypto";
import { ChecksumMismatchError, LifeboatError, backupObjects, backupSize, manifestCompression, redact, silentLogger, type Logger, type Manifest, type ObjectStore } from "@lifeboat/core";
import { conninfo, displayUrl, sameEndpoint, toolEnv, type ConnectionInfo } from "./pg/connection.js";
import { preflight, query } from "./pg/psql.js";
import { findTool } from "./pg/tools.js";
import { Digest } from "./digest.js";
import { checkIdentities, decryptStream } from "./encryption.js";

export interface RestoreOptions {
  store: ObjectStore;
  manifest: Manifest;
  to: ConnectionInfo;
  /** Restore even into the database the backup was taken from. */
  force?: boolean;
  /** Skip restoring ownership (pg_restore --no-owner), for servers without the original roles. */
  noOwner?: boolean;
  /** Parallel pg_restore jobs for custom archives restored into an empty database (default: the CPUs available). */
  jobs?: number;
  /** Identities that decrypt an encrypted backup (checked against its recipients before anything else). */
  identities?: string[] | undefined;
  signal?: AbortSignal;
  log?: Logger;
  onProgress?: (p: { phase: "download" | "restore"; done: number; total: number }) => void;
}

export interface RestoreResult {
  downloadMs: number;
  restoreMs: number;
  bytes: number;
  jobs: number;
  singleTransaction: boolean;
}

type Progress = { signal?: AbortSignal | undefined; onProgress?: ((done: number, total: number) => void) | undefined };
/** Identities (AGE-SECRET-KEY-1...) that decrypt an encrypted backup. */
type Decrypting = { identities?: string[] | undefined };
type StoredObject = { key: string; size: number; sha256: string };

/**
 * Fetches the dump (the base archive of a set) into a private temporary directory while hashing it and refuses it
 * unless its SHA-256 and size match the manifest. The caller removes `dir`.
 */
export async function downloadVerified(store: ObjectStore, manifest: Manifest, dir: string, opts: Progress & Decrypting = {}): Promise<{ file: string; ms: number }> {
  const t0 = Date.now();
  const file = await downloadObject(store, manifest.object, join(dir, "dump"), opts);
  const [plain] = manifest.encryption ? await decrypted(manifest, [{ file, inPlace: false }], dir, opts) : [file];
  return { file: plain!, ms: Date.now() - t0 };
}

/**
 * The plaintext of checked age files (checked as stored: the SHA-256 is of the encrypted bytes, no key needed),
 * once the identities are known to be the backup's, written beside the other temporary files of the restore (0600,
 * in its private directory) for pg_restore, which needs a file it can seek in for parallel jobs. Downloaded
 * encrypted copies are removed; stored files used in place are left alone.
 */
async function decrypted(manifest: Manifest, checked: { file: string; inPlace: boolean }[], dir: string, opts: Progress & Decrypting): Promise<string[]> {
  await checkIdentities(manifest, opts.identities);
  const out: string[] = [];
  for (const [i, c] of checked.entries()) {
    const file = join(dir, `plain-${i}`);
    await pipeline(await decryptStream(createReadStream(c.file), opts.identities!), createWriteStream(file, { flags: "wx", mode: 0o600 }), opts.signal ? { signal: opts.signal } : {});
    if (!c.inPlace) await rm(c.file, { force: true });
    out.push(file);
  }
  return out;
}

/** One stored object into `file`, hashed; a mismatch with its recorded SHA-256 or size is a ChecksumMismatchError. */
async function downloadObject(store: ObjectStore, object: StoredObject, file: string, opts: Progress): Promise<string> {
  const { key, size, sha256 } = object;
  if (store.getRange && size > RANGE_BYTES && (await storedSize(store, key)) === size) {
    const actual = await downloadRanges(store, key, size, file, opts);
    const bytes = (await stat(file)).size;
    if (actual !== sha256 || bytes !== size) throw new ChecksumMismatchError(store.location(key), sha256, actual, size, bytes);
    return file;
  }
  const meter = new Digest((done) => opts.onProgress?.(done, size));
  await pipeline(await store.get(key), meter, createWriteStream(file, { mode: 0o600 }), opts.signal ? { signal: opts.signal } : {});
  const actual = meter.hex();
  if (actual !== sha256 || meter.bytes !== size) throw new ChecksumMismatchError(store.location(key), sha256, actual, size, meter.bytes);
  return file;
}

/** The stored object's size (ranges are planned from it; a different size is left to the sequential download's check). */
async function storedSize(store: ObjectStore, key: string): Promise<number | undefined> {
  for await (const o of store.list(key)) if (o.key === key) return o.size;
  return undefined;
}

/**
 * Ranged downloads: RANGE_BYTES per request, RANGES_IN_FLIGHT at once, each streamed to its place in the file. The
 * ranges arrive out of order; the SHA-256 is computed in order, each range read back (from the page cache) as soon as
 * it and those before it are on disk, while later ranges still download. Returns the hex digest.
 */
const RANGE_BYTES = 16 * 1024 * 1024;
const RANGES_IN_FLIGHT = 4;

async function downloadRanges(store: ObjectStore, key: string, size: number, file: string, opts: Progress): Promise<string> {
  const fh = await open(file, "wx", 0o600);
  try {
    await fh.truncate(size);
  } finally {
    await fh.close();
  }
  const ranges = Array.from({ length: Math.ceil(size / RANGE_BYTES) }, (_, i) => {
    let resolve!: () => void;
    let reject!: (err: unknown) => void;
    const done = new Promise<void>((res, rej) => ((resolve = res), (reject = rej)));
    done.catch(() => {}); // observed by the hasher; a failure is reported once, by Promise.all below
    return { start: i * RANGE_BYTES, end: Math.min(size, (i + 1) * RANGE_BYTES) - 1, done, resolve, reject };
  });
  let next = 0;
  let downloaded = 0;
  const worker = async () => {
    while (next < ranges.length) {
      const r = ranges[next++]!;
      try {
        const body = await store.getRange!(key, r.start, r.end);
        const counter = new Digest((n) => opts.onProgress?.(downloaded + n, size));
        await pipeline(body, counter, createWriteStream(file, { flags: "r+", start: r.start }), opts.signal ? { signal: opts.signal } : {});
        downloaded += counter.bytes;
        if (counter.bytes !== r.end - r.start + 1) throw new LifeboatError(`a ranged download of ${store.location(key)} returned ${counter.bytes} bytes instead of ${r.end - r.start + 1}`);
        r.resolve();
      } catch (err) {
        for (const later of ranges) later.reject(err);
        throw err;
      }
    }
  };
  const hash = createHash("sha256");
  const hasher = async () => {
    for (const r of ranges) {
      await r.done;
      for await (const chunk of createReadStream(file, { start: r.start, end: r.end })) hash.update(chunk as Buffer);
    }
  };
  await Promise.all([...Array.from({ length: RANGES_IN_FLIGHT }, worker), hasher()]);
  return hash.digest("hex");
}

/** A verified dump on local disk: downloaded into `dir`, or (a directory store) the stored files where they lie. */
export interface VerifiedDump {
  /** The dump (a set's base archive). */
  file: string;
  /** Every archive of the backup: the dump, then a set's parts in the manifest's order. */
  files: string[];
  ms: number;
  /** The stored files themselves, not copies. */
  inPlace: boolean;
  /** Throws when a file used in place is no longer the one that was checked (replaced, rewritten, truncated). */
  unchanged(): Promise<void>;
}

type FileIdentity = Pick<Stats, "dev" | "ino" | "size" | "mtimeMs" | "ctimeMs">;
const sameFile = (a: FileIdentity, b: FileIdentity) => a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;

/**
 * Every archive of the backup, checked against the manifest's SHA-256 and size, on local disk. A directory store's
 * files are checked and used where they lie, with no copy; each one's identity (device, inode, size, modification and
 * change times) is taken before its check and compared after it and again by `unchanged()` after the restore, so a
 * file replaced or rewritten in between is refused. Any other store's objects are downloaded into `dir` and hashed.
 */
export async function verifiedDump(store: ObjectStore, manifest: Manifest, dir: string, opts: Progress & Decrypting = {}): Promise<VerifiedDump> {
  const t0 = Date.now();
  const total = backupSize(manifest);
  let before = 0;
  const checked: { file: string; inPlace: boolean; unchanged: () => Promise<void> }[] = [];
  for (const [i, object] of backupObjects(manifest).entries()) {
    const sub: Progress = { signal: opts.signal, onProgress: (done) => opts.onProgress?.(before + done, total) };
    checked.push(await verifiedObject(store, manifest, object, join(dir, i === 0 ? "dump" : `part-${i}`), sub));
    before += object.size;
  }
  if (manifest.encryption) {
    const plain = await decrypted(manifest, checked, dir, opts);
    return { file: plain[0]!, files: plain, ms: Date.now() - t0, inPlace: false, unchanged: async () => {} };
  }
  return {
    file: checked[0]!.file,
    files: checked.map((c) => c.file),
    ms: Date.now() - t0,
    inPlace: checked.every((c) => c.inPlace),
    unchanged: async () => {
      for (const c of checked) await c.unchanged();
    },
  };
}

async function verifiedObject(store: ObjectStore, manifest: Manifest, object: StoredObject, download: string, opts: Progress): Promise<{ file: string; inPlace: boolean; unchanged: () => Promise<void> }> {
  // SQLite files are opened by sqlite3, which may write beside them (journals): those are always copied first
  const local = manifest.format === "sqlite" ? undefined : store.localPath?.(object.key);
  if (!local) return { file: await downloadObject(store, object, download, opts), inPlace: false, unchanged: async () => {} };
  const location = store.location(object.key);
  const before = await stat(local);
  const meter = new Digest((done) => opts.onProgress?.(done, object.size));
  await pipeline(createReadStream(local), meter, new Writable({ write: (_c, _e, cb) => cb() }), opts.signal ? { signal: opts.signal } : {});
  const actual = meter.hex();
  if (actual !== object.sha256 || meter.bytes !== object.size) throw new ChecksumMismatchError(location, object.sha256, actual, object.size, meter.bytes);
  const changed = async (when: string) => {
    const now = await stat(local).catch(() => undefined);
    if (!now || !sameFile(before, now)) {
      throw new LifeboatError(`${location} changed ${when}: it is no longer the file whose SHA-256 was checked`, {
        hint: "something is writing into the backup store; restore again once it stops (and drop what this restore created)",
      });
    }
  };
  await changed("while its checksum was computed");
  return { file: local, inPlace: true, unchanged: () => changed("while it was being restored") };
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
export async function restoreInto(files: string | string[], manifest: Manifest, to: ConnectionInfo, opts: RestoreIntoOptions): Promise<{ ms: number }> {
  const log = opts.log ?? silentLogger;
  const t1 = Date.now();
  const file = typeof files === "string" ? files : files[0]!;
  if (manifest.parts?.length) {
    await restoreSet(typeof files === "string" ? [files] : files, manifest, to, opts);
  } else if (manifest.format === "custom") {
    const tool = await findTool("pg_restore", { minMajor: manifest.pgDump.major, for: "the archive (written by pg_dump " + manifest.pgDump.version + ")" });
    const args = ["--no-password", "--exit-on-error", "--verbose", `--dbname=${conninfo(to)}`];
    args.push(opts.jobs > 1 ? `--jobs=${opts.jobs}` : "--single-transaction");
    if (opts.noOwner) args.push("--no-owner");
    if (opts.noAcl) args.push("--no-acl");
    args.push(file);
    // pg_restore --verbose says "processing data for table" once per table in either mode (its "launching" and
    // "finished item" lines come on top with --jobs): tables are counted by name, never beyond the archive's count
    const total = manifest.toc?.byType["TABLE DATA"] ?? manifest.tables?.length ?? 0;
    log.log("info", "pg_restore started", { to: displayUrl(to), pgRestore: tool.version, jobs: opts.jobs });
    await runRestoreTool(tool.path, args, to, undefined, opts.signal, tableCounter(total, opts.onProgress));
  } else if (manifest.kind === "globals") {
    // Roles and tablespaces: some already exist on any server (the superuser at least). psql goes on past errors,
    // and only errors other than "already exists" fail the restore.
    const tool = await findTool("psql");
    const errors: string[] = [];
    await runRestoreTool(tool.path, ["-X", "-q", "--no-password", `--dbname=${conninfo(to)}`, "-f", file], to, undefined, opts.signal, (line) => {
      if (/ERROR:/.test(line) && !/(role|tablespace) "[^"]*" already exists/.test(line)) errors.push(line);
    });
    if (errors.length) throw new LifeboatError(`restoring roles and tablespaces failed: ${redact(errors.join("; "), [to.password])}`);
    log.log("info", "roles and tablespaces restored (existing ones kept)", { to: displayUrl(to) });
  } else {
    const tool = await findTool("psql");
    const args = ["-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "--single-transaction", `--dbname=${conninfo(to)}`, "-f", "-"];
    const input = manifestCompression(manifest.compression).method === "gzip" ? createReadStream(file).pipe(createGunzip()) : createReadStream(file);
    log.log("info", "psql restore started", { to: displayUrl(to) });
    await runRestoreTool(tool.path, args, to, input, opts.signal);
  }
  return { ms: Date.now() - t1 };
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
 * and each part, --data-only), then the base's indexes, constraints and triggers (post-data, with --jobs).
 */
async function restoreSet(files: string[], manifest: Manifest, to: ConnectionInfo, opts: RestoreIntoOptions): Promise<void> {
  const log = opts.log ?? silentLogger;
  const parts = manifest.parts ?? [];
  if (files.length !== parts.length + 1) throw new LifeboatError(`backup ${manifest.id} is a set of ${parts.length + 1} archives, but ${files.length} were given`);
  const tool = await findTool("pg_restore", { minMajor: manifest.pgDump.major, for: "the archive (written by pg_dump " + manifest.pgDump.version + ")" });
  const common = ["--no-password", "--exit-on-error", "--verbose", `--dbname=${conninfo(to)}`, ...(opts.noOwner ? ["--no-owner"] : []), ...(opts.noAcl ? ["--no-acl"] : [])];
  const jobs = Math.max(1, opts.jobs);
  log.log("info", "pg_restore of a backup set started", { to: displayUrl(to), pgRestore: tool.version, archives: files.length, jobs });
  await runRestoreTool(tool.path, [...common, "--section=pre-data", "--single-transaction", files[0]!], to, undefined, opts.signal);
  const total = manifest.toc?.byType["TABLE DATA"] ?? manifest.tables?.length ?? 0;
  const onLine = tableCounter(total, opts.onProgress);
  const data = [[...common, "--section=data", files[0]!], ...files.slice(1).map((f) => [...common, "--data-only", "--single-transaction", f])];
  let next = 0;
  const worker = async () => {
    while (next < data.length) {
      const args = data[next++]!;
      await runRestoreTool(tool.path, args, to, undefined, opts.signal, onLine);
    }
  };
  await Promise.all(Array.from({ length: Math.min(jobs, data.length) }, worker));
  await runRestoreTool(tool.path, [...common, "--section=post-data", jobs > 1 ? `--jobs=${jobs}` : "--single-transaction", files[0]!], to, undefined, opts.signal);
}

/**
 * Restore: the target is checked first (it exists, we can log in, it is not the source database), then the verified
 * download, then restoreInto. Into an empty database a custom archive is restored with parallel jobs; into a database that already
 * holds objects, in one transaction, so that a conflict changes nothing. The temporary copy is always removed.
 */
export async function restoreBackup(opts: RestoreOptions): Promise<RestoreResult> {
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
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-restore-"));
  try {
    const dump = await verifiedDump(opts.store, manifest, dir, {
      identities: opts.identities,
      signal: opts.signal,
      onProgress: (done, total) => opts.onProgress?.({ phase: "download", done, total }),
    });
    const { files, ms: downloadMs } = dump;
    log.log("info", dump.inPlace ? "checksum verified; restoring from the stored file where it lies" : "checksum verified", { sha256: manifest.object.sha256, bytes: backupSize(manifest), archives: files.length });

    const jobs = manifest.format === "custom" && empty ? Math.max(1, opts.jobs ?? availableParallelism()) : 1;
    if (!empty) log.log("warn", "the target database is not empty: restoring in one transaction (no parallel jobs)", { to: displayUrl(to) });
    const { ms: restoreMs } = await restoreInto(files, manifest, to, {
      jobs,
      noOwner: opts.noOwner,
      signal: opts.signal,
      log,
      onProgress: (done, total) => opts.onProgress?.({ phase: "restore", done, total }),
    });
    await dump.unchanged();
    return { downloadMs, restoreMs, bytes: backupSize(manifest), jobs, singleTransaction: jobs === 1 && !manifest.parts?.length };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
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
