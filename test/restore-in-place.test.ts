import { appendFileSync, readdirSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { DirectoryStore, findBackup, query, restoreBackup, verifiedDump } from "@lifeboat/runner";
import { cli, conn, createDatabase, tempDir, unique, url } from "./support/helpers.js";

/** A directory store's dump is checked and restored where it lies: no copy, and no file that changed in between. */
let db: string;
let dir: string;
beforeAll(async () => {
  db = unique("inplace");
  await createDatabase(db, Array.from({ length: 4 }, (_, i) => `create table t${i}(id int primary key, v text); insert into t${i} select g, md5(g::text) from generate_series(1, 2000) g;`).join("\n"));
  dir = tempDir("lifeboat-inplace-");
  const res = await cli(["run", "--db", url(db), "--to", pathToFileURL(dir).href, "--name", "inplace", "--json"]);
  expect(res.code, res.stderr).toBe(0);
});

const restoreDirs = () => readdirSync(tmpdir()).filter((n) => n.startsWith("lifeboat-restore-")).length;

describe("restore from a directory store", () => {
  it("uses the stored file itself after checking its SHA-256 (no copy)", async () => {
    const store = new DirectoryStore(dir);
    const manifest = await findBackup(store, "inplace", "latest");
    const scratch = tempDir("lifeboat-inplace-scratch-");
    const dump = await verifiedDump(store, manifest, scratch);
    expect(dump.inPlace).toBe(true);
    expect(dump.file).toBe(join(dir, manifest.object.key));
    expect(readdirSync(scratch)).toEqual([]);
    await dump.unchanged();

    const target = unique("inplace_target");
    await createDatabase(target);
    const res = await cli(["restore", "--from", pathToFileURL(dir).href, "--to", url(target), "--json"]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stderr).toContain("checksum verified; restoring from the stored file where it lies");
    expect(await query(conn(target), "select count(*) from t3")).toEqual([["2000"]]);
  });

  it("refuses a file that changes while it is restored, and says so", async () => {
    const copy = tempDir("lifeboat-inplace-changing-");
    const first = await cli(["run", "--db", url(db), "--to", pathToFileURL(copy).href, "--name", "changing", "--json"]);
    expect(first.code, first.stderr).toBe(0);
    const store = new DirectoryStore(copy);
    const manifest = await findBackup(store, "changing", "latest");
    const target = unique("inplace_changed");
    await createDatabase(target);
    // the restore's scratch directories go to a TMPDIR of this test's own (other test files run at the same time)
    const ownTmp = tempDir("lifeboat-inplace-tmp-");
    const savedTmp = process.env.TMPDIR;
    process.env.TMPDIR = ownTmp;
    const before = restoreDirs();
    let touched = false;
    const run = restoreBackup({
      store,
      manifest,
      to: conn(target),
      jobs: 1,
      onProgress: (p) => {
        // a writer appends to the stored dump once the restore has started reading it
        if (p.phase === "restore" && !touched) {
          touched = true;
          appendFileSync(join(copy, manifest.object.key), "tampered");
        }
      },
    });
    await expect(run)
      .rejects.toThrow(/changed while it was being restored: it is no longer the file whose SHA-256 was checked/)
      .finally(() => (savedTmp === undefined ? delete process.env.TMPDIR : (process.env.TMPDIR = savedTmp)));
    expect(touched).toBe(true);
    expect(readdirSync(ownTmp)).toEqual([]);
    expect(before).toBe(0);
  });

  it("a file already changed before the restore fails the checksum, and the target stays untouched", async () => {
    const copy = tempDir("lifeboat-inplace-tampered-");
    const first = await cli(["run", "--db", url(db), "--to", pathToFileURL(copy).href, "--name", "tampered", "--json"]);
    expect(first.code, first.stderr).toBe(0);
    const m = JSON.parse(first.stdout).manifest as { object: { key: string } };
    appendFileSync(join(copy, m.object.key), "x");
    const target = unique("inplace_untouched");
    await createDatabase(target);
    const res = await cli(["restore", "--from", pathToFileURL(copy).href, "--to", url(target), "--json"]);
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout).error).toContain("checksum mismatch");
    expect(await query(conn(target), "select count(*) from pg_class where relname = 't0'")).toEqual([["0"]]);
  });
});

describe("restore from S3", () => {
  it("downloads a large dump as parallel ranged GETs, checks it whole, and restores it", async () => {
    const { PutObjectCommand } = await import("@aws-sdk/client-s3");
    const { S3Store, downloadVerified } = await import("@lifeboat/runner");
    const { s3, s3Client } = await import("./support/helpers.js");
    const big = unique("ranged");
    await createDatabase(big, "create extension if not exists pgcrypto; create table b(id int, data bytea); insert into b select g, gen_random_bytes(1000) from generate_series(1, 40000) g;");
    const prefix = unique("ranged");
    const res = await cli(["run", "--db", url(big), "--to", `s3://${s3().bucket}/${prefix}`, "--compression", "none", "--json"]);
    expect(res.code, res.stderr).toBe(0);
    const m = JSON.parse(res.stdout).manifest;
    expect(m.object.size).toBeGreaterThan(48 * 1024 * 1024); // several 16 MiB ranges

    const store = new S3Store({ bucket: s3().bucket, prefix, endpoint: s3().endpoint, region: s3().region }, s3Client());
    const ranges: [number, number][] = [];
    const getRange = store.getRange.bind(store);
    store.getRange = (key, start, end) => (ranges.push([start, end]), getRange(key, start, end));
    const scratch = tempDir("lifeboat-ranged-");
    const d = await downloadVerified(store, m, scratch);
    expect(ranges.length).toBe(Math.ceil(m.object.size / (16 * 1024 * 1024)));
    expect(ranges.map(([a]) => a).sort((x, y) => x - y)[1]).toBe(16 * 1024 * 1024);
    expect(d.file).toBe(join(scratch, "dump"));

    const target = unique("ranged_target");
    await createDatabase(target);
    const restored = await cli(["restore", "--from", `s3://${s3().bucket}/${prefix}`, "--to", url(target), "--json"]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(await query(conn(target), "select count(*), sum(length(data)) from b")).toEqual([["40000", "40000000"]]);

    // an object replaced by one of another size is refused by its checksum, not by a failed range
    await s3Client().send(new PutObjectCommand({ Bucket: s3().bucket, Key: `${prefix}/${m.object.key}`, Body: Buffer.alloc(20 * 1024 * 1024, 1) }));
    await expect(downloadVerified(store, m, tempDir("lifeboat-ranged-"))).rejects.toThrow(/checksum mismatch .* \(20971520 bytes\)/);
  }, 120_000);
});
