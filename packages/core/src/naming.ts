import { createHash, randomBytes } from "node:crypto";
import { UsageError } from "./errors.js";

/**
 * Key layout in a store (S3 bucket + prefix, or a directory):
 *
 *   <prefix>/<target>/<YYYY>/<MM>/<DD>/<backup-id>.<ext>             the dump (custom: .dump, plain: .sql or .sql.gz)
 *   <prefix>/<target>/<YYYY>/<MM>/<DD>/<backup-id>.manifest.json     written last; a dump without it does not exist
 *
 * The date is the backup's start in UTC. A backup id is `YYYYMMDDTHHMMSSZ-xxxx` (UTC start, 4 random hex digits),
 * so ids sort chronologically within a target.
 */
export const TARGET_NAME = /^[a-z0-9](?:[a-z0-9_-]{0,62})$/;
export const BACKUP_ID = /^\d{8}T\d{6}Z-[0-9a-f]{4}$/;
export const MANIFEST_SUFFIX = ".manifest.json";
/**
 * A target's pointer to its newest backup (<target>/.lifeboat-latest.json: id, startedAt, manifest key), replaced after
 * each successful run: the freshness check reads it instead of every manifest.
 */
export const LATEST_FILE = ".lifeboat-latest.json";
/** A target's record of its last run (`lifeboat status`), replaced by each run: <target>/.lifeboat-last-run.json */
export const LAST_RUN_FILE = ".lifeboat-last-run.json";
/** `<target>/.lifeboat-last-refresh.json`: when `lifeboat refresh` last ran for the target, and how it ended. */
export const LAST_REFRESH_FILE = ".lifeboat-last-refresh.json";
/**
 * Every run's outcome, one object per run, written once (<target>/.lifeboat-runs/<start>-<run>.json): the history the
 * dashboard's fire-time strip and `lifeboat report` read (the last-run record holds only the newest).
 */
export const RUNS_FOLDER = ".lifeboat-runs";
/** Where the freshness check remembers the missed fire times it reported: <target>/.lifeboat-missed/<time>.json. */
export const MISSED_FOLDER = ".lifeboat-missed";
/** A restore drill's result, beside the manifest it drilled. */
export const VERIFY_SUFFIX = ".verify.json";

/** The key of an object beside a backup's dump (its manifest, its drill result): same folder, `<id><suffix>`. */
export function besideDump(backup: { id: string; object: { key: string } }, suffix: string): string {
  return backup.object.key.replace(/[^/]+$/, `${backup.id}${suffix}`);
}

/** A UTC time as key material: 2026-11-21T04:30:00.000Z -> 20261121T043000Z. */
export function compactTime(at: Date): string {
  const iso = at.toISOString();
  return `${iso.slice(0, 4)}${iso.slice(5, 7)}${iso.slice(8, 10)}T${iso.slice(11, 13)}${iso.slice(14, 16)}${iso.slice(17, 19)}Z`;
}

export function newBackupId(at: Date, random: () => string = () => randomBytes(2).toString("hex")): string {
  return `${compactTime(at)}-${random()}`;
}

export function backupIdTime(id: string): Date {
  const m = /^(\d{4})(\d{2})(\d{2})T(\d{2})(\d{2})(\d{2})Z/.exec(id);
  if (!m) throw new UsageError(`"${id}" is not a backup id`, "backup ids look like 20261121T043000Z-1a2b; see `lifeboat list`");
  return new Date(Date.UTC(+m[1]!, +m[2]! - 1, +m[3]!, +m[4]!, +m[5]!, +m[6]!));
}

/** The dump's file extension: custom archives .dump; plain SQL .sql, or .sql.gz when gzip-compressed. */
export function dumpExtension(format: "custom" | "plain", compressed: boolean): string {
  if (format === "custom") return ".dump";
  return compressed ? ".sql.gz" : ".sql";
}

export function joinKey(...parts: string[]): string {
  return parts
    .map((p) => p.replace(/^\/+|\/+$/g, ""))
    .filter((p) => p.length > 0)
    .join("/");
}

export function targetPrefix(target: string): string {
  return joinKey(target) + "/";
}

/**
 * A database name as one key segment: URI-encoded, and "." and ".." (legal database names) with their dots encoded
 * too, so that neither S3 nor a file system reads them as "this folder" or "the parent folder".
 */
export function databaseSegment(database: string): string {
  const encoded = encodeURIComponent(database);
  return /^\.+$/.test(encoded) ? encoded.replace(/\./g, "%2E") : encoded;
}

/**
 * Keys relative to the store's root (the store adds its own prefix). A target with several databases keeps each
 * under its own folder: <target>/<database>/<YYYY>/<MM>/<DD>/<id>...; roles and tablespaces under <target>/_globals/.
 */
export function backupKeys(target: string, id: string, ext: string, database?: string): { dump: string; manifest: string } {
  const t = backupIdTime(id);
  const y = String(t.getUTCFullYear());
  const mo = String(t.getUTCMonth() + 1).padStart(2, "0");
  const d = String(t.getUTCDate()).padStart(2, "0");
  const base = database === undefined ? joinKey(target, y, mo, d, id) : joinKey(target, databaseSegment(database), y, mo, d, id);
  return { dump: base + ext, manifest: base + MANIFEST_SUFFIX };
}

/** The key of part n (1-based) of a backup set, beside its base archive: <id>.part-001.dump, ... */
export function partKey(dumpKey: string, n: number): string {
  return dumpKey.replace(/\.dump$/, `.part-${String(n).padStart(3, "0")}.dump`);
}

/**
 * The IAM role of one target's runner (a role per target: ECS task credentials carry no session tags, so one role
 * could not tell targets apart). Names are account-wide and at most 64 characters: a hash of the deployment's scope
 * (roleScope: app and stage) and the target keeps them unique, the target keeps them readable; the path
 * /lifeboat/<app>/<stage>/runner/ scopes who may pass them.
 */
export function runnerRoleName(scope: string, target: string): string {
  return `lb-${createHash("sha256").update(`${scope}\0${target}`).digest("hex").slice(0, 10)}-${target}`.slice(0, 64);
}
export function runnerRolePath(scope: string): string {
  return `/lifeboat/${scope}/runner/`;
}
/** One deployment's scope among every SST app and stage of an account: "<app>/<stage>". */
export function roleScope(app: string, stage: string): string {
  return `${app}/${stage}`;
}
