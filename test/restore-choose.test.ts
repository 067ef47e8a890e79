// Issue 24, items 2 and 3 through the CLI on real PostgreSQL: choosing a backup by time (--at) or by its drill
// (--backup latest-verified), and restoring into a database that does not exist yet (--create), made as the
// backed-up one was (encoding, collation, owner), dropped again if the restore fails.
import { cpSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { query } from "@lifeboat/runner";
import { cli, conn, createDatabase, tempDir, unique, url } from "./support/helpers.js";

let source: string;
let store: string;
let dir: string;
const ids: string[] = [];
const starts: string[] = [];
const dumpKeys: string[] = [];
const owner = unique("app_owner");

async function backup(): Promise<{ id: string; startedAt: string; object: { key: string } }> {
  const res = await cli(["run", "--db", url(source), "--to", store, "--name", "shop", "--json"]);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout).manifest;
}

const balances = (database: string) => query(conn(database), "select sum(balance)::text from accounts;").then((r) => r[0]![0]);
const settingsOf = (database: string) =>
  query(conn(), `select pg_encoding_to_char(encoding), datcollate, datctype, pg_get_userbyid(datdba) from pg_database where datname = '${database.replace(/'/g, "''")}';`).then((r) => r[0]);

beforeAll(async () => {
  dir = tempDir("lifeboat-choose-");
  store = pathToFileURL(dir).href;
  source = unique("shop");
  // a database made unlike the server's default (LATIN1, C), owned by a role of its own: --create must make it alike
  await query(conn(), `create role "${owner}"; create database "${source}" template template0 encoding 'LATIN1' lc_collate 'C' lc_ctype 'C' owner "${owner}";`);
  await query(conn(source), "create table accounts(id int primary key, balance numeric); insert into accounts select g, 1 from generate_series(1, 100) g;");
  // three backups, the balance changed between them (100, 200, 300)
  for (let i = 1; i <= 3; i++) {
    if (i > 1) await query(conn(source), "update accounts set balance = balance + 1;");
    const m = await backup();
    ids.push(m.id);
    starts.push(m.startedAt);
    dumpKeys.push(m.object.key);
    // backup ids and start times are to the second: the next one starts in a later second
    await new Promise((r) => setTimeout(r, 1100));
  }
}, 120_000);

