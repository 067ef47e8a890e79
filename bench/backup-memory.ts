/**
 * Backup throughput and memory against database size: the dump streams through SHA-256 into S3 (multipart) without
 * touching disk, so peak RSS should stay flat as the database grows.
 *
 *   npm run bench -- [sizes in MB, default 50 200 800]
 *
 * Prints, per size: dump bytes, seconds, MB/s, and the runner process's peak RSS and heap (sampled every 50 ms);
 * then the same backup with exact row counts (dump.rowCounts, the default) and without, to show what counting costs.
 * The S3 server (s3rver) runs in a child process so its memory is not counted.
 */
import { fork } from "node:child_process";
import { fileURLToPath } from "node:url";
import { S3Client } from "@aws-sdk/client-s3";
import { dumpSchema, retriesSchema, formatBytes } from "@lifeboat/core";
import { S3Store, query, runBackup, s3ClientConfig, startEphemeralPostgres } from "@lifeboat/runner";

if (process.argv[2] === "--s3-server") {
  const { startEmbeddedS3 } = await import("@lifeboat/cli");
  const s3 = await startEmbeddedS3({ bucket: "bench" });
  process.send!(s3.endpoint);
  process.on("disconnect", () => void s3.stop().then(() => process.exit(0)));
} else {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  const sizes = process.argv.slice(2).map(Number).filter((n) => n > 0);
  const mbs = sizes.length ? sizes : [50, 200, 800];
  const server = fork(fileURLToPath(import.meta.url), ["--s3-server"], { execArgv: process.execArgv });
  const endpoint = await new Promise<string>((r) => server.once("message", (m) => r(String(m))));
  const pg = await startEphemeralPostgres();
  const client = new S3Client({ ...s3ClientConfig({ bucket: "bench", endpoint }), credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
  console.log(`PostgreSQL ${pg.version}, s3rver at ${endpoint}, node ${process.version}`);
  console.log("size(MB)  counts  dump bytes        seconds  MB/s    peak RSS    peak heap   counting(ms)");
  try {
    for (const mb of mbs) {
      const db = `bench_${mb}`;
      await query(pg.connection(), `create database ${db};`);
      // ~100 bytes per row of incompressible-ish text; compression 0 so the dump is about the table's size
      await query(pg.connection(db), `create table t as select g, md5(g::text) || md5((g*3)::text) || md5((g*7)::text) as v from generate_series(1, ${mb * 10_000}) g;`);
      for (const rowCounts of [true, false]) {
      global.gc?.();
      const base = process.memoryUsage();
      let peakRss = base.rss;
      let peakHeap = base.heapUsed;
      const timer = setInterval(() => {
        const m = process.memoryUsage();
        peakRss = Math.max(peakRss, m.rss);
        peakHeap = Math.max(peakHeap, m.heapUsed);
      }, 50);
      const t0 = performance.now();
      const r = await runBackup({
        target: db.replace("_", "-"),
        resolveSource: async () => pg.connection(db),
        store: new S3Store({ bucket: "bench", endpoint }, client),
        dump: dumpSchema.parse({ compression: 0, rowCounts }),
        retries: retriesSchema.parse({ attempts: 1 }),
      });
      const secs = (performance.now() - t0) / 1000;
      clearInterval(timer);
      const bytes = r.manifest.object.size;
      console.log(
        `${String(mb).padEnd(9)} ${(rowCounts ? "exact" : "off").padEnd(7)} ${String(bytes).padEnd(17)} ${secs.toFixed(2).padEnd(8)} ${(bytes / 1e6 / secs).toFixed(1).padEnd(7)} ${formatBytes(peakRss).padEnd(11)} ${formatBytes(peakHeap).padEnd(11)} ${r.manifest.rowCountMs ?? "-"}`,
      );
      }
      await query(pg.connection(), `drop database ${db};`);
    }
  } finally {
    await pg.stop();
    server.disconnect();
  }
}
