/**
 * Lifeboat against the tools a user would otherwise run, side by side in one run, on a realistic and poorly
 * compressible database (customers with text, orders, events as jsonb, random bytea blobs):
 *
 *   npm run bench                 # 1.5 GB (builds the package first; about 10 minutes on 2 cores)
 *   npm run bench -- --gb 4       # larger
 *
 * Prints: `lifeboat --version` start-up; the read limit (`pg_dump -Fc -Z0 > /dev/null`); `pg_dump -Fc | upload`
 * (pg_dump's default compression, uploaded to S3 with lib-storage, as a script would); `pg_dump -Fc` at each gzip level
 * Lifeboat might default to; `pg_dump -Fd -jN` (local disk); Lifeboat's default backup into S3 (the compiled CLI in its
 * own process: time, output size, peak RSS); then restores: `pg_restore -jN` from a local file of Lifeboat's dump
 * against `lifeboat restore --jobs N` from a directory store and from S3; and the cost of encryption (age) as a ratio
 * to the same backup unencrypted; and the cost of copies (`--copy`: one, then two further stores written from the same
 * dump stream) as a ratio to the same backup with none. S3 is s3rver on loopback, in its own process, on the same cores: the last column is
 * the CPU it used during each step (work a real S3 does elsewhere). Each step starts after a checkpoint and a sync;
 * autovacuum is off (the database is vacuumed once, when built), so that no step runs beside another's vacuum; each
 * restored database is dropped once its restore is measured.
 */
import { fork, spawn } from "node:child_process";
import { availableParallelism } from "node:os";
import { createWriteStream, mkdirSync, mkdtempSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { pipeline } from "node:stream/promises";
import { fileURLToPath, pathToFileURL } from "node:url";
import { CreateBucketCommand, GetObjectCommand, HeadObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { backupObjects, backupSize, formatBytes, type Manifest } from "@lifeboat/core";
import { findTool, generateIdentity, query, s3ClientConfig, startEphemeralPostgres } from "@lifeboat/runner";

const COMPILED = fileURLToPath(new URL("../dist/package/", import.meta.url));
const JOBS = Math.min(4, availableParallelism());

interface Measured {
  code: number | null;
  secs: number;
  peakRss: number;
  stdout: string;
  s3cpu: number;
}

/** CPU seconds used so far by a process (user + system, from /proc): the local S3 server's share of the two cores. */
function cpuSeconds(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, "utf8").split(") ")[1]!.split(" ");
    return (Number(fields[11]) + Number(fields[12])) / 100;
  } catch {
    return 0;
  }
}
let s3ServerPid: number | undefined;
/** Before each step: PostgreSQL's checkpoint (so that none falls inside a measured restore), then a sync. */
let settle = async () => {};

/**
 * Runs a command to its end: wall time, peak RSS of the process itself (VmHWM, read from /proc while it runs), and
 * the CPU the S3 server used meanwhile. PostgreSQL checkpoints and dirty pages are written out first (sync), so that
 * one step's writes (the database's build, a restore) are not flushed during the next.
 */
async function measured(cmd: string, args: string[], env: NodeJS.ProcessEnv = process.env): Promise<Measured> {
  await settle();
  await new Promise((r) => spawn("sync").on("close", r));
  const s3cpu = cpuSeconds(s3ServerPid);
  return new Promise((resolve, reject) => {
    const t0 = performance.now();
    const child = spawn(cmd, args, { env, stdio: ["ignore", "pipe", "pipe"] });
    let peak = 0;
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => (stderr = (stderr + d.toString()).slice(-4000)));
    const timer = setInterval(() => {
      try {
        peak = Math.max(peak, 1024 * Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync(`/proc/${child.pid}/status`, "utf8"))?.[1] ?? 0));
      } catch {
        /* exited */
      }
    }, 20);
    child.on("error", reject);
    child.on("close", (code) => {
      clearInterval(timer);
      if (code !== 0) process.stderr.write(`${cmd} ${args.slice(0, 3).join(" ")} failed (exit ${code}):\n${stderr}\n`);
      resolve({ code, secs: (performance.now() - t0) / 1000, peakRss: peak, stdout, s3cpu: cpuSeconds(s3ServerPid) - s3cpu });
    });
  });
}

function sh(script: string, env: NodeJS.ProcessEnv = process.env): Promise<Measured> {
  return measured("bash", ["-o", "pipefail", "-c", script], env);
}

