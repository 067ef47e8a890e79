import type { ObjectStore, StorageConfig } from "@lifeboat/core";
import { DirectoryStore } from "./directory.js";
import { S3Store } from "./s3.js";

export { DirectoryStore } from "./directory.js";
export { S3Store, s3ClientConfig, readDeployedConfigFromS3, PART_SIZE, QUEUE_SIZE } from "./s3.js";

/** The one place where a storage config becomes a store. */
export function openStore(storage: StorageConfig): ObjectStore {
  if (storage.s3) return new S3Store(storage.s3);
  if (storage.directory) return new DirectoryStore(storage.directory);
  throw new Error("storage has neither s3 nor directory");
}
