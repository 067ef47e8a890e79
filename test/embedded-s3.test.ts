import { createHash, randomBytes } from "node:crypto";
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, DeleteObjectCommand, GetObjectCommand, UploadPartCommand } from "@aws-sdk/client-s3";
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
});