describe("restore --at and --backup latest-verified", () => {
  it("--at restores the newest backup that started before the time, and names it before restoring", async () => {
    const into = unique("asof");
    await createDatabase(into);
    // just after the second backup started: the second, not the third
    const at = new Date(Date.parse(starts[1]!) + 500).toISOString();
    const res = await cli(["restore", "shop", "--from", store, "--at", at, "--to", url(into), "--no-owner"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain(`chose backup ${ids[1]} of "shop" (started ${starts[1]}): the newest that started before ${at}`);
    expect(res.stderr.indexOf(`chose backup ${ids[1]}`)).toBeLessThan(res.stderr.indexOf("restoring shop backup"));
    expect(res.stdout).toContain(`restored backup ${ids[1]} of "shop"`);
    expect(await balances(into)).toBe("200");
  });

  it("--at before every backup, a span back from now (\"2h ago\"), --at with a backup id, a time that is none: clear errors", async () => {
    const into = unique("none");
    await createDatabase(into);
    const before = await cli(["restore", "shop", "--from", store, "--at", "2h ago", "--to", url(into)]);
    expect(before.code).toBe(1);
    expect(before.stderr).toMatch(new RegExp(`no backup in .* for target "shop" started before \\d{4}-.*Z`));
    expect(before.stderr).toContain(`the oldest there started at ${starts[0]}`);
    const both = await cli(["restore", "shop", "--from", store, "--at", "1h", "--backup", ids[0]!, "--to", url(into)]);
    expect(both.code).toBe(2);
    expect(both.stderr).toContain(`--at chooses the backup by time: it cannot be combined with --backup ${ids[0]}`);
    const bad = await cli(["restore", "shop", "--from", store, "--at", "yesterday-ish", "--to", url(into)]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--at "yesterday-ish" is neither a time nor a span of time');
    expect(await query(conn(into), "select count(*) from pg_tables where schemaname = 'public';")).toEqual([["0"]]);
  });

  it("latest-verified: refused while no drill passed; then the newest backup whose drill passed, not the newest", async () => {
    const into = unique("verified");
    await createDatabase(into);
    const none = await cli(["restore", "shop", "--from", store, "--backup", "latest-verified", "--to", url(into)]);
    expect(none.code).toBe(1);
    expect(none.stderr).toContain("has passed a restore drill");
    const drill = await cli(["verify", "shop", "--from", store, "--backup", ids[0]!, "--scratch", url("postgres")]);
    expect(drill.code, drill.stderr).toBe(0);
    const res = await cli(["restore", "shop", "--from", store, "--backup", "latest-verified", "--to", url(into), "--no-owner"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain(`chose backup ${ids[0]} of "shop"`);
    expect(res.stderr).toContain("whose restore drill passed");
    expect(await balances(into)).toBe("100");
  });
});

describe("restore --create", () => {
  it("creates the database as the backed-up one was (encoding, collation, owner), even under a name that needs quoting", async () => {
    const into = `${unique("new")} "Copy" o'clock`;
    const res = await cli(["restore", "shop", "--from", store, "--create", "--to", url(encodeURIComponent(into)), "--json"]);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).created).toEqual({ database: into, encoding: "LATIN1", collate: "C", ctype: "C", owner });
    expect(await settingsOf(into)).toEqual(["LATIN1", "C", "C", owner]);
    expect(await balances(into)).toBe("300");
  });

  it("an ICU default collation (PostgreSQL 15+) is recorded and made again", async () => {
    const icu = unique("icu");
    await query(conn(), `create database "${icu}" template template0 encoding 'UTF8' locale_provider icu icu_locale 'en-US';`);
    await query(conn(icu), "create table words(w text); insert into words values ('b'), ('a'), ('B');");
    const run = await cli(["run", "--db", url(icu), "--to", store, "--name", "icu", "--json"]);
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).manifest.database.settings).toMatchObject({ localeProvider: "icu", locale: "en-US" });
    const into = unique("icucopy");
    const res = await cli(["restore", "icu", "--from", store, "--create", "--to", url(into), "--json"]);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).created).toMatchObject({ localeProvider: "icu", locale: "en-US" });
    expect(await query(conn(), `select datlocprovider, daticulocale from pg_database where datname = '${into}';`)).toEqual([["i", "en-US"]]);
    // sorted by ICU's rules, as in the source (libc's C locale would put "B" first)
    expect(await query(conn(into), "select string_agg(w, '' order by w) from words;")).toEqual([["abB"]]);
  });

  it("overrides: --encoding, --locale, --db-owner; a role that does not exist is named", async () => {
    const into = unique("override");
    const res = await cli(["restore", "shop", "--from", store, "--create", "--encoding", "UTF8", "--locale", "C.UTF-8", "--db-owner", "postgres", "--to", url(into), "--no-owner"]);
    expect(res.code, res.stderr).toBe(0);
    expect(await settingsOf(into)).toEqual(["UTF8", "C.UTF-8", "C.UTF-8", "postgres"]);
    const missing = unique("missing");
    const nobody = await cli(["restore", "shop", "--from", store, "--create", "--db-owner", "nobody_here", "--to", url(missing)]);
    expect(nobody.code).toBe(2);
    expect(nobody.stderr).toContain('role "nobody_here" (--db-owner) does not exist');
    expect(await settingsOf(missing)).toBeUndefined();
  });

  it("refuses an existing database (untouched), and flags that need --create or exclude it", async () => {
    const existing = unique("exists");
    await createDatabase(existing, "create table keep(x int); insert into keep values (7);");
    const res = await cli(["restore", "shop", "--from", store, "--create", "--to", url(existing)]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`database "${existing}" already exists`);
    expect(res.stderr).toContain("--create makes a new one and never restores over an existing database");
    expect(await query(conn(existing), "select x from keep;")).toEqual([["7"]]);
    const noCreate = await cli(["restore", "shop", "--from", store, "--encoding", "UTF8", "--to", url(existing)]);
    expect(noCreate.code).toBe(2);
    expect(noCreate.stderr).toContain("--encoding sets how --create makes the database: give --create too");
    const swap = await cli(["restore", "shop", "--from", store, "--create", "--swap", "--to", url(existing)]);
    expect(swap.code).toBe(2);
  });

  it("a restore that fails after --create made the database drops it again: nothing is left behind", async () => {
    // a corrupted copy of the store: the newest backup's dump has one byte flipped
    const bad = tempDir("lifeboat-choose-bad-");
    cpSync(dir, bad, { recursive: true });
    const file = join(bad, dumpKeys[2]!);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(file, bytes);
    const into = unique("dropped");
    const res = await cli(["restore", "shop", "--from", pathToFileURL(bad).href, "--create", "--to", url(into)]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("checksum mismatch");
    expect(res.stderr).toContain(`dropped database "${into}" again: --create made it for this restore, which failed`);
    expect(await settingsOf(into)).toBeUndefined();
  });
});

