import { execFileSync } from "node:child_process";
import { chmodSync, readdirSync, statSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { query } from "@lifeboat/runner";
import { cli, conn, createDatabase, pg, tempDir, unique, url } from "./support/helpers.js";

/**
 * Ctrl-C (SIGINT) or SIGTERM at several moments of restore, verify and demo, sent to the real `lifeboat` process:
 * every child it started (pg_restore, psql, the throwaway PostgreSQL) is stopped, every temporary file removed, and
 * it exits 130 / 143 saying what it stopped. Each child gets a private TMPDIR, so that what it leaves is its own.
 */

let db = "";
let identityFile = "";
let recipient = "";
let store = "";
let backupId = "";

beforeAll(async () => {
  db = unique("intr");
  // about 60 MB of poorly compressible rows: a restore takes long enough to be interrupted in each phase
  await createDatabase(db, "create table t as select g as id, md5(g::text) || md5((g * 3)::text) || md5(random()::text) as payload from generate_series(1, 500000) g; alter table t add primary key (id);");
  const keys = tempDir("lifeboat-intr-keys-");
  identityFile = join(keys, "id.txt");
  const kg = await cli(["keygen", "--output", identityFile, "--json"]);
  recipient = JSON.parse(kg.stdout).recipient;
  store = `file://${tempDir("lifeboat-intr-store-")}`;
  const run = await cli(["run", "--db", url(db), "--to", store, "--name", "intr", "--jobs", "1", "--recipient", recipient, "--json"]);
  expect(run.code, run.stderr).toBe(0);
  backupId = JSON.parse(run.stdout).manifest.id;
}, 120_000);

/** A TMPDIR of the test's own, which the unprivileged PostgreSQL user may enter. */
function privateTmp(): string {
  const dir = tempDir("lifeboat-intr-tmp-");
  chmodSync(dir, 0o755);
  return dir;
}

/** What Lifeboat left in a TMPDIR (tsx, which runs the repository's sources, keeps its own cache there: not ours). */
function lifeboatLeftovers(tmp: string): string[] {
  return readdirSync(tmp).filter((n) => !n.startsWith("tsx-"));
}

/** Every file below `dir` (as root, whoever owns it). */
function filesBelow(dir: string): string[] {
  return readdirSync(dir, { recursive: true }).map(String).filter((f) => statSync(join(dir, f), { throwIfNoEntry: false })?.isFile());
}

/** Processes whose command line contains `needle` (the private TMPDIR, a database name). */
function processesWith(needle: string): string[] {
  return execFileSync("ps", ["-eo", "pid,args"]).toString().split("\n").filter((l) => l.includes(needle) && !l.includes("ps -eo"));
}

/** Runs `lifeboat args` with a private TMPDIR; sends `signal` once `when` matches a stderr line; then `during` looks. */
async function interrupt(args: string[], when: RegExp, signal: NodeJS.Signals, during?: (tmp: string) => void) {
  const tmp = privateTmp();
  let sent = false;
  let seen = "";
  const res = await cli(args, {
    env: { TMPDIR: tmp, CI: "1" },
    onStderr: (chunk, child) => {
      seen += chunk;
      if (!sent && when.test(seen)) {
        sent = true;
        during?.(tmp);
        child.kill(signal);
      }
    },
  });
  return { ...res, sent, tmp };
}

describe("a stopped restore leaves nothing", () => {
  for (const [moment, when, signal] of [
    ["as it starts", /"restoring intr backup/, "SIGINT"],
    ["while pg_restore loads the data", /pg_restore started/, "SIGINT"],
    ["while pg_restore loads the data (SIGTERM)", /pg_restore started/, "SIGTERM"],
  ] as const) {
    it(`encrypted backup, ${moment}: no plaintext ever on disk, pg_restore stopped, the target unchanged, exit ${signal === "SIGINT" ? 130 : 143}`, async () => {
      const target = unique("intr_to");
      await createDatabase(target);
      let plaintextSeen: string[] = [];
      const res = await interrupt(["restore", "intr", "--from", store, "--backup", backupId, "--to", url(target), "--identity", identityFile, "--json"], when, signal, (tmp) => {
        // the restore's private directory holds no decrypted copy: one archive streams into one pg_restore
        plaintextSeen = filesBelow(tmp).filter((f) => /plain/.test(f));
      });
      expect(res.sent, res.stderr).toBe(true);
      expect(res.code, res.stderr).toBe(signal === "SIGINT" ? 130 : 143);
      expect(JSON.parse(res.stdout).error).toMatch(new RegExp(`^interrupted by ${signal}: stopped the restore of backup ${backupId}`));
      expect(plaintextSeen).toEqual([]);
      expect(lifeboatLeftovers(res.tmp)).toEqual([]); // the temporary directory is gone
      expect(processesWith(`dbname=${target}`).filter((l) => /pg_restore|psql/.test(l))).toEqual([]);
      // one transaction: nothing of the backup was committed
      const [[n]] = (await query(conn(target), "select count(*) from pg_class c join pg_namespace s on s.oid = c.relnamespace where s.nspname = 'public';")) as [[string]];
      expect(Number(n)).toBe(0);
    }, 60_000);
  }
});

describe("a stopped parallel restore is undone", () => {
  it("a selective restore (--table), stopped while it works in its scratch database: the scratch database dropped, nothing in the target, the decrypted files removed, exit 130", async () => {
    const target = unique("intrsel");
    await createDatabase(target);
    const scratches = () => query(conn(), "select datname from pg_database where datname like 'lifeboat_select_%';");
    const res = await interrupt(["restore", "--from", store, "--backup", backupId, "--table", "t", "--identity", identityFile, "--to", url(target)], /restoring into the scratch database/, "SIGINT");
    expect(res.sent).toBe(true);
    expect(res.code, res.stderr).toBe(130);
    expect(await scratches()).toEqual([]);
    expect(await query(conn(target), "select count(*) from pg_tables where schemaname = 'public';")).toEqual([["0"]]);
    expect(lifeboatLeftovers(res.tmp)).toEqual([]);
  });

  it("--jobs 2 (several transactions), stopped while pg_restore loads: what it created is dropped, the decrypted file removed, exit 130", async () => {
    const target = unique("intr_jobs");
    await createDatabase(target);
    let plaintext: string[] = [];
    const res = await interrupt(["restore", "intr", "--from", store, "--backup", backupId, "--to", url(target), "--identity", identityFile, "--jobs", "2", "--json"], /pg_restore started/, "SIGINT", (tmp) => {
      plaintext = filesBelow(tmp).filter((f) => /plain/.test(f));
    });
    expect(res.sent, res.stderr).toBe(true);
    expect(res.code, res.stderr).toBe(130);
    expect(plaintext.length).toBe(1); // parallel jobs need a file: it existed while pg_restore read it (0600, 0700 directory)
    expect(lifeboatLeftovers(res.tmp)).toEqual([]); // and is gone
    expect(res.stderr).toContain("the failed restore was undone: the target database is empty again");
    const [[n]] = (await query(conn(target), "select count(*) from pg_class c join pg_namespace s on s.oid = c.relnamespace where s.nspname = 'public';")) as [[string]];
    expect(Number(n)).toBe(0);
  }, 60_000);
});

describe("a stopped drill leaves nothing", () => {
  for (const [moment, when] of [
    ["while its throwaway PostgreSQL starts", /starting a throwaway PostgreSQL/],
    ["while it restores", /pg_restore started/],
  ] as const) {
    it(`${moment}: the throwaway server is stopped, its directory removed, no drill result is recorded, exit 130`, async () => {
      const res = await interrupt(["verify", "intr", "--from", store, "--backup", backupId, "--identity", identityFile, "--json"], when, "SIGINT");
      expect(res.sent, res.stderr).toBe(true);
      expect(res.code, res.stderr).toBe(130);
      expect(JSON.parse(res.stdout).error).toMatch(/^interrupted by SIGINT: stopped the drill of backup/);
      expect(lifeboatLeftovers(res.tmp)).toEqual([]);
      expect(processesWith(res.tmp)).toEqual([]); // no postgres running from the throwaway directory
      const list = await cli(["list", "--from", store, "--json"]);
      expect(JSON.parse(list.stdout).backups[0].drill).toBeNull(); // stopped is neither passed nor failed
    }, 90_000);
  }
});

describe("a stopped demo leaves nothing", () => {
  it("SIGINT while its throwaway PostgreSQL starts: no password file, no directory, no server, exit 130", async () => {
    const res = await interrupt(["demo"], /starting a throwaway PostgreSQL/, "SIGINT");
    expect(res.sent, res.stderr).toBe(true);
    expect(res.code, res.stderr).toBe(130);
    expect(lifeboatLeftovers(res.tmp)).toEqual([]);
    expect(processesWith(res.tmp)).toEqual([]);
  }, 60_000);
});

describe("a failed restore changes nothing", () => {
  it("a single archive onto a server without its owner role: refused before anything is written, every missing role named; --no-owner --no-acl then restores", async () => {
    const owner = unique("app_owner");
    const reader = unique("app_reader");
    const src = unique("roles_src");
    await query(conn(), `create role ${owner}; create role ${reader};`);
    await createDatabase(src, `create type mood as enum ('ok', 'sad'); create table t(id int primary key, m mood); insert into t values (1, 'ok'); alter type mood owner to ${owner}; alter table t owner to ${owner}; grant select on t to ${reader};`);
    const s = `file://${tempDir("lifeboat-roles-store-")}`;
    const run = await cli(["run", "--db", url(src), "--to", s, "--name", "roles", "--jobs", "1", "--json"]);
    expect(run.code, run.stderr).toBe(0);
    // the roles disappear (another server would not have them)
    await query(conn(src), `reassign owned by ${owner} to ${pg().user}; drop owned by ${reader};`);
    await query(conn(), `drop role ${owner}; drop role ${reader};`);
    const target = unique("roles_to");
    await createDatabase(target);
    const refused = await cli(["restore", "roles", "--from", s, "--to", url(target), "--json"]);
    expect(refused.code, refused.stderr).toBe(2);
    const out = JSON.parse(refused.stdout);
    expect(out.error).toContain(`owning objects: ${owner}`);
    expect(out.error).toContain(`granted privileges: ${reader}`);
    expect(out.hint).toContain("--no-owner");
    expect(out.hint).toContain("--no-acl");
    expect(out.hint).toContain("lifeboat restore roles --database globals");
    const [[types]] = (await query(conn(target), "select count(*) from pg_type t join pg_namespace n on n.oid = t.typnamespace where n.nspname = 'public';")) as [[string]];
    expect(Number(types)).toBe(0); // the enum type was not created: the rerun cannot meet "already exists"

    const again = await cli(["restore", "roles", "--from", s, "--to", url(target), "--no-owner", "--no-acl", "--json"]);
    expect(again.code, again.stderr).toBe(0);
    expect(await query(conn(target), "select m::text from t;")).toEqual([["ok"]]);
  }, 60_000);

  it("a drill recreates the roles the backup names, for plain and custom formats, and restores it with its owners and grants", async () => {
    const owner = unique("drill_owner");
    const src = unique("drill_src");
    await query(conn(), `create role ${owner};`);
    await createDatabase(src, `create schema app authorization ${owner}; create table app.t(id int primary key); insert into app.t select generate_series(1, 10); alter table app.t owner to ${owner}; grant usage on schema app to public;`);
    for (const format of ["plain", "custom"]) {
      const s = `file://${tempDir("lifeboat-drill-roles-")}`;
      const run = await cli(["run", "--db", url(src), "--to", s, "--name", "drill", "--format", format, "--jobs", "1", "--json"]);
      expect(run.code, run.stderr).toBe(0);
      const verify = await cli(["verify", "drill", "--from", s, "--json"]);
      expect(verify.code, `${format}: ${verify.stdout}`).toBe(0);
      expect(verify.stderr).toContain(owner); // named as created in the throwaway cluster
    }
  }, 120_000);
});
