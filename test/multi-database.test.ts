import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { tempDir } from "./support/helpers.js";
import { LocalEventBus, parseConfig, type LifeboatEvent } from "@lifeboat/core";
import { DirectoryStore, fingerprint, findBackup, listBackups, query, restoreBackup, runTargetBackups, startEphemeralPostgres, type EphemeralPostgres } from "@lifeboat/runner";

/** A server with several databases and a role: `all: true` + `globals: true`, each database its own backup. */
let server: EphemeralPostgres;
let other: EphemeralPostgres;
beforeAll(async () => {
  [server, other] = await Promise.all([startEphemeralPostgres(), startEphemeralPostgres()]);
  await query(server.connection(), "create role app_reader login password 'reader-secret-pw'; create database shop; create database blog;");
  await query(server.connection("shop"), "create table orders as select g as id from generate_series(1, 300) g; grant select on orders to app_reader;");
  await query(server.connection("blog"), "create table posts(id int primary key, title text); insert into posts values (1, 'hello'), (2, 'wörld');");
}, 120_000);
afterAll(async () => {
  await Promise.all([server?.stop(), other?.stop()]);
});

describe("a target with several databases and globals", () => {
  it("backs up every non-template database and the globals, each with its own manifest, and emits one summary event", async () => {
    const config = parseConfig({
      storage: { directory: "/unused" },
      targets: { srv: { database: { host: "127.0.0.1", port: server.port, database: "postgres", user: "postgres" }, all: true, globals: true } },
    });
    const store = new DirectoryStore(tempDir("lifeboat-multi-"));
    const events: LifeboatEvent[] = [];
    const bus = new LocalEventBus();
    bus.subscribe((e) => void events.push(e));
    const { results } = await runTargetBackups(config.targets.srv!, { target: "srv", resolveSource: async () => server.connection("postgres"), store, bus });
    expect(results.map((r) => r.database)).toEqual(["blog", "postgres", "shop", "globals"]);

    const manifests = await listBackups(store, "srv");
    expect(manifests).toHaveLength(4);
    const keys = manifests.map((m) => m.object.key).sort();
    expect(keys[0]).toMatch(/^srv\/_globals\/\d{4}\/\d{2}\/\d{2}\/\d{8}T\d{6}Z-[0-9a-f]{4}\.sql$/);
    expect(keys.slice(1).map((k) => k.split("/")[1])).toEqual(["blog", "postgres", "shop"]);
    const globals = manifests.find((m) => m.kind === "globals")!;
    expect(globals).toMatchObject({ format: "plain", database: { name: "globals" } });

    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: "backup.succeeded", target: "srv" });
    expect((events[0] as { databases: unknown[] }).databases).toEqual(
      ["blog", "postgres", "shop", "globals"].map((database) => ({ database, status: "succeeded", backupId: expect.any(String), location: expect.any(String), size: expect.any(Number) })),
    );

    // the globals carry the role, and no password hash unless asked
    const dumpText = (await import("node:fs")).readFileSync(join(store.root, globals.object.key), "utf8");
    expect(dumpText).toContain("CREATE ROLE app_reader");
    expect(dumpText).not.toMatch(/PASSWORD 'SCRAM|reader-secret-pw/);

    // round trip on another server: globals first (the role), then one database, with its grants
    const other_ = other.connection("postgres");
    await restoreBackup({ store, manifest: await findBackup(store, "srv", "latest", undefined, "globals"), to: other_ });
    expect(await query(other_, "select rolname, rolcanlogin, rolpassword is null from pg_authid where rolname = 'app_reader';")).toEqual([["app_reader", "t", "t"]]);
    await query(other_, "create database shop_copy;");
    await restoreBackup({ store, manifest: await findBackup(store, "srv", "latest", undefined, "shop"), to: other.connection("shop_copy") });
    const [a, b] = [await fingerprint(server.connection("shop")), await fingerprint(other.connection("shop_copy"))];
    expect(b.tables).toEqual(a.tables);
    expect(b.schema).toBe(a.schema);
    expect(await query(other.connection("shop_copy"), "select has_table_privilege('app_reader', 'orders', 'select');")).toEqual([["t"]]);

    // "latest" without naming a database is ambiguous here
    await expect(findBackup(store, "srv", "latest")).rejects.toThrow(/several databases \(blog, globals, postgres, shop\); name one/);
  });

  it("databases: [...] limits the run, and a failing database fails the run while the others are stored", async () => {
    const config = parseConfig({
      storage: { directory: "/unused" },
      targets: { two: { database: { host: "127.0.0.1", port: server.port, database: "postgres", user: "postgres" }, databases: ["blog", "missing_db"], retries: { attempts: 1 } } },
    });
    const store = new DirectoryStore(tempDir("lifeboat-multi-"));
    const events: LifeboatEvent[] = [];
    const bus = new LocalEventBus();
    bus.subscribe((e) => void events.push(e));
    const err = await runTargetBackups(config.targets.two!, { target: "two", resolveSource: async () => server.connection("postgres"), store, bus }).catch((e: Error) => e);
    expect((err as Error).message).toContain('missing_db: backup of "two" failed');
    expect((await listBackups(store, "two")).map((m) => m.database.name)).toEqual(["blog"]);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: "backup.failed", databases: [{ database: "blog", status: "succeeded" }, { database: "missing_db", status: "failed" }] });
    expect(JSON.stringify(events[0])).toContain('database \\"missing_db\\" does not exist');
  });

  it("databases and all are exclusive in the config", () => {
    expect(() => parseConfig({ storage: { directory: "/x" }, targets: { t: { database: { url: "postgres://u@h/d" }, databases: ["a"], all: true } } })).toThrow(/targets.t.all: give databases: \[...\] or all: true, not both/);
  });
});
