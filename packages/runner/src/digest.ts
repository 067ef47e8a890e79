import { createHash } from "node:crypto";
import { Transform, type TransformCallback } from "node:stream";

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
    cb(null, chunk);
  }
  hex(): string {
    return this.hash.digest("hex");
  }
}

