import { createHash, randomBytes } from "node:crypto";
import { AbortMultipartUploadCommand, CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, PutObjectCommand, UploadPartCommand } from "@aws-sdk/client-s3";
import { describe, expect, it } from "vitest";
import { s3, s3Client, s3PendingUploads, unique } from "./support/helpers.js";

/** The local S3 twin (s3rver plus Lifeboat's additions) completes multipart uploads as S3 does. */
describe("embedded S3: CompleteMultipartUpload", () => {
  const Bucket = () => s3().bucket;
  const md5 = (b: Buffer) => createHash("md5").update(b).digest();

  async function upload(Key: string, parts: Buffer[]) {
    const client = s3Client();
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: Bucket(), Key, ContentType: "application/octet-stream" }));
    const etags: string[] = [];
    for (const [i, Body] of parts.entries()) etags.push((await client.send(new UploadPartCommand({ Bucket: Bucket(), Key, UploadId, PartNumber: i + 1, Body }))).ETag!);
    return { client, UploadId: UploadId!, etags };
  }

  it("joins the parts in order, keeps the metadata and gives the ETag S3 gives (MD5 of the parts' MD5s, -N)", async () => {
    const Key = `${unique("twin")}/object.bin`;
    const parts = [randomBytes(5 * 1024 * 1024), randomBytes(5 * 1024 * 1024), randomBytes(1234)];
    const { client, UploadId, etags } = await upload(Key, parts);
    // each part is hashed as it arrives (written through the twin's reused buffers): its ETag is its MD5
    expect(etags).toEqual(parts.map((p) => `"${md5(p).toString("hex")}"`));
    const done = await client.send(new CompleteMultipartUploadCommand({ Bucket: Bucket(), Key, UploadId, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }));
    const expected = `"${createHash("md5").update(Buffer.concat(parts.map(md5))).digest("hex")}-3"`;
    expect(done.ETag).toBe(expected);
    const got = await client.send(new GetObjectCommand({ Bucket: Bucket(), Key }));
    expect(got.ETag).toBe(expected);
    expect(got.ContentType).toBe("application/octet-stream");
    expect(Buffer.from(await got.Body!.transformToByteArray()).equals(Buffer.concat(parts))).toBe(true);
    const ranged = await client.send(new GetObjectCommand({ Bucket: Bucket(), Key, Range: `bytes=${5 * 1024 * 1024 - 10}-${5 * 1024 * 1024 + 9}`, IfMatch: expected }));
    expect(Buffer.from(await ranged.Body!.transformToByteArray()).equals(Buffer.concat(parts).subarray(5 * 1024 * 1024 - 10, 5 * 1024 * 1024 + 10))).toBe(true);
    expect(await s3PendingUploads(Key)).toEqual([]);
    await client.send(new DeleteObjectCommand({ Bucket: Bucket(), Key }));
  });

  it("refuses a part whose ETag does not match (InvalidPart) and keeps the upload pending, nothing stored", async () => {
    const Key = `${unique("twin")}/object.bin`;
    const { client, UploadId, etags } = await upload(Key, [randomBytes(5 * 1024 * 1024), randomBytes(100)]);
    const wrong = { Bucket: Bucket(), Key, UploadId, MultipartUpload: { Parts: [{ ETag: etags[0], PartNumber: 1 }, { ETag: `"${"0".repeat(32)}"`, PartNumber: 2 }] } };
    await expect(client.send(new CompleteMultipartUploadCommand(wrong))).rejects.toMatchObject({ name: "InvalidPart" });
    const missing = { Bucket: Bucket(), Key, UploadId, MultipartUpload: { Parts: [{ ETag: etags[0], PartNumber: 1 }, { ETag: etags[1], PartNumber: 3 }] } };
    await expect(client.send(new CompleteMultipartUploadCommand(missing))).rejects.toMatchObject({ name: "InvalidPart" });
    await expect(client.send(new GetObjectCommand({ Bucket: Bucket(), Key }))).rejects.toMatchObject({ name: "NoSuchKey" });
    expect(await s3PendingUploads(Key)).toEqual([Key]);
    // and the upload still completes with the right list
    await client.send(new CompleteMultipartUploadCommand({ ...wrong, MultipartUpload: { Parts: etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })) } }));
    expect(await s3PendingUploads(Key)).toEqual([]);
    await client.send(new DeleteObjectCommand({ Bucket: Bucket(), Key }));
  });

  const MiB = 1024 * 1024;
  async function complete(client: ReturnType<typeof s3Client>, Key: string, UploadId: string, parts: Array<{ ETag: string; PartNumber: number }>) {
    await client.send(new CompleteMultipartUploadCommand({ Bucket: Bucket(), Key, UploadId, MultipartUpload: { Parts: parts } }));
    const got = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: Bucket(), Key }))).Body!.transformToByteArray());
    expect(await s3PendingUploads(Key)).toEqual([]);
    await client.send(new DeleteObjectCommand({ Bucket: Bucket(), Key }));
    return got;
  }
  async function start(Key: string) {
    const client = s3Client();
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: Bucket(), Key }));
    const put = async (PartNumber: number, Body: Buffer) => (await client.send(new UploadPartCommand({ Bucket: Bucket(), Key, UploadId, PartNumber, Body }))).ETag!;
    return { client, UploadId: UploadId!, put };
  }

  // parts of part 1's size are written in place in one data file; these cases must land whole all the same
  it("stores parts that arrive at once and out of order", async () => {
    const Key = `${unique("twin")}/object.bin`;
    const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(777)];
    const { client, UploadId, put } = await start(Key);
    const first = await put(1, parts[0]!);
    const rest = await Promise.all([put(4, parts[3]!), put(3, parts[2]!), put(2, parts[1]!)]);
    const etags = [first, rest[2]!, rest[1]!, rest[0]!];
    const got = await complete(client, Key, UploadId, etags.map((ETag, i) => ({ ETag, PartNumber: i + 1 })));
    expect(got.equals(Buffer.concat(parts))).toBe(true);
  });

  it("keeps the last upload of a part number, and refuses the earlier one's ETag", async () => {
    const Key = `${unique("twin")}/object.bin`;
    const [a, b1, b2, c] = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(10)];
    const { client, UploadId, put } = await start(Key);
    const ea = await put(1, a);
    const eb1 = await put(2, b1);
    const eb2 = await put(2, b2);
    const ec = await put(3, c);
    const stale = { Bucket: Bucket(), Key, UploadId, MultipartUpload: { Parts: [{ ETag: ea, PartNumber: 1 }, { ETag: eb1, PartNumber: 2 }, { ETag: ec, PartNumber: 3 }] } };
    await expect(client.send(new CompleteMultipartUploadCommand(stale))).rejects.toMatchObject({ name: "InvalidPart" });
    const got = await complete(client, Key, UploadId, [{ ETag: ea, PartNumber: 1 }, { ETag: eb2, PartNumber: 2 }, { ETag: ec, PartNumber: 3 }]);
    expect(got.equals(Buffer.concat([a, b2, c]))).toBe(true);
  });

  it("one part number uploaded twice at once: the object holds exactly the bytes of the upload whose ETag completes it", async () => {
    const Key = `${unique("twin")}/object.bin`;
    const [a, b1, b2, c] = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(10)];
    const { client, UploadId, put } = await start(Key);
    const ea = await put(1, a);
    const [e1, e2] = await Promise.all([put(2, b1), put(2, b2)]);
    const ec = await put(3, c);
    const parts = (e: string) => ({ Bucket: Bucket(), Key, UploadId, MultipartUpload: { Parts: [{ ETag: ea, PartNumber: 1 }, { ETag: e, PartNumber: 2 }, { ETag: ec, PartNumber: 3 }] } });
    // the part kept is the one stored last; the other's ETag is refused
    const won = await client.send(new CompleteMultipartUploadCommand(parts(e1))).then(() => b1, () => client.send(new CompleteMultipartUploadCommand(parts(e2))).then(() => b2));
    const got = Buffer.from(await (await client.send(new GetObjectCommand({ Bucket: Bucket(), Key }))).Body!.transformToByteArray());
    expect(got.equals(Buffer.concat([a, won, c]))).toBe(true);
    expect(await s3PendingUploads(Key)).toEqual([]);
    await client.send(new DeleteObjectCommand({ Bucket: Bucket(), Key }));
  });

  it("completes with a list that skips parts, and with parts of other sizes than part 1", async () => {
    const Key = `${unique("twin")}/object.bin`;
    const parts = [randomBytes(5 * MiB), randomBytes(5 * MiB), randomBytes(5 * MiB)];
    const { client, UploadId, put } = await start(Key);
    const etags = [await put(1, parts[0]!), await put(2, parts[1]!), await put(3, parts[2]!)];
    const skipped = await complete(client, Key, UploadId, [{ ETag: etags[0]!, PartNumber: 1 }, { ETag: etags[2]!, PartNumber: 3 }]);
    expect(skipped.equals(Buffer.concat([parts[0]!, parts[2]!]))).toBe(true);

    const Key2 = `${unique("twin")}/object.bin`;
    const sized = [randomBytes(5 * MiB), randomBytes(6 * MiB), randomBytes(5 * MiB), randomBytes(3)];
    const second = await start(Key2);
    const etags2 = [];
    for (const [i, body] of sized.entries()) etags2.push(await second.put(i + 1, body));
    const got = await complete(second.client, Key2, second.UploadId, etags2.map((ETag, i) => ({ ETag, PartNumber: i + 1 })));
    expect(got.equals(Buffer.concat(sized))).toBe(true);
  });
});

