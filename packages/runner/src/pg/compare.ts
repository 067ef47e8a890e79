import type { ConnectionInfo } from "./connection.js";
import { conninfo, toolEnv } from "./connection.js";
import { query } from "./psql.js";
import { findTool, runTool } from "./tools.js";

/**
 * Compares two databases by content: the schema (pg_dump --schema-only, normalized) and, for every table, its row
 * count and an order-independent checksum of its rows. Used by the demo and the tests.
 */
export interface TableFingerprint {
  table: string;
  rows: number;
  checksum: string;
}

export interface DatabaseFingerprint {
  schema: string;
  /** Tables, partitions and materialized views. */
  tables: TableFingerprint[];
  /** Every sequence's current value. */
  sequences: Array<{ sequence: string; lastValue: string | null }>;
  /** Number of large objects and a checksum of their ids and contents. */
  largeObjects: { count: number; checksum: string };
}

export async function fingerprint(c: ConnectionInfo): Promise<DatabaseFingerprint> {
  const pgDump = await findTool("pg_dump");
  const res = await runTool(pgDump.path, ["--schema-only", "--no-password", `--dbname=${conninfo(c)}`], { env: toolEnv(c) });
  if (res.code !== 0) throw new Error(`pg_dump --schema-only failed: ${res.stderr}`);
  const schema = res.stdout
    .split("\n")
    .filter((l) => !l.startsWith("--") && !/^\\(un)?restrict /.test(l) && l.trim() !== "")
    .join("\n");
  const tables = await query(
    c,
    `select format('%I.%I', n.nspname, c.relname) from pg_class c join pg_namespace n on n.oid = c.relnamespace
     where c.relkind in ('r','p','m') and n.nspname not in ('pg_catalog','information_schema') and n.nspname not like 'pg_toast%'
     order by 1;`,
  );
  const out: TableFingerprint[] = [];
  for (const [table] of tables) {
    const [row] = await query(c, `select count(*), coalesce(md5(string_agg(md5(t::text), '' order by md5(t::text))), '') from ${table} t;`);
    out.push({ table: table!, rows: Number(row![0]), checksum: row![1]! });
  }
  const sequences = (await query(c, `select format('%I.%I', schemaname, sequencename), coalesce(last_value::text, '') from pg_sequences order by 1;`)).map(
    ([sequence, last]) => ({ sequence: sequence!, lastValue: last ? last : null }),
  );
  const [[count, checksum]] = (await query(
    c,
    `select count(*), coalesce(md5(string_agg(oid::text || ':' || md5(lo_get(oid)), ',' order by oid)), '') from pg_largeobject_metadata;`,
  )) as [[string, string]];
  return { schema, tables: out, sequences, largeObjects: { count: Number(count), checksum } };
}
