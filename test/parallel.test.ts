import { existsSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { Readable } from "node:stream";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { beforeAll, describe, expect, it } from "vitest";
import { MANIFEST_VERSION_SET, backupObjects, dumpSchema, retriesSchema, type Manifest, type ObjectStore } from "@lifeboat/core";
import { DirectoryStore, S3Store, fingerprint, listBackups, query, restoreBackup, runBackup } from "@lifeboat/runner";
import { cli, conn, createDatabase, pg, s3, s3Client, s3Keys, tempDir, unique, url } from "./support/helpers.js";

/**
 * Parallel streamed dumps (dump.jobs): the largest tables' data as parts of their own, the rest in a base archive,
 * all in one exported snapshot, concurrently into the store; one manifest (version 2) for the set.
 */
let db: string;
beforeAll(async () => {
  db = unique("par");
  await createDatabase(
    db,
    `create table customers(id int primary key, name text not null);
     insert into customers select g, md5(g::text) from generate_series(1, 3000) g;
     create table orders(id bigint generated always as identity primary key, customer_id int not null references customers, note text, at timestamptz default now());
     insert into orders(customer_id, note) select 1 + g % 3000, repeat(md5(g::text), 4) from generate_series(1, 30000) g;
     create table "Events ""raw"""(id int, payload jsonb);
     insert into "Events ""raw"""(id, payload) select g, jsonb_build_object('n', g, 'k', md5(g::text)) from generate_series(1, 20000) g;
     create index on orders(customer_id);
     create table tiny(x int); insert into tiny values (1), (2);
     create view big_orders as select * from orders where customer_id < 10;
     select lo_from_bytea(0, 'a large object');`,
  );
});

const dump = () => dumpSchema.parse({ jobs: 3, parallelMinTableMB: 0.5 });

/** What a database holds beyond a fresh one: relations, routines, types, large objects, schemas other than public. */
const emptiness = async (database: string) =>
  query(
    conn(database),
    `select (select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'),
            (select count(*) from pg_proc p join pg_namespace n on n.oid = p.pronamespace where n.nspname not in ('pg_catalog', 'information_schema')),
            (select count(*) from pg_type t join pg_namespace n on n.oid = t.typnamespace where n.nspname not in ('pg_catalog', 'information_schema') and n.nspname not like 'pg_toast%'),
            (select count(*) from pg_largeobject_metadata),
            (select count(*) from pg_namespace where nspname not in ('pg_catalog', 'information_schema', 'public') and nspname not like 'pg_toast%' and nspname not like 'pg_temp%');`,
  );
const EMPTY = [["0", "0", "0", "0", "0"]];

async function backup(store: ObjectStore, target: string): Promise<Manifest> {
  const r = await runBackup({ target, resolveSource: async () => conn(db), store, dump: dump(), retries: retriesSchema.parse({ attempts: 1 }) });
  return r.manifest;
}

describe("a parallel backup set", () => {
  it("through S3: parts of the largest tables, one manifest, restored equal to the source, drilled", async () => {
    const prefix = unique("par");
    const store = new S3Store({ bucket: s3().bucket, prefix, endpoint: s3().endpoint, region: s3().region }, s3Client());
    const m = await backup(store, "par");
    expect(m.manifestVersion).toBe(MANIFEST_VERSION_SET);
    expect(m.parts!.map((p) => p.table).sort()).toEqual(['public."Events ""raw"""', "public.orders"]);
    expect(m.parts!.map((p) => p.key)).toEqual([m.object.key.replace(".dump", ".part-001.dump"), m.object.key.replace(".dump", ".part-002.dump")]);
    expect(await s3Keys(`${prefix}/`)).toEqual([...backupObjects(m).map((o) => `${prefix}/${o.key}`), `${prefix}/${m.object.key.replace(".dump", ".manifest.json")}`].sort());
    expect(m.tables!.find((t) => t.name === "public.orders")!.rows).toBe(30000);
    expect(m.toc!.byType["TABLE DATA"]).toBe(4);

    const target = unique("par_restored");
    await createDatabase(target);
    const res = await cli(["restore", "--from", `s3://${s3().bucket}/${prefix}`, "--to", url(target), "--jobs", "2", "--json"]);
    expect(res.code, res.stderr).toBe(0);
    const [a, b] = await Promise.all([fingerprint(conn(db)), fingerprint(conn(target))]);
    expect(b.tables).toEqual(a.tables);
    expect(b.schema).toEqual(a.schema);
    expect(await query(conn(target), "select count(*) from pg_largeobject_metadata")).toEqual([["1"]]);
    // identity columns continue where the source stopped (the base's sequences restored)
    expect(await query(conn(target), "insert into orders(customer_id) values (1) returning id")).toEqual([["30001"]]);
    // one job: the parts stream one after the other, each held until all are read
    const single = unique("par_restored_1");
    await createDatabase(single);
    const one = await cli(["restore", "--from", `s3://${s3().bucket}/${prefix}`, "--to", url(single), "--jobs", "1", "--json"]);
    expect(one.code, one.stderr).toBe(0);
    expect((await fingerprint(conn(single))).tables).toEqual(a.tables);

    const drill = await cli(["verify", "--from", `s3://${s3().bucket}/${prefix}`, "--json"]);
    expect(drill.code, drill.stderr).toBe(0);
    const result = JSON.parse(drill.stdout) as { outcome: string; checks: { check: string; ok: boolean; detail: string }[] };
    expect(result.outcome).toBe("passed");
    expect(result.checks.map((c) => [c.check, c.ok])).toEqual([["sha256", true], ["toc", true], ["restore", true], ["tables", true]]);
    expect(result.checks[0]!.detail).toContain("all 3 archives of the set");
  });

  it("through S3, a part whose stored bytes changed is refused as it streams: no data committed, the part named", async () => {
    const prefix = unique("parbad");
    const store = new S3Store({ bucket: s3().bucket, prefix, endpoint: s3().endpoint, region: s3().region }, s3Client());
    const m = await backup(store, "parbad");
    const orders = m.parts!.find((p) => p.table === "public.orders")!;
    const Key = `${prefix}/${orders.key}`;
    const original = Buffer.from(await (await s3Client().send(new GetObjectCommand({ Bucket: s3().bucket, Key }))).Body!.transformToByteArray());
    // near the end (pg_restore waits for the held-back last bytes), and in its header (pg_restore fails before the
    // part is read to its end: the rest is read to tell a changed part from a pg_restore failure)
    for (const at of [original.length - 3, 1]) {
      const changed = Buffer.from(original);
      changed[at] = changed[at]! ^ 0xff;
      await s3Client().send(new PutObjectCommand({ Bucket: s3().bucket, Key, Body: changed }));
      const target = unique("parbad_restored");
      await createDatabase(target);
      const res = await cli(["restore", "--from", `s3://${s3().bucket}/${prefix}`, "--to", url(target), "--jobs", "2", "--json"]);
      expect(res.code, res.stderr).toBe(1);
      const error = JSON.parse(res.stdout).error as string;
      expect(error).toContain(`checksum mismatch for s3://${s3().bucket}/${Key}`);
      expect(error).toContain("no data of this backup was committed");
      expect(res.stderr).toContain("the data parts are checked as they stream into pg_restore");
      // not one row was committed, and what the restore created (its schema, committed first; the large object)
      // was dropped again: the database is as empty as it was, and the same command can run again
      expect(error).toContain("the target database was returned to empty");
      expect(await emptiness(target)).toEqual(EMPTY);
      expect(await query(conn(), `select count(*) from pg_stat_activity where datname = '${target}'`)).toEqual([["0"]]);
    }
  });

  it("through S3, a restore stopped while a part still streams (SIGTERM's signal) commits no data and leaves no pg_restore", async () => {
    const prefix = unique("parstop");
    const store = new S3Store({ bucket: s3().bucket, prefix, endpoint: s3().endpoint, region: s3().region }, s3Client());
    const m = await backup(store, "parstop");
    const last = m.parts![m.parts!.length - 1]!.key;
    // the last part stalls after its first bytes: every other part is read and held, waiting for it
    const get = store.get.bind(store);
    let stalled!: () => void;
    const reached = new Promise<void>((r) => (stalled = r));
    store.get = async (key: string) => {
      const body = await get(key);
      if (key !== last) return body;
      body.destroy();
      stalled();
      const stuck = new Readable({ read() {} });
      stuck.push(Buffer.from("PGDMP")); // then nothing more, ever
      return stuck;
    };
    const target = unique("parstop_restored");
    await createDatabase(target);
    const stop = new AbortController();
    const restoring = restoreBackup({ store, manifest: m, to: conn(target), jobs: 2, signal: stop.signal });
    await reached;
    await new Promise((r) => setTimeout(r, 1000));
    stop.abort(new Error("SIGTERM"));
    await expect(restoring).rejects.toThrow(/returned to empty/);
    expect(await emptiness(target)).toEqual(EMPTY);
    expect(await query(conn(), `select count(*) from pg_stat_activity where datname = '${target}'`)).toEqual([["0"]]);
  });

  it("through a directory store: listed as one backup, restored in place, pruned whole", async () => {
    const dir = tempDir("lifeboat-par-");
    const m = await backup(new DirectoryStore(dir), "pardir");
    const listed = await cli(["list", "--from", pathToFileURL(dir).href, "--json"]);
    const backups = JSON.parse(listed.stdout).backups as { id: string; size: number; parts?: number }[];
    expect(backups).toEqual([expect.objectContaining({ id: m.id, size: backupObjects(m).reduce((n, o) => n + o.size, 0), parts: 2 })]);

    const target = unique("pardir_restored");
    await createDatabase(target);
    const res = await cli(["restore", "--from", pathToFileURL(dir).href, "--to", url(target), "--json"]);
    expect(res.code, res.stderr).toBe(0);
    expect(await query(conn(target), 'select count(*) from "Events ""raw"""')).toEqual([["20000"]]);

    // into a database that is not empty, a set is refused before anything is read (exit 2)
    const busy = unique("pardir_busy");
    await createDatabase(busy, "create table keep(x int);");
    const refused = await cli(["restore", "--from", pathToFileURL(dir).href, "--to", url(busy), "--json"]);
    expect(refused.code).toBe(2);
    expect(JSON.parse(refused.stdout).error).toContain("is a parallel backup set (3 archives): it restores into an empty database only");

    const second = await backup(new DirectoryStore(dir), "pardir");
    const pruned = await cli(["prune", "--from", pathToFileURL(dir).href, "--keep-last", "1", "--json"]);
    expect(pruned.code, pruned.stderr).toBe(0);
    for (const o of backupObjects(m)) expect(existsSync(join(dir, o.key))).toBe(false);
    for (const o of backupObjects(second)) expect(existsSync(join(dir, o.key))).toBe(true);
  });

  it("a part that fails stops the others and leaves nothing in the store: no manifest, no part", async () => {
    const dir = tempDir("lifeboat-par-fail-");
    const real = new DirectoryStore(dir);
    // the store refuses the second part half way through, as a full disk or a network failure would
    const failing: ObjectStore = Object.assign(Object.create(real) as DirectoryStore, {
      put: async (key: string, body: Readable, opts?: { signal?: AbortSignal }) => {
        if (!key.includes(".part-002")) return real.put(key, body, opts);
        const broken = Readable.from(
          (async function* () {
            let n = 0;
            for await (const chunk of body) {
              yield chunk as Buffer;
              if ((n += (chunk as Buffer).length) > 100_000) throw new Error("disk full (injected)");
            }
          })(),
        );
        return real.put(key, broken, opts);
      },
    });
    await expect(runBackup({ target: "parfail", resolveSource: async () => conn(db), store: failing, dump: dump(), retries: retriesSchema.parse({ attempts: 1 }) })).rejects.toThrow(/disk full \(injected\)/);
    expect(await listBackups(real)).toEqual([]);
    const files = readdirSync(dir, { recursive: true }).map(String).filter((f) => /\.(dump|json)$/.test(f) || f.includes(".partial-"));
    expect(files, JSON.stringify(files)).toEqual([]);
  });

  it("lifeboat run --jobs overrides the target's dump.jobs (1: one archive) and refuses what is out of range", async () => {
    const dir = tempDir("lifeboat-par-cli-");
    const file = join(dir, "lifeboat.config.ts");
    writeFileSync(
      file,
      `export default ${JSON.stringify({
        storage: { directory: join(dir, "store") },
        targets: { app: { database: { host: pg().host, port: pg().port, database: db, user: "postgres", password: { env: "PW" } }, dump: { jobs: 3, parallelMinTableMB: 0.5 }, retries: { attempts: 1 } } },
      })};`,
    );
    const env = { env: { PW: pg().password } };
    const set = await cli(["run", "app", "--config", file, "--json"], env);
    expect(set.code, set.stderr).toBe(0);
    expect((JSON.parse(set.stdout).manifest as Manifest).parts).toHaveLength(2);
    const one = await cli(["run", "app", "--config", file, "--jobs", "1", "--json"], env);
    expect(one.code, one.stderr).toBe(0);
    expect((JSON.parse(one.stdout).manifest as Manifest).parts).toBeUndefined();
    const bad = await cli(["run", "app", "--config", file, "--jobs", "0", "--json"], env);
    expect(bad.code).toBe(2);
    expect(JSON.parse(bad.stdout).error).toContain("--jobs must be a whole number from 1 to 16");
  });

  it("dumps with schema or table filters stay one archive", async () => {
    const store = new DirectoryStore(tempDir("lifeboat-par-filter-"));
    const r = await runBackup({ target: "parf", resolveSource: async () => conn(db), store, dump: dumpSchema.parse({ jobs: 3, parallelMinTableMB: 0.5, excludeTables: ["tiny"] }), retries: retriesSchema.parse({ attempts: 1 }) });
    expect(r.manifest.parts).toBeUndefined();
    expect(r.manifest.manifestVersion).toBe(1);
  });
});

describe("one exported snapshot for every archive of a set", () => {
  it("value moved between two tables, dumped as two parts, while the set is being dumped: the restore keeps the invariant", async () => {
    const src = unique("snap");
    const rows = 60_000;
    // two tables of their own parts (about 8 MB each); every row of both starts with 100: the sum is 2 x rows x 100
    await createDatabase(
      src,
      `create table a(id int primary key, bal int not null, filler text); create table b(id int primary key, bal int not null, filler text);
       insert into a select g, 100, repeat(md5(g::text), 4) from generate_series(1, ${rows}) g;
       insert into b select g, 100, repeat(md5((g * 7)::text), 4) from generate_series(1, ${rows}) g;`,
    );
    const total = 2 * rows * 100;
    const { Client } = await import("pg");
    const mover = new Client({ host: pg().host, port: pg().port, user: pg().user, password: pg().password, database: src });
    await mover.connect();
    let dumping = false;
    let movedWhileDumping = 0;
    let moved = 0;
    let stop = false;
    // each transaction moves 1 from a row of a to the same row of b, and commits
    const moving = (async () => {
      for (let i = 0; !stop; i++) {
        const id = 1 + (i % rows);
        await mover.query("begin");
        await mover.query("update a set bal = bal - 1 where id = $1", [id]);
        await mover.query("update b set bal = bal + 1 where id = $1", [id]);
        await mover.query("commit");
        moved++;
        if (dumping) movedWhileDumping++;
      }
    })();
    while (moved < 5) await new Promise((r) => setTimeout(r, 10)); // some moves before the snapshot, more during the dump
    const dir = tempDir("lifeboat-snap-");
    try {
      const r = await runBackup({
        target: "snap",
        resolveSource: async () => conn(src),
        store: new DirectoryStore(dir),
        dump: dumpSchema.parse({ jobs: 3, parallelMinTableMB: 1, compression: 0 }),
        retries: retriesSchema.parse({ attempts: 1 }),
        log: { log: (_l, msg) => void (msg === "pg_dump started" && (dumping = true)) },
      });
      expect(r.manifest.parts!.map((p) => p.table).sort()).toEqual(["public.a", "public.b"]);
    } finally {
      stop = true;
      await moving;
      await mover.end();
    }
    // the writes really overlapped the dump (else the check below could not fail)
    expect(movedWhileDumping).toBeGreaterThan(10);
    const [[live]] = (await query(conn(src), "select (select sum(bal) from a) + (select sum(bal) from b);")) as [[string]];
    expect(Number(live)).toBe(total);
    const target = unique("snap_restored");
    await createDatabase(target);
    const res = await cli(["restore", "--from", `file://${dir}`, "--to", url(target), "--json"]);
    expect(res.code, res.stderr).toBe(0);
    const [[restored, movedRows]] = (await query(conn(target), "select (select sum(bal) from a) + (select sum(bal) from b), (select count(*) from a where bal < 100);")) as [[string, string]];
    expect(Number(restored)).toBe(total);
    expect(Number(movedRows)).toBeGreaterThan(0); // the snapshot caught some moves: both sides of each, never one
  }, 120_000);
});
