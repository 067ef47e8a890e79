import { mkdtemp, rm } from "node:fs/promises";
import { availableParallelism, tmpdir } from "node:os";
import { join } from "node:path";
import { LifeboatError, silentLogger, type Logger, type Manifest, type ObjectStore } from "@lifeboat/core";
import { displayUrl, type ConnectionInfo } from "./pg/connection.js";
import { query, runSqlFile } from "./pg/psql.js";
import { PsqlSession, ident, literal } from "./pg/session.js";
import { checkIdentities } from "./encryption.js";
import { verifiedDump } from "./fetch.js";
import { restoreInto } from "./engines/pg-restore.js";
import { checkRowCounts } from "./engines/postgres.js";

/**
 * Blue-green restore on one server: restore into a shadow database, check it against the manifest, then in one short
 * window stop new connections to the live database, end its sessions, rename it to <name>_before_<timestamp>, rename
 * the shadow to the live name, and allow connections again. The old database is never dropped. Any failure before
 * the renames leaves the live database as it was (connections allowed again); the shadow is dropped.
 */
export interface SwapOptions {
  store: ObjectStore;
  manifest: Manifest;
  live: ConnectionInfo;
  jobs?: number;
  /** Identities that decrypt an encrypted backup. */
  identities?: string[] | undefined;
  /** Database to run the renames from (default: postgres). */
  maintenanceDb?: string;
  log?: Logger;
  signal?: AbortSignal;
  onProgress?: (p: { phase: "download" | "restore"; done: number; total: number }) => void;
  now?: () => Date;
  /** SQL files run in the shadow, in order, once it is restored and checked and before the swap (restore --then). */
  then?: string[] | undefined;
}

export interface SwapResult {
  live: string;
  previous: string;
  darkWindowMs: number;
  restoreMs: number;
  sessionsEnded: number;
  tablesChecked: number;
  switchBack: string[];
  dropPrevious: string;
  warnings: string[];
}

function stamp(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\..*$/, "").replace("T", "_").toLowerCase(); // 20261121_052900
}

/** `name` + `suffix` within PostgreSQL's 63 bytes: the name cut (on a character boundary) to make room. */
export function derivedName(live: string, suffix: string): string {
  const room = 63 - suffix.length;
  return Buffer.byteLength(live) <= room ? live + suffix : Buffer.from(live).subarray(0, room).toString("utf8").replace(/\uFFFD+$/, "") + suffix;
}