/** The realistic database: about 1 GB of data per unit of scale, little of it compressible. */
function realisticSql(gb: number): string[] {
  const n = (rowsPerGb: number) => Math.round(rowsPerGb * gb);
  return [
    `create extension if not exists pgcrypto;`,
    `create table customers (id bigint primary key, name text not null, email text not null, address text, created_at timestamptz not null);
     insert into customers select g, 'customer ' || md5(random()::text), md5(random()::text) || '@example.com', md5(random()::text) || ' ' || md5(random()::text) || ' street ' || (random() * 1000)::int, now() - random() * interval '3 years' from generate_series(1, ${n(800_000)}) g;`,
    `create table orders (id bigint primary key, customer_id bigint not null, amount numeric(12,2) not null, status text not null, note text, created_at timestamptz not null);
     insert into orders select g, 1 + (random() * ${n(800_000) - 1})::bigint, round((random() * 10000)::numeric, 2), (array['new','paid','shipped','returned'])[1 + (random() * 3)::int], md5(random()::text) || md5(random()::text), now() - random() * interval '3 years' from generate_series(1, ${n(2_400_000)}) g;`,
    `create table events (id bigint primary key, payload jsonb not null);
     insert into events select g, jsonb_build_object('kind', (array['view','click','buy','refund'])[1 + (random() * 3)::int], 'session', gen_random_uuid(), 'at', now() - random() * interval '90 days', 'score', random(), 'tags', jsonb_build_array(md5(random()::text), md5(random()::text)), 'ua', encode(gen_random_bytes(24), 'base64')) from generate_series(1, ${n(1_100_000)}) g;`,
    `create table blobs (id bigint primary key, data bytea not null);
     insert into blobs select g, gen_random_bytes(200) from generate_series(1, ${n(1_300_000)}) g;`,
    `create index on orders (customer_id); create index on events ((payload->>'kind')); analyze;`,
  ];
}

