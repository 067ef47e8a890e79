import { ReadStream, createReadStream, mkdtempSync, rmSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile } from "node:fs/promises";
import { createHash } from "node:crypto";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { tmpdir } from "node:os";
import type { AddressInfo } from "node:net";
import S3rver from "s3rver";
import { wholeBuffers } from "@lifeboat/runner";
import S3Error from "s3rver/lib/models/error.js";

/**
 * An S3-compatible server on loopback (the s3rver package), for the demo and the tests. It speaks the real S3 API
 * over HTTP, path-style, with signature checks (credentials S3RVER / S3RVER).
 *
 * s3rver does not implement AbortMultipartUpload or ListMultipartUploads (it answers 405 / 501), so an aborted
 * upload's parts would stay on its disk forever. This twin adds both calls on top of s3rver's own storage layout
 * (<dir>/<bucket>/._S3rver_uploads/<uploadId>/{key,1,2,...}), so that Lifeboat's abort path is exercised for real.
 *
 * CompleteMultipartUpload is also done as S3 does it rather than as s3rver does: each listed part must exist with the
 * ETag the client gives (else InvalidPart), and the object's ETag is the MD5 of the parts' MD5s plus "-<parts>".
 *
 * This server shares its machine with the backup it receives (the demo, the tests, the bench), so UploadPart and
 * CompleteMultipartUpload are written to cost it little CPU: s3rver re-read and re-hashed the whole object on
 * completion, and wrote each part and assembled the object through streams, a 64 KiB buffer per chunk. Here a part
 * is hashed as it arrives and written through a few reused 1 MiB buffers, and the parts are appended to the object
 * through one reused buffer. Lab runs, 1 GB in 5 MiB parts: 3.9 -> 2.7 s of user CPU (the kernel's 2.9 s of file
 * writes is unchanged, and so is the completion's 2 s, a copy of the object through the page cache). GetObject reads
 * the object in 1 MiB reads instead of 64 KiB (1 GB served: about 2.5 -> 1.9 s of CPU).
 */
export interface EmbeddedS3 {
  endpoint: string;
  region: string;
  accessKeyId: string;
  secretAccessKey: string;
  bucket: string;
  directory: string;
  /** Multipart uploads still pending on disk (what ListMultipartUploads reports). */
  pendingUploads(bucket?: string): Promise<Array<{ key: string; uploadId: string }>>;
  stop(): Promise<void>;
}

const UPLOADS = "._S3rver_uploads";

