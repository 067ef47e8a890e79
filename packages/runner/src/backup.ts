import { randomUUID } from "node:crypto";
import {
  BackupFailedError,
  LIFEBOAT_VERSION,
  MANIFEST_VERSION_SET,
  abortedAttempt,
  backupKeys,
  backupSize,
  newBackupId,
  partKey,
  restoreCommandFor,
  silentLogger,
  type AttemptRecord,
  type BackupSucceededEvent,
  type DumpOptions,
  type LocalEventBus,
  type Logger,
  type Manifest,
  type ObjectStore,
  type RetryPolicy,
} from "@lifeboat/core";
import { PassThrough } from "node:stream";
import { storeOnce } from "./catalog.js";
import { copyFailedEvent, retryCopies, type CopyOutcome } from "./copies.js";
import type { CopyStore } from "./stores/index.js";
import { Digest } from "./digest.js";
import { encryptStream } from "./encryption.js";
import { engineFor, type Snapshot, type SnapshotStream, type StoredStream } from "./engines/index.js";
import { toAttemptError } from "./pg/classify.js";
import { failedEvent, withRetries } from "./retry.js";
import type { ConnectionInfo } from "./pg/connection.js";

/**
 * The backup pipeline, top to bottom: runBackup retries attempts and publishes the outcome; an attempt asks the
 * source's engine (engines/: PostgreSQL, SQLite) for a snapshot and its streams, sends each stream through SHA-256
 * into the store (several at once for a parallel set; the first failure stops the others and removes what was
 * stored), then writes the manifest, last: from then on the backup exists. Nothing here knows an engine.
 */

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
  /** Client-side encryption: every stream is an age file for these recipients before it is hashed and stored. */
  encryption?: { recipients: string[] } | undefined;
  /**
   * Copies (storage.copies): every stream goes to these stores too, at the same time as to `store` (one dump, hashed
   * once); each gets the manifest once the primary has it. A copy that fails does not fail the backup: it is retried
   * from the primary, then reported (backup.copy_failed).
   */
  copies?: CopyStore[] | undefined;
}

export interface BackupResult {
  manifest: Manifest;
  location: string;
  manifestLocation: string;
  attempts: AttemptRecord[];
  /** Each copy's outcome (none without copies). */
  copies: CopyOutcome[];
}

/** One attempt: the engine's snapshot, its streams into the store, the manifest last. */
async function attemptBackup(job: BackupJob, attempt: number, runId: string, secrets: Set<string | undefined>): Promise<BackupResult> {
  const log = job.log ?? silentLogger;
  const started = new Date();
  const snapshot = await engineFor(job).snapshot({
    target: job.target,
    dump: job.dump,
    resolveSource: job.resolveSource,
    database: job.database,
    globals: job.globals,
    sqlite: job.sqlite,
    signal: job.signal,
    log,
    secrets,
  });
  try {
    const id = newBackupId(started);
    const keys = backupKeys(job.target, id, snapshot.extension, snapshot.folder);
    const streamKeys = snapshot.streams.map((_, i) => (i === 0 ? keys.dump : partKey(keys.dump, i)));
    const stored: string[] = [];
    const copies = job.copies ?? [];
    const copyFailures = new Map<string, unknown>();
    const [base, ...parts] = await storeStreams(job, snapshot, streamKeys, started, secrets, stored, copyFailures);
    const finished = new Date();
    // no manifest in the primary: what the copies received goes too (deleted here; the primary's by manifestOrNothing)
    const dropCopies = async (err: unknown) => {
      for (const c of copies) await c.store.delete(streamKeys).catch(() => {});
      throw err;
    };
    return await manifestOrNothing(job, stored, async () => {
      const described = await snapshot.describe();
      const manifest: Manifest = {
        manifestVersion: parts.length ? MANIFEST_VERSION_SET : 1,
        id,
        target: job.target,
        runId,
        trigger: job.trigger ?? "manual",
        attempt,
        startedAt: started.toISOString(),
        finishedAt: finished.toISOString(),
        durationMs: finished.getTime() - started.getTime(),
        lifeboatVersion: LIFEBOAT_VERSION,
        ...described,
        object: base!,
        ...(parts.length ? { parts: parts.map((p, i) => ({ ...p, table: snapshot.streams[i + 1]!.table ?? "" })) } : {}),
        ...(job.encryption?.recipients.length ? { encryption: { format: "age" as const, recipients: job.encryption.recipients } } : {}),
      };
      await storeOnce(job.store, keys.manifest, manifest);
      log.log("info", "backup stored", { target: job.target, key: keys.dump, bytes: backupSize(manifest), sha256: manifest.object.sha256 });
      // each copy that received every stream gets the manifest too: from then on it holds the backup on its own
      const outcomes: CopyOutcome[] = [];
      for (const c of copies) {
        let failure = copyFailures.get(c.name);
        if (failure === undefined) {
          try {
            await storeOnce(c.store, keys.manifest, manifest);
          } catch (err) {
            failure = err;
          }
        }
        if (failure === undefined) {
          outcomes.push({ name: c.name, ok: true, location: c.store.location(keys.dump) });
          log.log("info", "copy stored", { target: job.target, copy: c.name, location: c.store.location(keys.dump) });
          continue;
        }
        await c.store.delete(streamKeys).catch(() => {});
        const error = toAttemptError(failure, secrets).message;
        outcomes.push({ name: c.name, ok: false, error });
        log.log("warn", "copy failed in the run (tried again from the primary next)", { target: job.target, copy: c.name, error });
      }
      return { manifest, location: job.store.location(keys.dump), manifestLocation: job.store.location(keys.manifest), attempts: [], copies: outcomes };
    }).catch(dropCopies);
  } finally {
    await snapshot.close();
  }
}

