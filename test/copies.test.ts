// 3-2-1 (issue 23): one backup written to the primary S3 server, a second S3 server and a directory at once; the
// second server killed mid-run (the primary succeeds, the copy is retried from the primary, then reported), repaired
// later with `lifeboat copy`, and every store restored from alone.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LocalEventBus, deployPlan, dumpSchema, parseConfig, renderSlackMessage, retriesSchema, type LifeboatEvent, type ObjectStore } from "@lifeboat/core";
import { DirectoryStore, S3Store, copiesOf, copyBackup, fingerprint, listBackups, runBackup, s3ClientConfig } from "@lifeboat/runner";
import { startEmbeddedS3, type EmbeddedS3 } from "@lifeboat/cli";
import { cli, conn, createDatabase, pg, s3, s3Client, tempDir, unique, url } from "./support/helpers.js";

let second: EmbeddedS3 | undefined;
let dir: string;
let disk: string;
let prefix: string;
let db: string;
let configFile: string;
const secondEnv = () => ({ COPY_KEY: second!.accessKeyId, COPY_SECRET: second!.secretAccessKey, COPY_PGPASSWORD: pg().password });

function secondStore(): S3Store {
  const opts = { bucket: second!.bucket, prefix, endpoint: second!.endpoint };
  return new S3Store(opts, Object.assign(new S3Client({ ...s3ClientConfig(opts), credentials: { accessKeyId: second!.accessKeyId, secretAccessKey: second!.secretAccessKey } }), { [Symbol.for("lifeboat.test-client")]: true }));
}
const primaryStore = () => new S3Store({ bucket: s3().bucket, prefix }, s3Client());

beforeAll(async () => {
  second = await startEmbeddedS3({ bucket: "offsite" });
  dir = tempDir("lifeboat-copies-");
  disk = join(dir, "disk");
  prefix = unique("copies");
  db = unique("copies");
  // about 24 MB of random bytes (poorly compressible): the dump takes several parts, long enough to kill a server in
  await createDatabase(db, `create table blobs(id int primary key, payload bytea, note text);
    insert into blobs select g, decode(string_agg(md5(g::text || '-' || h::text), ''), 'hex'), 'row ' || g from generate_series(1, 3000) g, generate_series(1, 256) h group by g;
    create table "Customer Notes"(id int primary key, body jsonb);
    insert into "Customer Notes" select g, jsonb_build_object('n', g) from generate_series(1, 500) g;`);
  configFile = join(dir, "lifeboat.config.ts");
  writeFileSync(
    configFile,
    `export default {
  storage: {
    s3: { bucket: ${JSON.stringify(s3().bucket)}, prefix: ${JSON.stringify(prefix)} },
    copies: [
      { name: "offsite", s3: { bucket: "offsite", prefix: ${JSON.stringify(prefix)}, endpoint: ${JSON.stringify(second.endpoint)}, credentials: { accessKeyId: { env: "COPY_KEY" }, secretAccessKey: { env: "COPY_SECRET" } } } },
      { name: "local", directory: "./disk" },
    ],
  },
  targets: { app: { database: { host: "127.0.0.1", port: ${pg().port}, database: ${JSON.stringify(db)}, user: ${JSON.stringify(pg().user)}, password: { env: "COPY_PGPASSWORD" } }, retries: { attempts: 1 } } },
};
`,
  );
}, 180_000);
afterAll(async () => {
  await second?.stop();
});

