// `lifeboat restore` of any backup into a PostgreSQL database: the backup's engine restores it (engines/: PostgreSQL's
// pg_restore or psql; SQLite backups refuse a database and restore to a file), reading it through fetch.ts. This file
// is the entry point the CLI and the demo call; no engine imports it.
import { LifeboatError } from "@lifeboat/core";
import { engineOf } from "./engines/index.js";
import type { RestoreResult } from "./engines/engine.js";
import type { RestoreOptions } from "./engines/pg-restore.js";

export type { RestoreOptions, RestoreResult };

/**
 * Restores a backup into a database: its engine restores it (engines/pg-restore.ts for PostgreSQL: the identity of an
 * encrypted backup, then the target, are checked before anything is downloaded; the download is verified; then the
 * restore, all-or-nothing).
 */
export async function restoreBackup(opts: RestoreOptions): Promise<RestoreResult> {
  const { to, ...rest } = opts;
  const outcome = await engineOf(opts.manifest).restore({ ...rest, to: { database: to } });
  if (outcome.into !== "database") throw new LifeboatError(`backup ${opts.manifest.id} restored to a file, not a database`);
  const { into: _into, ...result } = outcome;
  return result;
}
