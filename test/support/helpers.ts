import { spawn } from "node:child_process";
import { createServer } from "node:http";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { randomBytes } from "node:crypto";
import { fileURLToPath } from "node:url";
import { inject } from "vitest";
import { ListMultipartUploadsCommand, ListObjectsV2Command, S3Client } from "@aws-sdk/client-s3";
import { query, s3ClientConfig, type ConnectionInfo } from "@lifeboat/runner";
import type { LifeboatEvent } from "@lifeboat/core";

export const REPO = fileURLToPath(new URL("../..", import.meta.url));
/**
 * The `lifeboat` the tests run: the compiled package (dist/package/bin/lifeboat.js, built by the suite's global setup
 * with scripts/build.mjs), as users install it: what ships is what is tested, and a compiled start is about half a
 * second quicker than the sources through tsx. LIFEBOAT_TEST_SOURCES=1 runs the sources instead (packages/cli/bin).
 */
export const BIN = fileURLToPath(new URL(process.env.LIFEBOAT_TEST_SOURCES ? "../../packages/cli/bin/lifeboat.js" : "../../dist/package/bin/lifeboat.js", import.meta.url));

export function pg() {
  return inject("pg");
}
export function s3() {
  return inject("s3");
}

const tempDirs: string[] = [];

/** A private temporary directory, removed when the test file ends (test/support/setup-env.ts). */
export function tempDir(prefix: string): string {
  const dir = mkdtempSync(join(tmpdir(), prefix));
  tempDirs.push(dir);
  return dir;
}

export function removeTempDirs(): void {
  for (const dir of tempDirs.splice(0)) rmSync(dir, { recursive: true, force: true });
}

/** A loopback port with nothing listening on it (connections are refused): a server, a store, that is down. */
export async function closedPort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

/** A real local HTTP server that answers 200 to anything and records each request as "METHOD /path?query". */
export async function startRecorder(): Promise<{ url: string; requests: string[]; close: () => Promise<void> }> {
  const requests: string[] = [];
  const server = createServer((req, res) => {
    requests.push(`${req.method} ${req.url}`);
    res.writeHead(200).end("OK");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}`,
    requests,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

/** A local webhook endpoint that keeps every event posted to it (notifications.webhook), parsed. */
export async function startEventRecorder(): Promise<{ url: string; events: LifeboatEvent[]; close: () => Promise<void> }> {
  const events: LifeboatEvent[] = [];
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const chunk of req) body += chunk;
    events.push(JSON.parse(body) as LifeboatEvent);
    res.writeHead(200).end("OK");
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return {
    url: `http://127.0.0.1:${(server.address() as { port: number }).port}/hook`,
    events,
    close: () => new Promise<void>((r) => server.close(() => r())),
  };
}

export function unique(prefix: string): string {
  return `${prefix}_${randomBytes(4).toString("hex")}`;
}

export function conn(database = "postgres", overrides: Partial<ConnectionInfo> = {}): ConnectionInfo {
  const p = pg();
  return { host: p.host, port: p.port, user: p.user, password: p.password, database, params: {}, ...overrides };
}

export function url(database: string, password = pg().password): string {
  const p = pg();
  return `postgres://${p.user}:${encodeURIComponent(password)}@${p.host}:${p.port}/${database}`;
}

export async function createDatabase(name: string, sql?: string): Promise<ConnectionInfo> {
  await query(conn(), `create database "${name}";`);
  const c = conn(name);
  if (sql) await query(c, sql);
  return c;
}

export function s3Client(): S3Client {
  const s = s3();
  const client = new S3Client({ ...s3ClientConfig({ bucket: s.bucket, endpoint: s.endpoint, region: s.region }), credentials: { accessKeyId: s.accessKeyId, secretAccessKey: s.secretAccessKey } });
  // the test's own client: test/support/aws-calls.ts records none of its calls as a component's
  return Object.assign(client, { [Symbol.for("lifeboat.test-client")]: true });
}

export async function s3Keys(prefix: string): Promise<string[]> {
  const res = await s3Client().send(new ListObjectsV2Command({ Bucket: s3().bucket, Prefix: prefix }));
  return (res.Contents ?? []).map((o) => o.Key!).sort();
}

export async function s3PendingUploads(prefix: string): Promise<string[]> {
  const res = await s3Client().send(new ListMultipartUploadsCommand({ Bucket: s3().bucket, Prefix: prefix }));
  return (res.Uploads ?? []).map((u) => u.Key!);
}

export interface CliResult {
  code: number | null;
  stdout: string;
  stderr: string;
}

/** Runs the real `lifeboat` entry point in a child process (no terminal, as in CI). */
/** `lifeboat` processes started by cli() that have not exited yet (a test that timed out leaves its own behind). */
const cliChildren = new Set<ReturnType<typeof spawn>>();

/**
 * Stops what cli() started and is still running, as an operator would (SIGTERM: Lifeboat stops its pg_dump or
 * pg_restore and cleans up), then SIGKILL after 5 s. Called when each test file ends (test/support/setup-env.ts).
 */
export async function stopCliChildren(): Promise<void> {
  await Promise.all(
    [...cliChildren].map(
      (child) =>
        new Promise<void>((resolve) => {
          if (child.exitCode !== null || child.signalCode !== null) return resolve();
          const kill = setTimeout(() => child.kill("SIGKILL"), 5000);
          child.once("close", () => (clearTimeout(kill), resolve()));
          child.kill("SIGTERM");
        }),
    ),
  );
}

export function cli(args: string[], opts: { env?: NodeJS.ProcessEnv; cwd?: string; onStderr?: (chunk: string, child: ReturnType<typeof spawn>) => void } = {}): Promise<CliResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [BIN, ...args], {
      cwd: opts.cwd ?? REPO,
      env: { ...process.env, CI: "", ...opts.env },
      stdio: ["ignore", "pipe", "pipe"],
    });
    cliChildren.add(child);
    child.once("close", () => cliChildren.delete(child));
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    child.stderr.on("data", (d: Buffer) => {
      stderr += d.toString();
      opts.onStderr?.(d.toString(), child);
    });
    child.on("error", reject);
    child.on("close", (code) => resolve({ code, stdout, stderr }));
  });
}
