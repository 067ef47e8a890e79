/**
 * `source`'s bytes copied into whole buffers taken from `take()` (all of one size), each given once full, and the last
 * one (`last`, perhaps empty) when the source ends. The next buffer is taken only when the consumer asks for more, so
 * a consumer that is done with a buffer by then may hand the same one back.
 *
 * Why copy: a stream's chunks (a fresh 64 KiB buffer per read) that wait a while, gathered into a part or behind a
 * slow write, outlive V8's young generation, and V8 then collects its old generation again and again; copied at once,
 * they die young, and the few buffers here are reused (S3 uploads, the embedded S3's writes).
 */
export async function* wholeBuffers(source: AsyncIterable<Buffer>, take: () => Buffer): AsyncGenerator<{ buf: Buffer; length: number; last: boolean }> {
  let buf = take();
  let fill = 0;
  for await (const chunk of source) {
    for (let at = 0; at < chunk.length; ) {
      const n = chunk.copy(buf, fill, at);
      fill += n;
      at += n;
      if (fill === buf.length) {
        yield { buf, length: fill, last: false };
        buf = take();
        fill = 0;
      }
    }
  }
  yield { buf, length: fill, last: true };
}