/**
 * Conditional writes, as S3 documents them (User Guide, "Conditional writes"; API reference of PutObject and
 * CompleteMultipartUpload): If-None-Match: * writes only where no object exists (412 PreconditionFailed otherwise),
 * If-Match only over the ETag given (412 when it differs, 404 NoSuchKey when there is no object), a conditional write
 * while another of the same key is in progress is refused with 409 ConditionalRequestConflict. Lifeboat relies on
 * them for write-once history and for its lease.
 */
describe("embedded S3: conditional writes", () => {
  const Bucket = () => s3().bucket;
  const status = (err: unknown) => (err as { $metadata?: { httpStatusCode?: number } }).$metadata?.httpStatusCode;
  const code = (err: unknown) => (err as { name?: string }).name;

  it("PutObject with If-None-Match: * creates once; a second is 412 and the first object stays", async () => {
    const client = s3Client();
    const Key = `${unique("cond")}/once.json`;
    await client.send(new PutObjectCommand({ Bucket: Bucket(), Key, Body: "first", IfNoneMatch: "*" }));
    const err = await client.send(new PutObjectCommand({ Bucket: Bucket(), Key, Body: "second", IfNoneMatch: "*" })).catch((e: unknown) => e);
    expect([status(err), code(err)]).toEqual([412, "PreconditionFailed"]);
    expect(await (await client.send(new GetObjectCommand({ Bucket: Bucket(), Key }))).Body!.transformToString()).toBe("first");
    // anything but * is not implemented by S3
    const other = await client.send(new PutObjectCommand({ Bucket: Bucket(), Key: `${Key}.x`, Body: "x", IfNoneMatch: '"abc"' })).catch((e: unknown) => e);
    expect(status(other)).toBe(501);
  });

  it("CompleteMultipartUpload with If-None-Match: * is refused over an existing object", async () => {
    const client = s3Client();
    const Key = `${unique("cond")}/big.dump`;
    await client.send(new PutObjectCommand({ Bucket: Bucket(), Key, Body: "already here" }));
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: Bucket(), Key }));
    const { ETag } = await client.send(new UploadPartCommand({ Bucket: Bucket(), Key, UploadId, PartNumber: 1, Body: randomBytes(1000) }));
    const err = await client.send(new CompleteMultipartUploadCommand({ Bucket: Bucket(), Key, UploadId, IfNoneMatch: "*", MultipartUpload: { Parts: [{ ETag, PartNumber: 1 }] } })).catch((e: unknown) => e);
    expect(status(err)).toBe(412);
    expect(await (await client.send(new GetObjectCommand({ Bucket: Bucket(), Key }))).Body!.transformToString()).toBe("already here");
    await client.send(new AbortMultipartUploadCommand({ Bucket: Bucket(), Key, UploadId }));
  });

  it("PutObject with If-Match replaces only the version read: 412 on another ETag, 404 where there is none", async () => {
    const client = s3Client();
    const Key = `${unique("cond")}/record.json`;
    const first = await client.send(new PutObjectCommand({ Bucket: Bucket(), Key, Body: "v1" }));
    const second = await client.send(new PutObjectCommand({ Bucket: Bucket(), Key, Body: "v2", IfMatch: first.ETag }));
    expect(second.ETag).not.toBe(first.ETag);
    const stale = await client.send(new PutObjectCommand({ Bucket: Bucket(), Key, Body: "v3", IfMatch: first.ETag })).catch((e: unknown) => e);
    expect(status(stale)).toBe(412);
    const missing = await client.send(new PutObjectCommand({ Bucket: Bucket(), Key: `${Key}.none`, Body: "x", IfMatch: first.ETag })).catch((e: unknown) => e);
    expect([status(missing), code(missing)]).toEqual([404, "NoSuchKey"]);
    expect(await (await client.send(new GetObjectCommand({ Bucket: Bucket(), Key }))).Body!.transformToString()).toBe("v2");
  });

  it("of many conditional creates of one key at once, exactly one succeeds; the others get 412 or 409", async () => {
    const client = s3Client();
    const Key = `${unique("cond")}/race.json`;
    const results = await Promise.allSettled(Array.from({ length: 8 }, (_, n) => client.send(new PutObjectCommand({ Bucket: Bucket(), Key, Body: `writer ${n}`, IfNoneMatch: "*" }))));
    expect(results.filter((r) => r.status === "fulfilled")).toHaveLength(1);
    const refused = results.filter((r): r is PromiseRejectedResult => r.status === "rejected").map((r) => status(r.reason));
    expect(refused.every((s) => s === 412 || s === 409)).toBe(true);
  });
});
