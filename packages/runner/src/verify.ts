import { mkdtemp, rm } from "node:fs/promises";
import { randomBytes, randomUUID } from "node:crypto";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { ChecksumMismatchError, VERIFY_SUFFIX, backupSize, besideDump, errorMessage, redact, silentLogger, type BackupVerifyEvent, type LocalEventBus, type Logger, type Manifest, type ObjectStore } from "@lifeboat/core";
import { displayUrl, type ConnectionInfo } from "./pg/connection.js";
import { startEphemeralPostgres, type EphemeralPostgres } from "./pg/ephemeral.js";
import { query } from "./pg/psql.js";
import { ident } from "./pg/session.js";
import { diffToc, parseToc, summarizeToc } from "./pg/toc.js";
import { findTool, runTool } from "./pg/tools.js";
import { DecryptionError } from "./encryption.js";
import { restoreInto, verifiedDump } from "./restore.js";
import { integrityProblems, sqliteTables } from "./engines/sqlite.js";
import { listBackups, storeJson } from "./catalog.js";

/**
 * A restore drill. Fetches the dump and checks its SHA-256; compares the archive's table of contents with the
 * manifest; restores it into a throwaway PostgreSQL that Lifeboat starts (initdb) or into a new database on a
 * scratch server; checks that pg_restore reported no error and that every table of the manifest exists with its
 * recorded row count. The result is stored beside the manifest (<id>.verify.json) and emitted on the bus.
 */
export interface VerifyOptions {
  store: ObjectStore;
  manifest: Manifest;
  /** Identities that decrypt an encrypted backup (the drill restores its plaintext). */
  identities?: string[] | undefined;
  /** Why the identity could not be read (a secret that is missing): told in the failed decrypt check. */
  identityUnavailable?: string;
  /** A server to restore into (a new database is created there and dropped afterwards); default: a throwaway cluster. */
  scratch?: ConnectionInfo;
  jobs?: number;
  runId?: string;
  trigger?: string;
  log?: Logger;
  bus?: LocalEventBus;
  signal?: AbortSignal;
  onProgress?: (p: { phase: "download" | "restore"; done: number; total: number }) => void;
}

export interface VerifyCheck {
  check: "sha256" | "decrypt" | "toc" | "restore" | "tables";
  ok: boolean;
  detail: string;
}

export interface VerifyResult {
  verifyVersion: 1;
  backupId: string;
  target: string;
  verifiedAt: string;
  outcome: "passed" | "failed";
  durationMs: number;
  restoreMs: number;
  server: { where: "throwaway" | "scratch"; version: string };
  checks: VerifyCheck[];
  /** Tables whose row count differs from the manifest, or that are missing. */
  mismatches: Array<{ table: string; expected: number; actual: number | null }>;
}

export function verifyKey(manifest: Manifest): string {
  return besideDump(manifest, VERIFY_SUFFIX);
}