function xmlEscape(s: string): string {
  return s.replace(/&/g, "&amp;").replace(/</g, "&lt;").replace(/>/g, "&gt;").replace(/"/g, "&quot;");
}

async function pending(directory: string, bucket: string): Promise<Array<{ key: string; uploadId: string; initiated: Date }>> {
  const root = join(directory, bucket, UPLOADS);
  let ids: string[];
  try {
    ids = await readdir(root);
  } catch {
    return [];
  }
  const out = [];
  for (const uploadId of ids) {
    try {
      const key = await readFile(join(root, uploadId, "key"), "utf8");
      out.push({ key, uploadId, initiated: (await stat(join(root, uploadId))).mtime });
    } catch {
      /* being written or removed */
    }
  }
  return out;
}

/** The parts of s3rver's filesystem store that this twin replaces or uses. */
interface S3rverStore {
  getResourcePath(bucket: string, key: string | undefined, resource: string): string;
  putMetadata(bucket: string, key: string, metadata: unknown, md5: string): Promise<void>;
  putPart(bucket: string, uploadId: string, partNumber: string | number, content: Readable): Promise<{ size: number; md5: string }>;
  putObjectMultipart(bucket: string, uploadId: string, parts: Array<{ number: number; etag: string }>): Promise<{ md5: string; size: number }>;
  getObject(bucket: string, key: string, options?: unknown): Promise<{ content: unknown } | null>;
}

const COPY_BUFFER = 1024 * 1024;
/** Buffers for writing parts and assembling objects, reused from one request to the next. */
const buffers: Buffer[] = [];
async function withBuffer<T>(use: (buf: Buffer) => Promise<T>): Promise<T> {
  const buf = buffers.pop() ?? Buffer.allocUnsafeSlow(COPY_BUFFER);
  try {
    return await use(buf);
  } finally {
    if (buffers.length < 8) buffers.push(buf);
  }
}

/** A request body into a new file, through `buf`, hashed (MD5) as it arrives. */
async function writeHashed(path: string, content: Readable, buf: Buffer): Promise<{ size: number; md5: string }> {
  const md5 = createHash("md5");
  const file = await open(path, "w");
  let size = 0;
  try {
    // one buffer: each is written before the next is filled
    for await (const { length } of wholeBuffers(content as AsyncIterable<Buffer>, () => buf)) {
      md5.update(buf.subarray(0, length));
      size += length;
      if (length > 0) await file.write(buf, 0, length);
    }
  } finally {
    await file.close();
  }
  return { size, md5: md5.digest("hex") };
}

/** Appends the file at `from` to the file at `to`, through `buf`. */
async function append(to: string, from: string, buf: Buffer): Promise<void> {
  const [src, dst] = await Promise.all([open(from, "r"), open(to, "a")]);
  try {
    for (;;) {
      const { bytesRead } = await src.read(buf, 0, buf.length, null);
      if (bytesRead === 0) break;
      await dst.write(buf, 0, bytesRead);
    }
  } finally {
    await Promise.all([src.close(), dst.close()]);
  }
}

function invalidPart(number: number): Error {
  return new S3Error("InvalidPart", "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.", { PartNumber: String(number) });
}

/** Replaces s3rver's GetObject, UploadPart and CompleteMultipartUpload storage with the ones described at the top. */
function asS3(server: { store: S3rverStore }, directory: string): void {
  const store = server.store;
  const getObject = store.getObject.bind(store);
  store.getObject = async (bucket, key, options) => {
    const object = await getObject(bucket, key, options);
    if (object?.content instanceof ReadStream) {
      // the same bytes (the range s3rver chose), read 1 MiB at a time; s3rver's own stream if the file is gone
      const theirs = object.content as ReadStream & { start?: number; end?: number };
      const mine = createReadStream(theirs.path, { start: theirs.start, end: theirs.end, highWaterMark: COPY_BUFFER });
      if (await new Promise<boolean>((resolve) => mine.once("open", () => resolve(true)).once("error", () => resolve(false)))) {
        theirs.destroy();
        object.content = mine;
      }
    }
    return object;
  };
  store.putPart = async (bucket, uploadId, partNumber, content) => {
    const partPath = join(directory, bucket, UPLOADS, uploadId, String(partNumber));
    await mkdir(dirname(partPath), { recursive: true });
    const written = await withBuffer((buf) => writeHashed(partPath, content, buf));
    await writeFile(`${partPath}.md5`, written.md5);
    return written;
  };
  store.putObjectMultipart = async (bucket, uploadId, parts) => {
    const uploadDir = join(directory, bucket, UPLOADS, uploadId);
    const [key, metadata] = await Promise.all([readFile(join(uploadDir, "key"), "utf8"), readFile(join(uploadDir, "metadata"), "utf8").then(JSON.parse)]);
    const sorted = [...parts].sort((a, b) => a.number - b.number);
    const md5s: Buffer[] = [];
    for (const part of sorted) {
      const md5 = await readFile(join(uploadDir, `${part.number}.md5`), "utf8").catch(() => undefined);
      if (md5 === undefined || md5 !== part.etag) throw invalidPart(part.number);
      md5s.push(Buffer.from(md5, "hex"));
    }
    const objectPath = store.getResourcePath(bucket, key, "object");
    await mkdir(dirname(objectPath), { recursive: true });
    const assembling = join(uploadDir, "object");
    // the first part becomes the object file; the others are appended to it, unread by anything else
    await rename(join(uploadDir, String(sorted[0]!.number)), assembling);
    await withBuffer(async (buf) => {
      for (const part of sorted.slice(1)) await append(assembling, join(uploadDir, String(part.number)), buf);
    });
    const size = (await stat(assembling)).size;
    const md5 = `${createHash("md5").update(Buffer.concat(md5s)).digest("hex")}-${sorted.length}`;
    await rename(assembling, objectPath);
    await store.putMetadata(bucket, key, metadata, md5);
    await rm(uploadDir, { recursive: true, force: true });
    return { md5, size };
  };
}

export async function startEmbeddedS3(opts: { bucket?: string; port?: number } = {}): Promise<EmbeddedS3> {
  const bucket = opts.bucket ?? "lifeboat";
  const directory = mkdtempSync(join(tmpdir(), "lifeboat-s3-"));
  const server = new S3rver({
    address: "127.0.0.1",
    port: opts.port ?? 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket, configs: [] }],
  });

  // Runs before s3rver's router (Koa composes middleware when the server starts listening).
  const multipartCalls = async (ctx: { method: string; url: string; status: number; body: unknown; type: string }, next: () => Promise<void>) => {
    const url = new URL(ctx.url, "http://localhost");
    const [b, ...rest] = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    if (!b) return next();
    if (ctx.method === "DELETE" && rest.length > 0 && url.searchParams.has("uploadId")) {
      const uploadId = url.searchParams.get("uploadId") ?? "";
      const dir = join(directory, b, UPLOADS, uploadId);
      if (!/^[A-Za-z0-9._-]+$/.test(uploadId) || !(await stat(dir).catch(() => null))) {
        ctx.status = 404;
        ctx.type = "application/xml";
        ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NoSuchUpload</Code><Message>The specified upload does not exist.</Message></Error>`;
        return;
      }
      await rm(dir, { recursive: true, force: true });
      ctx.status = 204;
      ctx.body = null;
      return;
    }
    if (ctx.method === "GET" && rest.length === 0 && url.searchParams.has("uploads")) {
      const prefix = url.searchParams.get("prefix") ?? "";
      const uploads = (await pending(directory, b)).filter((u) => u.key.startsWith(prefix));
      ctx.status = 200;
      ctx.type = "application/xml";
      ctx.body =
        `<?xml version="1.0" encoding="UTF-8"?>\n<ListMultipartUploadsResult xmlns="http://s3.amazonaws.com/doc/2006-03-01/">` +
        `<Bucket>${xmlEscape(b)}</Bucket><KeyMarker></KeyMarker><UploadIdMarker></UploadIdMarker><Prefix>${xmlEscape(prefix)}</Prefix>` +
        `<MaxUploads>1000</MaxUploads><IsTruncated>false</IsTruncated>` +
        uploads
          .map((u) => `<Upload><Key>${xmlEscape(u.key)}</Key><UploadId>${xmlEscape(u.uploadId)}</UploadId><Initiated>${u.initiated.toISOString()}</Initiated></Upload>`)
          .join("") +
        `</ListMultipartUploadsResult>`;
      return;
    }
    return next();
  };
  (server as unknown as { middleware: unknown[] }).middleware.splice(1, 0, multipartCalls);
  asS3(server as unknown as { store: S3rverStore }, directory);

  const address = (await server.run()) as AddressInfo;
  return {
    endpoint: `http://127.0.0.1:${address.port}`,
    region: "us-east-1",
    accessKeyId: "S3RVER",
    secretAccessKey: "S3RVER",
    bucket,
    directory,
    pendingUploads: async (name = bucket) => (await pending(directory, name)).map(({ key, uploadId }) => ({ key, uploadId })),
    async stop() {
      await server.close();
      rmSync(directory, { recursive: true, force: true });
    },
  };
}
