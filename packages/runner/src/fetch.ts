// Reading a backup from any store (or copy of one): fetching its objects (ranged downloads, or in place for a
// directory store), checking each against the manifest's SHA-256 and size (in place, or as it streams), and
// decrypting (age). It knows no database engine: the engines' restores and drills (engines/) and the blue-green swap
// use it, each with what it needs (files on disk, or archives that stream with their checks).
import { createReadStream, createWriteStream, type Stats } from "node:fs";
import { Readable } from "node:stream";
import { open, rm, stat } from "node:fs/promises";
import { availableParallelism } from "node:os";
import { join } from "node:path";
import { pipeline } from "node:stream/promises";
import { createHash } from "node:crypto";
import { ChecksumMismatchError, LifeboatError, backupObjects, backupSize, type Manifest, type ObjectStore } from "@lifeboat/core";
import { Digest, hashFile } from "./digest.js";
import { streamed } from "./heap.js";
import { checkIdentities, decryptStream } from "./encryption.js";

type Progress = { signal?: AbortSignal | undefined; onProgress?: ((done: number, total: number) => void) | undefined };
/** Identities (AGE-SECRET-KEY-1...) that decrypt an encrypted backup. */
type Decrypting = { identities?: string[] | undefined };
type StoredObject = { key: string; size: number; sha256: string };
/** What a fetch is told: its stop signal and progress, and the identities that decrypt an encrypted backup. */
export type { Progress as FetchProgress, Decrypting as FetchDecrypting };

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
export async function verifiedDump(store: ObjectStore, manifest: Manifest, dir: string, opts: Progress & Decrypting & { streamPlaintext?: boolean; copy?: boolean } = {}): Promise<VerifiedDump> {
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
      checked[i] = await verifiedObject(store, o, join(dir, i === 0 ? "dump" : `part-${i}`), { ...sub, copy: opts.copy });
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

async function verifiedObject(store: ObjectStore, object: StoredObject, download: string, opts: Progress & { copy?: boolean | undefined }): Promise<{ file: string; inPlace: boolean; unchanged: () => Promise<void> }> {
  // `copy`: the file's reader may write beside it (sqlite3's journals), so a directory store's file is copied first
  const local = opts.copy ? undefined : store.localPath?.(object.key);
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
export async function* heldChunks(source: Readable, release: Promise<void>, read: () => void): AsyncGenerator<Buffer> {
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
export async function streamedSet(store: ObjectStore, manifest: Manifest, dir: string, opts: Progress & Decrypting): Promise<{ archives: Archive[]; ms: number; unchanged: () => Promise<void> }> {
  const t0 = Date.now();
  const [base, ...parts] = backupObjects(manifest);
  const total = backupSize(manifest);
  let done = 0;
  const onBytes = (n: number) => opts.onProgress?.((done += n), total);
  const checked = await verifiedObject(store, base!, join(dir, "dump"), { signal: opts.signal, onProgress: (d) => opts.onProgress?.(d, total) });
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
