import { join } from "node:path";
import { pathToFileURL } from "node:url";
import pg from "pg";
import { describe, expect, it } from "vitest";
import { query } from "@lifeboat/runner";
import { cli, conn, createDatabase, pg as server, unique, url, tempDir } from "./support/helpers.js";

/**
 * Blue-green restore while a client keeps writing to the live database: the swap completes, the dark window is
 * measured, the new live database holds exactly the backup plus what was written after the swap, and the previous
 * database is intact with everything written before.
 */
describe("restore --swap", () => {
  it("swaps a verified restore in under the live name while a client writes in a loop", async () => {
    const live = unique("live");
    await createDatabase(live, "create table ledger(id bigint primary key, note text, at timestamptz default clock_timestamp()); insert into ledger select g, 'before backup' from generate_series(1, 1000) g;");
    const dir = tempDir("lifeboat-swap-");
    const store = pathToFileURL(dir).href;
    expect((await cli(["run", "--db", url(live), "--to", store, "--name", "live"])).code).toBe(0);
    await query(conn(live), "insert into ledger select g, 'after backup' from generate_series(1001, 1100) g;");

    // the writer: one row at a time, reconnecting whenever its session is ended
    const committed: number[] = [];
    const failures: string[] = [];
    let stop = false;
    let next = 1_000_000;
    const writer = (async () => {
      while (!stop) {
        const client = new pg.Client({ host: server().host, port: server().port, user: server().user, password: server().password, database: live });
        client.on("error", (err) => failures.push(err.message)); // a session ended between two queries
        try {
          await client.connect();
          while (!stop) {
            const id = next++;
            await client.query("insert into ledger(id, note) values ($1, 'writer')", [id]);
            committed.push(id);
          }
        } catch (err) {
          failures.push((err as Error).message);
          await new Promise((r) => setTimeout(r, 5));
        } finally {
          await client.end().catch(() => {});
        }
      }
    })();
    await new Promise((r) => setTimeout(r, 300));
    const beforeSwap = committed.length;
    const res = await cli(["restore", "live", "--from", store, "--to", url(live), "--swap", "--json"]);
    await new Promise((r) => setTimeout(r, 300));
    stop = true;
    await writer;

    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out).toMatchObject({ status: "swapped", live, tablesChecked: 1 });
    expect(out.darkWindowMs).toBeGreaterThan(0);
    expect(out.darkWindowMs).toBeLessThan(10_000);
    expect(out.previous).toMatch(new RegExp(`^${live}_before_\\d{8}_\\d{6}$`));
    expect(out.switchBack).toHaveLength(5);
    expect(out.dropPrevious).toBe(`DROP DATABASE "${out.previous}";`);
    expect(beforeSwap).toBeGreaterThan(0);
    expect(failures.length).toBeGreaterThan(0); // the writer's session was ended during the window

    // the new live database: the backup exactly, plus what the writer committed after the swap
    const newLive = await query(conn(live), "select note, count(*) from ledger group by note order by note;");
    const newLiveIds = new Set((await query(conn(live), "select id from ledger where note = 'writer';")).map((r) => Number(r[0])));
    expect(newLive.find((r) => r[0] === "before backup")).toEqual(["before backup", "1000"]);
    expect(newLive.find((r) => r[0] === "after backup")).toBeUndefined();
    // the proof of the switch: writes committed after it landed in the restored database under the live name (writes
    // committed during the restore, before the switch, count for nothing here: they are in the previous one)
    expect(newLiveIds.size).toBeGreaterThan(0);

    // the previous database: intact, with everything written before the swap
    const previous = conn(out.previous);
    const prevNotes = await query(previous, "select note, count(*) from ledger group by note order by note;");
    expect(prevNotes.find((r) => r[0] === "before backup")).toEqual(["before backup", "1000"]);
    expect(prevNotes.find((r) => r[0] === "after backup")).toEqual(["after backup", "100"]);
    const prevIds = new Set((await query(previous, "select id from ledger where note = 'writer';")).map((r) => Number(r[0])));
    // every committed write is in exactly one of the two databases, and none is lost
    for (const id of committed) expect(prevIds.has(id) !== newLiveIds.has(id), `id ${id}`).toBe(true);
    expect(prevIds.size + newLiveIds.size).toBe(committed.length);
    for (let i = 0; i < beforeSwap; i++) expect(prevIds.has(committed[i]!)).toBe(true);
    // the previous database accepts connections again; no shadow is left behind
    expect(await query(conn("postgres"), `select datallowconn from pg_database where datname = '${out.previous}';`)).toEqual([["t"]]);
    expect(await query(conn("postgres"), `select count(*) from pg_database where datname like '${live}_lifeboat_shadow_%';`)).toEqual([["0"]]);
  });

  it("a failure before the renames leaves the live database as it was (and drops the shadow)", async () => {
    const live = unique("live");
    await createDatabase(live, "create table t(id int primary key); insert into t select generate_series(1, 10);");
    const dir = tempDir("lifeboat-swapfail-");
    const store = pathToFileURL(dir).href;
    expect((await cli(["run", "--db", url(live), "--to", store, "--name", "live"])).code).toBe(0);
    // a manifest that promises a row the archive does not have: the shadow check fails before any rename
    const { readdirSync, readFileSync, writeFileSync } = await import("node:fs");
    const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [join(d, e.name)]));
    const mf = walk(dir).find((f) => f.endsWith(".manifest.json"))!;
    const m = JSON.parse(readFileSync(mf, "utf8"));
    m.tables[0].rows = 11;
    writeFileSync(mf, JSON.stringify(m));
    const res = await cli(["restore", "--from", store, "--to", url(live), "--swap"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("the restored shadow database does not match the backup: public.t has 10 rows, the manifest says 11");
    expect(await query(conn(live), "select count(*) from t;")).toEqual([["10"]]);
    expect(await query(conn("postgres"), `select datallowconn from pg_database where datname = '${live}';`)).toEqual([["t"]]);
    expect(await query(conn("postgres"), `select count(*) from pg_database where datname like '${live}%' and datname <> '${live}';`)).toEqual([["0"]]);
  });
});
