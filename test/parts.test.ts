import { describe, expect, it } from "vitest";
import { BackupFailedError, DEFAULT_PART_SIZE, MiB, S3_MAX_OBJECT_SIZE, S3_MAX_PARTS, S3_MIN_PART_SIZE, dumpSchema, dumpSizeBound, partPlan, retriesSchema, type ObjectStore } from "@lifeboat/core";
import { S3Store, runBackup } from "@lifeboat/runner";
import { conn, createDatabase, s3, s3Client, s3PendingUploads, unique } from "./support/helpers.js";

describe("multipart arithmetic", () => {
  it("an ordinary database keeps 8 MiB parts, two in flight", () => {
    expect(partPlan(undefined)).toEqual({ partSize: DEFAULT_PART_SIZE, queueSize: 2, capacity: DEFAULT_PART_SIZE * S3_MAX_PARTS });
    expect(partPlan(dumpSizeBound(10 * 1024 * MiB, true))).toEqual(partPlan(undefined)); // 10 GiB database
  });

  it("the uploads of a parallel set share the memory for parts in flight: one part each of 5 MiB when two or more run at once", () => {
    expect(partPlan(undefined, {}, 1)).toEqual({ partSize: DEFAULT_PART_SIZE, queueSize: 2, capacity: DEFAULT_PART_SIZE * S3_MAX_PARTS });
    expect(partPlan(undefined, {}, 2)).toEqual({ partSize: S3_MIN_PART_SIZE, queueSize: 1, capacity: S3_MIN_PART_SIZE * S3_MAX_PARTS });
    expect(partPlan(undefined, {}, 4)).toEqual({ partSize: S3_MIN_PART_SIZE, queueSize: 1, capacity: S3_MIN_PART_SIZE * S3_MAX_PARTS });
    // a large table's archive still fits: its bound raises the part size
    const big = 200 * 1024 * MiB;
    expect(partPlan(big, {}, 2).capacity).toBeGreaterThanOrEqual(big);
    expect(partPlan(big, {}, 2).queueSize).toBe(1);
  });

  it("any dump up to S3's 5 TiB object limit fits in 10,000 parts; memory stays near 16 MiB of parts in flight", () => {
    for (const gib of [78, 79, 500, 1024, 4096, 5120]) {
      const bytes = gib * 1024 * MiB;
      const plan = partPlan(bytes);
      expect(plan.capacity, `${gib} GiB`).toBeGreaterThanOrEqual(bytes);
      expect(Math.ceil(bytes / plan.partSize)).toBeLessThanOrEqual(S3_MAX_PARTS);
      expect(plan.partSize % MiB).toBe(0);
    }
    expect(partPlan(S3_MAX_OBJECT_SIZE)).toEqual({ partSize: 525 * MiB, queueSize: 1, capacity: 525 * MiB * S3_MAX_PARTS });
    expect(partPlan(78 * 1024 * MiB).queueSize).toBe(2);
    expect(partPlan(100 * 1024 * MiB).queueSize).toBe(1); // 11 MiB parts
  });

  it("the bound from the database's size: twice it compressed, four times uncompressed, never beyond 5 TiB", () => {
    expect(dumpSizeBound(1000, true)).toBe(2000);
    expect(dumpSizeBound(1000, false)).toBe(4000);
    expect(dumpSizeBound(10 * S3_MAX_OBJECT_SIZE, true)).toBe(S3_MAX_OBJECT_SIZE);
  });
});

describe("at small scale: S3's part limit lowered to 6 parts of at least 5 MiB", () => {
  // (with 3, the parts sized from the database's bound hold the whole dump: it would go up in one PutObject, and the
  // test would prove nothing about parts)
  const limits = { maxParts: 6, minPartSize: 5 * MiB };
  const store = (prefix: string) => new S3Store({ bucket: s3().bucket, prefix, limits }, s3Client());
  const backup = (db: string, st: ObjectStore) =>
    runBackup({ target: "parts", resolveSource: async () => conn(db), store: st, dump: dumpSchema.parse({ compression: 0, rowCounts: false }), retries: retriesSchema.parse({ attempts: 1 }) });

  it("a dump too large for fixed parts fits in the parts sized from the database, and fails cleanly without them", async () => {
    const db = unique("parts");
    // about 20 MB of random bytes: a 40 MB dump (bytea as hex), eight parts of 5 MiB
    await createDatabase(db, "create table blobs as select g as id, decode(string_agg(md5(random()::text), ''), 'hex') as b from generate_series(1, 20000) g, generate_series(1, 64) x group by g;");
    const sized = store(unique("sized"));
    const parts: number[] = [];
    // every UploadPart request the client sends, seen by a middleware of its own (what goes over HTTP to the store)
    sized.client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "UploadPartCommand") parts.push((args.input as { PartNumber: number }).PartNumber);
        return next(args);
      },
      { step: "initialize", name: "countParts" },
    );
    const result = await backup(db, sized);
    expect(result.manifest.object.size).toBeGreaterThan(6 * 5 * MiB);
    // a multipart upload did happen (a dump of more than 6 x 5 MiB), in at most 6 parts
    expect(parts.length).toBeGreaterThanOrEqual(2);
    expect(Math.max(...parts)).toBeLessThanOrEqual(6);

    // the same store without the size bound uses fixed 5 MiB parts: the seventh part is refused, nothing is left
    const fixedPrefix = unique("fixed");
    const fixed = store(fixedPrefix);
    const blind: ObjectStore = Object.assign(Object.create(fixed), { put: (key: string, body: never, opts: Record<string, unknown> = {}) => fixed.put(key, body, { ...opts, expectedBytes: undefined }) });
    const err = await backup(db, blind).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupFailedError);
    expect((err as Error).message).toContain("Exceeded 6 parts");
    expect(await s3PendingUploads(fixedPrefix)).toEqual([]);
  });
});
