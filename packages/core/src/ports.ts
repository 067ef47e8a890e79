import type { Readable } from "node:stream";

/** One object in a store. */
export interface StoredObject {
  key: string;
  size: number;
}

/**
 * Keys are relative to the store's root (its S3 prefix or its directory).
 * The object store port: S3 (any endpoint) or a directory. Implementations live in the runner.
 * `put` must make the object visible only if `body` ends cleanly: when the body errors or the signal aborts, nothing is
 * left behind (no object, no partial file, no pending multipart upload).
 */
export interface ObjectStore {
  /** Human location of a key, e.g. s3://bucket/prefix/key or file:///srv/backups/key */
  location(key: string): string;
  /** The store's own URL (what --from/--to accept). */
  readonly url: string;
  /**
   * expectedBytes: an upper bound on the body's size, when known (S3 sizes its multipart parts from it); concurrent:
   * how many uploads of one backup run at once (S3 divides its memory for parts in flight among them).
   * ifNoneMatch "*": only if the key holds no object (S3's If-None-Match; what is stored never changes);
   * ifMatch: only if the object's ETag is still this one (S3's If-Match; a compare-and-swap of a mutable record).
   * A refused condition is a ConditionalWriteFailed. The ETag of what was written is returned when the store knows it.
   */
  put(key: string, body: Readable, opts?: PutOptions): Promise<{ size?: number; etag?: string }>;
  /** A small object's bytes and ETag, or undefined when the key holds none (for compare-and-swap with ifMatch). */
  read(key: string): Promise<{ body: Buffer; etag: string } | undefined>;
  get(key: string): Promise<Readable>;
  /** Bytes start..end (inclusive) of an object: S3's ranged GET, so that large downloads run as parallel requests. */
  getRange?(key: string, start: number, end: number): Promise<Readable>;
  list(prefix: string): AsyncIterable<StoredObject>;
  /** Deletes objects (missing ones are not an error). Only pruning deletes (`lifeboat prune`, the scheduler, the deployed runner). */
  delete(keys: string[]): Promise<void>;
  /** Writes that never completed under a prefix: pending multipart uploads (S3), `.partial` files (directory). */
  incomplete(prefix: string): AsyncIterable<IncompleteUpload>;
  /** Aborts a pending upload or removes a partial file. */
  removeIncomplete(upload: IncompleteUpload): Promise<void>;
  /** The object's file, when the store is a directory on this machine: restores read it where it lies (no copy). */
  localPath?(key: string): string;
}

export interface PutOptions {
  contentType?: string;
  signal?: AbortSignal;
  expectedBytes?: number;
  concurrent?: number;
  ifNoneMatch?: "*";
  ifMatch?: string;
}

export interface IncompleteUpload {
  key: string;
  startedAt: Date;
  /** The S3 upload id, or the partial file's name. */
  id: string;
}

/** Resolves secret references ({ env } / { ssm }) to their values. */
export interface SecretResolver {
  resolve(ref: { env?: string | undefined; ssm?: string | undefined }, what: string): Promise<string>;
}

export type LogLevel = "debug" | "info" | "warn" | "error";
export interface Logger {
  log(level: LogLevel, message: string, fields?: Record<string, unknown>): void;
}

export const silentLogger: Logger = { log() {} };
