import { ReadStream, constants, createReadStream, mkdtempSync, rmSync } from "node:fs";
import { mkdir, open, readdir, readFile, rename, rm, stat, writeFile, type FileHandle } from "node:fs/promises";
import { createHash, randomBytes } from "node:crypto";
import { dirname, join } from "node:path";
import type { Readable } from "node:stream";
import { tmpdir } from "node:os";
import type { AddressInfo } from "node:net";
import { AsyncLocalStorage } from "node:async_hooks";
import S3rver from "s3rver";
import { wholeBuffers } from "@lifeboat/runner";
import { collectYoungWhileStreaming, streamed } from "@lifeboat/runner/heap";
import S3Error from "s3rver/lib/models/error.js";

/**
 * An S3-compatible server on loopback (the s3rver package), for the demo and the tests. It speaks the real S3 API
 * over HTTP, path-style, with signature checks (credentials S3RVER / S3RVER).
 *
 * s3rver does not implement AbortMultipartUpload or ListMultipartUploads (it answers 405 / 501), so an aborted
 * upload's parts would stay on its disk forever. This twin adds both calls on top of s3rver's own storage layout
 * (<dir>/<bucket>/._S3rver_uploads/<uploadId>/, holding the key and metadata files and the parts), so that Lifeboat's abort path is exercised for real.
 *
 * CompleteMultipartUpload is also done as S3 does it rather than as s3rver does: each listed part must exist with the
 * ETag the client gives (else InvalidPart), and the object's ETag is the MD5 of the parts' MD5s plus "-<parts>".
 *
 * This server shares its machine with the backup it receives (the demo, the tests, the bench), so UploadPart and
 * CompleteMultipartUpload are written to cost it little CPU: s3rver re-read and re-hashed the whole object on
 * completion, wrote each part and assembled the object through streams, a 64 KiB buffer per chunk, and so wrote every
 * byte twice. Here a part is hashed as it arrives and written through a few reused 1 MiB buffers; a part of the size
 * of part 1 (all but the last, as uploaders send them) is written straight to its place in the upload's data file, at
 * (number - 1) x that size, so that completing the upload only copies the last part there, cuts the file to size and
 * renames it. Parts that cannot be placed so (another size, a part number uploaded again, a list of parts with gaps)
 * lie in files of their own, and the object is then assembled anew from wherever each part is. The bytes received
 * are counted for young-generation collections (`streamed`, in the runner's heap.ts): left to V8, the request bodies'
 * dead chunks set off 75 full collections while a 1 GB backup arrived (lab), 7 with them, and the server's CPU for
 * that backup went from 5.8 to 3.6 s. GetObject reads the object in 1 MiB reads instead of 64 KiB (1 GB served:
 * about 2.5 -> 1.9 s of CPU); counting those too made it worse (the chunks wait in the socket's queue long enough to
 * be promoted by the extra collections), so it is not counted.
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
  putObject(object: { bucket: string; key: string; content: Readable }): Promise<{ md5: string; size: number }>;
  existsObject(bucket: string, key: string): Promise<boolean>;
  getMetadata(bucket: string, key: string): Promise<{ etag: string }>;
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

/** Where a stored part's bytes are: at `at` in the upload's data file, or (at null) in a file of its own. */
interface PartRecord {
  md5: string;
  size: number;
  at: number | null;
}

/**
 * A request body into `file` from `position` on, through `buf`, hashed (MD5) as it arrives. Each buffer is written
 * before the next is filled.
 */
async function writeHashed(file: FileHandle, position: number, content: Readable, buf: Buffer): Promise<{ size: number; md5: string }> {
  const md5 = createHash("md5");
  let size = 0;
  for await (const { length } of wholeBuffers(content as AsyncIterable<Buffer>, () => buf)) {
    md5.update(buf.subarray(0, length));
    if (length > 0) await file.write(buf, 0, length, position + size);
    size += length;
    streamed(length);
  }
  return { size, md5: md5.digest("hex") };
}

