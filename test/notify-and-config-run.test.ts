import { createServer, type IncomingMessage, type Server } from "node:http";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import type { BackupSucceededEvent } from "@lifeboat/core";
import { fingerprint, postToSlack } from "@lifeboat/runner";
import { cli, conn, createDatabase, pg, unique, tempDir } from "./support/helpers.js";

/** A real local HTTP server standing in for Slack's incoming webhook. */
interface Hook {
  url: string;
  received: Array<{ path: string; body: any; at: number }>;
  answers: number[]; // status codes to answer with, in order; 200 once exhausted
  server: Server;
}

async function startHook(): Promise<Hook> {
  const hook: Hook = { url: "", received: [], answers: [], server: undefined as unknown as Server };
  hook.server = createServer(async (req: IncomingMessage, res) => {
    let body = "";
    for await (const c of req) body += c;
    hook.received.push({ path: req.url ?? "", body: JSON.parse(body), at: Date.now() });
    const status = hook.answers.shift() ?? 200;
    if (status === 429) res.setHeader("retry-after", "1");
    res.writeHead(status).end(status === 200 ? "ok" : "slow down");
  });
  await new Promise<void>((r) => hook.server.listen(0, "127.0.0.1", r));
  hook.url = `http://127.0.0.1:${(hook.server.address() as { port: number }).port}/services/T000/B000/SECRETTOKEN123`;
  return hook;
}

let hook: Hook;
let db: string;
beforeAll(async () => {
  hook = await startHook();
  db = unique("cfg");
  await createDatabase(db, "create schema billing; create table billing.invoices(id int primary key, total numeric); insert into billing.invoices select g, g from generate_series(1, 300) g; create table public.sessions(id int); insert into public.sessions values (1);");
});
afterAll(() => new Promise<void>((r) => hook.server.close(() => r())));

function writeConfig(dir: string, on: string[]): string {
  const file = join(dir, "lifeboat.config.ts");
  writeFileSync(
    file,
    `export default {
  storage: { directory: ${JSON.stringify(join(dir, "store"))} },
  targets: {
    billing: {
      database: { host: "127.0.0.1", port: ${pg().port}, database: "${db}", user: "postgres", password: { env: "TEST_DB_PASSWORD" } },
      schedule: "cron(0 2 * * ? *)",
      dump: { schemas: ["billing"] },
      retries: { attempts: 1 },
    },
  },
  notifications: { slack: { webhook: { env: "TEST_SLACK_WEBHOOK" }, on: ${JSON.stringify(on)} } },
};\n`,
  );
  return file;
}

describe("targets from lifeboat.config.ts", () => {
  it("run <target> backs up with the target's options, notifies Slack, and list/restore <target> use the config's store", async () => {
    const dir = tempDir("lifeboat-cfgrun-");
    const config = writeConfig(dir, ["succeeded", "failed"]);
    const env = { TEST_DB_PASSWORD: pg().password, TEST_SLACK_WEBHOOK: hook.url };
    hook.received.length = 0;
    const run = await cli(["run", "billing", "--config", config, "--json"], { env });
    expect(run.code, run.stderr).toBe(0);
    const { manifest } = JSON.parse(run.stdout);
    expect(manifest.target).toBe("billing");

    expect(hook.received).toHaveLength(1);
    const msg = hook.received[0]!.body;
    expect(msg.text).toContain("Backup of *billing* succeeded");
    const blocks = JSON.stringify(msg.blocks);
    expect(blocks).toContain(manifest.object.sha256);
    expect(blocks).toContain(`lifeboat restore billing --backup ${manifest.id} --to <postgres-url>`);

    const list = await cli(["list", "billing", "--config", config, "--json"], { env });
    expect(JSON.parse(list.stdout).backups.map((b: { id: string }) => b.id)).toEqual([manifest.id]);

    const target = unique("cfg_restored");
    await createDatabase(target);
    const restore = await cli(["restore", "billing", "--config", config, "--to", `postgres://postgres@127.0.0.1:${pg().port}/${target}`], {
      env: { ...env, PGPASSWORD: pg().password },
    });
    expect(restore.code, restore.stderr).toBe(0);
    // only the billing schema was dumped (dump.schemas), so public.sessions is not there
    const restored = await fingerprint(conn(target));
    expect(restored.tables.map((t) => [t.table, t.rows])).toEqual([["billing.invoices", 300]]);

    for (const text of [run.stdout, run.stderr, list.stdout, restore.stdout, restore.stderr]) {
      expect(text).not.toContain(pg().password);
      expect(text).not.toContain("SECRETTOKEN123");
    }
  });

  it("with on: [failed], a success is not posted and a failure is, with the attempts and no secret", async () => {
    const dir = tempDir("lifeboat-cfgrun-");
    const config = writeConfig(dir, ["failed"]);
    hook.received.length = 0;
    const ok = await cli(["run", "billing", "--config", config], { env: { TEST_DB_PASSWORD: pg().password, TEST_SLACK_WEBHOOK: hook.url } });
    expect(ok.code, ok.stderr).toBe(0);
    expect(hook.received).toHaveLength(0);

    const bad = await cli(["run", "billing", "--config", config], { env: { TEST_DB_PASSWORD: "not-the-password-xyz", TEST_SLACK_WEBHOOK: hook.url } });
    expect(bad.code).toBe(1);
    expect(hook.received).toHaveLength(1);
    const body = JSON.stringify(hook.received[0]!.body);
    expect(body).toContain("FAILED after 1 attempt(s): auth_failed");
    expect(body).toContain("password authentication failed");
    expect(body).not.toContain("not-the-password-xyz");
    expect(bad.stderr).not.toContain("SECRETTOKEN123");
  });

  it("an unknown target lists the known ones (exit 2); a missing secret names the variable: a configuration error, not retried (exit 2)", async () => {
    const dir = tempDir("lifeboat-cfgrun-");
    // three attempts allowed, with long delays: a retry would show as minutes and three attempts
    const config = writeConfig(dir, ["failed"]);
    writeFileSync(config, readFileSync(config, "utf8").replace("retries: { attempts: 1 }", "retries: { attempts: 3, delaySeconds: 60 }"));
    const unknown = await cli(["run", "nope", "--config", config], { env: { TEST_SLACK_WEBHOOK: hook.url } });
    expect(unknown.code).toBe(2);
    expect(unknown.stderr).toContain('unknown target "nope"');
    expect(unknown.stderr).toContain("known targets: billing");

    const t0 = Date.now();
    const missing = await cli(["run", "billing", "--config", config], { env: { TEST_SLACK_WEBHOOK: hook.url, TEST_DB_PASSWORD: "" } });
    expect(missing.code).toBe(2);
    expect(missing.stderr).toContain("the environment variable TEST_DB_PASSWORD is not set");
    expect(missing.stderr).toContain("failed after 1 attempt (not retried: the failure is permanent)");
    expect(missing.stderr).toContain("config_error");
    expect(Date.now() - t0).toBeLessThan(30_000);
    rmSync(dir, { recursive: true, force: true });
  });
});

