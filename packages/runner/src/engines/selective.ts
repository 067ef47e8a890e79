// `lifeboat restore --table/--schema [--into-schema]`: some tables (or whole schemas) of a PostgreSQL backup, with
// their indexes, constraints, triggers and sequences, into a database that holds others (a dropped table back, or a
// table back beside the live one). The archive is restored into a scratch database on the target server (the whole
// schema, the data of the chosen tables only; foreign keys left out, since they may point to tables not restored),
// renamed there into --into-schema, then the chosen tables are dumped from it with pg_dump and loaded into the target
// by psql in one transaction: all of them or nothing. Of a parallel backup set only the base archive and the parts of
// the chosen tables are fetched. Custom-format archives only (a plain dump is one script: restore it whole).
import { randomBytes } from "node:crypto";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { LifeboatError, redact, silentLogger, type Logger, type Manifest, type ObjectStore } from "@lifeboat/core";
import { conninfo, displayUrl, toolEnv, type ConnectionInfo } from "../pg/connection.js";
import { preflight, query } from "../pg/psql.js";
import { ident, literal } from "../pg/session.js";
import { findTool, runTool } from "../pg/tools.js";
import { checkIdentities } from "../encryption.js";
import { verifiedDump } from "../fetch.js";
import { parseToc } from "../pg/toc.js";

export interface Selection {
  /** Exact table names (any schema, unless `schemas` limits them). */
  tables: string[];
  /** Exact schema names: with tables, where to find them; alone, every table of these schemas. */
  schemas: string[];
  /** Restore the chosen tables into this new schema instead of their own (beside the live ones). */
  intoSchema?: string | undefined;
}

export interface SelectiveOptions {
  store: ObjectStore;
  manifest: Manifest;
  to: ConnectionInfo;
  selection: Selection;
  identities?: string[] | undefined;
  /** Database to create the scratch database from (default: postgres). */
  maintenanceDb?: string | undefined;
  signal?: AbortSignal | undefined;
  log?: Logger | undefined;
  onProgress?: ((p: { phase: "download" | "restore"; done: number; total: number }) => void) | undefined;
}

export interface SelectiveResult {
  /** Each restored table, as it is named in the target, with its rows there and in the manifest. */
  tables: Array<{ table: string; from: string; rows: number; recorded?: number | undefined }>;
  /** Foreign keys of the chosen tables that were left out (they point to tables not restored, or between them). */
  foreignKeysLeftOut: string[];
  downloadMs: number;
  restoreMs: number;
  /** Archives fetched: the base and the chosen tables' parts. */
  archives: number;
}

/** A `format('%I.%I')` name split into schema and table (quotes undone). */
export function splitQualified(name: string): [string, string] | undefined {
  const m = /^("(?:[^"]|"")+"|[^".]+)\.("(?:[^"]|"")+"|[^".]+)$/.exec(name);
  if (!m) return undefined;
  const unquote = (s: string) => (s.startsWith('"') ? s.slice(1, -1).replace(/""/g, '"') : s);
  return [unquote(m[1]!), unquote(m[2]!)];
}

function chosen(selection: Selection, schema: string, table: string): boolean {
  if (selection.schemas.length && !selection.schemas.includes(schema)) return false;
  return selection.tables.length === 0 || selection.tables.includes(table);
}

