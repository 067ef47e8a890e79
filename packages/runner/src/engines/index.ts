import type { Manifest } from "@lifeboat/core";
import type { Engine, SnapshotRequest } from "./engine.js";
import { postgresEngine } from "./postgres.js";
import { sqliteEngine } from "./sqlite.js";

export type { DrillOutcome, DrillRequest, Engine, EngineManifest, RestoreOutcome, RestoreRequest, RowMismatch, Snapshot, SnapshotRequest, SnapshotStream, StoredStream, VerifyCheck } from "./engine.js";

/** The engine that backs up a source: the one place where PostgreSQL and SQLite are told apart for a backup. */
export function engineFor(source: Pick<SnapshotRequest, "sqlite">): Engine {
  return source.sqlite ? sqliteEngine : postgresEngine;
}

/** The engine that restores, drills and counts a backup: the one place where its format is told apart for that. */
export function engineOf(manifest: Pick<Manifest, "format">): Engine {
  return manifest.format === "sqlite" ? sqliteEngine : postgresEngine;
}
