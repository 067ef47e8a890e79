import type { Engine, SnapshotRequest } from "./engine.js";
import { postgresEngine } from "./postgres.js";
import { sqliteEngine } from "./sqlite.js";

export type { Engine, EngineManifest, Snapshot, SnapshotRequest, SnapshotStream, StoredStream } from "./engine.js";

/** The engine that backs up a source: the one place where PostgreSQL and SQLite are told apart for a backup. */
export function engineFor(source: Pick<SnapshotRequest, "sqlite">): Engine {
  return source.sqlite ? sqliteEngine : postgresEngine;
}
