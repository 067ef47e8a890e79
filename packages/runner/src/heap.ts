import { setFlagsFromString } from "node:v8";
import { runInNewContext } from "node:vm";

/**
 * Flat memory while gigabytes stream through (imported first by the CLI and the runner container, before anything
 * allocates). Each chunk read from pg_dump's pipe is a fresh buffer that dies a moment later, but its memory returns
 * only when V8 collects the small JavaScript object that owns it. V8 grows its young generation up to 2 x 16 MiB
 * while such objects keep coming, and then collects them rarely: RSS rose by the young generation itself plus tens
 * of MiB of dead buffers (bench: 152 -> 131 MiB peak for a 200 MB dump with this flag). A young generation that does
 * not grow is collected every MiB or so of JavaScript allocation, in well under a millisecond. The growth factor is
 * read whenever V8 resizes the young generation, so it applies when set at run time (unlike --max-semi-space-size).
 */
setFlagsFromString("--semi-space-growth-factor=1");

/** A young-generation collection, once collectYoungWhileStreaming has made one callable. */
let collectYoung: (() => void) | undefined;

/**
 * A restore trades that memory back for CPU (called by `lifeboat restore` before it downloads). Its chunks wait in
 * the pipes to pg_restore long enough that a young generation held small promotes them, and V8 then collected its old
 * generation about 110 times in a 1 GB restore from S3 (an earlier lab probe); with V8's default growth (2): 3
 * times, 3.8 s less CPU (of the restoring process and its pg_restores) on cores that PostgreSQL needs (2 cores). A
 * backup keeps the flat memory above: its bound on peak RSS is a promise; a restore's is not.
 *
 * A parallel set streamed from S3 into its pg_restores still had 69-82 full collections with that growth (later lab
 * probes), for another reason (external memory, see `streamed`), so a restore also collects the young generation as
 * it streams.
 */
export function heapForThroughput(): void {
  setFlagsFromString("--semi-space-growth-factor=2");
  collectYoungWhileStreaming();
}

/**
 * Makes young-generation collections callable, so that `streamed` runs them: by `lifeboat restore` (above) and by the
 * embedded S3 server, which receives every byte of a backup the same way.
 */
export function collectYoungWhileStreaming(): void {
  if (collectYoung) return;
  try {
    // V8 gives the collector to contexts made after the flag is set; a Node that refuses leaves V8's own schedule
    setFlagsFromString("--expose-gc");
    const gc = runInNewContext("gc") as (options: { type: "minor" }) => void;
    collectYoung = () => gc({ type: "minor" });
  } catch {
    collectYoung = undefined;
  }
}

const COLLECT_EVERY = 4 * 1024 * 1024;
let sinceCollected = 0;

/**
 * Counts the bytes a restore streams (downloads, parts piped into pg_restore) and collects the young generation every
 * 4 MiB of them. Each chunk read from a socket or a file is a fresh 64 KiB buffer outside V8's heap, owned by a small
 * object that dies young; but a restore allocates so little else per chunk that the young generation fills only every
 * few hundred chunks, and meanwhile the dead chunks' memory, counted as external memory, makes V8 start full
 * collections instead. Lab, a 1 GB set restored from S3 with two jobs (2 cores): 69-82 full collections without this,
 * 53 collecting every 8 MiB, 1 every 4 MiB (about 280 young collections of well under a millisecond each); the
 * restoring process's CPU 14.3 -> 12.3 s (with its pg_restores), wall 18.4-18.7 -> 17.1-17.3 s. Does nothing unless
 * collectYoungWhileStreaming ran (backups and drills keep V8's own schedule, unless the embedded S3 server runs in the
 * same process: `lifeboat demo`).
 */
export function streamed(bytes: number): void {
  if (!collectYoung) return;
  sinceCollected += bytes;
  if (sinceCollected >= COLLECT_EVERY) {
    sinceCollected = 0;
    collectYoung();
  }
}
