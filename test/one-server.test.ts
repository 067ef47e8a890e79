import { createServer, type Server } from "node:http";
import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3Store, StoreWatch, listBackups } from "@lifeboat/runner";
import { startEmbeddedS3 } from "@lifeboat/cli";
import { cli, createDatabase, pg, tempDir, unique } from "./support/helpers.js";

/**
 * Lifeboat on one server (issue "On one server too, every failure reaches a person"): a store that is down under the
 * daemon, a store without ListMultipartUploads, configuration errors, numbers on the command line, a config's
 * relative paths. Each is injected into real processes: the `lifeboat` binary, an S3 server on loopback (or nothing
 * listening on its port), a webhook receiver, the test PostgreSQL.
 */

let hook: Server;
let hookUrl = "";
const posted: Array<{ type: string; target: string; error?: { message: string; code: string; attempts: unknown[] } }> = [];
let db = "";
beforeAll(async () => {
  hook = createServer(async (req, res) => {
    let body = "";
    for await (const c of req) body += c;
    posted.push(JSON.parse(body));
    res.writeHead(200).end();
  });
  await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
  hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/hooks/SECRETHOOKTOKEN`;
  db = unique("onesrv");
  await createDatabase(db, "create table t(id int primary key, v text); insert into t select g, md5(g::text) from generate_series(1, 500) g;");
});
afterAll(() => new Promise<void>((r) => hook.close(() => r())));

async function freePort(): Promise<number> {
  const srv = createServer();
  await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
  const port = (srv.address() as { port: number }).port;
  await new Promise<void>((r) => srv.close(() => r()));
  return port;
}

function writeConfig(dir: string, storage: string, extra = ""): string {
  const file = join(dir, "lifeboat.config.ts");
  writeFileSync(
    file,
    `export default {
  storage: ${storage},
  targets: {
    app: {
      database: { host: "127.0.0.1", port: ${pg().port}, database: "${db}", user: "${pg().user}", password: { env: "TEST_DB_PASSWORD" } },
      schedule: "rate(1 hour)",
      retries: { attempts: 2, delaySeconds: 1, maxDelaySeconds: 1 },
      ${extra}
    },
  },
  notifications: { webhook: { url: { env: "TEST_WEBHOOK_URL" }, on: ["failed"] } },
};\n`,
  );
  return file;
}

const s3Storage = (endpoint: string, bucket = "lifeboat") => `{ s3: { bucket: "${bucket}", prefix: "one", endpoint: "${endpoint}", region: "us-east-1" } }`;

async function until(what: string, check: () => boolean, ms = 30_000): Promise<void> {
  const end = Date.now() + ms;
  while (!check()) {
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

describe("a store that cannot be reached", () => {
  it("the daemon starts anyway, retries the run, reports it failed with the cause, says so once, and keeps running", async () => {
    const dir = tempDir("lifeboat-down-");
    const port = await freePort(); // nothing listens there: every store call is refused
    const config = writeConfig(dir, s3Storage(`http://127.0.0.1:${port}`));
    posted.length = 0;
    let stderr = "";
    let child: { kill: (s: NodeJS.Signals) => boolean } | undefined;
    const daemon = cli(["schedule", "--config", config], {
      env: { TEST_WEBHOOK_URL: hookUrl, TEST_DB_PASSWORD: pg().password },
      onStderr: (chunk, c) => {
        child = c;
        stderr += chunk;
      },
    });
    // the target's last run cannot be read: it is due at once, and its run meets the outage
    await until("the failure event", () => posted.some((e) => e.type === "backup.failed"));
    const failed = posted.find((e) => e.type === "backup.failed")!;
    expect(failed.target).toBe("app");
    expect(failed.error!.code).toBe("econnrefused");
    expect(failed.error!.message).toMatch(/ECONNREFUSED/);
    expect(failed.error!.attempts).toHaveLength(2); // retried as transient, with the target's policy
    expect(JSON.stringify(failed)).not.toContain("SECRETHOOKTOKEN");
    await until("the freshness check", () => /checking for missed backups|taking the run's lease|reading the newest backup/.test(stderr));
    // the outage is said once (not per store call: the last run, the lease, the freshness check all met it)
    expect(stderr.match(/cannot be used \(/g)).toHaveLength(1);
    expect(stderr).toMatch(/retrying in about 1 s/);
    // still running: a daemon that exits is a silent one
    await new Promise((r) => setTimeout(r, 500));
    const exited = await Promise.race([daemon.then(() => true), new Promise((r) => setTimeout(() => r(false), 200))]);
    expect(exited, stderr).toBe(false);
    // SIGTERM: it stops cleanly
    child!.kill("SIGTERM");
    const end = await daemon;
    expect(end.code, end.stderr).toBe(0);
  }, 60_000);

  it("StoreWatch: one line when the store goes down, one when it is back (a real S3 server started on the port later)", async () => {
    const port = await freePort();
    const store = new S3Store({ bucket: "lifeboat", endpoint: `http://127.0.0.1:${port}`, region: "us-east-1" });
    const lines: Array<{ level: string; msg: string }> = [];
    const watch = new StoreWatch(store, { log: (level, msg) => void lines.push({ level, msg }) });
    const read = () => watch.call("listing", () => listBackups(store, "app"));
    await expect(read()).rejects.toThrow(/ECONNREFUSED/);
    await expect(read()).rejects.toThrow(/ECONNREFUSED/);
    expect(lines).toEqual([{ level: "error", msg: `the store ${store.url} cannot be used (listing): runs fail and are reported until it is back` }]);
    expect(watch.down).toBe(true);
    const s3 = await startEmbeddedS3({ port });
    try {
      expect(await read()).toEqual([]);
      expect(await read()).toEqual([]);
      expect(lines.map((l) => l.msg)).toEqual([lines[0]!.msg, `the store ${store.url} works again`]);
      expect(watch.down).toBe(false);
    } finally {
      await s3.stop();
    }
  });
});