export async function verifyBackup(opts: VerifyOptions): Promise<VerifyResult> {
  const log = opts.log ?? silentLogger;
  const { manifest } = opts;
  const started = Date.now();
  const checks: VerifyCheck[] = [];
  const mismatches: VerifyResult["mismatches"] = [];
  let restoreMs = 0;
  let serverVersion = "";
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-verify-"));
  let ephemeral: EphemeralPostgres | undefined;
  let scratchDb: string | undefined;
  try {
    let file: string;
    let files: string[];
    let unchanged = async () => {};
    try {
      const dump = await verifiedDump(opts.store, manifest, dir, { identities: opts.identities, signal: opts.signal, onProgress: (d, t) => opts.onProgress?.({ phase: "download", done: d, total: t }) });
      file = dump.file;
      files = dump.files;
      unchanged = dump.unchanged;
      checks.push({
        check: "sha256",
        ok: true,
        detail: manifest.parts?.length
          ? `sha256 and size of all ${files.length} archives of the set (${backupSize(manifest)} bytes) match the manifest`
          : `sha256 ${manifest.object.sha256} and size ${manifest.object.size} match the manifest`,
      });
      if (manifest.encryption) checks.push({ check: "decrypt", ok: true, detail: `decrypted (age, for ${manifest.encryption.recipients.join(", ")})` });
    } catch (err) {
      if (err instanceof DecryptionError) {
        // every archive's checksum passed (it is of the encrypted bytes); reading them needs the identity
        checks.push({ check: "sha256", ok: true, detail: `sha256 and size of the encrypted archive${manifest.parts?.length ? "s" : ""} match the manifest` });
        checks.push({ check: "decrypt", ok: false, detail: opts.identityUnavailable ? `${opts.identityUnavailable}; ${err.message}` : err.message });
        return await finish();
      }
      if (!(err instanceof ChecksumMismatchError)) throw err;
      checks.push({ check: "sha256", ok: false, detail: err.message });
      return await finish();
    }

    if (manifest.format === "sqlite") {
      const problems = await integrityProblems(file);
      checks.push({ check: "restore", ok: problems.length === 0, detail: `PRAGMA integrity_check: ${problems.length ? problems.join("; ") : "ok"}` });
      const counted = compareRowCounts(manifest, new Map((await sqliteTables(file)).map((t) => [t.name, t.rows])));
      mismatches.push(...counted.mismatches);
      checks.push(counted.check);
      serverVersion = manifest.database.serverVersion;
      return await finish();
    }

    if (manifest.format === "custom") {
      const pgRestore = await findTool("pg_restore", { minMajor: manifest.pgDump.major });
      // a set's table of contents is that of all its archives together
      const entries = [];
      for (const f of files) {
        const listed = await runTool(pgRestore.path, ["--list", f]);
        if (listed.code !== 0) {
          checks.push({ check: "toc", ok: false, detail: `pg_restore --list failed: ${listed.stderr.trim()}` });
          return await finish();
        }
        entries.push(...parseToc(listed.stdout));
      }
      const actual = summarizeToc(entries);
      if (manifest.toc) {
        const diff = diffToc(manifest.toc, actual);
        checks.push({ check: "toc", ok: diff.length === 0, detail: diff.length ? `the archive's table of contents differs from the manifest: ${diff.join("; ")}` : `${actual.entries} entries, as recorded` });
      } else {
        checks.push({ check: "toc", ok: true, detail: `${actual.entries} entries (the manifest records no table of contents to compare)` });
      }
    }

    // where to restore
    let target: ConnectionInfo;
    if (opts.scratch) {
      scratchDb = `lifeboat_verify_${manifest.id.toLowerCase().replace(/[^a-z0-9]/g, "_")}_${randomBytes(2).toString("hex")}`;
      await query(opts.scratch, `create database ${ident(scratchDb)} template template0;`);
      target = { ...opts.scratch, database: scratchDb };
      const [[v]] = (await query(target, "show server_version;")) as [[string]];
      serverVersion = v;
      log.log("info", "restoring into a scratch database", { to: displayUrl(target) });
    } else {
      log.log("info", "starting a throwaway PostgreSQL for the drill");
      ephemeral = await startEphemeralPostgres();
      await query(ephemeral.connection(), "create database verify template template0;");
      target = ephemeral.connection("verify");
      serverVersion = ephemeral.version;
    }

    try {
      const jobs = manifest.format === "custom" ? Math.max(1, opts.jobs ?? availableParallelism()) : 1;
      restoreMs = (
        await restoreInto(files, manifest, target, { jobs, noOwner: true, noAcl: true, signal: opts.signal, log, onProgress: (d, t) => opts.onProgress?.({ phase: "restore", done: d, total: t }) })
      ).ms;
      await unchanged();
      checks.push({ check: "restore", ok: true, detail: `restored without errors in ${restoreMs} ms (${jobs} job${jobs > 1 ? "s" : ""})` });
    } catch (err) {
      checks.push({ check: "restore", ok: false, detail: redact(errorMessage(err)) });
      return await finish();
    }

    const counted = await checkRowCounts(target, manifest);
    mismatches.push(...counted.mismatches);
    checks.push(counted.check);
    return await finish();
  } finally {
    if (scratchDb && opts.scratch) await query(opts.scratch, `drop database if exists ${ident(scratchDb)} with (force);`).catch(() => {});
    await ephemeral?.stop().catch(() => {});
    await rm(dir, { recursive: true, force: true });
  }

  async function finish(): Promise<VerifyResult> {
    const result: VerifyResult = {
      verifyVersion: 1,
      backupId: manifest.id,
      target: manifest.target,
      verifiedAt: new Date().toISOString(),
      outcome: checks.every((c) => c.ok) ? "passed" : "failed",
      durationMs: Date.now() - started,
      restoreMs,
      server: { where: opts.scratch ? "scratch" : "throwaway", version: serverVersion },
      checks,
      mismatches,
    };
    await storeJson(opts.store, verifyKey(manifest), result);
    const event: BackupVerifyEvent = {
      version: 1,
      type: result.outcome === "passed" ? "backup.verified" : "backup.verify_failed",
      status: result.outcome === "passed" ? "succeeded" : "failed",
      time: result.verifiedAt,
      target: manifest.target,
      runId: opts.runId ?? randomUUID(),
      trigger: opts.trigger ?? "manual",
      attempt: 1,
      verification: {
        backupId: manifest.id,
        location: opts.store.location(manifest.object.key),
        durationMs: result.durationMs,
        restoreMs,
        tables: manifest.tables?.length ?? 0,
        failures: checks.filter((c) => !c.ok).map((c) => `${c.check}: ${c.detail}`),
      },
    };
    await opts.bus?.publish(event);
    log.log(result.outcome === "passed" ? "info" : "error", `restore drill ${result.outcome}`, { backup: manifest.id, durationMs: result.durationMs });
    return result;
  }
}

