import { setFlagsFromString } from "node:v8";

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

/**
 * A restore trades that memory back for CPU (called by `lifeboat restore` before it downloads). Its chunks wait in
 * the pipes to pg_restore long enough that a young generation held small promotes them, and V8 then collected its old
 * generation about 110 times in a 1 GB restore from S3; with V8's default growth (2): 3 times, 3.8 s less CPU (of the
 * restoring process and its pg_restores) on cores that PostgreSQL needs (lab probes, 2 cores; /usr/bin/time's max RSS
 * 124 MiB against 103 MiB, while the bench's VmHWM of the restore stayed at 111-113 MiB). A backup keeps the flat memory above: its bound on peak RSS is a promise; a restore's is not.
 */
export function heapForThroughput(): void {
  setFlagsFromString("--semi-space-growth-factor=2");
}