if (process.argv[2] === "--s3-server") {
  const { startEmbeddedS3 } = await import("@lifeboat/cli");
  const s3 = await startEmbeddedS3({ bucket: "bench" });
  process.send!(s3.endpoint);
  process.on("disconnect", () => void s3.stop().then(() => process.exit(0)));
} else {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  const gbArg = process.argv.indexOf("--gb");
  const gb = gbArg > 0 ? Number(process.argv[gbArg + 1]) : 1.5;
  const server = fork(fileURLToPath(import.meta.url), ["--s3-server"], { execArgv: process.execArgv, stdio: "ignore" });
  const endpoint = await new Promise<string>((r) => server.once("message", (m) => r(String(m))));
  s3ServerPid = server.pid;
  // no autovacuum: it vacuums a freshly built or restored database a minute or so later, during another step (seen in
  // lab runs: VACUUM ANALYZE of a restored 2 GB database while the next restore ran); the database is vacuumed once
  const pg = await startEphemeralPostgres({ settings: { shared_buffers: "512MB", max_wal_size: "8GB", checkpoint_timeout: "30min", autovacuum: "off" } });
  const work = mkdtempSync(join(tmpdir(), "lifeboat-bench-"));
  settle = async () => void (await query(pg.connection(), "checkpoint;"));
  const s3env = { ...process.env, AWS_ENDPOINT_URL_S3: endpoint, AWS_ACCESS_KEY_ID: "S3RVER", AWS_SECRET_ACCESS_KEY: "S3RVER", AWS_REGION: "us-east-1", CI: "true" };
  const lifeboat = (args: string[]) => measured(process.execPath, [join(COMPILED, "bin/lifeboat.js"), ...args], s3env);
  const rows: string[][] = [];
  const cpu = (secs?: number) => (secs && secs >= 0.05 ? `${secs.toFixed(1)} s` : "");
  const row = (what: string, secs: number | undefined, bytes: number | undefined, vsSecs: number | undefined, vsBytes: number | undefined, rss?: number, s3cpu?: number) =>
    rows.push([what, secs === undefined ? "" : `${secs.toFixed(1)} s`, bytes === undefined ? "" : formatBytes(bytes), vsSecs && secs ? `${(secs / vsSecs).toFixed(2)}x` : "", vsBytes && bytes ? `${(bytes / vsBytes).toFixed(2)}x` : "", rss ? formatBytes(rss) : "", cpu(s3cpu)]);
  try {
    const pgDump = await findTool("pg_dump");
    const pgRestore = await findTool("pg_restore");
    const version = await measured(process.execPath, [join(COMPILED, "bin/lifeboat.js"), "--version"]);
    console.log(`PostgreSQL ${pg.version}, pg_dump ${pgDump.version}, node ${process.version}, ${availableParallelism()} CPUs, jobs ${JOBS}; lifeboat --version: ${version.secs.toFixed(3)} s, ${formatBytes(version.peakRss)}`);
    await query(pg.connection(), "create database bench;");
    const t0 = performance.now();
    for (const sql of realisticSql(gb)) await query(pg.connection("bench"), sql);
    await query(pg.connection("bench"), "vacuum (freeze, analyze);"); // hint bits and visibility set before any step reads
    const [[size]] = (await query(pg.connection("bench"), "select pg_database_size('bench')")) as [[string]];
    console.log(`database: ${formatBytes(Number(size))} (customers, orders, events jsonb, blobs of random bytea; built in ${((performance.now() - t0) / 1000).toFixed(0)} s)`);
    const db = pg.url("bench");
    const dumpBin = pgDump.path;

    const read = await sh(`"${dumpBin}" -Fc -Z0 --dbname="${db}" | wc -c`);
    row("pg_dump -Fc -Z0 > /dev/null (the read limit)", read.secs, Number(read.stdout), undefined, undefined);
    const upload = `"${process.execPath}" "${fileURLToPath(new URL("upload.mjs", import.meta.url))}" ${endpoint}`;
    const base = await sh(`"${dumpBin}" -Fc --dbname="${db}" | ${upload} plain/base.dump`);
    const client = new S3Client({ ...s3ClientConfig({ bucket: "bench", endpoint }), credentials: { accessKeyId: "S3RVER", secretAccessKey: "S3RVER" } });
    const baseBytes = (await client.send(new HeadObjectCommand({ Bucket: "bench", Key: "plain/base.dump" }))).ContentLength!;
    row("pg_dump -Fc | upload (pg_dump's default: gzip 6)", base.secs, baseBytes, base.secs, baseBytes, undefined, base.s3cpu);
    for (const level of [1, 3]) {
      const r = await sh(`"${dumpBin}" -Fc -Z${level} --dbname="${db}" | wc -c`);
      row(`pg_dump -Fc -Z${level} > /dev/null`, r.secs, Number(r.stdout), base.secs, baseBytes);
    }
    const fd = await sh(`"${dumpBin}" -Fd -j${JOBS} -f "${work}/fd" --dbname="${db}" && du -sb "${work}/fd" | cut -f1`);
    row(`pg_dump -Fd -j${JOBS} (local disk)`, fd.secs, Number(fd.stdout), base.secs, baseBytes);
    rmSync(join(work, "fd"), { recursive: true, force: true });

    const one = await lifeboat(["run", "--db", db, "--to", "s3://bench/lifeboat-one", "--name", "bench", "--attempts", "1", "--jobs", "1", "--json"]);
    const m1 = JSON.parse(one.stdout).manifest as Manifest;
    row(`lifeboat run --jobs 1 (${m1.compression}, row counts) -> S3`, one.secs, backupSize(m1), base.secs, baseBytes, one.peakRss, one.s3cpu);
    const lb = await lifeboat(["run", "--db", db, "--to", "s3://bench/lifeboat", "--name", "bench", "--attempts", "1", "--json"]);
    const m = JSON.parse(lb.stdout).manifest as Manifest;
    row(`lifeboat run, defaults (${m.compression}, jobs ${JOBS}: ${(m.parts?.length ?? 0) + 1} archives) -> S3`, lb.secs, backupSize(m), base.secs, baseBytes, lb.peakRss, lb.s3cpu);
    // the cost of client-side encryption (age): the same defaults, encrypted for one recipient
    const { recipient } = await generateIdentity();
    const enc = await lifeboat(["run", "--db", db, "--to", "s3://bench/lifeboat-enc", "--name", "bench", "--attempts", "1", "--recipient", recipient, "--json"]);
    const me = JSON.parse(enc.stdout).manifest as Manifest;
    row(`lifeboat run, defaults, encrypted (age) -> S3`, enc.secs, backupSize(me), base.secs, baseBytes, enc.peakRss, enc.s3cpu);
    // the cost of copies (3-2-1): the same defaults, the one dump stream also written to a second bucket, then also to
    // a directory on the local disk (the slowest store sets the pace)
    await client.send(new CreateBucketCommand({ Bucket: "bench-copy" }));
    const copyRuns: Array<[string, Measured]> = [];
    for (const [what, copies] of [
      ["1 copy (a second bucket)", ["s3://bench-copy/one"]],
      ["2 copies (a second bucket, a local directory)", ["s3://bench-copy/two", pathToFileURL(join(work, "copy")).href]],
    ] as const) {
      const r = await lifeboat(["run", "--db", db, "--to", `s3://bench/lifeboat-copies-${copies.length}`, "--name", "bench", "--attempts", "1", ...copies.flatMap((c) => ["--copy", c]), "--json"]);
      const result = JSON.parse(r.stdout) as { manifest: Manifest; copies: Array<{ name: string; ok: boolean; error?: string }> };
      const failed = result.copies.filter((c) => !c.ok);
      if (failed.length || result.copies.length !== copies.length) throw new Error(`the run with ${what} did not write every copy: ${JSON.stringify(result.copies)}`);
      row(`lifeboat run, defaults, ${what}`, r.secs, backupSize(result.manifest), base.secs, baseBytes, r.peakRss, r.s3cpu);
      copyRuns.push([what, r]);
    }
    rmSync(join(work, "copy"), { recursive: true, force: true });
    const copiesCost = copyRuns.map(([what, r]) => `${what}: ${(r.secs / lb.secs).toFixed(2)}x the time of no copy, peak RSS ${formatBytes(r.peakRss)} (no copy: ${formatBytes(lb.peakRss)}), S3 server CPU ${cpu(r.s3cpu) || "0 s"} (no copy: ${cpu(lb.s3cpu) || "0 s"})`);
    const encryptionCost = `encryption (age) costs ${(enc.secs / lb.secs).toFixed(2)}x the time of the same unencrypted backup, ${(backupSize(me) / backupSize(m)).toFixed(4)}x its size`;

    // restores of Lifeboat's dump: pg_restore from a local file, lifeboat from a directory store and from S3
    const dirStore = join(work, "store");
    for (const key of [...backupObjects(m).map((o) => o.key), m.object.key.replace(/\.dump$/, ".manifest.json")]) {
      const file = join(dirStore, key);
      mkdirSync(dirname(file), { recursive: true });
      const res = await client.send(new GetObjectCommand({ Bucket: "bench", Key: `lifeboat/${key}` }));
      await pipeline(res.Body as NodeJS.ReadableStream, createWriteStream(file));
    }
    // pg_restore's input: the same data as one archive, compressed as Lifeboat's (a user's pg_dump -Fc file)
    const local = join(work, "local.dump");
    const level = /^gzip:(\d)$/.exec(String(m.compression))?.[1] ?? (m.compression === "none" ? "0" : "6");
    await sh(`"${dumpBin}" -Fc -Z${level} -f "${local}" --dbname="${db}"`);
    await query(pg.connection(), "create database r_pg; create database r_dir; create database r_s3;");
    const restoreRows: string[][] = [];
    // each restored database is dropped once measured, so that none holds disk or page cache during the next restore
    const dropped = async <T>(name: string, step: Promise<T>) => {
      const result = await step;
      await query(pg.connection(), `drop database ${name};`);
      return result;
    };
    const pr = await dropped("r_pg", measured(pgRestore.path, [`--jobs=${JOBS}`, "--no-owner", `--dbname=${pg.url("r_pg")}`, local]));
    const rrow = (what: string, r: Measured) => restoreRows.push([what, `${r.secs.toFixed(1)} s`, "", `${(r.secs / pr.secs).toFixed(2)}x`, "", r.peakRss && what.startsWith("lifeboat") ? formatBytes(r.peakRss) : "", cpu(r.s3cpu)]);
    rrow(`pg_restore -j${JOBS} from a local file (${formatBytes(statSync(local).size)})`, pr);
    rrow(`lifeboat restore --jobs ${JOBS} from the directory store`, await dropped("r_dir", lifeboat(["restore", "--from", `file://${dirStore}`, "--to", pg.url("r_dir"), "--jobs", String(JOBS), "--no-owner", "--json"])));
    rrow(`lifeboat restore --jobs ${JOBS} from S3`, await dropped("r_s3", lifeboat(["restore", "--from", "s3://bench/lifeboat", "--to", pg.url("r_s3"), "--jobs", String(JOBS), "--no-owner", "--json"])));

    const header = ["", "wall", "output", "time vs base", "size vs base", "peak RSS", "S3 server CPU"];
    const all = [header, ...rows, ["restore", "", "", "vs pg_restore", "", "", ""], ...restoreRows];
    const widths = header.map((_, i) => Math.max(...all.map((r) => r[i]!.length)));
    console.log(`\nbackup (base: pg_dump -Fc | upload)`);
    for (const r of all) console.log(r.map((c, i) => (i === 0 ? c.padEnd(widths[i]!) : c.padStart(widths[i]!))).join("  "));
    if (m.rowCountMs !== undefined) console.log(`\n(lifeboat's row counts took ${m.rowCountMs} ms of its time)`);
    console.log(encryptionCost);
    for (const line of copiesCost) console.log(`copies, ${line}`);
  } finally {
    rmSync(work, { recursive: true, force: true });
    await pg.stop();
    server.disconnect();
  }
}