/** Copies `size` bytes of `src` from `from` to `dst` at `to`, through `buf`. */
async function copyRange(src: FileHandle, from: number, size: number, dst: FileHandle, to: number, buf: Buffer): Promise<void> {
  for (let done = 0; done < size; ) {
    const { bytesRead } = await src.read(buf, 0, Math.min(buf.length, size - done), from + done);
    if (bytesRead === 0) throw new Error(`a stored part is shorter than recorded (${done} of ${size} bytes)`);
    await dst.write(buf, 0, bytesRead, to + done);
    done += bytesRead;
  }
}

function invalidPart(number: number): Error {
  return new S3Error("InvalidPart", "One or more of the specified parts could not be found. The part might not have been uploaded, or the specified entity tag might not have matched the part's entity tag.", { PartNumber: String(number) });
}

/**
 * Uploads in progress, by directory: the size of part 1 (the stride at which parts of that size are written in place)
 * and the parts being written. Lost on a restart, which only means later parts go to files of their own.
 */
const uploads = new Map<string, { stride?: number; writing: Set<number> }>();

/**
 * Conditional writes, as S3 documents them (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html,
 * and the API reference of PutObject and CompleteMultipartUpload): `If-None-Match: *` writes only if the key holds no
 * object, else 412 PreconditionFailed; `If-Match: <etag>` only if the object's ETag is that one, else 412 (404
 * NoSuchKey when there is no object); a conditional write of a key while another is in progress is refused with 409
 * ConditionalRequestConflict; If-None-Match with anything but `*` is 501 NotImplemented. s3rver ignores both headers:
 * the request's conditions travel from the middleware to the store's writes in an AsyncLocalStorage.
 */
interface WriteConditions {
  ifNoneMatch?: string | undefined;
  ifMatch?: string | undefined;
}
const requestConditions = new AsyncLocalStorage<WriteConditions>();
const conditionalWrites = new Set<string>();

function s3Error(code: string, message: string, status: number, detail: Record<string, string> = {}): Error {
  return Object.assign(new S3Error(code, message, detail), { status, expose: true });
}

