import { chmodSync, readFileSync, readdirSync, symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { LocalEventBus, manifestSchema, type LifeboatEvent } from "@lifeboat/core";
import { DirectoryStore, findBackup, findTool, fingerprint, query, verifyBackup } from "@lifeboat/runner";
import { cli, conn, createDatabase, unique, url, tempDir } from "./support/helpers.js";
import { HARD_FIXTURE_SQL } from "./support/hard-fixture.js";

let source: string;
let source_fp: Awaited<ReturnType<typeof fingerprint>>;
let dir: string;
let store: string;
let manifest: ReturnType<typeof manifestSchema.parse>;

beforeAll(async () => {
  source = unique("hard");
  await createDatabase(source, HARD_FIXTURE_SQL);
  source_fp = await fingerprint(conn(source));
  dir = tempDir("lifeboat-drill-");
  store = pathToFileURL(dir).href;
  const run = await cli(["run", "--db", url(source), "--to", store, "--name", "hard", "--json"]);
  expect(run.code, run.stderr).toBe(0);
  manifest = manifestSchema.parse(JSON.parse(run.stdout).manifest);
});

describe("the manifest records exact expectations", () => {
  it("row counts of every dumped table, taken in the dump's own snapshot, and the archive's TOC summary", () => {
    expect(manifest.snapshot).toMatch(/^[0-9A-F]+-[0-9A-F]+-\d+$/);
    expect(manifest.tables).toEqual([
      { name: '"Ünïcødé Schéma"."Tâble ""quoted"""', rows: 3 },
      { name: "billing.invoices", rows: 600 },
      { name: "public.events_2025", rows: 213 }, // 2025-06-02 .. 2025-12-31
      { name: "public.events_2026", rows: 187 },
    ]);
    expect(manifest.toc!.byType).toMatchObject({ "TABLE DATA": 4, "MATERIALIZED VIEW DATA": 1, EXTENSION: 3, BLOB: 2, POLICY: 1, TRIGGER: 1, "SEQUENCE SET": 2, "TABLE ATTACH": 2 });
    expect(manifest.rowCountMs).toBeGreaterThanOrEqual(0);
  });
});

describe("restore of the hard fixture", () => {
  /** A pg_restore that records its arguments, then runs the real one: proves what reaches the process. */
  async function spyBinDir(): Promise<{ dir: string; calls: () => string[][] }> {
    const real = await findTool("pg_restore");
    const bin = tempDir("lifeboat-spy-");
    for (const f of readdirSync(dirname(real.path))) if (f !== "pg_restore") symlinkSync(join(dirname(real.path), f), join(bin, f));
    const log = join(bin, "calls.log");
    writeFileSync(log, "");
    writeFileSync(join(bin, "pg_restore"), `#!/bin/sh\nprintf '%s\\0' "$@" >> ${log}\nprintf '\\n' >> ${log}\nexec ${real.path} "$@"\n`);
    chmodSync(join(bin, "pg_restore"), 0o755);
    return {
      dir: bin,
      calls: () => readFileSync(log, "utf8").split("\n").filter(Boolean).map((l) => l.split("\0").filter(Boolean)).filter((a) => !a.includes("--version")),
    };
  }

  it("parallel (--jobs 2) and single-job restores are both identical to the source, and --jobs reaches pg_restore", async () => {
    const spy = await spyBinDir();
    const parallel = unique("hard_par");
    const single = unique("hard_one");
    await createDatabase(parallel);
    await createDatabase(single);
    const a = await cli(["restore", "--from", store, "--to", url(parallel), "--jobs", "2", "--json"], { env: { LIFEBOAT_PG_BINDIR: spy.dir } });
    expect(a.code, a.stderr).toBe(0);
    expect(JSON.parse(a.stdout)).toMatchObject({ status: "restored", jobs: 2 });
    const b = await cli(["restore", "--from", store, "--to", url(single), "--jobs", "1", "--json"], { env: { LIFEBOAT_PG_BINDIR: spy.dir } });
    expect(b.code, b.stderr).toBe(0);
    const restores = spy.calls().filter((args) => args.some((x) => x.startsWith("--dbname=")));
    expect(restores).toHaveLength(2);
    expect(restores[0]).toContain("--jobs=2");
    expect(restores[0]).not.toContain("--single-transaction");
    expect(restores[1]).toContain("--single-transaction");
    expect(restores[1]!.some((x) => x.startsWith("--jobs"))).toBe(false);

    const [fpa, fpb] = [await fingerprint(conn(parallel)), await fingerprint(conn(single))];
    for (const fp of [fpa, fpb]) {
      expect(fp.schema).toBe(source_fp.schema);
      expect(fp.tables).toEqual(source_fp.tables);
      expect(fp.sequences).toEqual(source_fp.sequences);
      expect(fp.largeObjects).toEqual(source_fp.largeObjects);
    }
    expect(source_fp.largeObjects.count).toBe(2);
    expect(source_fp.sequences).toContainEqual({ sequence: "billing.invoice_number", lastValue: "1834" });
    expect(source_fp.schema).toContain("CREATE POLICY customer_sees_own");
    expect(source_fp.schema).toContain('CREATE TABLE "Ünïcødé Schéma"."Tâble ""quoted"""');
  });

  it("into a database that already holds objects, the restore runs in one transaction (no parallel jobs)", async () => {
    const busy = unique("hard_busy");
    await createDatabase(busy, "create table keep_me(x int);");
    const res = await cli(["restore", "--from", store, "--to", url(busy), "--jobs", "2", "--json"]);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).jobs).toBe(1);
    expect(res.stderr).toContain("the target database is not empty");
  });
});