/**
 * Runs the snapshot's streams, at most `snapshot.concurrency` at once, each into the store under its key. Progress is
 * their sum. When one fails, the others are stopped, what was stored is deleted, and its error is the attempt's.
 * Keys of the stored objects are added to `stored` as they complete.
 */
async function storeStreams(job: BackupJob, snapshot: Snapshot, keys: string[], started: Date, secrets: Set<string | undefined>, stored: string[], copyFailures: Map<string, unknown>): Promise<StoredStream[]> {
  const inner = new AbortController();
  const onOuterAbort = () => inner.abort(job.signal?.reason);
  if (job.signal?.aborted) onOuterAbort();
  job.signal?.addEventListener("abort", onOuterAbort, { once: true });
  const bytes = snapshot.streams.map(() => 0);
  let lastReport = 0;
  const report = () => job.onProgress?.({ bytes: bytes.reduce((a, b) => a + b, 0), elapsedMs: Date.now() - started.getTime() });
  const onBytes = (i: number) => (n: number) => {
    bytes[i] = n;
    if (Date.now() - lastReport >= 200) {
      lastReport = Date.now();
      report();
    }
  };
  const out: StoredStream[] = [];
  const workers = Math.min(snapshot.concurrency, snapshot.streams.length);
  let failure: { err: unknown } | undefined;
  let next = 0;
  const worker = async () => {
    while (next < snapshot.streams.length && !failure) {
      const i = next++;
      try {
        out[i] = await storeStream(job.store, snapshot.streams[i]!, keys[i]!, inner.signal, secrets, onBytes(i), job.encryption?.recipients, workers, (job.copies ?? []).filter((c) => !copyFailures.has(c.name)), copyFailures);
        stored.push(keys[i]!);
      } catch (err) {
        if (!failure) {
          failure = { err };
          inner.abort(err);
        }
      }
    }
  };
  try {
    await Promise.all(Array.from({ length: workers }, worker));
  } finally {
    job.signal?.removeEventListener("abort", onOuterAbort);
  }
  if (failure) {
    if (stored.length) {
      const keysStored = stored.splice(0);
      await job.store.delete(keysStored).catch(() => {});
      for (const c of job.copies ?? []) await c.store.delete(keysStored).catch(() => {});
    }
    throw job.signal?.aborted ? abortedAttempt(job.signal.reason) : failure.err;
  }
  report();
  return out;
}

/**
 * One stream (encrypted for `recipients`, if any) through SHA-256 into the store. The store completes the object only
 * if the stream ends: a stream that fails (its source stopped half way) or is stopped (`signal`) makes the upload
 * fail, and nothing is stored. Encrypted, the plaintext exists only in memory, a chunk at a time.
 */
