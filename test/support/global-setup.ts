import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { fileURLToPath } from "node:url";
import type { TestProject } from "vitest/node";
import { startEphemeralPostgres } from "@lifeboat/runner";
import { startEmbeddedS3 } from "@lifeboat/cli";
import { TEST_BUCKET } from "./cloud-fixture.js";

/** A test CA and a server certificate for "localhost" signed by it, so that TLS with verify-full can be tested. */
function testCertificates(): { ca: string; cert: string; key: string } {
  const dir = mkdtempSync(join(tmpdir(), "lifeboat-tls-"));
  const ssl = (args: string[]) => execFileSync("openssl", args, { cwd: dir, stdio: "pipe" });
  writeFileSync(join(dir, "san.ext"), "subjectAltName=DNS:localhost\n");
  try {
    ssl(["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=Lifeboat test CA", "-keyout", "ca.key", "-out", "ca.crt"]);
    ssl(["req", "-newkey", "rsa:2048", "-nodes", "-subj", "/CN=localhost", "-keyout", "server.key", "-out", "server.csr"]);
    ssl(["x509", "-req", "-in", "server.csr", "-CA", "ca.crt", "-CAkey", "ca.key", "-CAcreateserial", "-days", "2", "-out", "server.crt", "-extfile", "san.ext"]);
    const read = (f: string) => readFileSync(join(dir, f), "utf8");
    return { ca: read("ca.crt"), cert: read("server.crt"), key: read("server.key") };
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

/**
 * One real PostgreSQL cluster (initdb/pg_ctl on a free port, as an unprivileged user when run as root) and one real
 * S3 API server (s3rver on loopback) for the whole run. Each test file creates its own databases and key prefixes.
 */
declare module "vitest" {
  export interface ProvidedContext {
    pg: { host: string; port: number; user: string; password: string; version: string; caCert: string };
    s3: { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string; region: string; directory: string };
  }
}

/** Lifeboat's temporary directories (the tests' and the product's own, all named lifeboat-*). */
function lifeboatTempDirs(): Set<string> {
  return new Set(readdirSync(tmpdir()).filter((n) => n.startsWith("lifeboat-")));
}

export default async function setup(project: TestProject) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  const before = lifeboatTempDirs();
  // the IAM check (test/iam.test.ts, after the suite) reads what this run records, and only that
  rmSync(process.env.LIFEBOAT_AWS_CALLS!, { recursive: true, force: true });
  // the compiled package the tests run (helpers.ts BIN)
  if (!process.env.LIFEBOAT_TEST_SOURCES) {
    const repo = fileURLToPath(new URL("../..", import.meta.url));
    execFileSync(process.execPath, ["scripts/build.mjs"], { cwd: repo, stdio: "pipe" });
    // and its tarball, which the files that install it outside this repository use (outside-*.test.ts, iam-sst-app)
    execFileSync("npm", ["pack", "./dist/package", "--pack-destination", "dist"], { cwd: repo, stdio: "pipe", env: { ...process.env, npm_config_loglevel: "error" } });
    process.env.LIFEBOAT_TEST_BUILT = "1";
  }
  const tls = testCertificates();
  const pg = await startEphemeralPostgres({ tls });
  const s3 = await startEmbeddedS3({ bucket: TEST_BUCKET });
  project.provide("pg", { host: pg.host, port: pg.port, user: pg.user, password: pg.password, version: pg.version, caCert: tls.ca });
  project.provide("s3", { endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, directory: s3.directory });
  return async () => {
    await s3.stop();
    await pg.stop();
    // the run must leave the temp dir as it found it: every test removes what it made, and so does the product
    const left = [...lifeboatTempDirs()].filter((n) => !before.has(n));
    if (left.length) throw new Error(`the test run left ${left.length} temporary directories in ${tmpdir()}: ${left.sort().join(", ")}`);
  };
}
