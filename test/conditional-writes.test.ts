import { Readable } from "node:stream";
import { describe, expect, it } from "vitest";
import { ConditionalWriteFailed, dumpSchema, retriesSchema, type ObjectStore } from "@lifeboat/core";
import { randomBytes } from "node:crypto";
import { S3Client } from "@aws-sdk/client-s3";
import { startEmbeddedS3 } from "@lifeboat/cli";
import { DirectoryStore, S3Store, acquireLease, readObject, replaceJson, runBackup, s3ClientConfig } from "@lifeboat/runner";
import { conn, createDatabase, s3, s3Client, tempDir, unique } from "./support/helpers.js";

/**
 * Write-once history and compare-and-swap records, in both stores: S3 (the local S3 server, which answers
 * If-None-Match and If-Match as S3 does: test/embedded-s3.test.ts) and a directory.
 */
const stores: Array<[string, () => ObjectStore]> = [
  ["S3", () => new S3Store({ bucket: s3().bucket, prefix: unique("cw"), endpoint: s3().endpoint, region: s3().region }, s3Client())],
  ["a directory", () => new DirectoryStore(tempDir("lifeboat-cw-"))],
];
const body = (text: string) => Readable.from([Buffer.from(text)]);
const refused = (p: Promise<unknown>) => p.then(() => undefined, (e: unknown) => e);

describe.each(stores)("conditional writes in %s", (_name, open) => {
  it("ifNoneMatch creates once and never replaces; ifMatch replaces only the version read", async () => {
    const store = open();
    await store.put("t/a.manifest.json", body("first"), { ifNoneMatch: "*" });
    const again = await refused(store.put("t/a.manifest.json", body("second"), { ifNoneMatch: "*" }));
    expect(again).toBeInstanceOf(ConditionalWriteFailed);
    expect((again as ConditionalWriteFailed).reason).toBe("exists");
    expect((await readObject(store, "t/a.manifest.json")).toString()).toBe("first");

    const read = await store.read("t/a.manifest.json");
    expect(read).toMatchObject({ body: Buffer.from("first"), etag: expect.stringMatching(/^".+"$/) });
    const written = await store.put("t/a.manifest.json", body("replaced"), { ifMatch: read!.etag });
    const stale = await refused(store.put("t/a.manifest.json", body("stale"), { ifMatch: read!.etag }));
    expect((stale as ConditionalWriteFailed).reason).toBe("changed");
    expect((await store.read("t/a.manifest.json"))!.etag).toBe(written.etag ?? (await store.read("t/a.manifest.json"))!.etag);
    expect(await store.read("t/none.json")).toBeUndefined();
    expect(((await refused(store.put("t/none.json", body("x"), { ifMatch: read!.etag }))) as ConditionalWriteFailed).reason).toBe("changed");
  });

  it("the run record is replaced by compare-and-swap: concurrent writers each land whole, none blind", async () => {
    const store = open();
    await Promise.all(Array.from({ length: 4 }, (_, n) => replaceJson(store, "t/.lifeboat-last-run.json", { n }, 20)));
    expect(JSON.parse((await readObject(store, "t/.lifeboat-last-run.json")).toString()).n).toBeGreaterThanOrEqual(0);
  });

  it("of eight schedulers taking one lease at once, exactly one holds it", async () => {
    const store = open();
    const results = await Promise.all(Array.from({ length: 8 }, () => acquireLease(store, "t")));
    const taken = results.filter((r) => r.taken);
    expect(taken).toHaveLength(1);
    const holder = (taken[0] as { lease: { record: { holder: string }; release(): Promise<void> } }).lease;
    expect(results.filter((r) => !r.taken).every((r) => !r.taken && r.heldBy.holder === holder.record.holder)).toBe(true);
    await holder.release();
    // given back: the next one takes it
    const next = await acquireLease(store, "t");
    expect(next.taken).toBe(true);
    if (next.taken) await next.lease.release();
  });
});

describe("a stored backup cannot be overwritten", () => {
  it("the runner's store refuses to write over a dump or manifest it stored (If-None-Match), and the bytes stay", async () => {
    const db = unique("cw");
    await createDatabase(db, "create table t as select g from generate_series(1, 100) g;");
    const store = stores[0]![1]();
    const { manifest } = await runBackup({ target: "cw", resolveSource: async () => conn(db), store, dump: dumpSchema.parse({}), retries: retriesSchema.parse({ attempts: 1 }) });
    const before = await readObject(store, manifest.object.key);
    for (const key of [manifest.object.key, manifest.object.key.replace(/\.dump$/, ".manifest.json")]) {
      const err = await refused(store.put(key, body("overwritten"), { ifNoneMatch: "*" }));
      expect(err, key).toBeInstanceOf(ConditionalWriteFailed);
    }
    expect((await readObject(store, manifest.object.key)).equals(before)).toBe(true);
  });
});

describe("an S3-compatible store without conditional writes (501 NotImplemented)", () => {
  it("backups and uploads still land, written without the headers, and the store is named once in a warning", async () => {
    const server = await startEmbeddedS3({ bucket: "plain", withoutConditionalWrites: true });
    try {
      const warnings: string[] = [];
      const client = new S3Client({ ...s3ClientConfig({ bucket: "plain", endpoint: server.endpoint, region: server.region }), credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } });
      const store = new S3Store({ bucket: "plain", endpoint: server.endpoint, region: server.region, log: { log: (_l, msg) => void warnings.push(msg) } }, client);
      const db = unique("cwplain");
      await createDatabase(db, "create table t as select g from generate_series(1, 100) g;");
      const { manifest } = await runBackup({ target: "p", resolveSource: async () => conn(db), store, dump: dumpSchema.parse({}), retries: retriesSchema.parse({ attempts: 1 }) });
      expect(await readObject(store, manifest.object.key.replace(/\.dump$/, ".manifest.json"))).toBeInstanceOf(Buffer);
      // a multipart upload (three 5 MiB parts): completed without the condition
      const big = randomBytes(11 * 1024 * 1024);
      await store.put("p/big.dump", Readable.from([big]), { ifNoneMatch: "*", expectedBytes: big.length });
      expect((await readObject(store, "p/big.dump")).equals(big)).toBe(true);
      expect(warnings).toEqual([`${store.url} does not implement conditional writes (If-None-Match / If-Match): written without them`]);
    } finally {
      await server.stop();
    }
  });
});