export async function selectiveRestore(opts: SelectiveOptions): Promise<SelectiveResult> {
  const log = opts.log ?? silentLogger;
  const { manifest, to, selection } = opts;
  if (manifest.format !== "custom" || manifest.kind === "globals") {
    throw new LifeboatError(`backup ${manifest.id} is a ${manifest.kind === "globals" ? "globals script" : `${manifest.format} dump`}: --table and --schema choose from custom-format archives only`, {
      exitCode: 2,
      hint: "restore it whole (into a new database: --create), then copy what you need from there",
    });
  }
  if (selection.tables.length === 0 && selection.schemas.length === 0) throw new LifeboatError("nothing chosen: give --table or --schema", { exitCode: 2 });
  await checkIdentities(manifest, opts.identities);
  const server = await preflight(to, opts.signal).catch((err: Error) => {
    throw new LifeboatError(`cannot connect to the restore target ${displayUrl(to)}: ${redact(err.message, [to.password])}`, { hint: "the target database must exist (or give --create)" });
  });
  const into = selection.intoSchema;
  if (into !== undefined) {
    const [[n] = []] = await query(to, `select count(*) from pg_namespace where nspname = ${literal(into)};`);
    if (n !== "0") throw new LifeboatError(`schema "${into}" already exists in ${displayUrl(to)}: --into-schema makes a new one`, { exitCode: 2, hint: "name a schema that does not exist yet (it is created with the tables)" });
  }
  // the parts of a set that hold the chosen tables' data (their names are known without reading anything)
  const parts = (manifest.parts ?? []).filter((p) => {
    const qualified = splitQualified(p.table);
    return qualified !== undefined && chosen(selection, qualified[0], qualified[1]);
  });
  const fetched: Manifest = { ...manifest, ...(manifest.parts ? { parts } : {}) };
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-select-"));
  const admin: ConnectionInfo = { ...to, database: opts.maintenanceDb ?? "postgres" };
  const scratchName = `lifeboat_select_${randomBytes(4).toString("hex")}`;
  const scratch: ConnectionInfo = { ...to, database: scratchName };
  let created = false;
  try {
    const dump = await verifiedDump(opts.store, fetched, dir, { identities: opts.identities, signal: opts.signal, onProgress: (d, t) => opts.onProgress?.({ phase: "download", done: d, total: t }) });
    const [base, ...partFiles] = dump.files;
    log.log("info", "checksum verified", { archives: dump.files.length, of: (manifest.parts?.length ?? 0) + 1 });
    const t0 = Date.now();
    const pgRestore = await findTool("pg_restore", { minMajor: manifest.pgDump.major, for: `the archive (written by pg_dump ${manifest.pgDump.version})` });
    const restore = async (args: string[], file: string) => {
      const res = await runTool(pgRestore.path, ["--no-password", "--exit-on-error", "--no-owner", "--no-acl", `--dbname=${conninfo(scratch)}`, ...args, file], { env: toolEnv(scratch), ...(opts.signal ? { signal: opts.signal } : {}) });
      if (res.code !== 0) throw new LifeboatError(`restoring the backup into the scratch database failed: ${redact(res.stderr.trim(), [to.password])}`);
    };
    await query(admin, `create database ${ident(scratchName)} template template0;`).catch((err: Error) => {
      throw new LifeboatError(`could not create the scratch database a selective restore works in, on ${displayUrl(admin)}: ${redact(err.message, [to.password])}`, { hint: "the --to user needs CREATEDB (the scratch database is dropped afterwards)" });
    });
    created = true;
    log.log("info", `restoring into the scratch database "${scratchName}" (dropped afterwards)`);
    // 1. every object's definition, 2. the chosen tables' data, 3. indexes, constraints, triggers (no foreign keys)
    await restore(["--section=pre-data", "--single-transaction"], base!);
    const rows = await query(
      scratch,
      `select n.nspname, c.relname from pg_class c join pg_namespace n on n.oid = c.relnamespace
       where c.relkind in ('r', 'p') and n.nspname not in ('pg_catalog', 'information_schema') order by 1, 2;`,
    );
    const tables = rows.filter(([s, t]) => chosen(selection, s!, t!)).map(([s, t]) => [s!, t!] as [string, string]);
    if (tables.length === 0) {
      const asked = [...selection.tables.map((t) => `table "${t}"`), ...selection.schemas.map((s) => `schema "${s}"`)].join(", ");
      throw new LifeboatError(`backup ${manifest.id} holds no ${asked}`, { exitCode: 2, hint: `its tables: ${rows.slice(0, 12).map(([s, t]) => `${s}.${t}`).join(", ")}${rows.length > 12 ? ", ..." : ""}` });
    }
    const schemas = [...new Set(tables.map(([s]) => s))];
    if (into !== undefined && schemas.length > 1) {
      throw new LifeboatError(`--into-schema takes tables of one schema, and these are of ${schemas.length} (${schemas.join(", ")})`, { exitCode: 2, hint: "give --schema <name> too, or restore each schema's tables with its own --into-schema" });
    }
    if (into !== undefined && rows.some(([s]) => s === into)) {
      throw new LifeboatError(`the backup has a schema "${into}" of its own: --into-schema needs another name`, { exitCode: 2 });
    }
    // their data, and their sequences' values (pg_restore's --table names sequences too): those the tables own
    const owned = await query(
      scratch,
      `select n.nspname, s.relname from pg_class s join pg_namespace n on n.oid = s.relnamespace
         join pg_depend d on d.classid = 'pg_class'::regclass and d.objid = s.oid and d.refclassid = 'pg_class'::regclass and d.deptype in ('a', 'i')
         join pg_class t on t.oid = d.refobjid join pg_namespace tn on tn.oid = t.relnamespace
       where s.relkind = 'S' and (tn.nspname, t.relname) in (${tables.map(([s, t]) => `(${literal(s)}, ${literal(t)})`).join(", ")});`,
    );
    const named = [...tables, ...owned.map(([s, t]) => [s!, t!] as [string, string])];
    const dataArgs = ["--data-only", "--single-transaction", ...[...new Set(named.map(([s]) => s))].flatMap((s) => ["--schema", s]), ...[...new Set(named.map(([, t]) => t))].flatMap((t) => ["--table", t])];
    await restore(dataArgs, base!);
    for (const part of partFiles) await restore(["--data-only", "--single-transaction"], part);
    const listing = await runTool(pgRestore.path, ["--list", base!]);
    if (listing.code !== 0) throw new LifeboatError(`pg_restore --list failed: ${listing.stderr.trim()}`);
    const entries = new Map(parseToc(listing.stdout).map((e) => [e.dumpId, e.type]));
    const list = join(dir, "post-data.list");
    await writeFile(list, listing.stdout.split("\n").filter((line) => {
      const id = /^(\d+);/.exec(line)?.[1];
      return id === undefined || entries.get(Number(id)) !== "FK CONSTRAINT";
    }).join("\n"));
    await restore(["--section=post-data", "--single-transaction", `--use-list=${list}`], base!);
    // the foreign keys of the chosen tables (not restored: said so)
    const fks = fkNames(listing.stdout, entries, tables);
    if (into !== undefined) await query(scratch, `alter schema ${ident(schemas[0]!)} rename to ${ident(into)};`);
    const placed = tables.map(([s, t]) => [into ?? s, t] as [string, string]);

    // 4. the chosen tables, dumped from the scratch database and loaded into the target in one transaction
    const pgDump = await findTool("pg_dump", { minMajor: server.major, for: `the scratch database (PostgreSQL ${server.version})` });
    const sqlFile = join(dir, "selected.sql");
    const dumped = await runTool(pgDump.path, ["--no-password", "--no-owner", "--no-acl", "--format=plain", `--file=${sqlFile}`, ...placed.flatMap(([s, t]) => ["--table", `${pattern(s)}.${pattern(t)}`]), `--dbname=${conninfo(scratch)}`], { env: toolEnv(scratch), ...(opts.signal ? { signal: opts.signal } : {}) });
    if (dumped.code !== 0) throw new LifeboatError(`pg_dump of the chosen tables failed: ${redact(dumped.stderr.trim(), [to.password])}`);
    const psql = await findTool("psql");
    // pg_dump --table leaves out the schemas: the new one made, or the tables' own made where missing; then the dump,
    // read by psql from its file (never held in memory), all in one transaction (--single-transaction spans every -c and -f)
    const schemasFirst = into !== undefined ? `CREATE SCHEMA ${ident(into)};` : schemas.map((s) => `CREATE SCHEMA IF NOT EXISTS ${ident(s)};`).join(" ");
    await new Promise<void>((resolve, reject) => {
      const child = spawn(psql.path, ["-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "--single-transaction", `--dbname=${conninfo(to)}`, "-c", schemasFirst, "-f", sqlFile], { env: toolEnv(to), stdio: ["ignore", "ignore", "pipe"], ...(opts.signal ? { signal: opts.signal } : {}) });
      let stderr = "";
      child.stderr.on("data", (d: Buffer) => void (stderr += d.toString("utf8")));
      child.on("error", reject);
      child.on("close", (code) => {
        if (code === 0) return resolve();
        const text = redact(stderr.trim(), [to.password]);
        reject(
          new LifeboatError(`loading the chosen tables into ${displayUrl(to)} failed, and nothing was changed (one transaction): ${text}`, {
            hint: /already exists/.test(text) ? "a table of that name is there: restore beside it with --into-schema <new schema>" : "fix the cause and run the same command again",
          }),
        );
      });
    });
    const restoreMs = Date.now() - t0;
    const recorded = new Map((manifest.tables ?? []).map((t) => [t.name, t.rows]));
    const result: SelectiveResult["tables"] = [];
    for (let i = 0; i < placed.length; i++) {
      const [s, t] = placed[i]!;
      // names as the manifest records them (format('%I.%I'), which quotes reserved words too)
      const [[table, from, n] = []] = await query(to, `select format('%I.%I', ${literal(s)}, ${literal(t)}), format('%I.%I', ${literal(tables[i]![0])}, ${literal(tables[i]![1])}), count(*) from only ${ident(s)}.${ident(t)};`);
      result.push({ table: table!, from: from!, rows: Number(n), recorded: recorded.get(from!) });
    }
    const wrong = result.filter((r) => r.recorded !== undefined && r.recorded !== r.rows);
    if (wrong.length) log.log("error", "restored tables do not hold the rows the manifest records", { tables: wrong });
    log.log("info", "chosen tables restored", { tables: result.map((r) => r.table), restoreMs });
    return { tables: result, foreignKeysLeftOut: fks, downloadMs: dump.ms, restoreMs, archives: dump.files.length };
  } finally {
    if (created) await query(admin, `drop database if exists ${ident(scratchName)} with (force);`).catch((err: Error) => log.log("warn", `could not drop the scratch database "${scratchName}": drop it yourself`, { error: redact(err.message, [to.password]) }));
    await rm(dir, { recursive: true, force: true });
  }
}

/** A pg_dump pattern that matches exactly this name (double quotes make every character literal). */
function pattern(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The FK CONSTRAINT entries of the chosen tables, as pg_restore --list names them ("schema table constraint"). */
function fkNames(listing: string, types: Map<number, string>, tables: Array<[string, string]>): string[] {
  const out: string[] = [];
  for (const line of listing.split("\n")) {
    const m = /^(\d+); \d+ \d+ FK CONSTRAINT (.*) \S+$/.exec(line);
    if (!m || types.get(Number(m[1])) !== "FK CONSTRAINT") continue;
    // "<schema> <table> <constraint>": names may hold spaces, so match the chosen tables' "<schema> <table> " prefix
    const named = tables.find(([s, t]) => m[2]!.startsWith(`${s} ${t} `));
    if (named) out.push(`${named[0]}.${named[1]}: ${m[2]!.slice(named[0].length + named[1].length + 2)}`);
  }
  return out;
}
