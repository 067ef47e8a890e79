import { beforeAll, describe, expect, it } from "vitest";
import { dumpSchema, retriesSchema, type Manifest } from "@lifeboat/core";
import { DirectoryStore, fingerprint, parsePsqlRows, query, restoreBackup, runBackup, verifyBackup } from "@lifeboat/runner";
import { conn, createDatabase, tempDir, unique } from "./support/helpers.js";

/**
 * A name may hold any character but NUL. Every catalog value Lifeboat reads goes through psql, so a newline, a tab,
 * a quote, a comma, a dot or a non-ASCII letter in a schema or table name must not split a row or a field: not in
 * planning a parallel set, not in counting rows, not in a drill, not in a restore.
 */
const NEWLINE = '"line\nbreak"';
const ODD_SCHEMA = '"s.1 ""q"", é"';
let db: string;
beforeAll(async () => {
  db = unique("odd");
  await createDatabase(
    db,
    `create schema ${ODD_SCHEMA};
     create table ${ODD_SCHEMA}.${NEWLINE}(id int primary key, note text);
     insert into ${ODD_SCHEMA}.${NEWLINE} select g, repeat(md5(g::text), 8) from generate_series(1, 6000) g;
     create table "tab\there, ""and"" more"(id int, payload jsonb);
     insert into "tab\there, ""and"" more" select g, jsonb_build_object('k', md5(g::text)) from generate_series(1, 8000) g;
     create table "*?[x]"(x int); insert into "*?[x]" values (1), (2), (3);
     create table "x"(x int); insert into "x" values (4);
     create table "Ünïcødé 表"(x text); insert into "Ünïcødé 表" values ('a'), ('b');`,
  );
});

const retries = retriesSchema.parse({ attempts: 1 });

async function backupAndRestore(jobs: number): Promise<Manifest> {
  const store = new DirectoryStore(tempDir("lifeboat-odd-"));
  const { manifest } = await runBackup({ target: "odd", resolveSource: async () => conn(db), store, dump: dumpSchema.parse({ jobs, parallelMinTableMB: 0.1 }), retries });
  const restored = unique("odd_restored");
  await createDatabase(restored);
  await restoreBackup({ store, manifest, to: conn(restored) });
  const [a, b] = await Promise.all([fingerprint(conn(db)), fingerprint(conn(restored))]);
  expect(b.tables).toEqual(a.tables);
  expect(b.schema).toEqual(a.schema);
  const drill = await verifyBackup({ store, manifest, scratch: conn("postgres") });
  expect(drill.checks.filter((c) => !c.ok)).toEqual([]);
  expect(drill.outcome).toBe("passed");
  return manifest;
}

describe("names with any character PostgreSQL allows", () => {
  it("psql's rows are read whole: newlines, tabs, quotes and commas stay inside their field", async () => {
    const rows = await query(conn(db), `select E'a\\nb', E'c\\td', 'e"f,g', '', null, 'é'; select 'second';`);
    expect(rows).toEqual([["a\nb", "c\td", 'e"f,g', "", "", "é"], ["second"]]);
    expect(parsePsqlRows('1,"x\n""y"""\n2,\n')).toEqual([["1", 'x\n"y"'], ["2", ""]]);
  });

  it("a parallel set: the odd tables are parts of their own, every table counted, restored equal, drilled", async () => {
    const m = await backupAndRestore(3);
    expect(m.parts!.map((p) => p.table).sort()).toEqual(['"s.1 ""q"", é"."line\nbreak"', 'public."tab\there, ""and"" more"']);
    expect(Object.fromEntries(m.tables!.map((t) => [t.name, t.rows]))).toEqual({
      '"s.1 ""q"", é"."line\nbreak"': 6000,
      'public."tab\there, ""and"" more"': 8000,
      'public."*?[x]"': 3,
      "public.x": 1,
      'public."Ünïcødé 表"': 2,
    });
  });

  it("a single archive: counted, restored equal, drilled", async () => {
    const m = await backupAndRestore(1);
    expect(m.parts).toBeUndefined();
    expect(m.tables!.find((t) => t.name.includes("line\nbreak"))!.rows).toBe(6000);
  });
});