describe("lifeboat verify", () => {
  it("passes for a good backup: sha256, TOC, restore into a throwaway cluster, every row count", async () => {
    const res = await cli(["verify", "--from", store, "--json"]);
    expect(res.code, res.stderr).toBe(0);
    const result = JSON.parse(res.stdout);
    expect(result).toMatchObject({ outcome: "passed", backupId: manifest.id, server: { where: "throwaway" } });
    expect(result.checks.map((c: { check: string; ok: boolean }) => [c.check, c.ok])).toEqual([
      ["sha256", true],
      ["toc", true],
      ["restore", true],
      ["tables", true],
    ]);
    // stored beside the manifest, one object per drill: <id>.<time>.verify.json
    const stamp = (result.verifiedAt as string).replace(/[-:.]/g, "");
    const stored = JSON.parse(readFileSync(join(dir, manifest.object.key.replace(/[^/]+$/, `${manifest.id}.${stamp}.verify.json`)), "utf8"));
    expect(stored.outcome).toBe("passed");
    // and list shows it
    const listed = JSON.parse((await cli(["list", "--from", store, "--json"])).stdout).backups;
    expect(listed[0]).toMatchObject({ id: manifest.id, drill: { outcome: "passed", verifiedAt: stored.verifiedAt } });
    expect((await cli(["list", "--from", store])).stdout.split("\n")[1]).toMatch(new RegExp(`^${manifest.id}\\s+hard\\s+.*custom\\s+passed\\s+[0-9a-f]{64}$`));
  });

  it("into a scratch database on a named server, which is dropped afterwards; the event says backup.verified", async () => {
    const events: LifeboatEvent[] = [];
    const bus = new LocalEventBus();
    bus.subscribe((e) => void events.push(e));
    const s = new DirectoryStore(dir);
    const result = await verifyBackup({ store: s, manifest: await findBackup(s, "hard", manifest.id), scratch: conn("postgres"), bus });
    expect(result.outcome).toBe("passed");
    expect(result.server.where).toBe("scratch");
    expect(await query(conn("postgres"), "select count(*) from pg_database where datname like 'lifeboat_verify_%';")).toEqual([["0"]]);
    expect(events).toHaveLength(1);
    expect(events[0]).toMatchObject({ type: "backup.verified", status: "succeeded", target: "hard", verification: { backupId: manifest.id, tables: 4, failures: [] } });
  });

  it("catches a tampered object (exit 1, sha256 check failed, backup.verify_failed)", async () => {
    const tdir = tempDir("lifeboat-tamper-");
    const tstore = pathToFileURL(tdir).href;
    const run = await cli(["run", "--db", url(source), "--to", tstore, "--name", "hard", "--json"]);
    const m = JSON.parse(run.stdout).manifest;
    const file = join(tdir, m.object.key);
    const bytes = readFileSync(file);
    bytes[bytes.length - 100]! ^= 0x01;
    writeFileSync(file, bytes);
    const res = await cli(["verify", "hard", "--from", tstore, "--json"]);
    expect(res.code).toBe(1);
    const result = JSON.parse(res.stdout);
    expect(result.outcome).toBe("failed");
    expect(result.checks).toEqual([{ check: "sha256", ok: false, detail: expect.stringContaining("checksum mismatch") }]);
  });

  it("catches a dump whose row counts do not match its manifest", async () => {
    const tdir = tempDir("lifeboat-counts-");
    const tstore = pathToFileURL(tdir).href;
    const run = await cli(["run", "--db", url(source), "--to", tstore, "--name", "hard", "--json"]);
    const m = JSON.parse(run.stdout).manifest;
    const manifestFile = join(tdir, m.object.key.replace(/\.dump$/, ".manifest.json"));
    const edited = JSON.parse(readFileSync(manifestFile, "utf8"));
    edited.tables[1].rows = 601; // the archive holds 600 invoices
    edited.tables.push({ name: "billing.ghost", rows: 1 });
    writeFileSync(manifestFile, JSON.stringify(edited));
    const res = await cli(["verify", "--from", tstore, "--json"]);
    expect(res.code).toBe(1);
    const result = JSON.parse(res.stdout);
    expect(result.checks.find((c: { check: string }) => c.check === "tables")).toEqual({
      check: "tables",
      ok: false,
      detail: "billing.invoices has 600 rows, the manifest says 601; billing.ghost is missing (manifest: 1 rows)",
    });
    expect(result.mismatches).toEqual([
      { table: "billing.invoices", expected: 601, actual: 600 },
      { table: "billing.ghost", expected: 1, actual: null },
    ]);
  });
});
