import { execFileSync, spawn, spawnSync } from "node:child_process";
import { createServer, type Server } from "node:http";
import { existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { backupObjects } from "@lifeboat/core";
import { DirectoryStore, S3Store, SCHEDULER_FILE, StoreWatch, heartbeatUrl, listBackups, pruneTarget, schedulerState, storeJson } from "@lifeboat/runner";
import { startEmbeddedS3 } from "@lifeboat/cli";
import { BIN, cli, closedPort, createDatabase, pg, startRecorder, tempDir, unique, url } from "./support/helpers.js";

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
    const port = await closedPort(); // nothing listens there: every store call is refused
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
    const port = await closedPort();
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

describe("optional calls stay optional", () => {
  it("against a store without ListMultipartUploads, a scheduled backup succeeds (warned once), and list --all and prune work", async () => {
    const s3 = await startEmbeddedS3({ withoutUploadListing: true });
    try {
      const dir = tempDir("lifeboat-nolist-");
      const config = writeConfig(dir, s3Storage(s3.endpoint, s3.bucket), "retention: { keepLast: 1 },");
      const env = { TEST_WEBHOOK_URL: hookUrl, TEST_DB_PASSWORD: pg().password, AWS_ACCESS_KEY_ID: s3.accessKeyId, AWS_SECRET_ACCESS_KEY: s3.secretAccessKey };
      posted.length = 0;
      const once = await cli(["schedule", "--once", "--config", config], { env });
      expect(once.code, once.stderr).toBe(0);
      expect(once.stderr).not.toMatch(/run failed/);
      expect(once.stderr.match(/does not support ListMultipartUploads/g)).toHaveLength(1);
      expect(posted.filter((e) => e.type === "backup.failed")).toEqual([]);

      const list = await cli(["list", "--all", "--config", config, "--json"], { env });
      expect(list.code, list.stderr).toBe(0);
      expect(JSON.parse(list.stdout).backups).toHaveLength(1);
      expect(list.stderr).toMatch(/does not support ListMultipartUploads/);

      const prune = await cli(["prune", "--config", config, "--json"], { env });
      expect(prune.code, prune.stderr).toBe(0);
      expect(JSON.parse(prune.stdout).results[0].decisions).toHaveLength(1);
    } finally {
      await s3.stop();
    }
  }, 60_000);
});

describe("configuration and numbers", () => {
  it("prune refuses --keep-last abc, 0 and -1 (exit 2, naming the flag), and --days 1.5", async () => {
    const dir = tempDir("lifeboat-prunenum-");
    for (const [flag, v] of [["--keep-last", "abc"], ["--keep-last", "0"], ["--keep-last=-1", undefined], ["--days", "1.5"]] as const) {
      const args = ["prune", "--from", `file://${dir}`, flag, ...(v === undefined ? [] : [v])];
      const r = await cli(args);
      expect(r.code, `${args.join(" ")}: ${r.stderr}`).toBe(2);
      expect(r.stderr).toMatch(new RegExp(`${flag.replace(/=.*/, "")} must be a whole number from 1 to \\d+, not "${v ?? "-1"}"`));
    }
  });

  it("an S3 store with no region and no endpoint is a configuration error: exit 2, one attempt", async () => {
    const r = await cli(["run", "--db", url(db), "--to", "s3://some-bucket/x", "--json"], {
      env: { AWS_REGION: "", AWS_DEFAULT_REGION: "", AWS_ENDPOINT_URL_S3: "", AWS_ENDPOINT_URL: "", AWS_CONFIG_FILE: "/nonexistent", AWS_SHARED_CREDENTIALS_FILE: "/nonexistent" },
    });
    expect(r.code, r.stderr).toBe(2);
    const out = JSON.parse(r.stdout);
    expect(out.attempts).toHaveLength(1);
    expect(out.attempts[0].code).toBe("s3_region");
    expect(out.hint).toMatch(/region/);
  });

  it("a relative storage.directory is relative to the config file, whatever the working directory", async () => {
    const dir = tempDir("lifeboat-rel-");
    mkdirSync(join(dir, "etc"));
    const config = writeConfig(join(dir, "etc"), `{ directory: "backups" }`);
    const elsewhere = tempDir("lifeboat-cwd-");
    const run = await cli(["run", "app", "--config", config, "--json"], { cwd: elsewhere, env: { TEST_WEBHOOK_URL: hookUrl, TEST_DB_PASSWORD: pg().password } });
    expect(run.code, run.stderr).toBe(0);
    expect(JSON.parse(run.stdout).location).toContain(join(dir, "etc", "backups"));
    const list = await cli(["list", "--config", config, "--json"], { cwd: join(dir, "etc") });
    expect(JSON.parse(list.stdout).backups).toHaveLength(1);
  }, 60_000);

  it("a config without a default export is reported as such", async () => {
    const dir = tempDir("lifeboat-nodefault-");
    const file = join(dir, "lifeboat.config.ts");
    writeFileSync(file, `export const config = { storage: { directory: "/tmp/x" }, targets: {} };\n`);
    const r = await cli(["list", "--config", file]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("has no default export (it exports config)");
    expect(r.stderr).not.toContain("storage: is required");
  });
});

describe("a dead man's switch", () => {
  it("heartbeat URLs follow each service's convention (healthchecks.io, Cronitor, Uptime Kuma)", () => {
    const hc = "https://hc-ping.com/0f3c1d2e-aaaa-bbbb-cccc-123456789abc";
    expect([heartbeatUrl(hc, "healthchecks", "start"), heartbeatUrl(hc, "healthchecks", "success"), heartbeatUrl(hc, "healthchecks", "fail")]).toEqual([`${hc}/start`, hc, `${hc}/fail`]);
    const cr = "https://cronitor.link/p/KEY/lifeboat-app";
    expect(heartbeatUrl(cr, "cronitor", "start")).toBe(`${cr}?state=run`);
    expect(heartbeatUrl(cr, "cronitor", "success")).toBe(`${cr}?state=complete`);
    expect(heartbeatUrl(cr, "cronitor", "fail", "no route")).toBe(`${cr}?state=fail&message=no+route`);
    const kuma = "https://kuma.example.com/api/push/AbCdEf";
    expect(heartbeatUrl(kuma, "uptime-kuma", "start")).toBeUndefined(); // a push monitor has no "started"
    expect(heartbeatUrl(kuma, "uptime-kuma", "success", "backup 1")).toBe(`${kuma}?status=up&msg=backup+1`);
    expect(heartbeatUrl(kuma, "uptime-kuma", "fail")).toBe(`${kuma}?status=down&msg=failed`);
  });

  it("every run pings it: /start as it starts, then the check itself on success or /fail on failure; the URL is never logged", async () => {
    const recorder = await startRecorder();
    const pings = recorder.requests;
    try {
      const check = `${recorder.url}/ping/SECRETCHECKKEY`;
      const dir = tempDir("lifeboat-hb-");
      const config = writeConfig(dir, `{ directory: "store" }`);
      writeFileSync(config, readFileSync(config, "utf8").replace(`notifications: {`, `notifications: { heartbeat: { url: { env: "TEST_HEARTBEAT_URL" } },`));
      const env = { TEST_WEBHOOK_URL: hookUrl, TEST_DB_PASSWORD: pg().password, TEST_HEARTBEAT_URL: check };
      const ok = await cli(["run", "app", "--config", config], { env });
      expect(ok.code, ok.stderr).toBe(0);
      expect(pings).toEqual(["GET /ping/SECRETCHECKKEY/start", "GET /ping/SECRETCHECKKEY"]);
      pings.length = 0;
      const failing = await cli(["run", "app", "--config", config, "--attempts", "1"], { env: { ...env, TEST_DB_PASSWORD: "wrong" } });
      expect(failing.code).toBe(1);
      expect(pings).toEqual(["GET /ping/SECRETCHECKKEY/start", "GET /ping/SECRETCHECKKEY/fail"]);
      expect(ok.stderr + failing.stderr + ok.stdout + failing.stdout).not.toContain("SECRETCHECKKEY");
    } finally {
      await recorder.close();
    }
  }, 60_000);

  it("status says when the daemon was last alive, and that it is not running once it stopped (exit 1)", async () => {
    const dir = tempDir("lifeboat-alive-");
    const config = writeConfig(dir, `{ directory: "store" }`);
    const env = { TEST_WEBHOOK_URL: hookUrl, TEST_DB_PASSWORD: pg().password };
    const never = await cli(["status", "--config", config, "--json"], { env });
    expect(JSON.parse(never.stdout).scheduler.state).toBe("never seen");
    let seen = "";
    let child: { kill: (s: NodeJS.Signals) => boolean } | undefined;
    const port = await closedPort();
    const daemon = cli(["schedule", "--config", config, "--metrics", String(port)], { env, onStderr: (c, ch) => ((seen += c), (child = ch)) });
    await until("the daemon's first run", () => /run succeeded/.test(seen), 60_000);
    // its /metrics (Prometheus), on loopback: the same facts as status --format openmetrics
    expect(seen).toContain(`metrics for Prometheus on http://127.0.0.1:${port}/metrics`);
    const scrape = await fetch(`http://127.0.0.1:${port}/metrics`);
    expect(scrape.status).toBe(200);
    expect(scrape.headers.get("content-type")).toMatch(/^application\/openmetrics-text; version=1\.0\.0/);
    const body = await scrape.text();
    expect(body).toContain('lifeboat_target_status{target="app",status="ok"} 1');
    expect(body).toContain("lifeboat_scheduler_up 1");
    expect(body).toMatch(/lifeboat_backup_last_size_bytes\{target="app"\} [1-9]\d*/);
    expect(body).not.toContain(pg().password);
    expect((await fetch(`http://127.0.0.1:${port}/`)).status).toBe(404);
    // "run succeeded" carries what was stored
    expect(seen).toMatch(/"msg":"run succeeded","target":"app","backup":"[0-9TZ-]+[a-z0-9-]*","size":"[^"]+","duration":"[^"]+"/);
    const alive = await cli(["status", "--config", config, "--json"], { env });
    const state = JSON.parse(alive.stdout);
    expect(state.scheduler.state).toBe("running");
    expect(state.scheduler.record.pid).toBeGreaterThan(0);
    expect(state.targets[0].lastRun.runId).toMatch(/^[0-9a-f-]{36}$/);
    expect(state.targets[0].nextFireTime > new Date().toISOString()).toBe(true);
    child!.kill("SIGTERM");
    expect((await daemon).code).toBe(0);
    const stopped = await cli(["status", "--config", config], { env });
    expect(stopped.code).toBe(1);
    expect(stopped.stdout).toMatch(/scheduler NOT RUNNING: last alive .* ago on .* stopped at/);
  }, 90_000);

  it("a daemon that stopped renewing its record (killed) counts as not running after three renewals", async () => {
    const dir = tempDir("lifeboat-stale-");
    const store = new DirectoryStore(dir);
    const now = Date.parse("2026-12-03T10:00:00Z");
    const record = { mode: "daemon", host: "h", pid: 1, lifeboatVersion: "x", startedAt: "2026-12-03T09:00:00Z", aliveAt: new Date(now - 2 * 60_000).toISOString() };
    await storeJson(store, SCHEDULER_FILE, record);
    expect((await schedulerState(store, new Date(now))).state).toBe("running");
    expect((await schedulerState(store, new Date(now + 2 * 60_000))).state).toBe("not running");
    await storeJson(store, SCHEDULER_FILE, { ...record, mode: "once" });
    expect((await schedulerState(store, new Date(now + 60 * 60_000))).state).toBe("once");
  });
});

describe("small things a newcomer meets", () => {
  it("a closed pipe is no error: `lifeboat run --help | head -2` prints two lines and no EPIPE stack", () => {
    const out = execFileSync("sh", ["-c", `"${process.execPath}" "${BIN}" run --help | head -2; echo "status=$?"`], { env: { ...process.env, CI: "" }, stdio: ["ignore", "pipe", "pipe"] });
    const lines = out.toString().trim().split("\n");
    expect(lines).toHaveLength(3);
    expect(lines[0]).toMatch(/^Usage: lifeboat run/);
    expect(lines[2]).toBe("status=0");
    // a reader that is gone before anything is written (`| true`): the write fails with EPIPE at once
    for (let i = 0; i < 3; i++) {
      const gone = spawnSync("sh", ["-c", `"${process.execPath}" "${BIN}" run --help | true`], { env: { ...process.env, CI: "" } });
      expect(gone.stderr.toString()).not.toMatch(/EPIPE|Unhandled 'error' event/);
    }
  });

  it("--config is refused where nothing reads it (demo, keygen), naming what to do instead", async () => {
    for (const cmd of ["demo", "keygen"]) {
      const r = await cli([cmd, "--config", "/etc/lifeboat/lifeboat.config.ts"]);
      expect(r.code, cmd).toBe(2);
      expect(r.stderr).toContain(`lifeboat ${cmd} reads no config: --config is not used here`);
    }
  });

  it("a daemon started by a wrapper that dies (npx without passing SIGTERM on) stops instead of running on as an orphan", async () => {
    const dir = tempDir("lifeboat-orphan-");
    const config = writeConfig(dir, `{ directory: "store" }`);
    // the wrapper starts the daemon (as npx does) and reports its pid; then the wrapper is killed outright
    const wrapper = spawn(process.execPath, ["-e", `const c = require("node:child_process").spawn(process.execPath, [${JSON.stringify(BIN)}, "schedule", "--config", ${JSON.stringify(config)}], { stdio: ["ignore", "ignore", "inherit"] }); console.log(c.pid); setInterval(() => {}, 1000);`], {
      env: { ...process.env, CI: "1", TEST_WEBHOOK_URL: hookUrl, TEST_DB_PASSWORD: pg().password },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let stderr = "";
    wrapper.stderr.on("data", (d: Buffer) => (stderr += d.toString()));
    const pid = Number(await new Promise<string>((r) => wrapper.stdout.once("data", (d: Buffer) => r(d.toString().trim()))));
    await until("the daemon's first run", () => /run (succeeded|failed)/.test(stderr), 60_000);
    wrapper.kill("SIGKILL");
    const alive = () => {
      try {
        process.kill(pid, 0);
        return true;
      } catch {
        return false;
      }
    };
    await until("the orphaned daemon to stop", () => !alive(), 20_000);
    expect(alive()).toBe(false);
  }, 90_000);
});

describe("a stopped prune", () => {
  it("stops between two backups: each is deleted whole or not at all", async () => {
    const dir = tempDir("lifeboat-prunestop-");
    const store = new DirectoryStore(dir);
    for (let i = 0; i < 3; i++) {
      const r = await cli(["run", "--db", url(db), "--to", `file://${dir}`, "--name", "ps", "--json"]);
      expect(r.code, r.stderr).toBe(0);
    }
    const stop = new AbortController();
    const pruned: string[] = [];
    const err = await pruneTarget(store, "ps", { keepLast: 1 }, {
      signal: stop.signal,
      log: { log: (_l, msg, fields) => void (msg === "pruned" && (pruned.push(String(fields?.backup)), stop.abort("SIGINT"))) },
    }).catch((e: unknown) => e);
    expect(String(err)).toContain("SIGINT");
    expect(pruned).toHaveLength(1);
    const left = await listBackups(store, "ps");
    expect(left).toHaveLength(2);
    // what is left is whole: every object its manifest names is there
    for (const m of left) for (const o of backupObjects(m)) expect(existsSync(join(dir, o.key)), o.key).toBe(true);
  }, 60_000);
});

describe("the daemon's output", () => {
  it("on a terminal: readable lines, no JSON (under script(1), which gives it a terminal)", async () => {
    const dir = tempDir("lifeboat-tty-");
    const port = await closedPort();
    const config = writeConfig(dir, s3Storage(`http://127.0.0.1:${port}`));
    const child = spawn("script", ["-qfec", `"${process.execPath}" "${BIN}" schedule --config "${config}"`, "/dev/null"], {
      env: { ...process.env, CI: "", TEST_WEBHOOK_URL: hookUrl, TEST_DB_PASSWORD: pg().password, TERM: "dumb" },
      stdio: ["pipe", "pipe", "pipe"],
    });
    let out = "";
    child.stdout.on("data", (d: Buffer) => (out += d.toString()));
    try {
      await until("the failed run", () => /run failed/.test(out), 30_000);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => child.once("close", r));
    }
    expect(out).toMatch(/error: the store s3:\/\/lifeboat\/one cannot be used \(/);
    expect(out).toMatch(/warn: attempt 1 failed; retrying in about 1 s/);
    expect(out).not.toContain('{"time"');
  }, 60_000);
});
