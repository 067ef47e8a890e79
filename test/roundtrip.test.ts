import { readdirSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { manifestSchema } from "@lifeboat/core";
import { fingerprint, query } from "@lifeboat/runner";
import { sampleDatabaseSql } from "@lifeboat/cli";
import { cli, conn, createDatabase, pg, s3, s3Keys, unique, url, tempDir } from "./support/helpers.js";

/** Backup with `lifeboat run`, restore with `lifeboat restore` into a new database, compare schema and data. */
let source: string;
let sourceFingerprint: Awaited<ReturnType<typeof fingerprint>>;

beforeAll(async () => {
  source = unique("shop");
  const c = await createDatabase(source, sampleDatabaseSql(1));
  sourceFingerprint = await fingerprint(c);
});

async function roundTrip(store: string, extra: string[] = []) {
  const run = await cli(["run", "--db", url(source), "--to", store, "--name", "shop", "--json", ...extra]);
  expect(run.code, run.stderr).toBe(0);
  const result = JSON.parse(run.stdout);
  expect(result.status).toBe("succeeded");
  const manifest = manifestSchema.parse(result.manifest);

  const target = unique("restored");
  await createDatabase(target);
  const restore = await cli(["restore", "shop", "--from", store, "--backup", manifest.id, "--to", url(target), "--json"]);
  expect(restore.code, restore.stderr).toBe(0);
  expect(JSON.parse(restore.stdout)).toMatchObject({ status: "restored", backup: manifest.id, sha256: manifest.object.sha256 });

  const restored = await fingerprint(conn(target));
  expect(restored.schema).toBe(sourceFingerprint.schema);
  expect(restored.tables).toEqual(sourceFingerprint.tables);
  expect(restored.tables.map((t) => t.table)).toEqual(["public.customers", "public.order_items", "public.orders", "public.products"]);
  expect(restored.tables.every((t) => t.rows > 0)).toBe(true);
  // no secret in anything the CLI printed, nor in the manifest
  for (const text of [run.stdout, run.stderr, restore.stdout, restore.stderr, JSON.stringify(manifest)]) {
    expect(text).not.toContain(pg().password);
  }
  return { manifest, result };
}

describe("round trip", () => {
  it("through the S3 API (custom format), with the documented key layout and manifest", async () => {
    const prefix = unique("rt");
    const { manifest, result } = await roundTrip(`s3://${s3().bucket}/${prefix}`);
    expect(manifest.object.key).toMatch(/^shop\/\d{4}\/\d{2}\/\d{2}\/\d{8}T\d{6}Z-[0-9a-f]{4}\.dump$/);
    expect(manifest.id).toBe(manifest.object.key.split("/").pop()!.replace(".dump", ""));
    // the documented default of the pg_dump that ran: gzip:1 before 16, zstd:3 from 16 on
    expect(manifest).toMatchObject({ target: "shop", format: "custom", compression: manifest.pgDump.major >= 16 ? "zstd:3" : "gzip:1", trigger: "manual", attempt: 1 });
    expect(manifest.database).toMatchObject({ name: source, host: "127.0.0.1", port: pg().port });
    expect(manifest.database.serverVersionNum).toBeGreaterThanOrEqual(100000);
    expect(manifest.pgDump.major).toBeGreaterThanOrEqual(Math.floor(manifest.database.serverVersionNum / 10000));
    expect(result.location).toBe(`s3://${s3().bucket}/${prefix}/${manifest.object.key}`);
    expect(await s3Keys(prefix + "/")).toEqual([`${prefix}/${manifest.object.key}`, `${prefix}/${manifest.object.key.replace(".dump", ".manifest.json")}`]);
  });

  it("through a directory store (plain format, gzip), leaving no temporary files", async () => {
    const dir = tempDir("lifeboat-dir-");
    const { manifest } = await roundTrip(pathToFileURL(dir).href, ["--format", "plain", "--compression", "5"]);
    expect(manifest.format).toBe("plain");
    expect(manifest.object.key.endsWith(".sql.gz")).toBe(true);
    const day = join(dir, ...manifest.object.key.split("/").slice(0, -1));
    expect(readdirSync(day).sort()).toEqual([`${manifest.id}.manifest.json`, `${manifest.id}.sql.gz`]);
    expect(JSON.parse(readFileSync(join(day, `${manifest.id}.manifest.json`), "utf8"))).toEqual(manifest);
  });

  it("plain format without compression restores through psql", async () => {
    const dir = tempDir("lifeboat-dir-");
    const { manifest } = await roundTrip(pathToFileURL(dir).href, ["--format", "plain", "--compression", "0"]);
    expect(manifest.object.key.endsWith(".sql")).toBe(true);
    expect(readFileSync(join(dir, manifest.object.key), "utf8")).toContain("CREATE TABLE public.customers");
  });

  it("refuses to restore into the database the backup was taken from, unless --force", async () => {
    const dir = tempDir("lifeboat-dir-");
    const store = pathToFileURL(dir).href;
    const db = unique("self");
    await createDatabase(db, "create table t(id int); insert into t values (1);");
    expect((await cli(["run", "--db", url(db), "--to", store, "--name", "self"])).code).toBe(0);
    const refused = await cli(["restore", "--from", store, "--to", url(db)]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("it is the database this backup was taken from");
    expect(refused.stderr).toContain("--force");
    expect(await query(conn(db), "select count(*) from t")).toEqual([["1"]]);
    // with --force it goes ahead; the table already exists, so the single-transaction restore fails and changes nothing
    const forced = await cli(["restore", "--from", store, "--to", url(db), "--force"]);
    expect(forced.code).toBe(1);
    expect(forced.stderr).toMatch(/already exists/);
    expect(await query(conn(db), "select count(*) from t")).toEqual([["1"]]);
  });
});
