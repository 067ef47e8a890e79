import { createReadStream, createWriteStream, type Stats } from "node:fs";
import { Readable } from "node:stream";
import { mkdtemp, open, rm, stat } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { spawn } from "node:child_process";
import { missingRoles, missingRolesError, rolesInArchive } from "./pg/roles.js";
import { restoreMark, undoRestore, type RestoreMark } from "./pg/undo.js";
import { createHash } from "node:crypto";
import { ChecksumMismatchError, LifeboatError, backupObjects, errorMessage, backupSize, manifestCompression, redact, silentLogger, type Logger, type Manifest, type ObjectStore } from "@lifeboat/core";
import { conninfo, displayUrl, sameEndpoint, toolEnv, type ConnectionInfo } from "./pg/connection.js";
import { preflight, query } from "./pg/psql.js";
import { findTool } from "./pg/tools.js";
import { Digest, hashFile } from "./digest.js";
import { streamed } from "./heap.js";
import { checkIdentities, decryptStream } from "./encryption.js";

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
  /**
   * An encrypted single archive asked for with `streamPlaintext`: its plaintext, decrypted as it is read (a new stream
   * each call); `file` is then the checked encrypted copy.
   */
  plaintext?: () => Promise<Readable>;
}

type FileIdentity = Pick<Stats, "dev" | "ino" | "size" | "mtimeMs" | "ctimeMs">;
const sameFile = (a: FileIdentity, b: FileIdentity) => a.dev === b.dev && a.ino === b.ino && a.size === b.size && a.mtimeMs === b.mtimeMs && a.ctimeMs === b.ctimeMs;

/**
 * Every archive of the backup, checked against the manifest's SHA-256 and size, on local disk. A directory store's
 * files are checked and used where they lie, with no copy; each one's identity (device, inode, size, modification and
 * change times) is taken before its check and compared after it and again by `unchanged()` after the restore, so a
 * file replaced or rewritten in between is refused. Any other store's objects are downloaded into `dir` and hashed.
 */
export async function verifiedDump(store: ObjectStore, manifest: Manifest, dir: string, opts: Progress & Decrypting & { streamPlaintext?: boolean } = {}): Promise<VerifiedDump> {
  const t0 = Date.now();
  const total = backupSize(manifest);
  const objects = backupObjects(manifest);
  const progress = objects.map(() => 0);
  const checked: { file: string; inPlace: boolean; unchanged: () => Promise<void> }[] = [];
  // files used in place are hashed several at once, each on its own core; downloads one after the other (each is
  // already parallel, in ranges)
  const order = objects.map((o, i) => ({ o, i })).sort((a, b) => b.o.size - a.o.size);
  const worker = async () => {
    for (let next = order.shift(); next; next = order.shift()) {
      const { o, i } = next;
      const sub: Progress = { signal: opts.signal, onProgress: (done) => ((progress[i] = done), opts.onProgress?.(progress.reduce((a, b) => a + b, 0), total)) };
      checked[i] = await verifiedObject(store, manifest, o, join(dir, i === 0 ? "dump" : `part-${i}`), sub);
    }
  };
  await Promise.all(Array.from({ length: store.localPath ? Math.min(objects.length, availableParallelism(), 4) : 1 }, worker));
  if (manifest.encryption && opts.streamPlaintext && checked.length === 1) {
    // one archive read by one process: its plaintext streams from the checked encrypted file and never lands on disk
    await checkIdentities(manifest, opts.identities);
    const encrypted = checked[0]!;
    return {
      file: encrypted.file,
      files: [encrypted.file],
      ms: Date.now() - t0,
      inPlace: encrypted.inPlace,
      unchanged: encrypted.unchanged,
      plaintext: () => decryptStream(createReadStream(encrypted.file), opts.identities!),
    };
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
  const actual = await hashFile(local, (done) => opts.onProgress?.(done, object.size), opts.signal);
  if (actual.sha256 !== object.sha256 || actual.bytes !== object.size) throw new ChecksumMismatchError(location, object.sha256, actual.sha256, object.size, actual.bytes);
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

/**
 * A data part of a backup set, read from the store while pg_restore loads it, with no copy on local disk. The bytes
 * are hashed as they pass; the last chunk is held back until `release` resolves, so the part's pg_restore (one
 * transaction) cannot reach its end and commit before its SHA-256 and size have matched the manifest, and - because
 * `release` is shared - before those of every other part have too. A mismatch makes the stream fail instead.
 */
export interface StreamedArchive {
  location: string;
  /** Opens the stored part (decrypted, when the backup is encrypted). `read` is called once every byte matched. */
  open(release: Promise<void>, read: () => void): Promise<Readable>;
}

/** An archive to restore: a checked file on local disk, or a set's data part checked as it streams. */
export type Archive = string | StreamedArchive;

/** The chunks of `source`, the last one held back until `release` resolves (`read` says the source has ended). */
async function* heldChunks(source: Readable, release: Promise<void>, read: () => void): AsyncGenerator<Buffer> {
  let held: Buffer | undefined;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    if (held) yield held;
    held = chunk;
  }
  read();
  await release;
  if (held) yield held;
}

/** A stored object's chunks, hashed as they pass; at the end, a SHA-256 or size other than the manifest's fails it. */
async function* checkedChunks(source: Readable, object: StoredObject, location: string, onBytes: (n: number) => void): AsyncGenerator<Buffer> {
  const hash = createHash("sha256");
  let bytes = 0;
  for await (const chunk of source as AsyncIterable<Buffer>) {
    hash.update(chunk);
    bytes += chunk.length;
    onBytes(chunk.length);
    streamed(chunk.length);
    yield chunk;
  }
  const actual = hash.digest("hex");
  if (actual !== object.sha256 || bytes !== object.size) {
    throw new ChecksumMismatchError(location, object.sha256, actual, object.size, bytes, "no data of this backup was committed");
  }
}

/**
 * A backup set for restoreBackup, without copying its data parts: the base archive (schema, small tables) is checked
 * like any dump (verifiedDump); each part is a StreamedArchive, checked while it streams into its pg_restore.
 */
async function streamedSet(store: ObjectStore, manifest: Manifest, dir: string, opts: Progress & Decrypting): Promise<{ archives: Archive[]; ms: number; unchanged: () => Promise<void> }> {
  const t0 = Date.now();
  const [base, ...parts] = backupObjects(manifest);
  const total = backupSize(manifest);
  let done = 0;
  const onBytes = (n: number) => opts.onProgress?.((done += n), total);
  const checked = await verifiedObject(store, manifest, base!, join(dir, "dump"), { signal: opts.signal, onProgress: (d) => opts.onProgress?.(d, total) });
  done = base!.size;
  const [file] = manifest.encryption ? await decrypted(manifest, [checked], dir, opts) : [checked.file];
  const streamed = parts.map(
    (object): StreamedArchive => ({
      location: store.location(object.key),
      async open(release, read) {
        // the stored bytes are checked as they stream (a mismatch fails the plaintext stream too); the last chunk
        // held back is the plaintext's, since age reads ahead (its header first) before it gives any
        const stored = Readable.from(checkedChunks(await store.get(object.key), object, store.location(object.key), onBytes), { objectMode: false });
        const plain = manifest.encryption ? await decryptStream(stored, opts.identities!) : stored;
        return Readable.from(heldChunks(plain, release, read), { objectMode: false });
      },
    }),
  );
  return { archives: [file!, ...streamed], ms: Date.now() - t0, unchanged: checked.unchanged };
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
