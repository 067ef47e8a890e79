import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  ChecksumAlgorithm,
  CompleteMultipartUploadCommand,
  CreateMultipartUploadCommand,
  PutObjectCommand,
  UploadPartCommand,
  type CompletedPart,
  type S3Client,
} from "@aws-sdk/client-s3";
import { wholeBuffers } from "../buffers.js";

export interface StreamUpload {
  client: S3Client;
  Bucket: string;
  Key: string;
  ContentType: string;
  body: Readable;
  partSize: number;
  /** Parts uploaded at once; one more part fills meanwhile. */
  queueSize: number;
  maxParts: number;
  signal?: AbortSignal | undefined;
  /** S3's conditional write headers, on the request that makes the object (PutObject, CompleteMultipartUpload). */
  conditions?: { IfNoneMatch?: string; IfMatch?: string } | undefined;
  /**
   * A store that answers the conditional headers with 501 NotImplemented (some S3-compatible servers): told once, and
   * the request is sent again without them (its bytes are still in hand: the single part, or the uploaded parts).
   */
  onConditionsUnsupported?: ((err: unknown) => void) | undefined;
  /** S3 Object Lock headers, on the request that starts the object (PutObject, CreateMultipartUpload). */
  objectLock?: { ObjectLockMode: "GOVERNANCE" | "COMPLIANCE"; ObjectLockRetainUntilDate: Date } | undefined;
}

/** The store's answer to a conditional header it does not implement. */
function conditionsUnsupported(err: unknown): boolean {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  return e?.name === "NotImplemented" || e?.$metadata?.httpStatusCode === 501;
}

/**
 * A stream into one S3 object: a single PutObject when it ends within one part, else a multipart upload whose parts
 * are uploaded `queueSize` at once while the next one fills.
 *
 * Why not lib-storage's Upload (used before, measured with 1 GB through the same S3 client): lib-storage gathers
 * each part from the stream's chunks and copies them into a new buffer (Buffer.concat), and it reads no further
 * while its only part in flight uploads. A new part-sized buffer for every part kept V8 collecting its old generation
 * about 150 times per GB, and cost 5.0 s of CPU per GB; here each chunk is copied once into one of
 * `queueSize + 1` part buffers, reused once S3 has acknowledged its part (3.6 s per GB, 65 collections), and the
 * stream is read while parts upload. Memory: (queueSize + 1) x partSize, whatever the object's size.
 *
 * Checksums as lib-storage sends them: with the SDK's default request checksums (AWS), the upload is created with
 * CRC32 and each part's checksum goes back in CompleteMultipartUpload. A failure, or `signal`, aborts the multipart
 * upload: nothing is stored.
 */
export async function uploadStream(u: StreamUpload): Promise<{ etag?: string }> {
  const { client, Bucket, Key, ContentType } = u;
  let conditions = u.conditions ?? {};
  /** Sends a request that makes the object; without the conditions again if the store does not implement them. */
  const making = async <T>(send: (c: typeof conditions) => Promise<T>): Promise<T> => {
    try {
      return await send(conditions);
    } catch (err) {
      if (!Object.keys(conditions).length || !conditionsUnsupported(err)) throw err;
      u.onConditionsUnsupported?.(err);
      conditions = {};
      return send(conditions);
    }
  };
  // stopping (the caller's signal, a part that failed) also ends the read of a stream that may be stalled
  const stop = new AbortController();
  stop.signal.addEventListener("abort", () => u.body.destroy(stop.signal.reason as Error), { once: true });
  const onAbort = () => stop.abort(u.signal?.reason);
  if (u.signal?.aborted) onAbort();
  u.signal?.addEventListener("abort", onAbort, { once: true });
  // Object Lock wants Content-MD5 or a checksum on every write of a locked object (PutObject's and UploadPart's API
  // reference): CRC32 then, whatever the client's default
  const locked = u.objectLock ? { ChecksumAlgorithm: ChecksumAlgorithm.CRC32 } : {};
  const checksums = u.objectLock !== undefined || (await client.config.requestChecksumCalculation()) === "WHEN_SUPPORTED";
  const pool: Buffer[] = [];
  const done: CompletedPart[] = [];
  const inFlight = new Set<Promise<void>>();
  let uploadId: string | undefined;
  let failure: { err: unknown } | undefined;
  let partNumber = 0;

  const send = async (buf: Buffer, length: number) => {
    const PartNumber = ++partNumber;
    if (PartNumber > u.maxParts) throw new Error(`Exceeded ${u.maxParts} parts in multipart upload to Bucket: ${Bucket} Key: ${Key}.`);
    uploadId ??= (await client.send(new CreateMultipartUploadCommand({ Bucket, Key, ContentType, ...u.objectLock, ...(checksums ? { ChecksumAlgorithm: ChecksumAlgorithm.CRC32 } : {}) }), { abortSignal: stop.signal })).UploadId;
    const sent: Promise<void> = client
      .send(new UploadPartCommand({ Bucket, Key, UploadId: uploadId, PartNumber, Body: buf.subarray(0, length), ...locked }), { abortSignal: stop.signal })
      .then(
        (res) => {
          if (!res.ETag) throw new Error(`Part ${PartNumber} of ${Key}: the store's UploadPart response has no ETag.`);
          done.push({ PartNumber, ETag: res.ETag, ...(res.ChecksumCRC32 ? { ChecksumCRC32: res.ChecksumCRC32 } : {}) });
          pool.push(buf);
        },
      )
      .catch((err: unknown) => {
        // the first failure, not the parts it stopped
        if (stop.signal.aborted) return;
        failure = { err };
        stop.abort(err);
      })
      .finally(() => inFlight.delete(sent));
    inFlight.add(sent);
    while (inFlight.size >= u.queueSize && !failure) await Promise.race(inFlight);
    if (failure) throw failure.err;
  };

  try {
    for await (const { buf, length, last } of wholeBuffers(u.body as AsyncIterable<Buffer>, () => pool.pop() ?? Buffer.allocUnsafeSlow(u.partSize))) {
      if (stop.signal.aborted) throw stop.signal.reason;
      if (!last) await send(buf, length);
      else if (partNumber === 0) {
        const put = await making((c) => client.send(new PutObjectCommand({ Bucket, Key, ContentType, Body: buf.subarray(0, length), ...u.objectLock, ...locked, ...c }), { abortSignal: stop.signal }));
        return put.ETag ? { etag: put.ETag } : {};
      } else if (length > 0) await send(buf, length);
    }
    await Promise.all(inFlight);
    if (failure) throw failure.err;
    done.sort((a, b) => a.PartNumber! - b.PartNumber!);
    const complete = await making((c) => client.send(new CompleteMultipartUploadCommand({ Bucket, Key, UploadId: uploadId, MultipartUpload: { Parts: done }, ...c }), { abortSignal: stop.signal }));
    return complete.ETag ? { etag: complete.ETag } : {};
  } catch (err) {
    stop.abort(err);
    await Promise.allSettled(inFlight);
    if (uploadId) await client.send(new AbortMultipartUploadCommand({ Bucket, Key, UploadId: uploadId })).catch(() => {});
    throw err;
  } finally {
    u.signal?.removeEventListener("abort", onAbort);
  }
}
