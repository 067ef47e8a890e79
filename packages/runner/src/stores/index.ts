import { S3Client } from "@aws-sdk/client-s3";
import type { CopyConfig, ObjectStore, SecretResolver, StorageConfig, TargetConfig } from "@lifeboat/core";
import { DirectoryStore } from "./directory.js";
import { S3Store, s3ClientConfig } from "./s3.js";

export { DirectoryStore } from "./directory.js";
export { S3Store, s3ClientConfig, readDeployedConfigFromS3, PART_SIZE, QUEUE_SIZE } from "./s3.js";

/** The one place where a storage config becomes a store. */
export function openStore(storage: StorageConfig | Omit<CopyConfig, "name">): ObjectStore {
  if (storage.s3) return new S3Store(storage.s3);
  if (storage.directory) return new DirectoryStore(storage.directory);
  throw new Error("storage has neither s3 nor directory");
}

/** A copy's store, its name as the config gives it, and its retention ("store": Lifeboat never deletes there). */
export interface CopyStore {
  name: string;
  store: ObjectStore;
  retention?: CopyConfig["retention"];
}

/**
 * A target's copies for a run: as openCopies, but a copy whose credentials cannot be read is left out with an error
 * logged, so that the backup itself still runs (the copy then lacks it: `lifeboat status` says DEGRADED).
 */
export async function openCopiesForRun(storage: StorageConfig, secrets: SecretResolver, target: Pick<TargetConfig, "copies"> | undefined, log: { log(level: "error", msg: string, fields?: Record<string, unknown>): void }): Promise<CopyStore[]> {
  const out: CopyStore[] = [];
  for (const c of copiesOf(storage, target)) {
    try {
      out.push(await openCopy(c, secrets));
    } catch (err) {
      log.log("error", `copy ${c.name} left out of this run: ${(err as Error).message}`, { copy: c.name });
    }
  }
  return out;
}

/** A target's copies: its own (targets.<name>.copies), else the config's (storage.copies). */
export function copiesOf(storage: StorageConfig, target?: Pick<TargetConfig, "copies">): CopyConfig[] {
  return target?.copies ?? storage.copies ?? [];
}

/**
 * A target's copies as stores (copiesOf): an S3 copy with credentials of its own gets a client of its own (its
 * secrets read now: for each run, as the database's are); one without uses the SDK's chain, as the primary does.
 */
export async function openCopies(storage: StorageConfig, secrets: SecretResolver, target?: Pick<TargetConfig, "copies">): Promise<CopyStore[]> {
  const out: CopyStore[] = [];
  for (const c of copiesOf(storage, target)) out.push(await openCopy(c, secrets));
  return out;
}

async function openCopy(c: CopyConfig, secrets: SecretResolver): Promise<CopyStore> {
  const retention = c.retention ? { retention: c.retention } : {};
  if (!c.s3) return { name: c.name, store: openStore(c), ...retention };
  const { credentials, ...own } = c.s3;
  const s3 = { ...own, ...(c.objectLock ? { objectLock: c.objectLock } : {}) };
  if (!credentials) return { name: c.name, store: new S3Store(s3), ...retention };
  const accessKeyId = await secrets.resolve(credentials.accessKeyId, `storage.copies ${c.name}: credentials.accessKeyId`);
  const secretAccessKey = await secrets.resolve(credentials.secretAccessKey, `storage.copies ${c.name}: credentials.secretAccessKey`);
  return { name: c.name, store: new S3Store(s3, new S3Client({ ...s3ClientConfig(s3), credentials: { accessKeyId, secretAccessKey } })), ...retention };
}