describe("restore --then: SQL run in the restored database before it is handed over", () => {
  const script = (name: string, sql: string) => {
    const file = join(dir, name);
    writeFileSync(file, sql);
    return file;
  };

  it("masks a new database (--create): the script's changes are there when the restore returns", async () => {
    const mask = script("mask.sql", "update accounts set balance = 0 where id > 50;\ncreate table masked_at as select now() as at, current_database() as db;\n");
    const into = unique("masked");
    const res = await cli(["restore", "shop", "--from", store, "--create", "--to", url(into), "--then", mask, "--json"]);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).then).toEqual([{ file: mask, ms: expect.any(Number) }]);
    expect(await balances(into)).toBe("150");
    // the script ran in the new database under a temporary name: it took its own only once masked
    const [[ranIn]] = (await query(conn(into), "select db from masked_at;")) as [[string]];
    expect(ranIn).toMatch(new RegExp(`^${into}_lifeboat_new_[0-9a-f]{6}$`));
    expect(await settingsOf(ranIn)).toBeUndefined();
  });

  it("--swap: a failing script drops the shadow and swaps nothing (the live database untouched); a good one is in the live database at once", async () => {
    const live = unique("staging");
    await createDatabase(live, "create table accounts(id int primary key, balance numeric); insert into accounts values (1, 42);");
    const broken = script("broken.sql", "update accounts set balance = 0;\nselect 1 / 0;\n");
    const failed = await cli(["restore", "shop", "--from", store, "--swap", "--to", url(live), "--then", broken]);
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain(`the script ${broken} failed, and was rolled back`);
    expect(failed.stderr).toContain("division by zero");
    expect(await balances(live)).toBe("42");
    const shadows = () => query(conn(), `select datname from pg_database where datname like '${live}%' order by 1;`);
    expect(await shadows()).toEqual([[live]]);
    const mask = script("mask-all.sql", "update accounts set balance = 0;\n");
    const swapped = await cli(["restore", "shop", "--from", store, "--swap", "--to", url(live), "--then", mask]);
    expect(swapped.code, swapped.stderr).toBe(0);
    expect(swapped.stdout).toContain(`then         ${mask} (in the shadow, before the swap)`);
    expect(await balances(live)).toBe("0");
    // the previous database is kept beside it, as before
    expect((await shadows()).map((r) => r[0])).toEqual([live, expect.stringMatching(new RegExp(`^${live}_before_`))]);
  });

  it("a failing script: into a database --create made, the database is dropped; into an existing one, it is said what it holds; a missing file is a usage error", async () => {
    const broken = script("broken-2.sql", "select 1 / 0;\n");
    const created = unique("thenfail");
    const res = await cli(["restore", "shop", "--from", store, "--create", "--to", url(created), "--then", broken]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`dropped database "${created}" again`);
    expect(await settingsOf(created)).toBeUndefined();
    const existing = unique("thenexisting");
    await createDatabase(existing);
    const into = await cli(["restore", "shop", "--from", store, "--to", url(existing), "--no-owner", "--then", broken]);
    expect(into.code).toBe(1);
    expect(into.stderr).toContain("holds the restored backup without this script's changes");
    expect(await balances(existing)).toBe("300");
    const missing = await cli(["restore", "shop", "--from", store, "--to", url(existing), "--then", join(dir, "nope.sql")]);
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`--then ${join(dir, "nope.sql")}: no such readable file`);
  });
});
