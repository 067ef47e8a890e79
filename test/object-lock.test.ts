// S3 Object Lock on copies (issue 23, item 1): the local S3 server enforces Object Lock as S3 documents it
// (embedded-s3.ts), and a copy with `objectLock` writes every object it holds with that retention, through a single
// PutObject (a manifest) and a multipart upload (a dump of several parts) alike.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { CreateBucketCommand, CreateMultipartUploadCommand, HeadObjectCommand, PutObjectCommand, S3Client, UploadPartCommand } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "@lifeboat/core";
import { S3Store, listBackups } from "@lifeboat/runner";
import { startEmbeddedS3, type EmbeddedS3 } from "@lifeboat/cli";
import { cli, createDatabase, pg, s3, s3Client, tempDir, unique } from "./support/helpers.js";

const DAY = 86_400_000;

describe("the local S3 server's Object Lock, as S3 documents it", () => {
  let server: EmbeddedS3;
  const client = (requestChecksumCalculation: "WHEN_REQUIRED" | "WHEN_SUPPORTED") =>
    Object.assign(
      new S3Client({ endpoint: server.endpoint, region: server.region, forcePathStyle: true, requestChecksumCalculation, credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } }),
      { [Symbol.for("lifeboat.test-client")]: true },
    );
  const lock = (days: number) => ({ ObjectLockMode: "GOVERNANCE" as const, ObjectLockRetainUntilDate: new Date(Date.now() + days * DAY) });
  beforeAll(async () => {
    server = await startEmbeddedS3({ bucket: "plain" });
  });
  afterAll(async () => {
    await server?.stop();
  });

  it("refuses lock headers into a bucket without Object Lock (InvalidRequest), and wants both headers with a future date", async () => {
    // https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html: retention needs a bucket with Object Lock
    await expect(client("WHEN_SUPPORTED").send(new PutObjectCommand({ Bucket: "plain", Key: "a", Body: "x", ...lock(1) }))).rejects.toThrow(/Bucket is missing Object Lock Configuration/);
    await client("WHEN_SUPPORTED").send(new CreateBucketCommand({ Bucket: "locked", ObjectLockEnabledForBucket: true }));
    await expect(client("WHEN_SUPPORTED").send(new PutObjectCommand({ Bucket: "locked", Key: "a", Body: "x", ObjectLockMode: "GOVERNANCE" }))).rejects.toThrow(/must both be supplied/);
    await expect(client("WHEN_SUPPORTED").send(new PutObjectCommand({ Bucket: "locked", Key: "a", Body: "x", ...lock(-1) }))).rejects.toThrow(/retain until date must be in the future/);
  });

  it("a locked write needs Content-MD5 or a checksum header (PutObject, and each part of a locked upload); HeadObject answers the lock", async () => {
    // PutObject's API reference: "The Content-MD5 or x-amz-sdk-checksum-algorithm header is required for any request to
    // upload an object with a retention period configured using Amazon S3 Object Lock."
    await client("WHEN_SUPPORTED").send(new CreateBucketCommand({ Bucket: "locked-2", ObjectLockEnabledForBucket: true }));
    await expect(client("WHEN_REQUIRED").send(new PutObjectCommand({ Bucket: "locked-2", Key: "a", Body: "x", ...lock(1) }))).rejects.toThrow(/Content-MD5 OR x-amz-checksum- HTTP header is required/);
    const { UploadId } = await client("WHEN_REQUIRED").send(new CreateMultipartUploadCommand({ Bucket: "locked-2", Key: "m", ...lock(1) }));
    await expect(client("WHEN_REQUIRED").send(new UploadPartCommand({ Bucket: "locked-2", Key: "m", UploadId, PartNumber: 1, Body: "x" }))).rejects.toThrow(/Content-MD5 OR x-amz-checksum- HTTP header is required/);
    const until = lock(3).ObjectLockRetainUntilDate;
    await client("WHEN_SUPPORTED").send(new PutObjectCommand({ Bucket: "locked-2", Key: "a", Body: "x", ObjectLockMode: "COMPLIANCE", ObjectLockRetainUntilDate: until }));
    const head = await client("WHEN_SUPPORTED").send(new HeadObjectCommand({ Bucket: "locked-2", Key: "a" }));
    expect(head.ObjectLockMode).toBe("COMPLIANCE");
    expect(Math.abs(head.ObjectLockRetainUntilDate!.getTime() - until.getTime())).toBeLessThan(1000);
    // an object written without the headers carries no lock
    await client("WHEN_SUPPORTED").send(new PutObjectCommand({ Bucket: "locked-2", Key: "b", Body: "x" }));
    expect((await client("WHEN_SUPPORTED").send(new HeadObjectCommand({ Bucket: "locked-2", Key: "b" }))).ObjectLockMode).toBeUndefined();
  });
});

