import { createReadStream, createWriteStream } from "node:fs";
import { mkdtemp, rm } from "node:fs/promises";
import { createHash } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Transform } from "node:stream";
import { pipeline } from "node:stream/promises";
import { createGunzip } from "node:zlib";
import { spawn } from "node:child_process";
import { ChecksumMismatchError, LifeboatError, redact, silentLogger, type Logger, type Manifest, type ObjectStore } from "@lifeboat/core";
import { conninfo, displayUrl, sameEndpoint, toolEnv, type ConnectionInfo } from "./pg/connection.js";
import { preflight } from "./pg/psql.js";
import { findTool } from "./pg/tools.js";

export interface RestoreOptions {
  store: ObjectStore;
  manifest: Manifest;
  to: ConnectionInfo;
  /** Restore even into the database the backup was taken from. */
  force?: boolean;
  /** Skip restoring ownership (pg_restore --no-owner), for servers without the original roles. */
  noOwner?: boolean;
  signal?: AbortSignal;
  log?: Logger;
  onProgress?: (p: { phase: "download" | "restore"; bytes: number; total: number }) => void;
}

export interface RestoreResult {
  downloadMs: number;
  restoreMs: number;
  bytes: number;
}

/**
 * Fetches the dump into a private temporary directory while hashing it, refuses it unless its SHA-256 and size match
 * the manifest (before the target database is even contacted), then restores it in one transaction: pg_restore for
 * custom archives, psql for plain SQL. The temporary copy is always removed.
 */
export async function restoreBackup(opts: RestoreOptions): Promise<RestoreResult> {
  const log = opts.log ?? silentLogger;
  const { manifest, to } = opts;
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-restore-"));
  try {
    const file = join(dir, "dump");
    const t0 = Date.now();
    const hash = createHash("sha256");
    let bytes = 0;
    const meter = new Transform({
      transform(chunk: Buffer, _e, cb) {
        hash.update(chunk);
        bytes += chunk.length;
        opts.onProgress?.({ phase: "download", bytes, total: manifest.object.size });
        cb(null, chunk);
      },
    });
    await pipeline(await opts.store.get(manifest.object.key), meter, createWriteStream(file, { mode: 0o600 }), opts.signal ? { signal: opts.signal } : {});
    const actual = hash.digest("hex");
    if (actual !== manifest.object.sha256 || bytes !== manifest.object.size) {
      throw new ChecksumMismatchError(opts.store.location(manifest.object.key), manifest.object.sha256, actual, manifest.object.size, bytes);
    }
    const downloadMs = Date.now() - t0;
    log.log("info", "checksum verified", { sha256: actual, bytes });

    const server = await preflight(to, opts.signal).catch((err: Error) => {
      throw new LifeboatError(`cannot connect to the restore target ${displayUrl(to)}: ${redact(err.message, [to.password])}`, {
        hint: (err as { hint?: string }).hint ?? "the target database must exist: createdb it first",
      });
    });
    const src = manifest.database;
    const same =
      src.systemIdentifier && server.systemIdentifier
        ? src.systemIdentifier === server.systemIdentifier && src.name === server.database
        : sameEndpoint({ host: src.host, port: src.port, database: src.name }, { host: to.host, port: to.port, database: server.database });
    if (same && !opts.force) {
      throw new LifeboatError(
        `refusing to restore into ${displayUrl(to)}: it is the database this backup was taken from ("${src.name}" on ${src.host}:${src.port})`,
        { exitCode: 2, hint: "restore into a new database (createdb), or pass --force if you really mean to overwrite it" },
      );
    }

    const t1 = Date.now();
    if (manifest.format === "custom") {
      const tool = await findTool("pg_restore", { minMajor: manifest.pgDump.major, for: "the archive (written by pg_dump " + manifest.pgDump.version + ")" });
      const args = ["--no-password", "--exit-on-error", "--single-transaction", `--dbname=${conninfo(to)}`];
      if (opts.noOwner) args.push("--no-owner");
      args.push(file);
      log.log("info", "pg_restore started", { to: displayUrl(to), pgRestore: tool.version });
      await runRestoreTool(tool.path, args, to, undefined, opts.signal);
    } else {
      const tool = await findTool("psql");
      const args = ["-X", "-q", "--no-password", "-v", "ON_ERROR_STOP=1", "--single-transaction", `--dbname=${conninfo(to)}`, "-f", "-"];
      const input = manifest.compression > 0 ? createReadStream(file).pipe(createGunzip()) : createReadStream(file);
      log.log("info", "psql restore started", { to: displayUrl(to) });
      await runRestoreTool(tool.path, args, to, input, opts.signal);
    }
    return { downloadMs, restoreMs: Date.now() - t1, bytes };
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
}

function runRestoreTool(path: string, args: string[], to: ConnectionInfo, input: NodeJS.ReadableStream | undefined, signal?: AbortSignal): Promise<void> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, { env: toolEnv(to), stdio: [input ? "pipe" : "ignore", "ignore", "pipe"], ...(signal ? { signal } : {}) });
    let stderr = "";
    child.stderr!.on("data", (d: Buffer) => {
      if (stderr.length < 64 * 1024) stderr += d.toString("utf8");
    });
    if (input && child.stdin) {
      child.stdin.on("error", () => {});
      input.on("error", (err) => {
        child.kill();
        reject(err);
      });
      input.pipe(child.stdin);
    }
    child.on("error", reject);
    child.on("close", (code, sig) => {
      if (code === 0) return resolve();
      const text = redact(stderr.trim(), [to.password]);
      const hint = /role "[^"]+" does not exist/.test(text) ? "the target server lacks the original roles: create them, or pass --no-owner" : "nothing was restored: the restore ran in one transaction and was rolled back";
      reject(new LifeboatError(`restore failed (${sig ? `killed by ${sig}` : `exit code ${code}`}): ${text}`, { hint }));
    });
  });
}
