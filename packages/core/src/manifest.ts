import { z } from "zod";

/**
 * The manifest is written last, beside its dump. Listing, restore and retention read manifests only: a dump without
 * a manifest does not exist for them. It never holds a secret (no password, no URL with credentials).
 */
export const MANIFEST_VERSION = 1;
/**
 * Version 2: a backup set (`parts`). Lifeboat versions that know only version 1 refuse it rather than restore the
 * base archive alone, which would silently miss the data of the tables streamed as parts.
 */
export const MANIFEST_VERSION_SET = 2;

const storedObject = z.object({
  key: z.string(),
  size: z.number().int().min(0),
  sha256: z.string().regex(/^[0-9a-f]{64}$/),
});

export const manifestSchema = z.object({
  manifestVersion: z.union([z.literal(MANIFEST_VERSION), z.literal(MANIFEST_VERSION_SET)]),
  id: z.string(), // backup id, YYYYMMDDTHHMMSSZ-xxxx
  target: z.string(),
  runId: z.string(),
  trigger: z.enum(["manual", "schedule", "remote", "retry"]),
  attempt: z.number().int().min(1),
  database: z.object({
    name: z.string(),
    host: z.string(),
    port: z.number().int(),
    serverVersion: z.string(), // e.g. "15.18 (Debian 15.18-0+deb12u1)"
    serverVersionNum: z.number().int(), // e.g. 150018
    systemIdentifier: z.string().optional(), // pg_control_system(), identifies the cluster when readable
    /** How the database was created (pg_database): `restore --create` makes the new one alike. Since 0.1 (issue 24). */
    settings: z
      .object({
        encoding: z.string(),
        collate: z.string(),
        ctype: z.string(),
        owner: z.string(),
        /** PostgreSQL 15+: a database whose default collation is ICU's (or, 17+, the builtin provider's), and its locale. */
        localeProvider: z.enum(["libc", "icu", "builtin"]).optional(),
        locale: z.string().optional(),
      })
      .optional(),
  }),
  pgDump: z.object({ version: z.string(), major: z.number().int() }),
  /** custom / plain: pg_dump formats; sqlite: a SQLite database file (an online-backup snapshot). */
  format: z.enum(["custom", "plain", "sqlite"]),
  /** What pg_dump compressed with: "gzip:1", "zstd:3", "none" (older manifests: a gzip level, 0 = none). */
  compression: z.union([z.number().int(), z.string()]),
  /** The dump; in a backup set, the base archive (schema, small tables, sequences, large objects). */
  object: storedObject,
  /**
   * A backup set (parallel dump, manifest version 2): the data of the largest tables, each a custom archive of its
   * own (pg_dump --data-only --table), dumped concurrently with the base in one exported snapshot.
   */
  parts: z.array(storedObject.extend({ table: z.string() })).optional(),
  startedAt: z.string(), // ISO 8601 UTC
  finishedAt: z.string(),
  durationMs: z.number().int().min(0),
  lifeboatVersion: z.string(),
  /** "globals": roles and tablespaces (pg_dumpall --globals-only), restored with psql into any database. */
  kind: z.enum(["database", "globals"]).optional(),
  /** The exported snapshot pg_dump used (--snapshot); the row counts were taken in it. */
  snapshot: z.string().optional(),
  /** Exact row counts of every dumped table, in the dump's snapshot (custom format with dump.rowCounts). */
  tables: z.array(z.object({ name: z.string(), rows: z.number().int().min(0) })).optional(),
  /** How long counting took, after the dump (ms). */
  rowCountMs: z.number().int().min(0).optional(),
  /**
   * Client-side encryption: every object of the backup is an age file (https://age-encryption.org/v1) for these
   * recipients (public keys). Sizes and SHA-256 are of the stored, encrypted bytes. Never the identity.
   */
  encryption: z.object({ format: z.literal("age"), recipients: z.array(z.string()).min(1) }).optional(),
  /** The archive's table of contents: number of entries, and entries by type (pg_restore --list). */
  toc: z.object({ entries: z.number().int(), byType: z.record(z.string(), z.number().int()) }).optional(),
});

export type Manifest = z.infer<typeof manifestSchema>;

/** Every object a backup stored: its dump (the base archive of a set) and its parts. */
export function backupObjects(m: Pick<Manifest, "object" | "parts">): { key: string; size: number; sha256: string }[] {
  return [m.object, ...(m.parts ?? [])];
}

/** What a backup occupies in the store, all its objects together. */
export function backupSize(m: Pick<Manifest, "object" | "parts">): number {
  return backupObjects(m).reduce((n, o) => n + o.size, 0);
}
