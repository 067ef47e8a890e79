/**
 * Backup throughput and memory against database size: the dump streams through SHA-256 into S3 (multipart) without
 * touching disk, so peak RSS should stay flat as the database grows.
 *
 *   npm run bench -- [sizes in MB, default 50 200 800]
 *
 * Prints, per size: dump bytes, seconds, MB/s, and the runner process's peak RSS and heap (sampled every 50 ms);
 * then the same backup with exact row counts (dump.rowCounts, the default) and without, to show what counting costs.
 * The S3 server (s3rver) runs in a child process so its memory is not counted.
 *
 * It also measures what users run, compiled (npm run bench builds dist/package first): `lifeboat --version`'s start-up
 * time and peak RSS, and for each size a backup by the compiled runner (runner.js, the container's entry point) in its
 * own process, whose peak RSS is read from /proc (VmHWM), side by side with `pg_dump -Fc -Z0 > /dev/null` of the same
 * database (the tool a user would otherwise run).
 */
import { fork, spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import { S3Client } from "@aws-sdk/client-s3";
import { backupSize, dumpSchema, retriesSchema, formatBytes } from "@lifeboat/core";
import { S3Store, findTool, query, runBackup, s3ClientConfig, startEphemeralPostgres } from "@lifeboat/runner";

const COMPILED = fileURLToPath(new URL("../dist/package/", import.meta.url));

/** Runs a command to its end; its wall time and its peak RSS (VmHWM, read from /proc while it runs). */
function measured(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<{ code: number | null; secs: number; peakRss: number }> {
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ["ignore", "ignore", "pipe"] });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    let peak = 0;
    const sample = () => {
      try {
        const kb = Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0);
        peak = Math.max(peak, kb * 1024);
      } catch {
        /* exited */
      }
    };
    const timer = setInterval(sample, 20);
    child.on("error", reject);
    child.on("exit", (code) => {
      clearInterval(timer);
      if (code !== 0) process.stderr.write(`${cmd} ${args[0] ?? ""} failed (exit ${code}):\n${stderr}\n`);
      resolve({ code, secs: (performance.now() - t0) / 1000, peakRss: peak });
    });
  });
}

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
  // start-up of the compiled CLI (goal: <= 0.3 s and 80 MB)
  const runs = [];
  for (let i = 0; i < 7; i++) runs.push(await measured(process.execPath, [join(COMPILED, "bin/lifeboat.js"), "--version"]));
  runs.sort((a, b) => a.secs - b.secs);
  console.log(`lifeboat --version (compiled): median ${runs[3]!.secs.toFixed(3)} s, peak RSS ${formatBytes(Math.max(...runs.map((r) => r.peakRss)))} (7 runs)`);
  const work = mkdtempSync(join(tmpdir(), "lifeboat-bench-"));
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
      const bytes = backupSize(r.manifest); // every archive of a parallel set
      console.log(
        `${String(mb).padEnd(9)} ${(rowCounts ? "exact" : "off").padEnd(7)} ${String(bytes).padEnd(17)} ${secs.toFixed(2).padEnd(8)} ${(bytes / 1e6 / secs).toFixed(1).padEnd(7)} ${formatBytes(peakRss).padEnd(11)} ${formatBytes(peakHeap).padEnd(11)} ${r.manifest.rowCountMs ?? "-"}`,
      );
      }
      // the compiled runner in its own process (what the container runs), beside pg_dump alone
      const config = join(work, `${db}.config.json`);
      writeFileSync(config, JSON.stringify({ storage: { s3: { bucket: "bench", endpoint, prefix: "compiled" } }, targets: { [db.replace("_", "-")]: { database: { url: { env: "BENCH_DB_URL" } }, dump: { compression: 0, rowCounts: false }, retries: { attempts: 1 } } } }));
      const env = { ...process.env, LIFEBOAT_CONFIG: config, LIFEBOAT_TARGET: db.replace("_", "-"), BENCH_DB_URL: pg.url(db), AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", LIFEBOAT_TOPIC_ARN: "" };
      const runner = await measured(process.execPath, [join(COMPILED, "runner.js")], env);
      // what a user runs on a server: the installed CLI, ad hoc, into the same S3 server
      const cliEnv = { ...process.env, AWS_ENDPOINT_URL_S3: endpoint, AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_REGION: "us-east-1", CI: "true" };
      const cliRun = await measured(process.execPath, [join(COMPILED, "bin/lifeboat.js"), "run", "--db", pg.url(db), "--to", "s3://bench/cli", "--compression", "0", "--attempts", "1"], cliEnv);
      const pgDump = (await findTool("pg_dump")).path;
      const plain = await measured("sh", ["-c", `"${pgDump}" -Fc -Z0 --dbname="${pg.url(db)}" > /dev/null`]);
      console.log(
        `${String(mb).padEnd(9)} compiled runner (own process, exit ${runner.code}): ${runner.secs.toFixed(2)} s, peak RSS ${formatBytes(runner.peakRss)}; ` +
          `compiled \`lifeboat run --db --to s3://\` (exit ${cliRun.code}): ${cliRun.secs.toFixed(2)} s, peak RSS ${formatBytes(cliRun.peakRss)}; ` +
          `pg_dump -Fc -Z0 > /dev/null: ${plain.secs.toFixed(2)} s (runner ${(runner.secs / plain.secs).toFixed(2)}x)`,
      );
      await query(pg.connection(), `drop database ${db};`);
    }
  } finally {
    rmSync(work, { recursive: true, force: true });
    await pg.stop();
    server.disconnect();
  }
}
