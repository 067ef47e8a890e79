import { createHash, randomBytes } from "node:crypto";
import { PassThrough, Readable } from "node:stream";
import { crc32 } from "node:zlib";
import { DeleteObjectCommand, GetObjectCommand, S3Client, UploadPartCommand } from "@aws-sdk/client-s3";
import { s3ClientConfig } from "@lifeboat/runner";
import { describe, expect, it } from "vitest";
import { uploadStream } from "../packages/runner/src/stores/multipart.js";
import { s3, s3Client, s3Keys, s3PendingUploads, unique } from "./support/helpers.js";

/**
 * uploadStream against the real S3 API (the embedded S3 twin over HTTP): a stream into one object through reused part
 * buffers. 1 MiB parts keep the tests small (the twin, like s3rver, does not enforce S3's 5 MiB minimum).
 */
const MiB = 1024 * 1024;
const sha = (b: Buffer) => createHash("sha256").update(b).digest("hex");

/** `data` as a stream of uneven chunks (as a pipe gives them), so that chunks straddle the parts' edges. */
function chunked(data: Buffer): Readable {
  const chunks: Buffer[] = [];
  for (let at = 0, i = 0; at < data.length; i++) {
    const n = [65536, 1000, 333_333, 7][i % 4]!;
    chunks.push(data.subarray(at, at + n));
    at += n;
  }
  return Readable.from(chunks, { objectMode: false });
}

/** A client that records the UploadPart calls it sends (and can fail one of them, as a store would). */
function recording(failPart?: number): { client: S3Client; parts: number[] } {
  const client = s3Client();
  const parts: number[] = [];
  const send = client.send.bind(client);
  client.send = ((command: unknown, ...rest: unknown[]) => {
    if (command instanceof UploadPartCommand) {
      parts.push(command.input.PartNumber!);
      if (command.input.PartNumber === failPart) return Promise.reject(Object.assign(new Error("We encountered an internal error. Please try again."), { name: "InternalError" }));
    }
    return (send as (...a: unknown[]) => unknown)(command, ...rest);
  }) as typeof client.send;
  return { client, parts };
}

async function stored(Key: string): Promise<Buffer> {
  const got = await s3Client().send(new GetObjectCommand({ Bucket: s3().bucket, Key }));
  return Buffer.from(await got.Body!.transformToByteArray());
}

