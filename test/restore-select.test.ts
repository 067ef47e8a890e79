// Issue 24, item 1 through the CLI on real PostgreSQL: restore only some tables (--table, --schema), back into the
// live database after a DROP, or beside the live ones (--into-schema); from a single archive, a parallel backup set
// (only the archives needed are fetched) and an encrypted backup; names that need quoting.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { query } from "@lifeboat/runner";
import { cli, conn, createDatabase, pg, tempDir, unique, url } from "./support/helpers.js";

let live: string;
let store: string;
let dir: string;

const SCHEMA = `create table customers(id int generated always as identity primary key, email text not null unique);
  insert into customers(email) select 'c' || g || '@example.com' from generate_series(1, 50) g;
  create table orders(id serial primary key, customer int not null references customers(id), total numeric check (total >= 0), created_at timestamptz default now(), doc jsonb);
  insert into orders(customer, total, doc) select 1 + g % 50, g, jsonb_build_object('n', g) from generate_series(1, 400) g;
  create index orders_created on orders(created_at);
  create schema "Sales Dept";
  create table "Sales Dept"."Odd ""Table"" 1"(id int primary key, "Note. Text" text);
  insert into "Sales Dept"."Odd ""Table"" 1" select g, 'n' || g from generate_series(1, 30) g;
  create table big(id int primary key, payload bytea);
  insert into big select g, decode(md5(g::text) || md5((g + 1)::text), 'hex') from generate_series(1, 40000) g;`;

async function backup(args: string[] = []): Promise<{ id: string }> {
  const res = await cli(["run", "--db", url(live), "--to", store, "--name", "shop", "--json", ...args]);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout).manifest;
}
const count = async (database: string, table: string) => Number((await query(conn(database), `select count(*) from ${table};`))[0]![0]);

beforeAll(async () => {
  dir = tempDir("lifeboat-select-");
  store = pathToFileURL(dir).href;
  live = unique("shop");
  await createDatabase(live, SCHEMA);
}, 120_000);

