import { LIFEBOAT_VERSION, silentLogger, type Manifest } from "@lifeboat/core";
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
  (job.log ?? silentLogger).log("info", "backup stored", { target: job.target, key: keys.dump, bytes: manifest.object.size, sha256: manifest.object.sha256 });
  return { manifest, location: job.store.location(keys.dump), manifestLocation: job.store.location(keys.manifest), attempts: [] };
}
