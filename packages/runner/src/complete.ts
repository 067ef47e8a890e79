import { LIFEBOAT_VERSION, silentLogger, type Manifest, backupSize } from "@lifeboat/core";
import type { BackupJob, BackupResult } from "./backup.js";
import { storeJson } from "./catalog.js";

/** The fields of a manifest that describe the run, whatever made the backup. */
export function manifestRun(job: BackupJob, attempt: number, runId: string, id: string, started: Date, finished: Date) {
  return {
    manifestVersion: 1 as const,
    id,
    target: job.target,
    runId,
    trigger: job.trigger ?? "manual",
    attempt,
    startedAt: started.toISOString(),
    finishedAt: finished.toISOString(),
    durationMs: finished.getTime() - started.getTime(),
    lifeboatVersion: LIFEBOAT_VERSION,
  };
}

/** Writes the manifest, last: from now on the backup exists. */
export async function completeBackup(job: BackupJob, keys: { dump: string; manifest: string }, manifest: Manifest): Promise<BackupResult> {
  await storeJson(job.store, keys.manifest, manifest);
  (job.log ?? silentLogger).log("info", "backup stored", { target: job.target, key: keys.dump, bytes: backupSize(manifest), sha256: manifest.object.sha256 });
  return { manifest, location: job.store.location(keys.dump), manifestLocation: job.store.location(keys.manifest), attempts: [] };
}

/**
 * The steps between a stored dump and its manifest (TOC, row counts, the manifest itself): if any fails, the dump is
 * deleted, so that no dump is left without a manifest (one that no list, restore or prune would ever see).
 */
export async function manifestOrNothing<T>(job: BackupJob, dumpKeys: string | string[], steps: () => Promise<T>): Promise<T> {
  const keys = typeof dumpKeys === "string" ? [dumpKeys] : dumpKeys;
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
