// Issue 24, item 5: data checks in restore drills (verify.checks). A drill restores and counts rows, which proves the
// archive whole, not the data right: a backup of a replica that stopped replicating days ago passes every row count.
// Checks run in the drill's restored database; one that fails fails the drill with its query and the value found, and
// is reported like any failed drill (here: the webhook gets backup.verify_failed naming it).
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "@lifeboat/core";
import { query } from "@lifeboat/runner";
import { cli, conn, createDatabase, pg, startEventRecorder, tempDir, unique, url } from "./support/helpers.js";

let hook: Awaited<ReturnType<typeof startEventRecorder>>;
let db: string;
let file: string;

beforeAll(async () => {
  hook = await startEventRecorder();
  const dir = tempDir("lifeboat-checks-");
  db = unique("replica");
  // a replica that stopped replicating three days ago: every row is there, the newest is old
  await createDatabase(db, `create table "Orders"(id int primary key, total numeric, created_at timestamptz);
    insert into "Orders" select g, g * 2, now() - interval '3 days' - g * interval '1 minute' from generate_series(1, 200) g;`);
  file = join(dir, "lifeboat.config.ts");
  const checks = [
    { name: "orders exist", sql: 'select count(*) from "Orders"', min: 100 },
    { name: "orders are fresh", sql: 'select max(created_at) from "Orders";', maxAgeHours: 26 },
    { name: "no negative totals", sql: 'select bool_and(total >= 0) from "Orders"', equals: true },
  ];
  writeFileSync(
    file,
    `export default ${JSON.stringify({
      storage: { directory: join(dir, "store") },
      targets: { shop: { database: { host: pg().host, port: pg().port, database: db, user: pg().user, password: { env: "PW" } }, verify: { checks } } },
      notifications: { webhook: { url: { env: "HOOK_URL" }, on: ["failed"] } },
    })};`,
  );
}, 60_000);
afterAll(async () => {
  await hook?.close();
});

const env = () => ({ PW: pg().password, HOOK_URL: hook.url });