/** Checks the request's conditions on `key`; returns the release of the key's claim, to call once the write is done. */
async function claimConditional(store: S3rverStore, bucket: string, key: string): Promise<() => void> {
  const c = requestConditions.getStore();
  if (!c?.ifNoneMatch && !c?.ifMatch) return () => {};
  if (c.ifNoneMatch !== undefined && c.ifNoneMatch !== "*") throw s3Error("NotImplemented", "A header you provided implies functionality that is not implemented", 501, { Header: "If-None-Match" });
  const id = `${bucket}\0${key}`;
  if (conditionalWrites.has(id)) throw s3Error("ConditionalRequestConflict", "A conflicting conditional operation is currently in progress against this resource. Please try again.", 409);
  conditionalWrites.add(id);
  const release = () => void conditionalWrites.delete(id);
  try {
    const exists = await store.existsObject(bucket, key);
    if (c.ifNoneMatch && exists) throw s3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412, { Condition: "If-None-Match" });
    if (c.ifMatch) {
      if (!exists) throw s3Error("NoSuchKey", "The specified key does not exist.", 404, { Key: key });
      const { etag } = await store.getMetadata(bucket, key);
      if (etag.replace(/"/g, "") !== c.ifMatch.replace(/"/g, "")) throw s3Error("PreconditionFailed", "At least one of the pre-conditions you specified did not hold", 412, { Condition: "If-Match" });
    }
  } catch (err) {
    release();
    throw err;
  }
  return release;
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
  const putObject = store.putObject.bind(store);
  store.putObject = async (object) => {
    let release: () => void;
    try {
      release = await claimConditional(store, object.bucket, object.key);
    } catch (err) {
      // S3 answers once the body is read: the client sees the error, not a connection closed under it
      object.content.resume();
      await new Promise((resolve) => (object.content.readableEnded ? resolve(undefined) : object.content.once("end", resolve).once("error", resolve)));
      throw err;
    }
    try {
      return await putObject(object);
    } finally {
      release();
    }
  };
  store.putPart = async (bucket, uploadId, partNumber, content) => {
    const uploadDir = join(directory, bucket, UPLOADS, uploadId);
    await mkdir(uploadDir, { recursive: true });
    const number = Number(partNumber);
    const length = Number((content as Readable & { headers?: Record<string, string | undefined> }).headers?.["content-length"]);
    const upload = uploads.get(uploadDir) ?? { writing: new Set<number>() };
    uploads.set(uploadDir, upload);
    if (number === 1 && upload.stride === undefined && length > 0) upload.stride = length;
    const recordPath = join(uploadDir, `${number}.json`);
    // in place only the first time this part number arrives, at the size of part 1: then its offset is certain
    // (claimed before any await, so that two uploads of one part number at once never both write in place)
    const claimed = upload.stride !== undefined && length === upload.stride && !upload.writing.has(number);
    if (claimed) upload.writing.add(number);
    const inPlace = claimed && !(await stat(recordPath).catch(() => null));
    const at = inPlace ? (number - 1) * upload.stride! : null;
    // a part of its own is written aside and renamed: a part uploaded again replaces the earlier one only if it arrives whole
    const partPath = join(uploadDir, String(number));
    const writing = at === null ? `${partPath}.${randomBytes(4).toString("hex")}` : join(uploadDir, "data");
    try {
      const file = await open(writing, at === null ? "w" : constants.O_WRONLY | constants.O_CREAT);
      let written: { size: number; md5: string };
      try {
        written = await withBuffer((buf) => writeHashed(file, at ?? 0, content, buf));
      } catch (err) {
        if (at === null) await rm(writing, { force: true });
        throw err;
      } finally {
        await file.close();
      }
      if (at === null) await rename(writing, partPath);
      // the record replaces any earlier one whole (two uploads of one part at once must not mix their records)
      const record: PartRecord = { ...written, at };
      const recordTemp = `${recordPath}.${randomBytes(4).toString("hex")}`;
      await writeFile(recordTemp, JSON.stringify(record));
      await rename(recordTemp, recordPath);
      return written;
    } finally {
      if (claimed) upload.writing.delete(number);
    }
  };
  store.putObjectMultipart = async (bucket, uploadId, parts) => {
    const uploadDir = join(directory, bucket, UPLOADS, uploadId);
    const [key, metadata] = await Promise.all([readFile(join(uploadDir, "key"), "utf8"), readFile(join(uploadDir, "metadata"), "utf8").then(JSON.parse)]);
    const sorted = [...parts].sort((a, b) => a.number - b.number);
    const records: PartRecord[] = [];
    for (const part of sorted) {
      const record = await readFile(join(uploadDir, `${part.number}.json`), "utf8").then((text) => JSON.parse(text) as PartRecord, () => undefined);
      if (record === undefined || record.md5 !== part.etag) throw invalidPart(part.number);
      records.push(record);
    }
    const release = await claimConditional(store, bucket, key);
    try {
      // where each part goes in the object (`to`), in the order listed
      let size = 0;
      const placed = records.map((r, i) => {
        const to = size;
        size += r.size;
        return { ...r, to, file: join(uploadDir, String(sorted[i]!.number)) };
      });
      const md5 = `${createHash("md5").update(Buffer.concat(records.map((r) => Buffer.from(r.md5, "hex")))).digest("hex")}-${sorted.length}`;
      const dataPath = join(uploadDir, "data");
      // usually every part but the last already lies where the object needs it, in the data file: only the last part
      // is copied (if it was smaller) and the file cut to the object's size; otherwise the object is assembled anew
      const inPlace = placed.every((p, i) => p.at === p.to || (i === placed.length - 1 && p.at === null));
      const assembling = inPlace ? dataPath : join(uploadDir, "object");
      await withBuffer(async (buf) => {
        const out = await open(assembling, constants.O_RDWR | constants.O_CREAT);
        try {
          for (const p of placed) {
            if (inPlace && p.at === p.to) continue;
            const src = await open(p.at === null ? p.file : dataPath, "r");
            try {
              await copyRange(src, p.at ?? 0, p.size, out, p.to, buf);
            } finally {
              await src.close();
            }
          }
          await out.truncate(size);
        } finally {
          await out.close();
        }
      });
      const objectPath = store.getResourcePath(bucket, key, "object");
      await mkdir(dirname(objectPath), { recursive: true });
      await rename(assembling, objectPath);
      await store.putMetadata(bucket, key, metadata, md5);
      await rm(uploadDir, { recursive: true, force: true });
      uploads.delete(uploadDir);
      return { md5, size };
    } finally {
      release();
    }
  };
}

