import { spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { PassThrough, type Readable } from "node:stream";
import {
  AttemptError,
  CONFIG_ERROR,
  abortedAttempt,
  compressionText,
  defaultCompression,
  dumpExtension,
  dumpSizeBound,
  errorMessage,
  pgDumpCompressArg,
  redact,
  UsageError,
  type Compression,
  type DataCheck,
  type DumpOptions,
  type Logger,
  type Manifest,
} from "@lifeboat/core";
import { classifyPgMessage, toAttemptError } from "../pg/classify.js";
import { conninfo, displayUrl, toolEnv, type ConnectionInfo } from "../pg/connection.js";
import { preflight, query, type ServerInfo } from "../pg/psql.js";
import { PsqlSession, ident, literal } from "../pg/session.js";
import { diffToc, parseToc, summarizeToc, type TocSummary } from "../pg/toc.js";
import { findTool, runTool } from "../pg/tools.js";
import type { DrillOutcome, DrillRequest, Engine, EngineManifest, RestoreOutcome, RestoreRequest, RowMismatch, Snapshot, SnapshotRequest, SnapshotStream, VerifyCheck } from "./engine.js";
import { compareRowCounts } from "./counts.js";
import { startEphemeralPostgres, type EphemeralPostgres } from "../pg/ephemeral.js";
import { missingRoles, quoteRole, rolesInArchive, rolesInSql } from "../pg/roles.js";
import { plainSql, restoreInto, restorePostgres } from "./pg-restore.js";

/**
 * PostgreSQL: pg_dump, or pg_dumpall --globals-only for roles and tablespaces. With row counts or parallel jobs, a
 * read-only repeatable-read transaction exports its snapshot; every pg_dump of the attempt dumps exactly that
 * snapshot (--snapshot), and the same transaction counts the dumped tables afterwards. With jobs > 1 the largest
 * tables' data each stream as a part of their own (--data-only --table), the rest as the base archive.
 */
export const postgresEngine: Engine = {
  name: "postgresql",
  // pg_restore and psql only read the archives
  readsFilesInPlace: true,
  async snapshot(req: SnapshotRequest): Promise<Snapshot> {
    const resolved = await req.resolveSource();
    const conn = req.database ? { ...resolved, database: req.database } : resolved;
    req.secrets.add(conn.password);
    const server = await preflight(conn, req.signal);
    const pgDump = await findTool(req.globals ? "pg_dumpall" : "pg_dump", { minMajor: server.major });
    req.log.log("info", "connected", { target: req.target, server: server.version, pgDump: pgDump.version });
    const tool = { version: pgDump.version, major: pgDump.major };

    if (req.globals) {
      const args = ["--globals-only", "--no-password", ...(req.globals.passwords ? [] : ["--no-role-passwords"]), `--dbname=${conninfo(conn)}`];
      return {
        extension: ".sql",
        folder: "_globals",
        concurrency: 1,
        streams: [{ contentType: "application/octet-stream", open: async () => pgDumpStream(pgDump.path, args, conn, req) }],
        describe: async () => ({ database: postgresDatabase(conn, server, "globals"), pgDump: tool, format: "plain", compression: 0, kind: "globals" }),
        close: async () => {},
      };
    }

    const compression = dumpCompression(req.dump, pgDump.major);
    let dumpArgs: string[];
    try {
      dumpArgs = pgDumpArgs(req.dump, pgDump);
    } catch (err) {
      // a method this pg_dump lacks (zstd on pg_dump 15): the user's to fix, not retried
      throw new AttemptError(CONFIG_ERROR, "permanent", (err as Error).message, { hint: "set dump.compression (or --compression) to gzip[:1-9] or none" });
    }
    const counting = req.dump.format === "custom" && req.dump.rowCounts;
    const jobs = req.dump.format === "custom" ? dumpJobs(req.dump) : 1;
    const session = counting || jobs > 1 ? await PsqlSession.open(conn) : undefined;
    // the session's own reads (table sizes, row counts) lock tables as pg_dump does: they wait for a lock no longer
    // than pg_dump may, and an aborted attempt (SIGTERM, maxRunMinutes) ends the session at once
    const killSession = () => session?.kill();
    if (session) req.signal?.addEventListener("abort", killSession, { once: true });
    // with row counts, each archive's table of contents is read from its stream as it passes (pg_restore --list)
    const tocs: TocReader[] = [];
    const close = async () => {
      req.signal?.removeEventListener("abort", killSession);
      for (const t of tocs) t.stop();
      await session?.close();
    };
    try {
      if (req.signal?.aborted) throw abortedAttempt(req.signal.reason);
      const snapshot = session
        ? (await session.query(`set lock_timeout = '${req.dump.lockWaitTimeoutSeconds}s'; begin isolation level repeatable read, read only; select pg_export_snapshot();`))[0]?.[0]
        : undefined;
      const compressed = compression.method !== "none";
      const tail = [...(snapshot ? [`--snapshot=${snapshot}`] : []), `--dbname=${conninfo(conn)}`];
      const planned = session && jobs > 1 ? await planParts(session, req.dump, jobs, req.log, req.target) : [];
      if (planned.length) req.log.log("info", "parallel dump", { target: req.target, jobs, parts: planned.map((p) => p.table) });
      const specs = [
        { args: [...dumpArgs, ...planned.map((p) => `--exclude-table-data=${p.pattern}`), ...tail], bound: dumpSizeBound(server.sizeBytes, compressed), table: undefined as string | undefined },
        ...planned.map((p) => ({ args: [...dumpArgs, "--data-only", `--table=${p.pattern}`, ...tail], bound: dumpSizeBound(p.bytes, compressed), table: p.table })),
      ];
      const streams: SnapshotStream[] = specs.map((s, i) => ({
        contentType: "application/octet-stream",
        table: s.table,
        bound: s.bound,
        open: async () => {
          const toc = counting ? (tocs[i] = await startTocReader(pgDump.major)) : undefined;
          return pgDumpStream(pgDump.path, s.args, conn, req, toc?.feed, s.table);
        },
      }));
      return {
        extension: dumpExtension(req.dump.format, compressed),
        folder: req.database,
        concurrency: Math.max(1, jobs),
        streams,
        close,
        describe: async (): Promise<EngineManifest> => {
          let counted: Pick<Manifest, "tables" | "rowCountMs" | "toc"> = {};
          if (session && counting) {
            const t0 = Date.now();
            const entries = (await Promise.all(tocs.map((t) => t.listing()))).flatMap((listing) => parseToc(listing));
            const toc: TocSummary = summarizeToc(entries);
            const tables = await countRows(session, entries.filter((e) => e.type === "TABLE DATA").map((e) => e.oid));
            counted = { tables, rowCountMs: Date.now() - t0, toc };
            req.log.log("info", "rows counted in the dump's snapshot", { target: req.target, tables: tables.length, ms: counted.rowCountMs });
          }
          if (session) await session.query("commit");
          return {
            database: postgresDatabase(conn, server),
            pgDump: tool,
            format: req.dump.format,
            compression: compressionText(compression),
            ...(snapshot ? { snapshot } : {}),
            ...(counted.tables ? { tables: counted.tables, rowCountMs: counted.rowCountMs } : {}),
            ...(counted.toc ? { toc: counted.toc } : {}),
          };
        },
      };
    } catch (err) {
      await close();
      throw req.signal?.aborted ? abortedAttempt(req.signal.reason) : err;
    }
  },
  drill: drillPostgres,
  async restore(req: RestoreRequest): Promise<RestoreOutcome> {
    if (!("database" in req.to)) throw new UsageError(`backup ${req.manifest.id} is a PostgreSQL dump: restore it with --to <postgres-url>`);
    const { to, ...rest } = req;
    return { into: "database", ...(await restorePostgres({ ...rest, to: to.database })) };
  },
};

/**
 * pg_dump arguments from validated dump options and the pg_dump that runs (its version decides the default
 * compression and how --compress is spelled): every value is one argv item, no shell ever sees them.
 */
export function pgDumpArgs(dump: DumpOptions, pgDump: { major: number; version: string }): string[] {
  const compress = pgDumpCompressArg(dumpCompression(dump, pgDump.major), pgDump);
  const args = [`--format=${dump.format}`, compress, "--no-password", `--lock-wait-timeout=${dump.lockWaitTimeoutSeconds}s`];
  for (const s of dump.schemas) args.push(`--schema=${s}`);
  for (const s of dump.excludeSchemas) args.push(`--exclude-schema=${s}`);
  for (const t of dump.tables) args.push(`--table=${t}`);
  for (const t of dump.excludeTables) args.push(`--exclude-table=${t}`);
  return args;
}

/** The compression a dump runs with: the configured one, else the default of this pg_dump. */
export function dumpCompression(dump: DumpOptions, pgDumpMajor: number): Compression {
  return dump.compression ?? defaultCompression(pgDumpMajor);
}

/** How many pg_dump processes a custom-format dump may run: dump.jobs, else the CPUs available, at most 4. */
export function dumpJobs(dump: DumpOptions): number {
  return dump.jobs ?? Math.min(4, availableParallelism());
}

const STDERR_LIMIT = 64 * 1024;

/**
 * pg_dump (or pg_dumpall) as a stream that ends only when the program has exited 0. Any other exit or a failure to
 * start makes the stream fail with a classified AttemptError (stderr redacted of the secrets), so the store never
 * completes the object: a dump that stopped half way is never stored. Destroying the stream stops pg_dump.
 */
function pgDumpStream(program: string, args: string[], conn: ConnectionInfo, req: SnapshotRequest, tee?: (chunk: Buffer) => void, table?: string): Readable {
  const child = spawn(program, args, { env: toolEnv(conn), stdio: ["ignore", "pipe", "pipe"] });
  req.log.log("info", "pg_dump started", { target: req.target, pid: child.pid, ...(table ? { part: table } : {}) });
  const out = new PassThrough();
  let stderr = "";
  child.stderr.on("data", (d: Buffer) => {
    if (stderr.length < STDERR_LIMIT) stderr += d.toString("utf8");
  });
  const running = () => child.exitCode === null && child.signalCode === null;
  const fail = (err: AttemptError) => {
    if (!out.destroyed) out.destroy(err);
    if (running()) child.kill("SIGTERM");
  };
  if (tee) child.stdout.on("data", tee);
  child.stdout.pipe(out, { end: false });
  child.on("error", (err) => fail(toAttemptError(err, req.secrets)));
  child.on("close", (code, sig) => {
    if (code === 0) return void out.end();
    const why = sig ? `pg_dump was killed by ${sig}` : `pg_dump exited with code ${code}`;
    fail(stderr.trim() ? classifyPgMessage(`${why}: ${stderr.trim()}`, req.secrets, "pg_dump_failed") : new AttemptError("pg_dump_failed", "transient", why));
  });
  out.once("close", () => {
    if (running()) child.kill("SIGTERM");
  });
  return out;
}

interface TocReader {
  feed: (chunk: Buffer) => void;
  listing: () => Promise<string>;
  /** Ends the reader if it still runs (an attempt that failed before its listing was read). */
  stop: () => void;
}

/** `pg_restore --list` fed from the start of the dump stream: it reads the archive's table of contents and exits. */
async function startTocReader(major: number): Promise<TocReader> {
  const pgRestore = await findTool("pg_restore", { minMajor: major });
  const child = spawn(pgRestore.path, ["--list"], { stdio: ["pipe", "pipe", "pipe"] });
  let out = "";
  let err = "";
  let open = true;
  child.stdout.on("data", (d: Buffer) => (out += d.toString("utf8")));
  child.stderr.on("data", (d: Buffer) => (err += d.toString("utf8")));
  child.stdin.on("error", () => (open = false));
  const closed = new Promise<number | null>((r) => child.on("close", (code) => r(code)));
  child.on("close", () => (open = false));
  const LIMIT = 16 * 1024 * 1024; // the TOC comes first; never buffer more than this for a reader that stopped reading
  return {
    feed(chunk) {
      if (!open) return;
      if (child.stdin.writableLength > LIMIT) {
        open = false;
        child.stdin.end();
        return;
      }
      child.stdin.write(chunk);
    },
    async listing() {
      if (open) child.stdin.end();
      const code = await closed;
      if (code !== 0 && !out.includes("TOC Entries")) throw new AttemptError("toc_failed", "transient", `pg_restore --list could not read the archive: ${err.trim()}`);
      return out;
    },
    stop() {
      open = false;
      child.stdin.destroy();
      if (child.exitCode === null && child.signalCode === null) child.kill("SIGTERM");
    },
  };
}

/** Exact counts, in the session's transaction (the dump's snapshot), of the tables the TOC says were dumped. */
async function countRows(session: PsqlSession, oids: number[]): Promise<NonNullable<Manifest["tables"]>> {
  if (oids.length === 0) return [];
  const names = await session.query(
    `select c.oid, format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace where c.oid in (${oids.map(Number).join(",")}) order by 2`,
  );
  const out: NonNullable<Manifest["tables"]> = [];
  for (let i = 0; i < names.length; i += 50) {
    const batch = names.slice(i, i + 50);
    const rows = await session.query(batch.map(([, name]) => `select ${literal(name!)}, count(*) from only ${name}`).join(" union all "));
    for (const [name, count] of rows) out.push({ name: name!, rows: Number(count) });
  }
  return out;
}

/** A table whose data is dumped as a part of its own. */
export interface PlannedPart {
  /** schema.name, quoted where needed (as format('%I.%I')). */
  table: string;
  /** The pg_dump pattern that names exactly this table: "schema"."name" with quotes doubled. */
  pattern: string;
  oid: number;
  bytes: number;
}

/**
 * The tables worth a stream of their own, largest first: ordinary tables of at least dump.parallelMinTableMB, not
 * belonging to an extension, at most 4 per job. Read in the dump's snapshot transaction. Only when the dump selects
 * everything: with schema or table filters, pg_dump's own pattern matching decides what is dumped, and one archive is
 * made (logged).
 */
export async function planParts(session: PsqlSession, dump: DumpOptions, jobs: number, log: Logger, target: string): Promise<PlannedPart[]> {
  if (dump.schemas.length || dump.excludeSchemas.length || dump.tables.length || dump.excludeTables.length) {
    log.log("info", "one archive: parallel dumps need a dump without schema or table filters", { target });
    return [];
  }
  const minBytes = Math.round(dump.parallelMinTableMB * 1024 * 1024);
  const rows = await session.query(
    `select c.oid, format('%I.%I', n.nspname, c.relname), n.nspname, c.relname, pg_table_size(c.oid)
     from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind = 'r' and n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%' and n.nspname not like 'pg_temp%'
       and not exists (select 1 from pg_depend d where d.classid = 'pg_class'::regclass and d.objid = c.oid and d.deptype = 'e')
       and pg_table_size(c.oid) >= ${minBytes}
     order by 5 desc, 2 limit ${jobs * 4}`,
  );
  const quote = (name: string) => `"${name.replace(/"/g, '""')}"`;
  return rows.map(([oid, table, schema, name, bytes]) => ({ oid: Number(oid), table: table!, pattern: `${quote(schema!)}.${quote(name!)}`, bytes: Number(bytes) }));
}

function postgresDatabase(conn: ConnectionInfo, server: ServerInfo, name = server.database): Manifest["database"] {
  return {
    name,
    host: conn.host,
    port: conn.port,
    serverVersion: server.version,
    serverVersionNum: server.versionNum,
    ...(server.systemIdentifier ? { systemIdentifier: server.systemIdentifier } : {}),
    // the settings are of the connected database; a multi-database target's others are read when each is dumped
    ...(name === server.database ? { settings: server.settings } : {}),
  };
}

/**
 * The PostgreSQL drill: the table of contents of every archive against the manifest's, a restore into a new database
 * on the scratch server (dropped afterwards) or into a throwaway cluster started here (stopped afterwards), then every
 * table of the manifest counted there.
 */
async function drillPostgres(req: DrillRequest): Promise<DrillOutcome> {
  const { manifest, log } = req;
  const checks: VerifyCheck[] = [];
  const outcome = (more: Partial<DrillOutcome> = {}): DrillOutcome => ({ checks, mismatches: [], restoreMs: 0, serverVersion: "", ...more });
  if (manifest.format === "custom") {
    const pgRestore = await findTool("pg_restore", { minMajor: manifest.pgDump.major });
    // a set's table of contents is that of all its archives together
    const entries = [];
    for (const f of req.files) {
      const listed = await runTool(pgRestore.path, ["--list", f]);
      if (listed.code !== 0) {
        checks.push({ check: "toc", ok: false, detail: `pg_restore --list failed: ${listed.stderr.trim()}` });
        return outcome();
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

  let ephemeral: EphemeralPostgres | undefined;
  let scratchDb: string | undefined;
  try {
    let target: ConnectionInfo;
    let serverVersion: string;
    if (req.scratch) {
      scratchDb = `lifeboat_verify_${manifest.id.toLowerCase().replace(/[^a-z0-9]/g, "_")}_${randomBytes(2).toString("hex")}`;
      await query(req.scratch, `create database ${ident(scratchDb)} template template0;`);
      target = { ...req.scratch, database: scratchDb };
      const [[v]] = (await query(target, "show server_version;")) as [[string]];
      serverVersion = v;
      log.log("info", "restoring into a scratch database", { to: displayUrl(target) });
    } else {
      log.log("info", "starting a throwaway PostgreSQL for the drill");
      ephemeral = await startEphemeralPostgres({ signal: req.signal });
      await query(ephemeral.connection(), "create database verify template template0;");
      target = ephemeral.connection("verify");
      serverVersion = ephemeral.version;
      // the roles the backup names (owners, grantees), as empty roles: the drill then restores it as it was, with its
      // ownership and privileges, whichever roles own its objects
      const base = req.files[0]!;
      const roles = manifest.format === "custom" ? await rolesInArchive(base, manifest.pgDump) : await rolesInSql(plainSql(base, manifest));
      const missing = await missingRoles(target, roles);
      const create = [...new Set([...missing.owners, ...missing.grantees])];
      if (create.length) {
        await query(ephemeral.connection(), create.map((r) => `create role ${quoteRole(r)} nologin;`).join("\n"));
        log.log("info", "roles the backup names were created (empty) in the throwaway cluster", { roles: create });
      }
    }
    let restoreMs: number;
    const jobs = manifest.format === "custom" ? Math.max(1, req.jobs ?? availableParallelism()) : 1;
    try {
      // on a scratch database of a real server no role is created: ownership and privileges are left out there
      const faithful = !req.scratch;
      restoreMs = (await restoreInto(req.files, manifest, target, { jobs, noOwner: !faithful, noAcl: !faithful, signal: req.signal, log, onProgress: req.onProgress })).ms;
      await req.unchanged();
      checks.push({ check: "restore", ok: true, detail: `restored without errors in ${restoreMs} ms (${jobs} job${jobs > 1 ? "s" : ""})` });
    } catch (err) {
      // a drill that was stopped (SIGINT, SIGTERM, a deadline) did not fail: it is not recorded as a failed drill
      if (req.signal?.aborted) throw abortedAttempt(req.signal.reason);
      checks.push({ check: "restore", ok: false, detail: redact(errorMessage(err)) });
      return outcome({ serverVersion });
    }
    const counted = await checkRowCounts(target, manifest);
    checks.push(counted.check);
    for (const check of req.checks ?? []) checks.push(await runDataCheck(target, check, manifest));
    return outcome({ mismatches: counted.mismatches, restoreMs, serverVersion });
  } finally {
    if (scratchDb && req.scratch) await query(req.scratch, `drop database if exists ${ident(scratchDb)} with (force);`).catch(() => {});
    await ephemeral?.stop().catch(() => {});
  }
}

/**
 * One data check (verify.checks) in the drill's restored database: its query's first value against its expectation.
 * The detail names the check, the value found and what was expected (and the query when it fails), for the stored
 * result and backup.verify_failed.
 */
export async function runDataCheck(db: ConnectionInfo, check: DataCheck, manifest: Manifest): Promise<VerifyCheck> {
  const fail = (why: string): VerifyCheck => ({ check: "data", ok: false, detail: `${check.name}: ${why} (query: ${check.sql.trim()})` });
  let value: string | undefined;
  try {
    // times in UTC and ISO form, whatever the server's settings, so that maxAgeHours reads them alike
    const rows = await query(db, `set timezone = 'UTC'; set datestyle = 'ISO, YMD';\n${check.sql.trim().replace(/;\s*$/, "")};`);
    value = rows[0]?.[0];
  } catch (err) {
    // psql's first line (its ERROR), without where psql read it from
    const message = redact(errorMessage(err)).split("\n")[0]!.replace(/^psql:<stdin>:\d+:\s*/, "");
    return fail(`the query failed: ${message}`);
  }
  if (value === undefined) return fail("the query returned no row");
  const problems: string[] = [];
  const expected: string[] = [];
  if (check.min !== undefined || check.max !== undefined) {
    const n = Number(value);
    if (value === "" || !Number.isFinite(n)) problems.push("is not a number");
    if (check.min !== undefined) {
      expected.push(`>= ${check.min}`);
      if (Number.isFinite(n) && n < check.min) problems.push(`is below ${check.min}`);
    }
    if (check.max !== undefined) {
      expected.push(`<= ${check.max}`);
      if (Number.isFinite(n) && n > check.max) problems.push(`is above ${check.max}`);
    }
  }
  if (check.equals !== undefined) {
    const want = typeof check.equals === "boolean" ? (check.equals ? "t" : "f") : String(check.equals);
    expected.push(`= ${want}`);
    if (value !== want) problems.push(`is not ${want}`);
  }
  let age = "";
  if (check.maxAgeHours !== undefined) {
    expected.push(`at most ${check.maxAgeHours} h before the backup started`);
    // ISO output in UTC: 2026-12-07 17:00:00.123456+00, or a date alone
    const at = Date.parse(value.replace(" ", "T").replace(/([+-]\d\d)$/, "$1:00"));
    if (!Number.isFinite(at)) problems.push("is not a date or time");
    else {
      const hours = (Date.parse(manifest.startedAt) - at) / 3_600_000;
      age = `, ${hours.toFixed(1)} h before the backup started`;
      if (hours > check.maxAgeHours) problems.push(`is older than ${check.maxAgeHours} h`);
    }
  }
  if (problems.length) return fail(`found ${value}${age}, which ${problems.join(" and ")} (expected ${expected.join(", ")})`);
  return { check: "data", ok: true, detail: `${check.name}: found ${value}${age} (expected ${expected.join(", ")})` };
}

/** Every table of the manifest exists in `db` with its recorded row count. */
export async function checkRowCounts(db: ConnectionInfo, manifest: Manifest): Promise<{ check: VerifyCheck; mismatches: RowMismatch[] }> {
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