describe("data checks in restore drills (verify.checks)", () => {
  it("a stale backup passes its row counts but fails the freshness check: exit 1, the query and the value told, backup.verify_failed sent", async () => {
    const run = await cli(["run", "shop", "--config", file], { env: env() });
    expect(run.code, run.stderr).toBe(0);
    hook.events.length = 0;
    const drill = await cli(["verify", "shop", "--config", file, "--scratch", url("postgres"), "--json"], { env: env() });
    expect(drill.code, drill.stderr).toBe(1);
    const result = JSON.parse(drill.stdout) as { outcome: string; checks: Array<{ check: string; ok: boolean; detail: string }> };
    expect(result.outcome).toBe("failed");
    expect(result.checks.find((c) => c.check === "tables")!.ok).toBe(true);
    const data = result.checks.filter((c) => c.check === "data");
    expect(data.map((c) => [c.detail.split(":")[0], c.ok])).toEqual([
      ["orders exist", true],
      ["orders are fresh", false],
      ["no negative totals", true],
    ]);
    expect(data[0]!.detail).toBe("orders exist: found 200 (expected >= 100)");
    expect(data[1]!.detail).toMatch(/^orders are fresh: found \d{4}-\d\d-\d\d \d\d:\d\d:\d\d[.\d]*\+00, 7[23]\.\d h before the backup started, which is older than 26 h \(expected at most 26 h before the backup started\) \(query: select max\(created_at\) from "Orders";\)$/);
    expect(data[2]!.detail).toBe("no negative totals: found t (expected = t)");
    const failed = hook.events.find((e) => e.type === "backup.verify_failed");
    expect(failed?.type === "backup.verify_failed" ? failed.verification.failures : undefined).toEqual([expect.stringMatching(/^data: orders are fresh: found .* which is older than 26 h/)]);
  }, 120_000);

  it("once the data is fresh again, the next backup's drill passes every check", async () => {
    await query(conn(db), `update "Orders" set created_at = now() - id * interval '1 minute';`);
    expect((await cli(["run", "shop", "--config", file], { env: env() })).code).toBe(0);
    const drill = await cli(["verify", "shop", "--config", file, "--scratch", url("postgres")], { env: env() });
    expect(drill.code, drill.stdout + drill.stderr).toBe(0);
    expect(drill.stdout).toMatch(/ok {4}data {5}orders are fresh: found .*, 0\.\d h before the backup started \(expected at most 26 h before the backup started\)/);
  }, 120_000);

  it("a check whose query fails, or that returns no row or no number, fails with the reason", async () => {
    const dir = tempDir("lifeboat-checks-bad-");
    const bad = join(dir, "lifeboat.config.ts");
    const checks = [
      { name: "typo", sql: "select no_such_column from \"Orders\"", min: 0 },
      { name: "nothing", sql: "select id from \"Orders\" where false", min: 0 },
      { name: "words", sql: "select 'many'", max: 10 },
    ];
    writeFileSync(bad, `export default ${JSON.stringify({ storage: { directory: join(dir, "store") }, targets: { shop: { database: { host: pg().host, port: pg().port, database: db, user: pg().user, password: { env: "PW" } }, verify: { checks } } } })};`);
    expect((await cli(["run", "shop", "--config", bad], { env: env() })).code).toBe(0);
    const drill = await cli(["verify", "shop", "--config", bad, "--scratch", url("postgres"), "--json"], { env: env() });
    expect(drill.code).toBe(1);
    const data = (JSON.parse(drill.stdout).checks as Array<{ check: string; detail: string }>).filter((c) => c.check === "data").map((c) => c.detail);
    expect(data[0]).toMatch(/^typo: the query failed: .*no_such_column.* \(query: select no_such_column from "Orders"\)$/);
    expect(data[1]).toBe('nothing: the query returned no row (query: select id from "Orders" where false)');
    expect(data[2]).toBe("words: found many, which is not a number (expected <= 10) (query: select 'many')");
  }, 120_000);

  it("the schedule daemon's drill of an encrypted backup decrypts it with the target's identity, and runs its checks", async () => {
    const dir = tempDir("lifeboat-checks-enc-");
    const keyFile = join(dir, "identity.txt");
    const keygen = await cli(["keygen", "--output", keyFile, "--json"]);
    expect(keygen.code, keygen.stderr).toBe(0);
    const enc = join(dir, "lifeboat.config.ts");
    const checks = [{ name: "orders exist", sql: 'select count(*) from "Orders"', min: 100 }];
    writeFileSync(
      enc,
      `export default ${JSON.stringify({
        storage: { directory: join(dir, "store") },
        targets: { shop: { database: { host: pg().host, port: pg().port, database: db, user: pg().user, password: { env: "PW" } }, encryption: { recipients: [JSON.parse(keygen.stdout).recipient], identity: { env: "AGE_ID" } }, verify: { schedule: "rate(7 days)", checks } } },
      })};`,
    );
    const withKey = { ...env(), AGE_ID: readFileSync(keyFile, "utf8") };
    expect((await cli(["run", "shop", "--config", enc], { env: withKey })).code).toBe(0);
    const once = await cli(["schedule", "--once", "--config", enc], { env: withKey });
    expect(once.code, once.stderr).toBe(0);
    const drill = once.stderr.split("\n").filter((l) => l.startsWith("{")).map((l) => JSON.parse(l) as { msg?: string; message?: string }).find((l) => /restore drill (passed|failed)/.test(l.msg ?? l.message ?? ""));
    expect(drill?.msg ?? drill?.message).toBe("restore drill passed");
  }, 120_000);

  it("the config: a check needs an expectation, names are unique, verify needs a schedule or checks, SQLite targets have none", () => {
    const base = { storage: { directory: "/srv/b" } };
    const target = (verify: unknown, more: object = {}) => ({ ...base, targets: { a: { database: { url: "postgres://u@db.example.com/a" }, verify, ...more } } });
    expect(() => parseConfig(target({ checks: [{ name: "x", sql: "select 1" }] }))).toThrow(/give what the value must be: min, max, equals or maxAgeHours/);
    expect(() => parseConfig(target({ checks: [{ name: "x", sql: "select 1", min: 1 }, { name: "x", sql: "select 2", min: 1 }] }))).toThrow(/check names must be unique/);
    expect(() => parseConfig(target({}))).toThrow(/give schedule \(scheduled drills\), checks \(data checks in every drill\), or both/);
    expect(parseConfig(target({ checks: [{ name: "x", sql: "select 1", equals: 1 }] })).targets.a!.verify!.schedule).toBeUndefined();
    const sqlite = { ...base, targets: { a: { engine: "sqlite", database: { path: "/srv/app.db" }, verify: { checks: [{ name: "x", sql: "select 1", min: 1 }] } } } };
    expect(() => parseConfig(sqlite)).toThrow(/run in PostgreSQL drills only/);
  });
});