describe("Slack webhook delivery", () => {
  const event: BackupSucceededEvent = {
    version: 1,
    type: "backup.succeeded",
    status: "succeeded",
    time: "2026-11-21T02:00:10.000Z",
    target: "prod",
    runId: "run-1",
    trigger: "schedule",
    attempt: 1,
    backup: { id: "20261121T020000Z-abcd", location: "s3://b/prod/x.dump", key: "prod/x.dump", size: 2048, sha256: "a".repeat(64), durationMs: 10_000, format: "custom" },
    restoreCommand: "lifeboat restore prod --backup 20261121T020000Z-abcd --to <postgres-url>",
  };

  it("retries a 429 (honouring Retry-After) and a 503, then succeeds", async () => {
    hook.received.length = 0;
    hook.answers.push(429, 503);
    await postToSlack(event, { webhookUrl: hook.url, on: ["succeeded"], baseDelayMs: 10 });
    expect(hook.received).toHaveLength(3);
    // the 429 said "Retry-After: 1": the second request waited a second, not the 10-20 ms of the backoff
    expect(hook.received[1]!.at - hook.received[0]!.at).toBeGreaterThanOrEqual(950);
    expect(hook.received[2]!.at - hook.received[1]!.at).toBeLessThan(500);
    expect(hook.received[2]!.body.text).toContain("Backup of *prod* succeeded (2.0 KiB in 10.0 s)");
  });

  it("renders restore drills: a failed drill lists its failed checks", async () => {
    hook.received.length = 0;
    await postToSlack(
      {
        version: 1, type: "backup.verify_failed", status: "failed", time: "2026-11-21T06:00:00Z", target: "prod", runId: "d1", trigger: "schedule", attempt: 1,
        verification: { backupId: "20261121T020000Z-abcd", location: "s3://b/prod/x.dump", durationMs: 60_000, restoreMs: 40_000, tables: 12, failures: ["tables: public.orders has 10 rows, the manifest says 11"] },
      },
      { webhookUrl: hook.url, on: ["failed"], baseDelayMs: 10 },
    );
    const body = hook.received[0]!.body;
    expect(body.text).toBe(":rotating_light: Restore drill of *prod* FAILED for backup 20261121T020000Z-abcd");
    expect(JSON.stringify(body.blocks)).toContain("public.orders has 10 rows, the manifest says 11");
  });

  it("gives up on a 4xx other than 429 at once, with an error that hides the URL", async () => {
    hook.received.length = 0;
    hook.answers.push(404);
    const err = await postToSlack(event, { webhookUrl: hook.url, on: ["succeeded"], baseDelayMs: 10 }).catch((e: Error) => e);
    expect(hook.received).toHaveLength(1);
    expect((err as Error).message).toContain("Slack notification failed: HTTP 404");
    expect((err as Error).message).not.toContain("SECRETTOKEN123");
  });
});

