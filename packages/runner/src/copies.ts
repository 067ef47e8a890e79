// Copies of a backup in further stores (storage.copies, 3-2-1): written in the run at the same time as the primary
// (backup.ts tees the hashed stream), copied again from the primary when that failed, and repaired later with
// `lifeboat copy`. A copy gets a backup's manifest only once every object it holds was checked against the manifest's
// SHA-256 and size: in the run, the bytes it received are the ones that were hashed; copied afterwards, they are
// hashed again on their way from the source.
import { ChecksumMismatchError, MANIFEST_SUFFIX, failedAlongside, backupObjects, besideDump, errorMessage, redact, silentLogger, type BackupCopyFailedEvent, type Logger, type Manifest, type ObjectStore } from "@lifeboat/core";
import { storeOnce } from "./catalog.js";
import { Digest } from "./digest.js";
import type { CopyStore } from "./stores/index.js";

export interface CopyOutcome {
  name: string;
  ok: boolean;
  /** Where the copy's dump is (ok). */
  location?: string;
  /** Why it failed (redacted). */
  error?: string;
}

/** Copies a backup from `from` into `to`: each object streamed and hashed on the way, the manifest last. */
export async function copyBackup(from: ObjectStore, to: ObjectStore, manifest: Manifest, opts: { signal?: AbortSignal } = {}): Promise<"copied" | "present"> {
  const manifestKey = besideDump(manifest, MANIFEST_SUFFIX);
  // listed, not read: a write-only copy's credentials may list and put, nothing more (docs/stores.md)
  for await (const o of to.list(manifestKey)) if (o.key === manifestKey) return "present";
  for (const o of backupObjects(manifest)) {
    opts.signal?.throwIfAborted();
    // left by an earlier try that never got its manifest: removed first (a copy's dump without a manifest is nothing;
    // a write-only key cannot, and the put below then says so)
    for await (const existing of to.list(o.key)) if (existing.key === o.key) await to.delete([o.key]).catch(() => {});
    const digest = new Digest();
    const source = await from.get(o.key);
    source.on("error", (err: Error) => digest.destroy(err));
    source.pipe(digest);
    await to.put(o.key, digest, { ifNoneMatch: "*", expectedBytes: o.size, ...(opts.signal ? { signal: opts.signal } : {}) });
    if (digest.hex() !== o.sha256 || digest.bytes !== o.size) {
      await to.delete([o.key]).catch(() => {});
      throw new ChecksumMismatchError(from.location(o.key), o.sha256, digest.hex(), o.size, digest.bytes, "the copy was not kept");
    }
  }
  await storeOnce(to, manifestKey, manifest);
  return "copied";
}

/** After a run: each copy that failed is copied again from the primary (twice at most); the outcomes as they end. */
export async function retryCopies(primary: ObjectStore, copies: CopyStore[], outcomes: CopyOutcome[], manifest: Manifest, opts: { log?: Logger; signal?: AbortSignal } = {}): Promise<CopyOutcome[]> {
  const log = opts.log ?? silentLogger;
  const out: CopyOutcome[] = [];
  for (const o of outcomes) {
    const copy = copies.find((c) => c.name === o.name);
    if (o.ok || !copy) {
      out.push(o);
      continue;
    }
    let last = o;
    for (let attempt = 1; attempt <= 2 && !last.ok; attempt++) {
      if (opts.signal?.aborted) break;
      try {
        await copyBackup(primary, copy.store, manifest, opts.signal ? { signal: opts.signal } : {});
        last = { name: o.name, ok: true, location: copy.store.location(manifest.object.key) };
        log.log("info", "copy stored from the primary", { target: manifest.target, copy: o.name, backup: manifest.id });
      } catch (err) {
        last = { name: o.name, ok: false, error: redact(errorMessage(err)) };
        log.log("warn", "copying from the primary failed", { target: manifest.target, copy: o.name, attempt, error: last.error });
        if (attempt < 2) await new Promise((r) => setTimeout(r, 1000));
      }
    }
    out.push(last);
  }
  return out;
}

export function copyFailedEvent(target: string, runId: string, trigger: string, manifest: Manifest, c: CopyOutcome, location = manifest.object.key): BackupCopyFailedEvent {
  return {
    ...failedAlongside(target, runId, trigger, manifest.attempt),
    type: "backup.copy_failed",
    copy: { name: c.name, backupId: manifest.id, location, error: c.error ?? "unknown", repair: `lifeboat copy ${target} --backup ${manifest.id} --to ${c.name}` },
  };
}