describe("a copy with objectLock", () => {
  let dir: string;
  let db: string;
  let prefix: string;
  const bucket = "lifeboat-locked-copies";
  beforeAll(async () => {
    dir = tempDir("lifeboat-lock-");
    db = unique("locked");
    prefix = unique("lock");
    // about 12 MB of random bytes: the dump is uploaded in two parts (multipart), its manifest in one PutObject
    await createDatabase(db, `create table blobs(id int primary key, payload bytea);
      insert into blobs select g, decode(string_agg(md5(g::text || '-' || h::text), ''), 'hex') from generate_series(1, 3000) g, generate_series(1, 256) h group by g;`);
    await s3Client().send(new CreateBucketCommand({ Bucket: bucket, ObjectLockEnabledForBucket: true })).catch((e: Error) => {
      if (e.name !== "BucketAlreadyOwnedByYou") throw e;
    });
  }, 120_000);

  it("lifeboat run writes every object of the copy with the copy's retention (from the write, in its mode); the primary's carry none", async () => {
    const file = join(dir, "lifeboat.config.ts");
    writeFileSync(
      file,
      `export default {
  storage: {
    s3: { bucket: ${JSON.stringify(s3().bucket)}, prefix: ${JSON.stringify(prefix)} },
    copies: [{ name: "vault", s3: { bucket: ${JSON.stringify(bucket)}, prefix: ${JSON.stringify(prefix)} }, retention: "store", objectLock: { mode: "COMPLIANCE", days: 14 } }],
  },
  targets: { app: { database: { host: "127.0.0.1", port: ${pg().port}, database: ${JSON.stringify(db)}, user: ${JSON.stringify(pg().user)}, password: { env: "LOCK_PGPASSWORD" } }, retries: { attempts: 1 } } },
};
`,
    );
    const started = Date.now();
    const run = await cli(["run", "app", "--config", file, "--json"], { env: { LOCK_PGPASSWORD: pg().password } });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).copies).toEqual([expect.objectContaining({ name: "vault", ok: true })]);
    const [backup] = await listBackups(new S3Store({ bucket, prefix }, s3Client()), "app");
    expect(backup!.object.size).toBeGreaterThan(8 * 1024 * 1024);
    const keys: string[] = [];
    for await (const o of new S3Store({ bucket, prefix }, s3Client()).list("app/")) keys.push(`${prefix}/${o.key}`);
    expect(keys.map((k) => k.split(".").slice(1).join("."))).toEqual(expect.arrayContaining(["dump", "manifest.json"]));
    for (const key of keys) {
      const head = await s3Client().send(new HeadObjectCommand({ Bucket: bucket, Key: key }));
      expect(head.ObjectLockMode, key).toBe("COMPLIANCE");
      const until = head.ObjectLockRetainUntilDate!.getTime();
      expect(until, key).toBeGreaterThanOrEqual(started + 14 * DAY - 1000);
      expect(until, key).toBeLessThanOrEqual(Date.now() + 14 * DAY);
      const primary = await s3Client().send(new HeadObjectCommand({ Bucket: s3().bucket, Key: key }));
      expect(primary.ObjectLockMode, key).toBeUndefined();
    }
  }, 180_000);

  it("the config refuses objectLock where Lifeboat cannot set it: a directory copy, another provider's bucket", () => {
    const base = { targets: { a: { database: { url: "postgres://u@db.example.com/a" } } } };
    expect(() => parseConfig({ ...base, storage: { directory: "/srv/b", copies: [{ name: "disk", directory: "/mnt/d", objectLock: { days: 7 } }] } })).toThrow(/objectLock.*a directory copy has none/s);
    const r2 = { name: "r2", s3: { bucket: "acme-vault", endpoint: "https://acct.r2.cloudflarestorage.com", provider: "r2" }, objectLock: { days: 7 } };
    expect(() => parseConfig({ ...base, storage: { directory: "/srv/b", copies: [r2] } })).toThrow(/set by Lifeboat on AWS S3 only, not on r2.*retention: "store"/s);
    // GOVERNANCE by default
    const aws = parseConfig({ ...base, storage: { directory: "/srv/b", copies: [{ name: "vault", s3: { bucket: "acme-vault" }, objectLock: { days: 7 } }] } });
    expect(aws.storage.copies![0]!.objectLock).toEqual({ mode: "GOVERNANCE", days: 7 });
  });
});