export async function swapRestore(opts: SwapOptions): Promise<SwapResult> {
  const log = opts.log ?? silentLogger;
  const { manifest, live } = opts;
  const name = live.database;
  const admin: ConnectionInfo = { ...live, database: opts.maintenanceDb ?? "postgres" };
  const ts = stamp((opts.now ?? (() => new Date()))());
  const shadow = derivedName(name, `_lifeboat_shadow_${ts}`);
  const previous = derivedName(name, `_before_${ts}`);
  const warnings: string[] = [];
  await checkIdentities(manifest, opts.identities);

  const [info] = await query(
    admin,
    `select pg_get_userbyid(datdba), (select coalesce(array_to_string(setconfig, ', '), '') from pg_db_role_setting where setdatabase = d.oid and setrole = 0),
       datacl is not null
     from pg_database d where datname = ${literal(name)};`,
  );
  if (!info) throw new LifeboatError(`database "${name}" does not exist on ${displayUrl(admin)}`, { exitCode: 2, hint: "--swap replaces an existing database; without --swap, restore into a new one" });
  const [owner, settings, hasAcl] = info as [string, string, string];
  if (settings) warnings.push(`database-level settings of "${name}" are not carried over: ${settings} (apply them with ALTER DATABASE ${ident(name)} SET ...)`);

  // 1. the shadow, restored and checked; the live database is not touched
  await query(admin, `create database ${ident(shadow)} template template0 owner ${ident(owner)};`).catch(async () => {
    warnings.push(`could not give the restored database to "${owner}"; it belongs to the restoring user`);
    await query(admin, `create database ${ident(shadow)} template template0;`);
  });
  const shadowConn = { ...live, database: shadow };
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-swap-"));
  let restoreMs = 0;
  try {
    const dump = await verifiedDump(opts.store, manifest, dir, { identities: opts.identities, signal: opts.signal, onProgress: (d, t) => opts.onProgress?.({ phase: "download", done: d, total: t }) });
    const jobs = manifest.format === "custom" ? Math.max(1, opts.jobs ?? availableParallelism()) : 1;
    log.log("info", `restoring into the shadow database "${shadow}"`, { jobs });
    restoreMs = (await restoreInto(dump.files, manifest, shadowConn, { jobs, signal: opts.signal, log, onProgress: (d, t) => opts.onProgress?.({ phase: "restore", done: d, total: t }) })).ms;
    await dump.unchanged();
    const counted = await checkRowCounts(shadowConn, manifest);
    if (!counted.check.ok) throw new LifeboatError(`the restored shadow database does not match the backup: ${counted.check.detail}`);
    // --then (masking): in the shadow, before it has the live name; a script that fails drops the shadow, nothing swapped
    for (const file of opts.then ?? []) {
      log.log("info", `running ${file} in the shadow database "${shadow}"`);
      await runSqlFile(shadowConn, file, opts.signal ? { signal: opts.signal } : {});
    }
    // database grants of the live database, onto the shadow
    const grants = await query(
      admin,
      `select case when a.grantee = 0 then 'PUBLIC' else quote_ident(pg_get_userbyid(a.grantee)) end, a.privilege_type
       from pg_database d, aclexplode(d.datacl) a where d.datname = ${literal(name)} and a.grantee <> d.datdba;`,
    );
    if (hasAcl === "t") {
      await query(admin, [`revoke all on database ${ident(shadow)} from public;`, ...grants.map(([who, priv]) => `grant ${priv} on database ${ident(shadow)} to ${who};`)].join("\n"));
    }
  } catch (err) {
    await query(admin, `drop database if exists ${ident(shadow)} with (force);`).catch(() => {});
    throw err;
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  // 2. the window: one session on the maintenance database
  const session = await PsqlSession.open(admin);
  let renamedLive = false;
  let darkWindowMs = 0;
  let sessionsEnded = 0;
  const t0 = performance.now();
  try {
    await session.query(`alter database ${ident(name)} allow_connections false;`);
    const ended = new Set<string>();
    const others = `from pg_stat_activity where datname = ${literal(name)} and pid <> pg_backend_pid()`;
    for (let i = 0; ; i++) {
      const pids = (await session.query(`select pid ${others};`)).map((r) => r[0]!);
      if (pids.length === 0) break;
      if (i > 500) throw new LifeboatError(`sessions on "${name}" did not end within 10 s`);
      pids.forEach((p) => ended.add(p));
      await session.query(`select pg_terminate_backend(pid) ${others};`);
      await new Promise((r) => setTimeout(r, 20));
    }
    sessionsEnded = ended.size;
    await session.query(`alter database ${ident(name)} rename to ${ident(previous)};`);
    renamedLive = true;
    await session.query(`alter database ${ident(shadow)} rename to ${ident(name)};`);
    darkWindowMs = Math.round(performance.now() - t0);
    await session.query(`alter database ${ident(previous)} allow_connections true;`);
  } catch (err) {
    // put things back as they were
    if (renamedLive) await session.query(`alter database ${ident(previous)} rename to ${ident(name)};`).catch(() => {});
    await session.query(`alter database ${ident(name)} allow_connections true;`).catch(() => {});
    await session.query(`drop database if exists ${ident(shadow)} with (force);`).catch(() => {});
    throw err;
  } finally {
    await session.close();
  }
  log.log("info", "swapped", { live: name, previous, darkWindowMs, sessionsEnded });

  const swappedOut = derivedName(name, `_restored_${ts}`);
  return {
    live: name,
    previous,
    darkWindowMs,
    restoreMs,
    sessionsEnded,
    tablesChecked: manifest.tables?.length ?? 0,
    switchBack: [
      `ALTER DATABASE ${ident(name)} ALLOW_CONNECTIONS false;`,
      `SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = ${literal(name)};`,
      `ALTER DATABASE ${ident(name)} RENAME TO ${ident(swappedOut)};`,
      `ALTER DATABASE ${ident(previous)} RENAME TO ${ident(name)};`,
      `ALTER DATABASE ${ident(swappedOut)} ALLOW_CONNECTIONS true;`,
    ],
    dropPrevious: `DROP DATABASE ${ident(previous)};`,
    warnings,
  };
}
