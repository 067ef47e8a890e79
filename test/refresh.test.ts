// Issue 24, item 4: a masked staging refresh from the config (targets.<name>.refresh: { to, then }), through
// `lifeboat refresh <target>` on real PostgreSQL: created the first time, swapped in after, never un-masked under the
// staging name, never into production.
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { query } from "@lifeboat/runner";
import { cli, conn, createDatabase, pg, startEventRecorder, tempDir, unique } from "./support/helpers.js";

let dir: string;
let prod: string;
let staging: string;
let file: string;
const env = () => ({ PW: pg().password });
const emails = (db: string) => query(conn(db), "select distinct split_part(email, '@', 2) from customers order by 1;").then((r) => r.map((x) => x[0]));

function writeConfig(to: string, then: string[], more: { schedule?: string; hook?: boolean } = {}) {
  const database = (name: string) => ({ host: pg().host, port: pg().port, database: name, user: pg().user, password: { env: "PW" } });
  const refresh = { to: database(to), then, ...(more.schedule ? { schedule: more.schedule } : {}) };
  const notifications = more.hook ? { notifications: { webhook: { url: { env: "HOOK_URL" }, on: ["failed"] } } } : {};
  writeFileSync(file, `export default ${JSON.stringify({ storage: { directory: join(dir, "store") }, targets: { prod: { database: database(prod), refresh }, plain: { database: database(prod) } }, ...notifications })};`);
}

let hook: Awaited<ReturnType<typeof startEventRecorder>> | undefined;
afterAll(async () => {
  await hook?.close();
});

beforeAll(async () => {
  dir = tempDir("lifeboat-refresh-");
  prod = unique("prod");
  staging = unique("staging");
  await createDatabase(prod, "create table customers(id int primary key, email text); insert into customers select g, 'person' || g || '@customer.example' from generate_series(1, 20) g;");
  writeFileSync(join(dir, "mask.sql"), "update customers set email = 'user' || id || '@masked.invalid';\n");
  writeFileSync(join(dir, "broken.sql"), "update customers set email = 'x';\nselect 1 / 0;\n");
  file = join(dir, "lifeboat.config.ts");
  writeConfig(staging, ["mask.sql"]);
  expect((await cli(["run", "prod", "--config", file], { env: env() })).code).toBe(0);
}, 60_000);

describe("lifeboat refresh", () => {
  it("creates the staging database the first time, masked by refresh.then (paths relative to the config)", async () => {
    const res = await cli(["refresh", "prod", "--config", file, "--json"], { env: env() });
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ status: "refreshed", how: "created", then: [join(dir, "mask.sql")] });
    expect(await emails(staging)).toEqual(["masked.invalid"]);
    expect(await emails(prod)).toEqual(["customer.example"]);
  });

  it("then swaps a fresh copy in, masked in the shadow; a failing script swaps nothing and staging stays as it was", async () => {
    await query(conn(prod), "insert into customers values (21, 'new@customer.example');");
    expect((await cli(["run", "prod", "--config", file], { env: env() })).code).toBe(0);
    writeConfig(staging, ["broken.sql"]);
    const failed = await cli(["refresh", "prod", "--config", file], { env: env() });
    expect(failed.code).toBe(1);
    expect(failed.stderr).toContain("division by zero");
    expect(await query(conn(staging), "select count(*) from customers;")).toEqual([["20"]]);
    expect(await emails(staging)).toEqual(["masked.invalid"]);
    writeConfig(staging, ["mask.sql"]);
    const res = await cli(["refresh", "prod", "--config", file, "--json"], { env: env() });
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout)).toMatchObject({ how: "swapped", previous: expect.stringMatching(new RegExp(`^${staging}_before_`)) });
    expect(await query(conn(staging), "select count(*) from customers;")).toEqual([["21"]]);
    expect(await emails(staging)).toEqual(["masked.invalid"]);
  });

  it("refuses production itself, a target without refresh, and a missing script (exit 2, nothing done)", async () => {
    writeConfig(prod, ["mask.sql"]);
    const own = await cli(["refresh", "prod", "--config", file], { env: env() });
    expect(own.code).toBe(2);
    expect(own.stderr).toContain('the database "prod" backs up');
    expect(await emails(prod)).toEqual(["customer.example"]);
    const none = await cli(["refresh", "plain", "--config", file], { env: env() });
    expect(none.code).toBe(2);
    expect(none.stderr).toContain('target "plain" has no refresh');
    writeConfig(staging, ["nope.sql"]);
    const missing = await cli(["refresh", "prod", "--config", file], { env: env() });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain(`${join(dir, "nope.sql")}: no such readable file`);
  });

  it("lifeboat schedule refreshes on refresh.schedule: due when never refreshed, then not until its next fire time; a failed refresh is told (backup.refresh_failed), exit 1", async () => {
    hook = await startEventRecorder();
    const hookUrl = hook.url;
    const record = join(dir, "store", "prod", ".lifeboat-last-refresh.json");
    rmSync(record, { force: true });
    writeConfig(staging, ["mask.sql"], { schedule: "rate(1 day)", hook: true });
    const first = await cli(["schedule", "--once", "--config", file], { env: { ...env(), HOOK_URL: hookUrl } });
    expect(first.code, first.stderr).toBe(0);
    expect(first.stderr).toContain("refreshing");
    expect(JSON.parse(readFileSync(record, "utf8"))).toMatchObject({ outcome: "succeeded" });
    // two swaps so far (the command's, the daemon's): only the newest replaced database is kept (refresh.keepPrevious 1)
    const previous = await query(conn(), `select datname from pg_database where datname like '${staging}_before_%';`);
    expect(previous).toHaveLength(1);
    expect(first.stderr).toContain("dropped databases earlier refreshes replaced");
    // refreshed a moment ago: not due again today
    const again = await cli(["schedule", "--once", "--config", file], { env: { ...env(), HOOK_URL: hookUrl } });
    expect(again.code, again.stderr).toBe(0);
    expect(again.stderr).not.toContain("refreshing");
    // due again (its record gone), with a script that fails: nothing swapped, the webhook told
    rmSync(record);
    writeConfig(staging, ["broken.sql"], { schedule: "rate(1 day)", hook: true });
    hook.events.length = 0;
    const failed = await cli(["schedule", "--once", "--config", file], { env: { ...env(), HOOK_URL: hookUrl } });
    expect(failed.code).toBe(1);
    expect(hook.events.map((e) => e.type)).toEqual(["backup.refresh_failed"]);
    const told = hook.events[0]!;
    expect(told.type === "backup.refresh_failed" ? told.refresh.to : "").toContain(staging);
    expect(told.type === "backup.refresh_failed" ? told.refresh.error : "").toContain("division by zero");
    expect(await emails(staging)).toEqual(["masked.invalid"]);
  }, 120_000);
});
