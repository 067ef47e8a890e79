import { createHash } from "node:crypto";
import { Worker } from "node:worker_threads";
import { Transform, type TransformCallback } from "node:stream";
import { streamed } from "./heap.js";

/** SHA-256 and byte count of everything that passes through. */
export class Digest extends Transform {
  private readonly hash = createHash("sha256");
  bytes = 0;
  constructor(private readonly onChunk: (bytes: number) => void = () => {}) {
    super();
  }
  override _transform(chunk: Buffer, _enc: BufferEncoding, cb: TransformCallback): void {
    this.hash.update(chunk);
    this.bytes += chunk.length;
    this.onChunk(this.bytes);
    streamed(chunk.length);
    cb(null, chunk);
  }
  hex(): string {
    return this.hash.digest("hex");
  }
}

/** hashFile's worker: reads 1 MiB at a time into one buffer, reports progress every 64 MiB. */
const HASH_FILE_WORKER = `
const { parentPort, workerData } = require("node:worker_threads");
const { openSync, readSync, closeSync } = require("node:fs");
const { createHash } = require("node:crypto");
const fd = openSync(workerData.path, "r");
const buf = Buffer.allocUnsafe(1 << 20);
const hash = createHash("sha256");
let bytes = 0, reported = 0, n;
try {
  while ((n = readSync(fd, buf, 0, buf.length, null)) > 0) {
    hash.update(n === buf.length ? buf : buf.subarray(0, n));
    bytes += n;
    if (bytes - reported >= 64 << 20) parentPort.postMessage({ bytes: (reported = bytes) });
  }
} finally {
  closeSync(fd);
}
parentPort.postMessage({ bytes, sha256: hash.digest("hex") });
`;

/**
 * SHA-256 and size of a file, computed in a worker thread: several files are hashed at once on several cores, which
 * is how a directory store's archives are checked before a restore uses them where they lie. `signal` stops it.
 */
export function hashFile(path: string, onBytes: (bytes: number) => void = () => {}, signal?: AbortSignal): Promise<{ sha256: string; bytes: number }> {
  return new Promise((resolve, reject) => {
    if (signal?.aborted) return reject(signal.reason);
    const worker = new Worker(HASH_FILE_WORKER, { eval: true, workerData: { path } });
    const onAbort = () => void worker.terminate().then(() => reject(signal!.reason));
    signal?.addEventListener("abort", onAbort, { once: true });
    let result: { sha256: string; bytes: number } | undefined;
    worker.on("message", (m: { bytes: number; sha256?: string }) => {
      onBytes(m.bytes);
      if (m.sha256) result = { sha256: m.sha256, bytes: m.bytes };
    });
    worker.once("error", reject);
    worker.once("exit", (code) => {
      signal?.removeEventListener("abort", onAbort);
      if (result) resolve(result);
      else reject(new Error(`hashing ${path} stopped (worker exit code ${code})`));
    });
  });
}