describe("copies: one dump to three stores", () => {
  it("lifeboat run writes the backup to the primary, the second S3 server and the directory at once, each with its manifest", async () => {
    const run = await cli(["run", "app", "--config", configFile, "--json"], { env: secondEnv() });
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.copies.map((c: { name: string; ok: boolean }) => [c.name, c.ok])).toEqual([["offsite", true], ["local", true]]);
    const [p] = await listBackups(primaryStore(), "app");
    const [o] = await listBackups(secondStore(), "app");
    const [l] = await listBackups(new DirectoryStore(disk), "app");
    expect(o).toEqual(p);
    expect(l).toEqual(p);
    expect(p!.object.size).toBeGreaterThan(10_000_000);
  });

  it("the second server killed mid-run: the primary and the directory hold the backup, the copy is retried and reported, then repaired by lifeboat copy", async () => {
    const events: LifeboatEvent[] = [];
    const bus = new LocalEventBus();
    bus.subscribe(async (e) => void events.push(e));
    const port = Number(new URL(second!.endpoint).port);
    let killed: Promise<void> | undefined;
    const result = await runBackup({
      target: "app",
      resolveSource: async () => conn(db),
      store: primaryStore(),
      copies: [
        { name: "offsite", store: secondStore() },
        { name: "local", store: new DirectoryStore(disk) },
      ],
      dump: dumpSchema.parse({ compression: "gzip:1" }),
      retries: retriesSchema.parse({ attempts: 1 }),
      bus,
      onProgress: (p) => {
        if (!killed && p.bytes > 4_000_000) killed = second!.stop();
      },
    });
    await killed;
    expect(killed).toBeDefined();
    const m = result.manifest;
    expect(result.copies.map((c) => [c.name, c.ok])).toEqual([["offsite", false], ["local", true]]);
    expect(events.map((e) => e.type)).toEqual(["backup.succeeded", "backup.copy_failed"]);
    const failed = events[1]!;
    if (failed.type !== "backup.copy_failed") throw new Error("not a copy_failed event");
    expect(failed.copy).toMatchObject({ name: "offsite", backupId: m.id, repair: `lifeboat copy app --backup ${m.id} --to offsite` });
    expect(renderSlackMessage(failed).text).toContain(`Copy *offsite* of *app*'s backup ${m.id} FAILED`);
    expect((await listBackups(new DirectoryStore(disk), "app")).map((b) => b.id)).toContain(m.id);

    // the second server back (empty: a new disk), on the same address: status says the copy is degraded
    second = await startEmbeddedS3({ bucket: "offsite", port });
    const degraded = await cli(["status", "app", "--config", configFile], { env: secondEnv() });
    expect(degraded.code).toBe(1);
    expect(degraded.stdout).toContain(`copy offsite: DEGRADED, lacks the newest backup ${m.id}; repair: lifeboat copy app --to offsite`);
    expect(degraded.stdout).toContain("copy local: holds the newest backup");

    // repaired: every backup the copy lacks, from the primary, each object checked against its SHA-256
    const repair = await cli(["copy", "app", "--config", configFile], { env: secondEnv() });
    expect(repair.code, repair.stderr).toBe(0);
    expect(repair.stdout).toMatch(/offsite\s+2 copied .*, 0 already there, 0 failed/);
    expect(repair.stdout).toMatch(/local\s+0 copied .*, 2 already there, 0 failed/);
    expect((await listBackups(secondStore(), "app")).map((b) => b.id)).toContain(m.id);
    const healthy = await cli(["status", "app", "--config", configFile], { env: secondEnv() });
    expect(healthy.code, healthy.stdout).toBe(0);
    expect(healthy.stdout).toContain("copy offsite: holds the newest backup");
  });

  it("a write-only copy is enough: a run and a repair only list and create in it (reads and deletes refused as a create-only key refuses them)", async () => {
    const refused: string[] = [];
    const writeOnly = (store: ObjectStore): ObjectStore =>
      new Proxy(store, {
        get(target, prop) {
          if (prop === "get" || prop === "read" || prop === "delete") {
            return async () => {
              refused.push(String(prop));
              throw new Error(`AccessDenied: ${String(prop)} is not allowed for this key`);
            };
          }
          const value = Reflect.get(target, prop, target) as unknown;
          return typeof value === "function" ? value.bind(target) : value;
        },
      });
    const vault = join(dir, "vault");
    const result = await runBackup({
      target: "app",
      resolveSource: async () => conn(db),
      store: primaryStore(),
      copies: [{ name: "vault", store: writeOnly(new DirectoryStore(vault)) }],
      dump: dumpSchema.parse({}),
      retries: retriesSchema.parse({ attempts: 1 }),
    });
    expect(result.copies).toEqual([{ name: "vault", ok: true, location: expect.stringContaining("vault") }]);
    // a repair of every older backup into another write-only copy
    const older = (await listBackups(primaryStore(), "app")).filter((m) => m.id !== result.manifest.id);
    for (const m of older) expect(await copyBackup(primaryStore(), writeOnly(new DirectoryStore(vault)), m)).toBe("copied");
    expect(await copyBackup(primaryStore(), writeOnly(new DirectoryStore(vault)), result.manifest)).toBe("present");
    expect(refused).toEqual([]);
    expect((await listBackups(new DirectoryStore(vault), "app")).length).toBe(older.length + 1);
  });

  it("each store restores the backup on its own: the primary, the second S3 server, the directory", async () => {
    const source = await fingerprint(conn(db));
    const stores: Array<[string, string, NodeJS.ProcessEnv]> = [
      ["primary", `s3://${s3().bucket}/${prefix}`, {}],
      ["offsite", `s3://offsite/${prefix}`, { AWS_ENDPOINT_URL_S3: second!.endpoint, AWS_ACCESS_KEY_ID: second!.accessKeyId, AWS_SECRET_ACCESS_KEY: second!.secretAccessKey }],
      ["local", `file://${disk}`, {}],
    ];
    for (const [name, from, env] of stores) {
      const to = unique(`copies_${name}`);
      await createDatabase(to);
      const restore = await cli(["restore", "app", "--from", from, "--backup", "latest", "--to", url(to)], { env });
      expect(restore.code, `${name}: ${restore.stderr}`).toBe(0);
      expect((await fingerprint(conn(to))).tables, name).toEqual(source.tables);
    }
  });

  it("prune applies each copy's retention: its own, else the target's; a copy left to its store is never pruned", async () => {
    const small = unique("copies_small");
    await createDatabase(small, "create table t(id int primary key); insert into t select generate_series(1, 100);");
    const root = tempDir("lifeboat-copies-prune-");
    const file = join(root, "lifeboat.config.ts");
    writeFileSync(
      file,
      `export default {
  storage: {
    directory: "./primary",
    copies: [
      { name: "mirror", directory: "./mirror" },
      { name: "short", directory: "./short", retention: { keepLast: 1 } },
      { name: "vault", directory: "./vault", retention: "store" },
    ],
  },
  targets: { app: { database: { host: "127.0.0.1", port: ${pg().port}, database: ${JSON.stringify(small)}, user: ${JSON.stringify(pg().user)}, password: { env: "COPY_PGPASSWORD" } }, retention: { keepLast: 2 } } },
};
`,
    );
    for (let i = 0; i < 3; i++) {
      const run = await cli(["run", "app", "--config", file], { env: secondEnv() });
      expect(run.code, run.stderr).toBe(0);
    }
    const count = async (d: string) => (await listBackups(new DirectoryStore(join(root, d)), "app")).length;
    expect(await Promise.all(["primary", "mirror", "short", "vault"].map(count))).toEqual([3, 3, 3, 3]);
    const prune = await cli(["prune", "app", "--config", file], { env: secondEnv() });
    expect(prune.code, prune.stderr).toBe(0);
    expect(prune.stdout).toContain("copy vault: left to the store's own retention");
    expect(prune.stdout).toContain("copy short: 1 kept, 2 deleted");
    expect(await Promise.all(["primary", "mirror", "short", "vault"].map(count))).toEqual([2, 2, 1, 3]);
  });

  it("an ad hoc run writes --copy stores at the same time, with no config; lifeboat copy --to <store-url> repairs one", async () => {
    const small = unique("copies_adhoc");
    await createDatabase(small, "create table t(id int primary key, note text); insert into t select g, md5(g::text) from generate_series(1, 500) g;");
    const root = tempDir("lifeboat-copies-adhoc-");
    const [primary, one, two] = ["primary", "one", "two"].map((d) => `file://${join(root, d)}`);
    const same = await cli(["run", "--db", url(small), "--to", primary!, "--copy", primary!]);
    expect(same.code).toBe(2);
    expect(same.stderr).toContain("is the store itself (--to)");
    const run = await cli(["run", "--db", url(small), "--to", primary!, "--copy", one!, "--copy", two!, "--name", "adhoc", "--json"]);
    expect(run.code, run.stderr).toBe(0);
    const out = JSON.parse(run.stdout);
    expect(out.copies.map((c: { name: string; ok: boolean }) => [c.name, c.ok])).toEqual([["copy-1", true], ["copy-2", true]]);
    const [p] = await listBackups(new DirectoryStore(join(root, "primary")), "adhoc");
    expect(await listBackups(new DirectoryStore(join(root, "one")), "adhoc")).toEqual([p]);
    expect(await listBackups(new DirectoryStore(join(root, "two")), "adhoc")).toEqual([p]);
    // a third store, filled later from the primary by URL: no config anywhere
    const third = `file://${join(root, "three")}`;
    const noTarget = await cli(["copy", "--from", primary!, "--to", third]);
    expect(noTarget.code).toBe(2);
    expect(noTarget.stderr).toContain("needs the target whose backups to copy");
    const copy = await cli(["copy", "adhoc", "--from", primary!, "--to", third, "--json"]);
    expect(copy.code, copy.stderr).toBe(0);
    expect(JSON.parse(copy.stdout).copies.map((r: { backup: string; outcome: string }) => [r.backup, r.outcome])).toEqual([[p!.id, "copied"]]);
    expect(await listBackups(new DirectoryStore(join(root, "three")), "adhoc")).toEqual([p]);
    const again = await cli(["copy", "adhoc", "--from", primary!, "--to", third, "--json"]);
    expect(JSON.parse(again.stdout).copies.map((r: { outcome: string }) => r.outcome)).toEqual(["present"]);
  });

  it("the config names copies clearly: unknown copy and no copies are usage errors; a target may have its own; a directory copy is not deployed to AWS", async () => {
    const unknown = await cli(["copy", "app", "--config", configFile, "--to", "tape"], { env: secondEnv() });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('no copy named "tape"');
    const base = { storage: { directory: "/srv/b", copies: [{ name: "offsite", directory: "/mnt/offsite" }] }, targets: { a: { database: { url: "postgres://u@db.example.com/a" } }, b: { database: { url: "postgres://u@db.example.com/b" }, copies: [] }, c: { database: { url: "postgres://u@db.example.com/c" }, copies: [{ name: "tape", directory: "/mnt/tape" }] } } };
    const config = parseConfig(base);
    expect(["a", "b", "c"].map((t) => copiesOf(config.storage, config.targets[t]).map((c) => c.name))).toEqual([["offsite"], [], ["tape"]]);
    expect(() => parseConfig({ ...base, storage: { directory: "/srv/b", copies: [{ name: "x", directory: "/a" }, { name: "x", directory: "/b" }] } })).toThrow(/copy names must be unique/);
    expect(() => parseConfig({ ...base, storage: { directory: "/srv/b", copies: [{ name: "x", directory: "/a", s3: { bucket: "bucket-b" } }] } })).toThrow(/exactly one of s3/);
    // the AWS deployment: a directory copy is refused (test/deploy-plan.test.ts has the rest)
    const cloud = { ...base, storage: { s3: { bucket: "acme-backups" }, copies: [{ name: "offsite", directory: "/mnt/offsite" }] } };
    expect(() => deployPlan(parseConfig(cloud), "production")).toThrow(/storage\.copies\[0\]\.directory: copy "offsite" is a directory/);
  });
});
