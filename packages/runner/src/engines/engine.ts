import type { Readable } from "node:stream";
import type { DataCheck, DumpOptions, Logger, Manifest, ObjectStore } from "@lifeboat/core";
import type { ConnectionInfo } from "../pg/connection.js";

/**
 * A database engine, as the backup pipeline sees it: for one attempt it opens a consistent snapshot of the source and
 * says which byte streams carry it (one, or a base and parts read in parallel from the same snapshot); once the
 * pipeline has stored them all, it describes them for the manifest (server, tool, format, row counts, table of
 * contents); then it is closed. The pipeline (backup.ts: retries, stream -> SHA-256 -> store, manifest, events) knows
 * nothing else of PostgreSQL or SQLite. Engines are picked in one place: engines/index.ts.
 */
export interface Engine {
  readonly name: "postgresql" | "sqlite";
  /** Whether the engine's tools only read a backup's files (so a directory store's files are used where they lie). */
  readonly readsFilesInPlace: boolean;
  snapshot(source: SnapshotRequest): Promise<Snapshot>;
  /**
   * The engine's part of a restore drill (verify.ts), on a dump whose SHA-256 the drill has checked and which is
   * decrypted on local disk: the engine's own checks of the archive, a restore of it somewhere that is thrown away
   * afterwards, and the row counts found there against the manifest's. It stops at the first failed check.
   */
  drill(request: DrillRequest): Promise<DrillOutcome>;
  /**
   * `lifeboat restore`: the backup into a PostgreSQL database (PostgreSQL dumps) or a file (SQLite), checked by
   * SHA-256 first. An engine given the other kind of destination refuses it (exit 2), naming the option to use.
   */
  restore(request: RestoreRequest): Promise<RestoreOutcome>;
}

export interface RestoreRequest {
  store: ObjectStore;
  manifest: Manifest;
  to: { database: ConnectionInfo } | { file: string };
  /** Into the database the backup was taken from / over an existing file. */
  force?: boolean | undefined;
  noOwner?: boolean | undefined;
  noAcl?: boolean | undefined;
  jobs?: number | undefined;
  identities?: string[] | undefined;
  signal?: AbortSignal | undefined;
  log?: Logger | undefined;
  onProgress?: ((p: { phase: "download" | "restore"; done: number; total: number }) => void) | undefined;
}

export interface RestoreResult {
  downloadMs: number;
  restoreMs: number;
  bytes: number;
  jobs: number;
  singleTransaction: boolean;
}

export type RestoreOutcome = ({ into: "database" } & RestoreResult) | { into: "file"; path: string; tables: number };

/** A drill's check, as stored in <id>.verify.json and told in backup.verify_failed. */
export interface VerifyCheck {
  check: "sha256" | "decrypt" | "toc" | "restore" | "tables" | "data";
  ok: boolean;
  detail: string;
}

/** A table whose row count differs from the manifest's (actual null: the table is missing). */
export interface RowMismatch {
  table: string;
  expected: number;
  actual: number | null;
}

export interface DrillRequest {
  manifest: Manifest;
  /** The checked dump on local disk: a set's base archive first, then its parts. */
  files: string[];
  /** Throws when a stored file used in place changed since its check. */
  unchanged: () => Promise<void>;
  /** A PostgreSQL server to restore into (a new database, dropped afterwards); default: a throwaway cluster. */
  scratch?: ConnectionInfo | undefined;
  jobs?: number | undefined;
  signal?: AbortSignal | undefined;
  log: Logger;
  onProgress?: ((done: number, total: number) => void) | undefined;
  /** The target's data checks (verify.checks), run in the restored database after the row counts. */
  checks?: DataCheck[] | undefined;
}

export interface DrillOutcome {
  checks: VerifyCheck[];
  mismatches: RowMismatch[];
  restoreMs: number;
  /** The version of what the dump was restored into (or read with). */
  serverVersion: string;
}

/** What an engine is asked to back up, for one attempt. */
export interface SnapshotRequest {
  target: string;
  dump: DumpOptions;
  /** Resolves the connection for each attempt (secrets and RDS endpoints are looked up again on a retry). */
  resolveSource: () => Promise<ConnectionInfo>;
  /** This database of the server instead of the connection's (targets with several databases). */
  database?: string | undefined;
  /** Roles and tablespaces (pg_dumpall --globals-only) instead of a database. */
  globals?: { passwords: boolean } | undefined;
  /** A SQLite database file instead of PostgreSQL (resolveSource is not called). */
  sqlite?: { path: string } | undefined;
  /** Aborted when the attempt must stop (SIGTERM, maximum run time, another stream failed). */
  signal?: AbortSignal | undefined;
  log: Logger;
  /** Secrets in use (passwords): the engine adds those it resolves; every message is redacted of them. */
  secrets: Set<string | undefined>;
}

export interface Snapshot {
  /** The dump's extension (".dump", ".sql.gz", ".sqlite"). */
  extension: string;
  /** A folder below the target for the keys (a database of a target with several; "_globals"). */
  folder?: string | undefined;
  /** The streams that carry the snapshot: the first is the dump (a set's base archive), the others its parts. */
  streams: SnapshotStream[];
  /** How many streams may run at once. */
  concurrency: number;
  /** The manifest's engine fields, once every stream is stored (counts read in the snapshot happen here). */
  describe(): Promise<EngineManifest>;
  /** Ends the snapshot (its transaction, its temporary files): always called, after describe or a failure. */
  close(): Promise<void>;
}

export interface SnapshotStream {
  /** A part's table (parts only). */
  table?: string | undefined;
  /** An upper bound on the stream's size (multipart part sizes), when the engine can tell. */
  bound?: number | undefined;
  contentType: string;
  /**
   * Starts the stream. It ends only when the source has produced all of it, and fails (an AttemptError) otherwise;
   * destroying it (the pipeline does, when the attempt stops) stops the source.
   */
  open(): Promise<Readable>;
}

export interface StoredStream {
  key: string;
  size: number;
  sha256: string;
}

/** The fields of a manifest that only the engine knows. */
export type EngineManifest = Pick<Manifest, "database" | "pgDump" | "format" | "compression"> &
  Partial<Pick<Manifest, "kind" | "snapshot" | "tables" | "rowCountMs" | "toc">>;
