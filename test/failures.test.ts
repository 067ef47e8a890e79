import { createServer, connect, type Server } from "node:net";
import { beforeAll, describe, expect, it } from "vitest";
import { BackupFailedError, dumpSchema, retriesSchema } from "@lifeboat/core";
import { S3Store, runBackup } from "@lifeboat/runner";
import { cli, closedPort, conn, createDatabase, pg, s3, s3Client, s3Keys, unique, url } from "./support/helpers.js";

/** Clear messages, exit code 1, no password anywhere; transient failures retried, permanent ones not. */
let db: string;
const WRONG = "Wr0ng-Pa55word-Zebra";

beforeAll(async () => {
  db = unique("fail");
  await createDatabase(db, "create table t as select g from generate_series(1, 1000) g;");
});

function expectNoSecret(...texts: string[]) {
  for (const t of texts) {
    expect(t).not.toContain(WRONG);
    expect(t).not.toContain(pg().password);
  }
}

describe("failures through the CLI", () => {
  it("wrong password: clear message, exit 1, one attempt (permanent), password printed nowhere", async () => {
    const prefix = unique("wrongpw");
    const res = await cli(["run", "--db", url(db, WRONG), "--to", `s3://${s3().bucket}/${prefix}`, "--attempts", "3"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain("password authentication failed");
    expect(res.stderr).toContain("after 1 attempt (not retried: the failure is permanent)");
    expect(res.stderr).toContain("hint: check the user and the password");
    expectNoSecret(res.stdout, res.stderr);
    expect(await s3Keys(prefix + "/")).toEqual([]);
  });

  it("the password is also kept out of --json output and JSON logs", async () => {
    const res = await cli(["run", "--db", url(db, WRONG), "--to", `s3://${s3().bucket}/x`, "--json"]);
    expect(res.code).toBe(1);
    const out = JSON.parse(res.stdout);
    expect(out).toMatchObject({ status: "error", exitCode: 1 });
    expect(out.attempts[0]).toMatchObject({ attempt: 1, code: "auth_failed", kind: "permanent" });
    expect(res.stderr.split("\n").filter(Boolean).every((l) => JSON.parse(l).time)).toBe(true);
    expectNoSecret(res.stdout, res.stderr);
  });

  it("unknown database: clear message, exit 1", async () => {
    const res = await cli(["run", "--db", url("no_such_db_here"), "--to", `s3://${s3().bucket}/x`]);
    expect(res.code).toBe(1);
    expect(res.stderr).toContain('database "no_such_db_here" does not exist');
    expect(res.stderr).toContain("hint: check the database name");
    expectNoSecret(res.stdout, res.stderr);
  });

  it("unreachable host: clear message, exit 1, every attempt listed", async () => {
    const port = await closedPort();
    const res = await cli(["run", "--db", `postgres://postgres:${WRONG}@127.0.0.1:${port}/app`, "--to", `s3://${s3().bucket}/x`, "--attempts", "1"]);
    expect(res.code).toBe(1);
    expect(res.stderr).toMatch(/Connection refused/);
    expect(res.stderr).toContain("attempt 1 (transient, connection_refused)");
    expect(res.stderr).toContain("is the server running");
    expectNoSecret(res.stdout, res.stderr);
  });

  it("a bad store URL is a usage error (exit 2)", async () => {
    const res = await cli(["run", "--db", url(db), "--to", "ftp://example/x"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("unsupported store scheme ftp:");
    expect(res.stderr).toContain("hint: use s3://bucket/prefix or file:///absolute/path");
  });

  it("missing arguments are a usage error (exit 2)", async () => {
    const res = await cli(["run", "--db", url(db)]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("needs a target from the config, or --to <store-url> with --db <database> (or PG* variables)");
  });
});

describe("retries", () => {
  const store = () => new S3Store({ bucket: s3().bucket, prefix: unique("retry"), endpoint: s3().endpoint, region: s3().region }, s3Client());

  it("a transient failure (connection refused) is retried, and the retry succeeds", async () => {
    // attempt 1 finds nothing listening; before attempt 2 a TCP forwarder to the real server starts on that port
    const port = await closedPort();
    let forwarder: Server | undefined;
    const upstream = pg();
    const s = store();
    try {
      const result = await runBackup({
        target: "retry",
        resolveSource: async () => conn(db, { port }),
        store: s,
        dump: dumpSchema.parse({}),
        retries: retriesSchema.parse({ attempts: 3, delaySeconds: 0.05, maxDelaySeconds: 0.2 }),
        log: {
          log: (_l, msg) => {
            if (msg.startsWith("attempt 1 failed") && !forwarder) {
              forwarder = createServer((client) => {
                const up = connect(upstream.port, upstream.host);
                client.pipe(up).pipe(client);
                client.on("error", () => up.destroy());
                up.on("error", () => client.destroy());
              }).listen(port, "127.0.0.1");
            }
          },
        },
      });
      expect(result.manifest.attempt).toBe(2);
      expect(result.attempts).toHaveLength(1);
      expect(result.attempts[0]).toMatchObject({ attempt: 1, code: "connection_refused", kind: "transient" });
      expect(result.manifest.object.size).toBeGreaterThan(0);
    } finally {
      forwarder?.close();
    }
  });

  it("a permanent failure (authentication) is not retried and does not wait", async () => {
    const started = Date.now();
    const err = await runBackup({
      target: "retry",
      resolveSource: async () => conn(db, { password: WRONG }),
      store: store(),
      dump: dumpSchema.parse({}),
      retries: retriesSchema.parse({ attempts: 5, delaySeconds: 30, maxDelaySeconds: 60 }),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupFailedError);
    expect((err as BackupFailedError).attempts.map((a) => [a.attempt, a.code, a.kind])).toEqual([[1, "auth_failed", "permanent"]]);
    expect(Date.now() - started).toBeLessThan(20_000); // a retry would have waited at least 30 s
    expect((err as Error).message).not.toContain(WRONG);
  });

  it("transient failures are retried up to the limit and the final error lists every attempt", async () => {
    const port = await closedPort();
    const err = await runBackup({
      target: "retry",
      resolveSource: async () => conn(db, { port }),
      store: store(),
      dump: dumpSchema.parse({}),
      retries: retriesSchema.parse({ attempts: 3, delaySeconds: 0.01, maxDelaySeconds: 0.05 }),
    }).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(BackupFailedError);
    const failed = err as BackupFailedError;
    expect(failed.attempts.map((a) => a.attempt)).toEqual([1, 2, 3]);
    expect(failed.message).toContain("failed after 3 attempts");
    expect(failed.message.match(/attempt \d \(transient, connection_refused\)/g)).toHaveLength(3);
  });
});