describe("restore --table / --schema", () => {
  it("a dropped table comes back into the live database, with its index, checks and sequence; its foreign key is named as left out", async () => {
    const m = await backup(["--jobs", "1"]);
    await query(conn(live), "drop table orders;");
    const res = await cli(["restore", "shop", "--from", store, "--backup", m.id, "--table", "orders", "--to", url(live)]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain(`restored 1 table of backup ${m.id} of "shop"`);
    expect(res.stdout).toContain("table     public.orders: 400 rows (as recorded)");
    expect(res.stdout).toMatch(/left out {2}foreign keys public\.orders: orders_customer_fkey/);
    expect(await count(live, "orders")).toBe(400);
    expect(await query(conn(live), "select indexname from pg_indexes where tablename = 'orders' order by 1;")).toEqual([["orders_created"], ["orders_pkey"]]);
    // its sequence goes on from where it was, and its check constraint holds
    expect(await query(conn(live), "insert into orders(customer, total) values (1, 5) returning id;")).toEqual([["401"]]);
    await expect(query(conn(live), "insert into orders(customer, total) values (1, -1);")).rejects.toThrow(/check constraint/);
    // the rest of the live database was not touched
    expect(await count(live, "customers")).toBe(50);
    // no scratch database is left behind
    expect(await query(conn(), "select count(*) from pg_database where datname like 'lifeboat_select_%';")).toEqual([["0"]]);
  });

  it("beside the live table: --into-schema, for a name that needs quoting in a schema that does too; the live one untouched", async () => {
    await query(conn(live), `update "Sales Dept"."Odd ""Table"" 1" set "Note. Text" = 'changed';`);
    const res = await cli(["restore", "shop", "--from", store, "--table", 'Odd "Table" 1', "--schema", "Sales Dept", "--into-schema", "restored 1", "--to", url(live), "--json"]);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).tables).toEqual([{ table: '"restored 1"."Odd ""Table"" 1"', from: '"Sales Dept"."Odd ""Table"" 1"', rows: 30, recorded: 30 }]);
    expect(await query(conn(live), `select "Note. Text" from "restored 1"."Odd ""Table"" 1" where id = 7;`)).toEqual([["n7"]]);
    expect(await query(conn(live), `select distinct "Note. Text" from "Sales Dept"."Odd ""Table"" 1";`)).toEqual([["changed"]]);
  });

  it("a table that is there already: nothing changed, the hint says --into-schema; an unknown table lists the backup's; bad combinations are usage errors", async () => {
    const clash = await cli(["restore", "shop", "--from", store, "--table", "customers", "--table", "orders", "--to", url(live)]);
    expect(clash.code).toBe(1);
    expect(clash.stderr).toContain("nothing was changed (one transaction)");
    expect(clash.stderr).toContain("--into-schema");
    expect(await count(live, "orders")).toBe(401);
    const unknown = await cli(["restore", "shop", "--from", store, "--table", "invoices", "--to", url(live)]);
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('holds no table "invoices"');
    expect(unknown.stderr).toContain("public.customers");
    const taken = await cli(["restore", "shop", "--from", store, "--table", "orders", "--into-schema", "Sales Dept", "--to", url(live)]);
    expect(taken.code).toBe(2);
    expect(taken.stderr).toContain('schema "Sales Dept" already exists');
    expect((await cli(["restore", "shop", "--from", store, "--into-schema", "x", "--to", url(live)])).code).toBe(2);
    expect((await cli(["restore", "shop", "--from", store, "--table", "orders", "--swap", "--to", url(live)])).code).toBe(2);
  });

  it("a parallel backup set: only the base and the chosen tables' parts are fetched", async () => {
    const setDir = tempDir("lifeboat-select-set-");
    const file = join(setDir, "lifeboat.config.ts");
    writeFileSync(file, `export default ${JSON.stringify({ storage: { directory: join(setDir, "store") }, targets: { shop: { database: { host: pg().host, port: pg().port, database: live, user: pg().user, password: { env: "PW" } }, dump: { jobs: 3, parallelMinTableMB: 0.5 } } } })};`);
    const run = await cli(["run", "shop", "--config", file, "--json"], { env: { PW: pg().password } });
    expect(run.code, run.stderr).toBe(0);
    const parts = (JSON.parse(run.stdout).manifest.parts as Array<{ table: string }>).map((p) => p.table);
    expect(parts).toContain("public.big");
    const into = unique("fromset");
    await createDatabase(into);
    const small = await cli(["restore", "shop", "--config", file, "--table", "customers", "--to", url(into), "--json"], { env: { PW: pg().password } });
    expect(small.code, small.stderr).toBe(0);
    expect(JSON.parse(small.stdout).archives).toBe(1);
    const big = await cli(["restore", "shop", "--config", file, "--table", "big", "--to", url(into), "--json"], { env: { PW: pg().password } });
    expect(big.code, big.stderr).toBe(0);
    expect(JSON.parse(big.stdout).archives).toBe(2);
    expect(await count(into, "big")).toBe(40000);
    expect(await count(into, "customers")).toBe(50);
  });

  it("an encrypted backup: the chosen schema's tables, with the identity", async () => {
    const keyFile = join(dir, "identity.txt");
    const keygen = await cli(["keygen", "--output", keyFile, "--json"]);
    expect(keygen.code, keygen.stderr).toBe(0);
    const m = await backup(["--recipient", JSON.parse(keygen.stdout).recipient]);
    const into = unique("fromenc");
    await createDatabase(into);
    const without = await cli(["restore", "shop", "--from", store, "--backup", m.id, "--schema", "Sales Dept", "--to", url(into)]);
    expect(without.code).not.toBe(0);
    const res = await cli(["restore", "shop", "--from", store, "--backup", m.id, "--schema", "Sales Dept", "--identity", keyFile, "--to", url(into)]);
    expect(res.code, res.stderr).toBe(0);
    expect(await count(into, `"Sales Dept"."Odd ""Table"" 1"`)).toBe(30);
    expect(await query(conn(into), "select count(*) from pg_tables where schemaname = 'public';")).toEqual([["0"]]);
  });
});