/**
 * `withoutUploadListing`: answer ListMultipartUploads as plain s3rver and several S3-compatible providers do (501
 * NotImplemented), for tests of the stores that lack it. `withoutConditionalWrites`: answer If-None-Match / If-Match
 * on writes with 501 NotImplemented, as servers that lack conditional writes do.
 */
/**
 * Rules of S3-compatible providers that AWS S3 does not have, which the twin can be made to enforce (tests of the
 * provider profiles, core's providers.ts), each answered as the provider documents or answers it:
 * - maxParts (Scaleway: 1,000): UploadPart with a higher part number is 400 InvalidArgument.
 * - equalParts (Cloudflare R2: "All parts except the last one must be the same size", the last no larger):
 *   CompleteMultipartUpload of other parts is 400 InvalidPart "All non-trailing parts must have the same length."
 * - noChecksumHeaders (Backblaze B2): a request with x-amz-checksum-*, x-amz-sdk-checksum-algorithm or a trailing
 *   checksum (x-amz-trailer) is 400 InvalidArgument "Unsupported header '<name>' received for this API call."
 */
export interface ProviderRules {
  maxParts?: number;
  equalParts?: boolean;
  noChecksumHeaders?: boolean;
}

function refusal(ctx: { status: number; type: string; body: unknown }, code: string, message: string): void {
  ctx.status = 400;
  ctx.type = "application/xml";
  ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${code}</Code><Message>${xmlEscape(message)}</Message></Error>`;
}

/**
 * S3 Object Lock, as S3 documents it (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock.html and the API
 * reference of PutObject, CreateMultipartUpload, UploadPart and HeadObject): a bucket has it when created with
 * `x-amz-bucket-object-lock-enabled: true` (or, here, named in `objectLockBuckets`). A write that starts an object
 * (PutObject, CreateMultipartUpload) may carry `x-amz-object-lock-mode` (GOVERNANCE or COMPLIANCE) and
 * `x-amz-object-lock-retain-until-date`, both or neither (else 400 InvalidArgument), the date in the future (400
 * InvalidArgument), into a bucket that has Object Lock (else 400 InvalidRequest "Bucket is missing Object Lock
 * Configuration"); such a PutObject, and each UploadPart of such an upload, must carry Content-MD5 or an
 * x-amz-checksum / x-amz-sdk-checksum-algorithm header (else 400 InvalidRequest). HeadObject and GetObject then answer
 * the object's mode and date in the same headers. Versions are not modelled: S3 answers a DELETE of a locked object
 * without a version id with a delete marker and keeps the locked version; this twin removes the object.
 */
interface Lock {
  mode: string;
  until: string;
}

export async function startEmbeddedS3(opts: { bucket?: string; port?: number; withoutUploadListing?: boolean; withoutConditionalWrites?: boolean; rules?: ProviderRules; objectLockBuckets?: string[] } = {}): Promise<EmbeddedS3> {
  const bucket = opts.bucket ?? "lifeboat";
  // the request bodies' chunks would otherwise set off V8's full collections (see streamed, in the runner's heap.ts)
  collectYoungWhileStreaming();
  const directory = mkdtempSync(join(tmpdir(), "lifeboat-s3-"));
  const server = new S3rver({
    address: "127.0.0.1",
    port: opts.port ?? 0,
    silent: true,
    directory,
    configureBuckets: [{ name: bucket, configs: [] }],
  });

  // Runs before s3rver's router (Koa composes middleware when the server starts listening).
  const lockedBuckets = new Set(opts.objectLockBuckets ?? []);
  const locks = new Map<string, Lock>();
  const lockedUploads = new Map<string, Lock>();
  type Ctx = { method: string; url: string; status: number; body: unknown; type: string; headers: Record<string, string | undefined>; req: AsyncIterable<Buffer>; set(name: string, value: string): void };
  const multipartCalls = async (ctx: Ctx, next: () => Promise<void>) => {
    const url = new URL(ctx.url, "http://localhost");
    const [b, ...rest] = url.pathname.split("/").filter(Boolean).map(decodeURIComponent);
    if (!b) return next();
    const key = rest.join("/");
    const lockProblem = objectLock(ctx, url, b, key);
    if (lockProblem && "code" in lockProblem) {
      for await (const _chunk of ctx.req) void _chunk;
      return refusal(ctx, lockProblem.code, lockProblem.message);
    }
    return lockedCall(ctx, url, b, key, lockProblem ?? null, () => s3Calls(ctx, next, url, b, rest));
  };

  /** The Object Lock of a write that starts an object (null: none asked), or why S3 would refuse the request. */
  const objectLock = (ctx: Ctx, url: URL, bucket: string, key: string): Lock | null | { code: string; message: string } | undefined => {
    const checksum = Object.keys(ctx.headers).some((h) => h === "content-md5" || h.startsWith("x-amz-checksum-") || h === "x-amz-sdk-checksum-algorithm");
    const uploadId = url.searchParams.get("uploadId");
    if (ctx.method === "PUT" && uploadId && url.searchParams.has("partNumber") && lockedUploads.has(uploadId) && !checksum) {
      return { code: "InvalidRequest", message: "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters" };
    }
    const starts = key !== "" && ((ctx.method === "PUT" && !url.searchParams.has("partNumber")) || (ctx.method === "POST" && url.searchParams.has("uploads")));
    const mode = ctx.headers["x-amz-object-lock-mode"];
    const until = ctx.headers["x-amz-object-lock-retain-until-date"];
    if (!starts || (mode === undefined && until === undefined)) return undefined;
    if (!lockedBuckets.has(bucket)) return { code: "InvalidRequest", message: "Bucket is missing Object Lock Configuration" };
    if (mode === undefined || until === undefined) return { code: "InvalidArgument", message: "x-amz-object-lock-retain-until-date and x-amz-object-lock-mode must both be supplied" };
    if (mode !== "GOVERNANCE" && mode !== "COMPLIANCE") return { code: "InvalidArgument", message: "Unknown wormMode directive." };
    if (!(Date.parse(until) > Date.now())) return { code: "InvalidArgument", message: "The retain until date must be in the future!" };
    if (ctx.method === "PUT" && !checksum) return { code: "InvalidRequest", message: "Content-MD5 OR x-amz-checksum- HTTP header is required for Put Object requests with Object Lock parameters" };
    return { mode, until: new Date(until).toISOString() };
  };

  /** Runs the call, then keeps what Object Lock needs: a bucket's lock, an object's or an upload's retention. */
  const lockedCall = async (ctx: Ctx, url: URL, bucket: string, key: string, lock: Lock | null, call: () => Promise<void>) => {
    if ((ctx.method === "GET" || ctx.method === "HEAD") && key !== "" && locks.has(`${bucket}\0${key}`) && !["uploadId", "retention", "legal-hold", "tagging", "acl"].some((q) => url.searchParams.has(q))) {
      const held = locks.get(`${bucket}\0${key}`)!;
      await call();
      if (ctx.status === 200 || ctx.status === 206) {
        ctx.set("x-amz-object-lock-mode", held.mode);
        ctx.set("x-amz-object-lock-retain-until-date", held.until);
      }
      return;
    }
    await call();
    if (ctx.status !== 200 && ctx.status !== 204) return;
    if (ctx.method === "PUT" && key === "" && ctx.headers["x-amz-bucket-object-lock-enabled"]?.toLowerCase() === "true") lockedBuckets.add(bucket);
    const uploadId = url.searchParams.get("uploadId");
    if (ctx.method === "PUT" && key !== "" && !url.searchParams.has("partNumber")) {
      if (lock) locks.set(`${bucket}\0${key}`, lock);
      else locks.delete(`${bucket}\0${key}`);
    } else if (ctx.method === "POST" && url.searchParams.has("uploads") && lock) {
      const body = ctx.body as { InitiateMultipartUploadResult?: { UploadId?: string } } | string;
      const id = typeof body === "string" ? /<UploadId>([^<]+)<\/UploadId>/.exec(body)?.[1] : body?.InitiateMultipartUploadResult?.UploadId;
      if (id) lockedUploads.set(id, lock);
    } else if (ctx.method === "POST" && uploadId) {
      const held = lockedUploads.get(uploadId);
      lockedUploads.delete(uploadId);
      if (held) locks.set(`${bucket}\0${key}`, held);
      else locks.delete(`${bucket}\0${key}`);
    } else if (ctx.method === "DELETE" && key !== "" && !uploadId) locks.delete(`${bucket}\0${key}`);
  };

  const s3Calls = async (ctx: Ctx, next: () => Promise<void>, url: URL, b: string, rest: string[]) => {
    const rules = opts.rules;
    if (rules) {
      const drain = async () => {
        for await (const _chunk of ctx.req) void _chunk;
      };
      if (rules.noChecksumHeaders) {
        const header = Object.keys(ctx.headers).find((h) => h.startsWith("x-amz-checksum-") || h === "x-amz-sdk-checksum-algorithm" || (h === "x-amz-trailer" && /checksum/i.test(ctx.headers[h] ?? "")));
        if (header) {
          await drain();
          return refusal(ctx, "InvalidArgument", `Unsupported header '${header}' received for this API call.`);
        }
      }
      const uploadId = url.searchParams.get("uploadId");
      const partNumber = Number(url.searchParams.get("partNumber") ?? 0);
      if (ctx.method === "PUT" && uploadId && partNumber) {
        if (rules.maxParts && partNumber > rules.maxParts) {
          await drain();
          return refusal(ctx, "InvalidArgument", `Part number must be an integer between 1 and ${rules.maxParts}, inclusive`);
        }
        const sizes = partSizes.get(uploadId) ?? new Map<number, number>();
        sizes.set(partNumber, Number(ctx.headers["content-length"] ?? 0));
        partSizes.set(uploadId, sizes);
      }
      if (ctx.method === "POST" && uploadId && rules.equalParts) {
        const sizes = [...(partSizes.get(uploadId) ?? new Map<number, number>()).entries()].sort((a, b) => a[0] - b[0]).map(([, size]) => size);
        const first = sizes[0] ?? 0;
        if (sizes.slice(0, -1).some((size) => size !== first) || (sizes.at(-1) ?? 0) > first) {
          await drain();
          return refusal(ctx, "InvalidPart", "All non-trailing parts must have the same length.");
        }
      }
    }
    // PutObject and CompleteMultipartUpload carry conditions; CreateMultipartUpload and UploadPart take none
    const writes = (ctx.method === "PUT" && !url.searchParams.has("partNumber")) || (ctx.method === "POST" && url.searchParams.has("uploadId"));
    if (writes && rest.length > 0 && (ctx.headers["if-none-match"] || ctx.headers["if-match"])) {
      if (!opts.withoutConditionalWrites) return requestConditions.run({ ifNoneMatch: ctx.headers["if-none-match"], ifMatch: ctx.headers["if-match"] }, next);
      // as S3-compatible servers that do not implement conditional writes answer them (once the body is read)
      for await (const _chunk of ctx.req) void _chunk;
      ctx.status = 501;
      ctx.type = "application/xml";
      ctx.body = `<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>NotImplemented</Code><Message>A header you provided implies functionality that is not implemented</Message></Error>`;
      return;
    }
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
      uploads.delete(dir);
      ctx.status = 204;
      ctx.body = null;
      return;
    }
    if (ctx.method === "GET" && rest.length === 0 && url.searchParams.has("uploads") && !opts.withoutUploadListing) {
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
  const partSizes = new Map<string, Map<number, number>>();
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