describe("uploadStream: a stream into one S3 object through reused part buffers", () => {
  it.each([
    ["empty", 0, 0],
    ["smaller than a part (one PutObject)", 1000, 0],
    ["exactly one part", MiB, 1],
    ["exactly three parts", 3 * MiB, 3],
    ["several parts and a short last one", 5 * MiB + 12345, 6],
  ])("%s: stored byte for byte, in the expected parts", async (_what, size, expectedParts) => {
    const prefix = unique("mpu");
    const Key = `${prefix}/object.bin`;
    const data = randomBytes(size);
    const { client, parts } = recording();
    await uploadStream({ client, Bucket: s3().bucket, Key, ContentType: "application/octet-stream", body: chunked(data), partSize: MiB, queueSize: 2, maxParts: 10_000 });
    // parts are reused once acknowledged: a buffer reused too early would show here as changed bytes
    expect(sha(await stored(Key))).toBe(sha(data));
    expect(parts).toEqual(Array.from({ length: expectedParts }, (_, i) => i + 1));
    expect(await s3PendingUploads(prefix)).toEqual([]);
    await s3Client().send(new DeleteObjectCommand({ Bucket: s3().bucket, Key }));
  });

  it("a stream that fails half way: its error, the multipart upload aborted, nothing stored", async () => {
    const prefix = unique("mpu");
    const body = new PassThrough();
    const { client, parts } = recording();
    const done = uploadStream({ client, Bucket: s3().bucket, Key: `${prefix}/object.bin`, ContentType: "application/octet-stream", body, partSize: MiB, queueSize: 2, maxParts: 10_000 });
    body.write(randomBytes(3 * MiB + 5));
    await new Promise((r) => setTimeout(r, 300));
    body.destroy(new Error("pg_dump: error: Dumping the contents of table \"t\" failed"));
    await expect(done).rejects.toThrow(/Dumping the contents of table/);
    expect(parts.length).toBeGreaterThanOrEqual(2);
    expect(await s3Keys(prefix)).toEqual([]);
    expect(await s3PendingUploads(prefix)).toEqual([]);
  });

  it("a part the store refuses: that error, the stream no longer read, the upload aborted, nothing stored", async () => {
    const prefix = unique("mpu");
    const body = new PassThrough();
    const { client, parts } = recording(2);
    const done = uploadStream({ client, Bucket: s3().bucket, Key: `${prefix}/object.bin`, ContentType: "application/octet-stream", body, partSize: MiB, queueSize: 2, maxParts: 10_000 });
    body.write(randomBytes(4 * MiB)); // and then the stream stalls: the failure must not wait for it
    await expect(done).rejects.toMatchObject({ name: "InternalError" });
    expect(parts).toContain(2);
    expect(body.destroyed).toBe(true);
    expect(await s3Keys(prefix)).toEqual([]);
    expect(await s3PendingUploads(prefix)).toEqual([]);
  });

  it("stopped by its signal while the stream stalls: rejects at once, the upload aborted, nothing stored", async () => {
    const prefix = unique("mpu");
    const body = new PassThrough();
    const stop = new AbortController();
    const done = uploadStream({ client: s3Client(), Bucket: s3().bucket, Key: `${prefix}/object.bin`, ContentType: "application/octet-stream", body, partSize: MiB, queueSize: 1, maxParts: 10_000, signal: stop.signal });
    body.write(randomBytes(2 * MiB + 1));
    await new Promise((r) => setTimeout(r, 300));
    const t0 = Date.now();
    stop.abort(new Error("SIGTERM: the backup was stopped"));
    await expect(done).rejects.toThrow(/the backup was stopped/);
    expect(Date.now() - t0).toBeLessThan(5000);
    expect(await s3Keys(prefix)).toEqual([]);
    expect(await s3PendingUploads(prefix)).toEqual([]);
  });

  it("an UploadPart answer without an ETag (a broken S3-compatible store): the part named, the upload aborted, nothing stored", async () => {
    const prefix = unique("mpu");
    const Key = `${prefix}/object.bin`;
    const client = s3Client();
    // the twin stores the part and answers; the answer loses its ETag on the way back, as a broken store's would
    client.middlewareStack.add(
      (next, context) => async (args) => {
        const out = await next(args);
        if (context.commandName === "UploadPartCommand" && (args.input as { PartNumber?: number }).PartNumber === 2) delete (out.output as { ETag?: string }).ETag;
        return out;
      },
      { step: "initialize", name: "dropEtagOfPart2" },
    );
    const err = await uploadStream({ client, Bucket: s3().bucket, Key, ContentType: "application/octet-stream", body: chunked(randomBytes(3 * MiB + 1)), partSize: MiB, queueSize: 2, maxParts: 10_000 }).catch((e: unknown) => e);
    expect((err as Error).message).toBe(`Part 2 of ${Key}: the store's UploadPart response has no ETag.`);
    expect(await s3Keys(prefix)).toEqual([]);
    expect(await s3PendingUploads(prefix)).toEqual([]);
  });

  it("more parts than allowed: refused with S3's limit named, the upload aborted, nothing stored", async () => {
    const prefix = unique("mpu");
    const Key = `${prefix}/object.bin`;
    const err = await uploadStream({ client: s3Client(), Bucket: s3().bucket, Key, ContentType: "application/octet-stream", body: chunked(randomBytes(3 * MiB + 1)), partSize: MiB, queueSize: 2, maxParts: 3 }).catch((e: unknown) => e);
    expect((err as Error).message).toContain("Exceeded 3 parts");
    expect(await s3Keys(prefix)).toEqual([]);
    expect(await s3PendingUploads(prefix)).toEqual([]);
  });

  it("with the SDK's default request checksums (AWS): created with CRC32, every part sends its own CRC32, stored whole", async () => {
    const prefix = unique("mpu");
    const Key = `${prefix}/object.bin`;
    const t = s3();
    const client = new S3Client({ ...s3ClientConfig({ bucket: t.bucket, endpoint: t.endpoint, region: t.region }), requestChecksumCalculation: "WHEN_SUPPORTED", credentials: { accessKeyId: t.accessKeyId, secretAccessKey: t.secretAccessKey } });
    const created: Array<Record<string, unknown>> = [];
    const partChecksums: string[] = [];
    client.middlewareStack.add(
      (next, context) => async (args) => {
        if (context.commandName === "CreateMultipartUploadCommand") created.push(args.input as Record<string, unknown>);
        const headers = (args.request as { headers?: Record<string, string> }).headers ?? {};
        if (context.commandName === "UploadPartCommand") partChecksums[(args.input as { PartNumber: number }).PartNumber - 1] = headers["x-amz-checksum-crc32"] ?? "none";
        return next(args);
      },
      { step: "finalizeRequest", name: "recordChecksums" },
    );
    const data = randomBytes(2 * MiB + 777);
    await uploadStream({ client, Bucket: t.bucket, Key, ContentType: "application/octet-stream", body: chunked(data), partSize: MiB, queueSize: 2, maxParts: 10_000 });
    expect(created.map((c) => c.ChecksumAlgorithm)).toEqual(["CRC32"]);
    const expected = [data.subarray(0, MiB), data.subarray(MiB, 2 * MiB), data.subarray(2 * MiB)].map((p) => {
      const b = Buffer.alloc(4);
      b.writeUInt32BE(crc32(p));
      return b.toString("base64");
    });
    expect(partChecksums).toEqual(expected);
    expect(sha(await stored(Key))).toBe(sha(data));
    expect(await s3PendingUploads(prefix)).toEqual([]);
    await s3Client().send(new DeleteObjectCommand({ Bucket: t.bucket, Key }));
  });
});
