import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { PutObjectCommand } from "@aws-sdk/client-s3";
import { beforeAll, describe, expect, it } from "vitest";
import { query } from "@lifeboat/runner";
import { cli, conn, createDatabase, s3, s3Client, unique, url, tempDir } from "./support/helpers.js";

let db: string;

beforeAll(async () => {
  db = unique("orig");
  await createDatabase(db, "create table accounts(id int primary key, balance numeric); insert into accounts select g, g * 10 from generate_series(1, 500) g;");
});

async function backup(store: string, name = "orig") {
  const res = await cli(["run", "--db", url(db), "--to", store, "--name", name, "--json"]);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout).manifest as { id: string; object: { key: string; sha256: string; size: number } };
}

async function tablesIn(database: string): Promise<string[][]> {
  return query(conn(database), "select table_name from information_schema.tables where table_schema = 'public' order by 1;");
}

describe("restore refuses a corrupted object", () => {
  it("directory store: one flipped byte gives a checksum error and the target database stays untouched", async () => {
    const dir = tempDir("lifeboat-corrupt-");
    const store = pathToFileURL(dir).href;
    const m = await backup(store);
    const file = join(dir, m.object.key);
    const bytes = readFileSync(file);
    bytes[Math.floor(bytes.length / 2)]! ^= 0xff;
    writeFileSync(file, bytes);

    const target = unique("target");
    await createDatabase(target, "create table sentinel(x int); insert into sentinel values (42);");
    const res = await cli(["restore", "--from", store, "--backup", m.id, "--to", url(target)]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain(`checksum mismatch for ${pathToFileURL(file).href}`);
    expect(res.stderr).toContain(`the manifest says sha256 ${m.object.sha256}`);
    expect(res.stderr).toContain("nothing was restored");
    expect(await tablesIn(target)).toEqual([["sentinel"]]);
    expect(await query(conn(target), "select x from sentinel")).toEqual([["42"]]);
  });

  it("S3: an object replaced behind Lifeboat's back is refused the same way", async () => {
    const prefix = unique("corrupt");
    const store = `s3://${s3().bucket}/${prefix}`;
    const m = await backup(store);
    await s3Client().send(new PutObjectCommand({ Bucket: s3().bucket, Key: `${prefix}/${m.object.key}`, Body: "not a dump" }));
    const target = unique("target");
    await createDatabase(target);
    const res = await cli(["restore", "orig", "--from", store, "--to", url(target), "--json"]);
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout).error).toMatch(/checksum mismatch .* \(10 bytes\)/);
    expect(await tablesIn(target)).toEqual([]);
  });
});

describe("list", () => {
  it("lists only backups with a manifest, newest first, with id, time, size, SHA-256 and format", async () => {
    const dir = tempDir("lifeboat-list-");
    const store = pathToFileURL(dir).href;
    const first = await backup(store);
    await new Promise((r) => setTimeout(r, 1100)); // ids have one-second resolution
    const second = await backup(store);
    // a dump without a manifest (an interrupted run, a stray upload) does not exist for list
    writeFileSync(join(dir, first.object.key.replace(first.id, "20991231T000000Z-dead")), "stray");
    const other = await backup(store, "other");

    const json = await cli(["list", "--from", store, "--json"]);
    expect(json.code, json.stderr).toBe(0);
    const listed = JSON.parse(json.stdout).backups as Array<Record<string, unknown>>;
    expect(listed.map((b) => b.id)).toEqual([other.id, second.id, first.id]);
    expect(listed[1]).toMatchObject({ target: "orig", size: second.object.size, sha256: second.object.sha256, format: "custom" });

    const onlyOrig = await cli(["list", "orig", "--from", store]);
    expect(onlyOrig.code).toBe(0);
    const lines = onlyOrig.stdout.trim().split("\n");
    expect(lines[0]).toMatch(/^ID\s+TARGET\s+STARTED \(UTC\)\s+SIZE\s+FORMAT\s+DRILL\s+SHA-256$/);
    expect(lines.slice(1).map((l) => l.split(/\s+/)[0])).toEqual([second.id, first.id]);
    expect(lines[1]).toContain(second.object.sha256);
    expect(onlyOrig.stdout).not.toContain("dead");
  });

  it("an empty store says so", async () => {
    const dir = tempDir("lifeboat-empty-");
    const res = await cli(["list", "--from", pathToFileURL(dir).href]);
    expect(res.code).toBe(0);
    expect(res.stdout).toContain("no backups in file://");
  });

  it("restore of an unknown backup id names the newest ones", async () => {
    const dir = tempDir("lifeboat-unknown-");
    const m = await backup(pathToFileURL(dir).href);
    const res = await cli(["restore", "--from", pathToFileURL(dir).href, "--backup", "20200101T000000Z-0000", "--to", url("postgres")]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('no backup "20200101T000000Z-0000"');
    expect(res.stderr).toContain(m.id);
  });
});
