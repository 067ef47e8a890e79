import { AttemptError, LifeboatError } from "@lifeboat/core";
import { parse } from "csv-parse/sync";
import { classifyPgMessage } from "./classify.js";
import { conninfo, toolEnv, type ConnectionInfo } from "./connection.js";
import { findTool, runTool } from "./tools.js";

/**
 * psql reading SQL from stdin, printing rows as CSV without a header, stopping at the first error. CSV, not unaligned
 * text: a name may hold any character but NUL (newlines, tabs, separators, quotes), and CSV quotes every value that
 * holds one, so no catalog value can split a row or a field. psql prints CSV since PostgreSQL 12 (PSQL_MIN_MAJOR).
 */
export function psqlArgs(c: ConnectionInfo, database?: string): string[] {
  return ["-X", "-q", "--csv", "-t", "-v", "ON_ERROR_STOP=1", "--no-password", `--dbname=${conninfo(c, database)}`];
}

/** The oldest psql that prints CSV (--csv). */
export const PSQL_MIN_MAJOR = 12;

/** The psql whose output Lifeboat reads (one that prints CSV). */
export function findPsql(): ReturnType<typeof findTool> {
  return findTool("psql", { minMajor: PSQL_MIN_MAJOR });
}

/** psql's CSV rows as arrays of strings (NULL and the empty string both read as ""). */
export function parsePsqlRows(csv: string): string[][] {
  return parse(csv, { relax_column_count: true, skip_empty_lines: true }) as string[][];
}

/**
 * Runs SQL with psql and returns rows as arrays of strings. libpq does the connecting, so sslmode, passfiles,
 * Unix sockets and services behave exactly as they do for pg_dump. Failures are classified AttemptErrors.
 */
export async function query(c: ConnectionInfo, sql: string, opts: { database?: string; signal?: AbortSignal } = {}): Promise<string[][]> {
  const psql = await findPsql();
  const res = await runTool(
    psql.path,
    [...psqlArgs(c, opts.database), "-f", "-"],
    { env: toolEnv(c), input: sql, ...(opts.signal ? { signal: opts.signal } : {}) },
  );
  if (res.code !== 0) throw classifyPgMessage(res.stderr || `psql exited with code ${res.code}`, [c.password]);
  return parsePsqlRows(res.stdout);
}

/**
 * Runs a SQL file (restore --then: masking, anonymizing) in the database, in one transaction, stopping at its first
 * error: a script that fails changes nothing. The error names the file and psql's message (which names the line).
 */
export async function runSqlFile(c: ConnectionInfo, file: string, opts: { signal?: AbortSignal } = {}): Promise<{ ms: number }> {
  const psql = await findPsql();
  const t0 = Date.now();
  const res = await runTool(psql.path, ["-X", "-q", "-v", "ON_ERROR_STOP=1", "--single-transaction", "--no-password", `--dbname=${conninfo(c)}`, "-f", file], {
    env: toolEnv(c),
    ...(opts.signal ? { signal: opts.signal } : {}),
  });
  if (res.code !== 0) {
    const why = classifyPgMessage(res.stderr.trim() || `psql exited with code ${res.code}`, [c.password]).message;
    throw new LifeboatError(`the script ${file} failed, and was rolled back (it runs in one transaction): ${why}`, { hint: "fix the script and run the same command again" });
  }
  return { ms: Date.now() - t0 };
}

export interface ServerInfo {
  version: string; // "15.18 (Debian 15.18-0+deb12u1)"
  versionNum: number; // 150018
  major: number;
  database: string;
  systemIdentifier: string | undefined;
  /** pg_database_size of the connected database: the bound on the dump's size that sizes its upload parts. */
  sizeBytes: number;
  /** How the connected database was created: what `lifeboat restore --create` makes the new one with. */
  settings: { encoding: string; collate: string; ctype: string; owner: string; localeProvider?: "libc" | "icu" | "builtin"; locale?: string };
}

/** Connects and reads what the manifest and the tool choice need. */
export async function preflight(c: ConnectionInfo, signal?: AbortSignal): Promise<ServerInfo> {
  const rows = await query(
    c,
    `select current_setting('server_version_num'), current_setting('server_version'), current_database(),
       case when has_function_privilege('pg_control_system()', 'execute')
            then (select system_identifier::text from pg_control_system()) end,
       pg_database_size(current_database()),
       pg_encoding_to_char(d.encoding), d.datcollate, d.datctype, pg_get_userbyid(d.datdba),
       -- the locale provider (PostgreSQL 15+) and its locale (daticulocale in 15-16, datlocale from 17), read through
       -- to_jsonb so that one query serves every version
       to_jsonb(d) ->> 'datlocprovider', coalesce(to_jsonb(d) ->> 'datlocale', to_jsonb(d) ->> 'daticulocale')
     from pg_database d where d.datname = current_database();`,
    signal ? { signal } : {},
  );
  const row = rows[0];
  if (!row || row.length < 9) throw new AttemptError("preflight", "transient", "could not read the server version");
  const versionNum = Number(row[0]);
  return {
    versionNum,
    version: row[1]!,
    major: Math.floor(versionNum / 10000), // 90624 -> 9, 150018 -> 15
    database: row[2]!,
    systemIdentifier: row[3] ? row[3] : undefined,
    sizeBytes: Number(row[4]),
    settings: {
      encoding: row[5]!,
      collate: row[6]!,
      ctype: row[7]!,
      owner: row[8]!,
      // libc (c) is what every version before 15 uses: recorded only when another provider is
      ...(row[9] === "i" || row[9] === "b" ? { localeProvider: row[9] === "i" ? ("icu" as const) : ("builtin" as const), ...(row[10] ? { locale: row[10] } : {}) } : {}),
    },
  };
}