async function storeStream(
  store: ObjectStore,
  stream: SnapshotStream,
  key: string,
  signal: AbortSignal,
  secrets: Set<string | undefined>,
  onBytes: (n: number) => void,
  recipients: string[] | undefined,
  concurrent: number,
  copies: CopyStore[] = [],
  copyFailures: Map<string, unknown> = new Map(),
): Promise<StoredStream> {
  if (signal.aborted) throw abortedAttempt(signal.reason);
  const plain = await stream.open();
  let failed: unknown;
  plain.on("error", (err) => (failed ??= err));
  const source = recipients?.length ? await encryptStream(plain, recipients) : plain;
  const digest = new Digest(onBytes);
  // the store's upload reports the digest's failure; `failed` keeps the cause (an error event seen by nobody else
  // would end the process)
  digest.on("error", () => {});
  const fail = (err: unknown) => {
    failed ??= err;
    if (!digest.destroyed) digest.destroy(err as Error);
    source.destroy();
    plain.destroy();
  };
  source.on("error", fail);
  const onAbort = () => fail(abortedAttempt(signal.reason));
  signal.addEventListener("abort", onAbort, { once: true });
  if (signal.aborted) onAbort();
  source.pipe(digest);
  // never over an existing object: a stored dump is history (the deployed bucket's policy refuses such writes too)
  const putOptions = { contentType: stream.contentType, concurrent, ifNoneMatch: "*" as const, ...(stream.bound ? { expectedBytes: stream.bound } : {}) };
  // with copies, the hashed stream is teed: one branch per store, read at the pace of the slowest (pipe waits for
  // every branch to drain); a copy whose upload fails is dropped from the tee (its branch closes) and the rest go on
  const branches = copies.map((c) => ({ copy: c, branch: new PassThrough() }));
  const primary = branches.length ? new PassThrough() : digest;
  if (branches.length) {
    digest.pipe(primary);
    for (const b of branches) digest.pipe(b.branch);
  }
  const copyPuts = branches.map((b) =>
    b.copy.store.put(key, b.branch, putOptions).then(
      () => undefined,
      (err: unknown) => {
        digest.unpipe(b.branch);
        b.branch.destroy();
        return err ?? new Error("the copy's upload failed");
      },
    ),
  );
  const endCopies = async () => {
    for (const b of branches) if (!b.branch.destroyed) b.branch.destroy(new Error("the primary upload failed: the copy is not kept"));
    await Promise.allSettled(copyPuts);
    await Promise.all(copies.map((c) => c.store.delete([key]).catch(() => {})));
  };
  try {
    await store.put(key, primary, putOptions);
  } catch (err) {
    fail(err);
    await endCopies();
    throw toAttemptError(failed, secrets);
  } finally {
    signal.removeEventListener("abort", onAbort);
  }
  if (failed) {
    // stopped (another stream failed, SIGTERM) just as the store completed the object: it must not stay behind
    await store.delete([key]).catch(() => {});
    await endCopies();
    throw toAttemptError(failed, secrets);
  }
  const outcomes = await Promise.all(copyPuts);
  outcomes.forEach((err, i) => {
    if (err !== undefined) copyFailures.set(branches[i]!.copy.name, err);
  });
  return { key, size: digest.bytes, sha256: digest.hex() };
}

/**
 * The steps between the stored streams and the manifest (the engine's counts, the manifest itself): if any fails,
 * the objects are deleted, so that no dump is left without a manifest (one that no list, restore or prune would see).
 */
async function manifestOrNothing<T>(job: BackupJob, keys: string[], steps: () => Promise<T>): Promise<T> {
  try {
    return await steps();
  } catch (err) {
    try {
      await job.store.delete(keys);
      (job.log ?? silentLogger).log("warn", "the dump was removed: its manifest could not be written", { target: job.target, key: keys[0], parts: keys.length - 1 });
    } catch (cleanup) {
      (job.log ?? silentLogger).log("error", "a dump without a manifest is left behind (lifeboat list --all shows it)", { target: job.target, key: keys[0], error: (cleanup as Error).message });
    }
    throw err;
  }
}

/**
 * Runs a backup with the target's retries (retry.ts: transient failures retried with capped exponential backoff and
 * jitter, permanent ones stop at once). Publishes backup.succeeded or backup.failed on the bus.
 */
export async function runBackup(job: BackupJob): Promise<BackupResult> {
  const log = job.log ?? silentLogger;
  const runId = job.runId ?? randomUUID();
  const trigger = job.trigger ?? "manual";
  const secrets = new Set<string | undefined>();
  let run: { value: BackupResult; attempts: AttemptRecord[] };
  try {
    run = await withRetries(
      (n) => {
        if (n > 1) log.log("info", "retrying", { target: job.target, attempt: n });
        return attemptBackup(job, n, runId, secrets);
      },
      { target: job.target, policy: job.retries, signal: job.signal, log, secrets },
    );
  } catch (err) {
    if (err instanceof BackupFailedError) await job.bus?.publish(failedEvent(job.target, runId, trigger, err.attempts));
    throw err;
  }
  const result = run.value;
  result.attempts = run.attempts;
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
  // copies that failed in the run: copied again from the primary (each object hashed on the way, against the
  // manifest), then reported if they still fail
  if (result.copies.some((c) => !c.ok)) {
    result.copies = await retryCopies(job.store, job.copies ?? [], result.copies, result.manifest, { log, ...(job.signal ? { signal: job.signal } : {}) });
    for (const c of result.copies.filter((x) => !x.ok)) await job.bus?.publish(copyFailedEvent(job.target, runId, trigger, result.manifest, c));
  }
  return result;
}