/** Every table of the manifest exists in `db` with its recorded row count. */
export async function checkRowCounts(db: ConnectionInfo, manifest: Manifest): Promise<{ check: VerifyCheck; mismatches: VerifyResult["mismatches"] }> {
  const actual = new Map<string, number>();
  if (manifest.tables) {
    const present = new Set(
      (await query(db, `select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.relkind in ('r','p')`)).map((r) => r[0]!),
    );
    for (const { name } of manifest.tables) {
      if (!present.has(name)) continue;
      const [[n]] = (await query(db, `select count(*) from only ${name};`)) as [[string]];
      actual.set(name, Number(n));
    }
  }
  return compareRowCounts(manifest, actual);
}

/** The manifest's row counts against the counts found (a table absent from `actual` is missing). */
export function compareRowCounts(manifest: Manifest, actual: Map<string, number>): { check: VerifyCheck; mismatches: VerifyResult["mismatches"] } {
  const mismatches: VerifyResult["mismatches"] = [];
  if (!manifest.tables) {
    return { check: { check: "tables", ok: true, detail: "the manifest records no row counts (plain format, or dump.rowCounts: false): only the restore was checked" }, mismatches };
  }
  for (const { name, rows } of manifest.tables) {
    const n = actual.get(name);
    if (n !== rows) mismatches.push({ table: name, expected: rows, actual: n ?? null });
  }
  return {
    check: {
      check: "tables",
      ok: mismatches.length === 0,
      detail: mismatches.length
        ? mismatches.map((m) => (m.actual === null ? `${m.table} is missing (manifest: ${m.expected} rows)` : `${m.table} has ${m.actual} rows, the manifest says ${m.expected}`)).join("; ")
        : `${manifest.tables.length} tables, every row count as recorded`,
    },
    mismatches,
  };
}

/** What a scheduled drill of a target drills: its newest backup (of any of its databases), if it has one. */
export async function latestToDrill(store: ObjectStore, target: string, log?: Logger): Promise<Manifest | undefined> {
  return (await listBackups(store, target, log))[0];
}
