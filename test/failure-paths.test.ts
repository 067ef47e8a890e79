import { existsSync, mkdirSync, readFileSync, readdirSync, utimesSync, writeFileSync } from "node:fs";
import { pathToFileURL } from "node:url";
import { CreateMultipartUploadCommand } from "@aws-sdk/client-s3";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BackupFailedError, LaunchEventError, LocalEventBus, backupKeys, dumpSchema, parseConfig, parseLaunchEvent, parseSchedule, nextRun, type BackupSucceededEvent, type LifeboatEvent, type ObjectStore } from "@lifeboat/core";
import { DirectoryStore, LEASE_FILE, PsqlSession, S3Store, acquireLease, cleanLeftovers, listBackups, query, readLease, pgDumpArgs, postToSlack, runTargetBackups, toAttemptError } from "@lifeboat/runner";
import { cli, closedPort, conn, createDatabase, pg, s3, s3Client, s3Keys, s3PendingUploads, tempDir } from "./support/helpers.js";

/**
 * Ways a person was not told, or told wrong, each injected into real processes: an S3 endpoint that refuses
 * connections, a Slack that asks to wait an hour, a scheduled run that fails under `schedule --once`, a target named
 * after an Object.prototype property, schedules that never fire, database names that are path segments.
 */

let hook: Server;
let hookUrl = "";
const posted: unknown[] = [];
let answer: { status: number; retryAfter?: string } = { status: 200 };
beforeAll(async () => {
  hook = createServer(async (req, res) => {
    let body = "";
    for await (const c of req) body += c;
    posted.push(JSON.parse(body));
    if (answer.retryAfter) res.setHeader("retry-after", answer.retryAfter);
    res.writeHead(answer.status).end();
  });
  await new Promise<void>((r) => hook.listen(0, "127.0.0.1", r));
  hookUrl = `http://127.0.0.1:${(hook.address() as { port: number }).port}/services/T/B/SECRETHOOK`;
});
afterAll(async () => {
  await new Promise<void>((r) => hook.close(() => r()));
});

describe("S3 connection errors", () => {
  it("an endpoint that refuses connections is a transient failure (retried), not a permanent one", async () => {
    const store = new S3Store({ bucket: "b", endpoint: `http://127.0.0.1:${await closedPort()}`, region: "us-east-1" });
    const err = await store.put("k", Readable.from([Buffer.from("x")])).catch((e: unknown) => e);
    const classified = toAttemptError(err, []);
    expect(classified.kind).toBe("transient");
    expect(classified.code).toBe("econnrefused");
  });
});

describe("Slack waits", () => {
  const event: BackupSucceededEvent = {
    version: 1, type: "backup.succeeded", status: "succeeded", time: "2026-11-21T02:00:10.000Z", target: "prod", runId: "r", trigger: "schedule", attempt: 1,
    backup: { id: "20261121T020000Z-abcd", location: "s3://b/k", key: "k", size: 1, sha256: "a".repeat(64), durationMs: 1, format: "custom" },
    restoreCommand: "lifeboat restore prod",
  };

  it("a 429 with Retry-After: 3600 ends the retries at once: the notification's time is bounded", async () => {
    answer = { status: 429, retryAfter: "3600" };
    posted.length = 0;
    const t0 = Date.now();
    const err = await postToSlack(event, { webhookUrl: hookUrl, on: ["succeeded"] }).catch((e: Error) => e);
    expect(Date.now() - t0).toBeLessThan(5_000);
    expect(posted).toHaveLength(1);
    expect((err as Error).message).toContain("a retry in 3600 s would pass the notification time limit of 60 s");
    expect((err as Error).message).not.toContain("SECRETHOOK");
  });

  it("every wait ends when the signal aborts (a daemon's SIGTERM)", async () => {
    answer = { status: 429, retryAfter: "20" };
    const abort = new AbortController();
    setTimeout(() => abort.abort("SIGTERM"), 200);
    const t0 = Date.now();
    const err = await postToSlack(event, { webhookUrl: hookUrl, on: ["succeeded"], signal: abort.signal }).catch((e: Error) => e);
    expect(Date.now() - t0).toBeLessThan(3_000);
    expect((err as Error).message).toBe("Slack notification abandoned: SIGTERM");
    answer = { status: 200 };
  });
});

describe("configs and names", () => {
  const writeConfig = (dir: string, targets: Record<string, unknown>) => {
    const file = join(dir, "lifeboat.config.ts");
    writeFileSync(file, `export default ${JSON.stringify({ storage: { directory: join(dir, "store") }, targets, notifications: { slack: { webhook: { env: "HOOK" }, on: ["failed"] } } })};`);
    return file;
  };

  it("a generic webhook gets each event's JSON, without AWS (notifications.webhook)", async () => {
    const dir = tempDir("lifeboat-webhook-");
    const db = `hooked_${Math.random().toString(16).slice(2, 10)}`;
    await createDatabase(db, "create table t (i int);");
    const file = join(dir, "lifeboat.config.ts");
    writeFileSync(
      file,
      `export default ${JSON.stringify({
        storage: { directory: join(dir, "store") },
        targets: { app: { database: { host: pg().host, port: pg().port, database: db, user: "postgres", password: { env: "PW" } } } },
        notifications: { webhook: { url: { env: "HOOK_URL" }, on: ["succeeded"] } },
      })};`,
    );
    posted.length = 0;
    answer = { status: 200 };
    const res = await cli(["run", "app", "--config", file], { env: { HOOK_URL: hookUrl, PW: pg().password } });
    expect(res.code, res.stderr).toBe(0);
    expect(posted).toEqual([expect.objectContaining({ version: 1, type: "backup.succeeded", status: "succeeded", target: "app", backup: expect.objectContaining({ format: "custom" }) })]);
    expect(res.stderr).not.toContain("SECRETHOOK");
  });

  it("schedule --once exits 1 when a due run failed (cron and Kubernetes record a failure)", async () => {
    const dir = tempDir("lifeboat-once-");
    const port = await closedPort();
    const file = writeConfig(dir, { down: { database: { host: "127.0.0.1", port, database: "d", user: "u" }, schedule: "rate(1 day)", retries: { attempts: 1 } } });
    const res = await cli(["schedule", "--once", "--config", file, "--json"], { env: { HOOK: hookUrl } });
    expect(res.code, res.stderr).toBe(1);
    expect(JSON.parse(res.stdout)).toMatchObject({ ran: ["down"], failed: ["down"] });
  });

  it("a target named after an Object.prototype property is an unknown target (exit 2), and nobody is told of a failure", async () => {
    const dir = tempDir("lifeboat-proto-");
    const file = writeConfig(dir, { app: { database: { url: "postgres://u@h/d" } } });
    posted.length = 0;
    for (const name of ["constructor", "toString", "__proto__", "hasOwnProperty"]) {
      const res = await cli(["run", name, "--config", file], { env: { HOOK: hookUrl } });
      expect(res.code, name).toBe(2);
      expect(res.stderr).toContain(`unknown target "${name}"`);
    }
    expect(posted).toEqual([]);
    const config = parseConfig({ storage: { directory: "/x" }, targets: { app: { database: { url: "postgres://u@h/d" } } } });
    expect(() => parseLaunchEvent({ target: "constructor" }, config)).toThrow(LaunchEventError);
    expect(() => parseLaunchEvent({ targets: ["toString"] }, config)).toThrow('unknown target "toString"');
  });

  it("schedules that never fire, or fire further out than a year, are refused at load", () => {
    const target = (schedule: string) => () => parseConfig({ storage: { directory: "/x" }, targets: { a: { database: { url: "postgres://u@h/d" }, schedule } } });
    expect(target("rate(100000000 days)")).toThrow(/targets.a.schedule: rate\(100000000 days\) is longer than a year: use at most rate\(365 days\)/);
    expect(target("rate(600000 minutes)")).toThrow(/longer than a year/);
    expect(target("cron(0 0 30 2 ? *)")).toThrow(/cron\(0 0 30 2 \? \*\) never fires/);
    expect(target("cron(0 0 1 1 ? 2020)")).toThrow(/never fires/);
    expect(target("cron(0 0 1 1 ? 2190)")).toThrow(/more than a year away/);
    expect(target("rate(365 days)")).not.toThrow();
    expect(target("cron(0 0 1 1 ? *)")).not.toThrow();
    const verify = () => parseConfig({ storage: { directory: "/x" }, targets: { a: { database: { url: "postgres://u@h/d" }, verify: { schedule: "cron(0 0 31 4 ? *)" } } } });
    expect(verify).toThrow(/targets.a.verify.schedule: .* never fires/);
  });

  it("a range mixing a number and a name is read like one of two numbers or two names", () => {
    const at = new Date("2026-03-01T00:00:00Z");
    const fires = (e: string) => {
      const p = parseSchedule(e);
      if (!p.ok) throw new Error(p.error);
      const out: string[] = [];
      let t: Date | undefined = at;
      for (let i = 0; i < 6 && t; i++) out.push((t = nextRun(p.schedule, "UTC", t, at))!.toISOString());
      return out;
    };
    expect(fires("cron(0 0 1 4-JUL ? *)")).toEqual(fires("cron(0 0 1 4-7 ? *)"));
    expect(fires("cron(0 0 1 APR-7 ? *)")).toEqual(fires("cron(0 0 1 4-7 ? *)"));
    expect(fires("cron(0 0 ? * 2-WED *)")).toEqual(fires("cron(0 0 ? * 2-4 *)"));
    expect(fires("cron(0 0 ? * 2-THU *)")).toEqual(fires("cron(0 0 ? * MON-THU *)"));
    // L, W and # are still refused where the field does not allow them
    expect(parseSchedule("cron(0 0 1 4L ? *)").ok).toBe(false);
  });

  it("databases named '.' and '..' stay inside their target's folder, and list finds them", async () => {
    for (const name of [".", ".."]) await createDatabase(name);
    const config = parseConfig({ storage: { directory: "/unused" }, targets: { dots: { database: { host: pg().host, port: pg().port, database: "postgres", user: "postgres" }, databases: [".", ".."], retries: { attempts: 1 } } } });
    const root = tempDir("lifeboat-dots-");
    const store = new DirectoryStore(root);
    const { results } = await runTargetBackups(config.targets.dots!, { target: "dots", resolveSource: async () => conn("postgres"), store });
    expect(results.map((r) => r.database)).toEqual([".", ".."]);
    expect(readdirSync(root)).toEqual(["dots"]);
    expect(readdirSync(join(root, "dots")).filter((f) => !f.startsWith(".lifeboat-")).sort()).toEqual(["%2E", "%2E%2E"]);
    expect((await listBackups(store, "dots")).map((m) => m.database.name).sort()).toEqual([".", ".."]);
    expect(backupKeys("t", "20261121T020000Z-abcd", ".dump", "..").dump).toBe("t/%2E%2E/2026/11/21/20261121T020000Z-abcd.dump");
    expect(backupKeys("t", "20261121T020000Z-abcd", ".dump", "a.b").dump).toBe("t/a.b/2026/11/21/20261121T020000Z-abcd.dump");
  });
});

describe("deadlines: no run is stuck forever", () => {
  /** A client holding an exclusive lock on a table, as a migration would, until released. */
  async function lockedTable(): Promise<{ db: string; release: () => Promise<void> }> {
    const db = `lock_${Math.random().toString(16).slice(2, 10)}`;
    await createDatabase(db, "create table t as select g from generate_series(1, 1000) g;");
    const session = await PsqlSession.open(conn(db));
    await session.query("begin; lock table t in access exclusive mode; select 1;");
    return { db, release: () => session.close() };
  }
  const target = (db: string, extra: Record<string, unknown>) =>
    parseConfig({ storage: { directory: "/unused" }, targets: { locked: { database: { host: pg().host, port: pg().port, database: db, user: "postgres" }, retries: { attempts: 1 }, ...extra } } }).targets.locked!;

  it("pg_dump waits for a table's lock at most dump.lockWaitTimeoutSeconds (default 10 minutes), then the attempt fails as lock_timeout", async () => {
    expect(pgDumpArgs(dumpSchema.parse({}), { major: 15, version: "15.18" })).toContain("--lock-wait-timeout=600s");
    const { db, release } = await lockedTable();
    try {
      const store = new DirectoryStore(tempDir("lifeboat-lock-"));
      const t0 = Date.now();
      const err = await runTargetBackups(target(db, { dump: { lockWaitTimeoutSeconds: 1, rowCounts: false } }), { target: "locked", resolveSource: async () => conn(db), store }).catch((e: BackupFailedError) => e);
      expect(err).toBeInstanceOf(BackupFailedError);
      expect((err as BackupFailedError).attempts[0]).toMatchObject({ code: "lock_timeout" });
      expect(Date.now() - t0).toBeLessThan(20_000);
    } finally {
      await release();
    }
  });

  it("a run that passes maxRunMinutes is stopped cleanly and reported as backup.failed with code deadline_exceeded", async () => {
    const { db, release } = await lockedTable();
    try {
      const root = tempDir("lifeboat-deadline-");
      const store = new DirectoryStore(root);
      const events: LifeboatEvent[] = [];
      const bus = new LocalEventBus();
      bus.subscribe((e) => void events.push(e));
      const t0 = Date.now();
      // 0.05 minutes = 3 s; pg_dump would wait 10 minutes for the lock
      const err = await runTargetBackups(target(db, { maxRunMinutes: 0.05, dump: { rowCounts: false } }), { target: "locked", resolveSource: async () => conn(db), store, bus }).catch((e: BackupFailedError) => e);
      expect(Date.now() - t0).toBeLessThan(15_000);
      expect(err).toBeInstanceOf(BackupFailedError);
      expect(events).toHaveLength(1);
      expect(events[0]).toMatchObject({ type: "backup.failed", error: { code: "deadline_exceeded", message: expect.stringContaining("maximum run time of 0.05 minutes") } });
      expect(readdirSync(root, { recursive: true }).filter((f) => String(f).endsWith(".dump") || String(f).includes(".partial"))).toEqual([]);
    } finally {
      await release();
    }
  });
});

describe("one run per target across schedulers", () => {
  it("two `schedule --once` started together on one store run the target once; the other logs and skips", async () => {
    const db = `lease_${Math.random().toString(16).slice(2, 10)}`;
    await createDatabase(db, "create table t as select g from generate_series(1, 1000) g;");
    const dir = tempDir("lifeboat-lease-");
    const prefix = `lease-${Math.random().toString(16).slice(2, 10)}`;
    const file = join(dir, "lifeboat.config.ts");
    writeFileSync(
      file,
      `export default ${JSON.stringify({
        storage: { s3: { bucket: s3().bucket, prefix } },
        targets: { shared: { database: { host: pg().host, port: pg().port, database: db, user: "postgres", password: { env: "PW" } }, schedule: "rate(1 day)" } },
      })};`,
    );
    const env = { PW: pg().password };
    const [a, b] = await Promise.all([cli(["schedule", "--once", "--config", file], { env }), cli(["schedule", "--once", "--config", file], { env })]);
    expect([a.code, b.code], a.stderr + b.stderr).toEqual([0, 0]);
    const manifests = (await s3Keys(`${prefix}/shared/`)).filter((k) => k.endsWith(".manifest.json"));
    expect(manifests).toHaveLength(1);
    const skipped = [a, b].filter((r) => r.stderr.includes("skipped: another scheduler runs this target"));
    expect(skipped).toHaveLength(1);
    // the lease is given back after the run: written expired
    const lease = await readLease(new S3Store({ bucket: s3().bucket, prefix, endpoint: s3().endpoint, region: s3().region }, s3Client()), "shared");
    expect(Date.parse(lease!.expiresAt)).toBe(0);
  });

  it("a lease whose holder died expires: the next scheduler takes it", async () => {
    const store = new DirectoryStore(tempDir("lifeboat-lease-dead-"));
    const past = () => new Date(Date.now() - 3600_000);
    const dead = await acquireLease(store, "t", { ttlMs: 60_000, now: past });
    expect(dead.taken).toBe(true); // and never released: its holder "died"
    const live = await acquireLease(store, "t");
    expect(live.taken).toBe(true);
    const third = await acquireLease(store, "t");
    expect(third).toMatchObject({ taken: false, heldBy: { holder: (live as { lease: { record: { holder: string } } }).lease.record.holder } });
    if (live.taken) await live.lease.release();
    if (dead.taken) await dead.lease.release(); // no longer its lease: nothing written
    expect(await readLease(store, "t")).toMatchObject({ holder: (live as { lease: { record: { holder: string } } }).lease.record.holder, expiresAt: new Date(0).toISOString() });
  });
});

describe("leftovers", () => {
  it("a failure after the dump was stored (the row-count session is terminated) removes the dump: nothing without a manifest", async () => {
    const db = `orphan_${Math.random().toString(16).slice(2, 10)}`;
    await createDatabase(db, "create table t as select g from generate_series(1, 5000) g;");
    const root = tempDir("lifeboat-orphan-");
    const inner = new DirectoryStore(root);
    // once the dump is stored, every other session of the database (the row-count session) is terminated
    const store: ObjectStore = Object.assign(Object.create(inner), {
      put: async (key: string, body: Readable, opts?: Record<string, unknown>) => {
        const r = await inner.put(key, body, opts);
        if (key.endsWith(".dump")) await query(conn("postgres"), `select pg_terminate_backend(pid) from pg_stat_activity where datname = '${db}' and pid <> pg_backend_pid();`);
        return r;
      },
    });
    const t = parseConfig({ storage: { directory: "/unused" }, targets: { o: { database: { url: "postgres://u@h/d" }, retries: { attempts: 1 } } } }).targets.o!;
    const err = await runTargetBackups(t, { target: "o", resolveSource: async () => conn(db), store }).catch((e: BackupFailedError) => e);
    expect(err).toBeInstanceOf(BackupFailedError);
    expect((err as BackupFailedError).attempts[0]!.message).toMatch(/terminat|connection/i);
    // only the run's outcome remains: for `lifeboat status`, and in the target's run history
    const left = readdirSync(root, { recursive: true }).map(String).filter((f) => /\.(dump|json)$|partial/.test(f)).sort();
    expect(left).toHaveLength(2);
    expect(left[0]).toBe(join("o", ".lifeboat-last-run.json"));
    expect(left[1]).toMatch(/^o\/\.lifeboat-runs\/\d{8}T\d{6}Z-[0-9a-f]{8}\.json$/);
  });

  it("prune removes .partial files older than a day and says so; list --all shows them and dumps without a manifest", async () => {
    const root = tempDir("lifeboat-leftovers-");
    const dir = join(root, "app", "2026", "11", "01");
    mkdirSync(dir, { recursive: true });
    const old = join(dir, "20261101T020000Z-aaaa.dump.partial-1a2b3c4d");
    const young = join(dir, "20261121T020000Z-bbbb.dump.partial-5e6f7a8b");
    writeFileSync(old, "half a dump");
    writeFileSync(young, "a dump being written");
    writeFileSync(join(dir, "20261101T010000Z-cccc.dump"), "a dump whose manifest was never written");
    const twoDaysAgo = new Date(Date.now() - 2 * 86_400_000);
    utimesSync(old, twoDaysAgo, twoDaysAgo);
    const from = pathToFileURL(root).href;

    const listed = await cli(["list", "--from", from, "--all", "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).leftovers.map((l: { kind: string; key: string }) => `${l.kind} ${l.key}`).sort()).toEqual([
      "dump without manifest app/2026/11/01/20261101T010000Z-cccc.dump",
      "partial file app/2026/11/01/20261101T020000Z-aaaa.dump.partial-1a2b3c4d",
      "partial file app/2026/11/01/20261121T020000Z-bbbb.dump.partial-5e6f7a8b",
    ]);
    const pruned = await cli(["prune", "--from", from, "--keep-last", "5"]);
    expect(pruned.code, pruned.stderr).toBe(0);
    expect(pruned.stdout).toContain("removed partial file app/2026/11/01/20261101T020000Z-aaaa.dump.partial-1a2b3c4d");
    expect(existsSync(old)).toBe(false);
    expect(existsSync(young)).toBe(true); // it may belong to a run in progress
  });

  it("prune aborts pending multipart uploads older than a day under its prefix (S3)", async () => {
    const prefix = `left-${Math.random().toString(16).slice(2, 10)}`;
    const store = new S3Store({ bucket: s3().bucket, prefix }, s3Client());
    await s3Client().send(new CreateMultipartUploadCommand({ Bucket: s3().bucket, Key: `${prefix}/app/2026/11/01/20261101T020000Z-dddd.dump` }));
    expect(await s3PendingUploads(`${prefix}/`)).toHaveLength(1);
    expect(await cleanLeftovers(store, "app")).toEqual([]); // younger than a day: left alone
    const removed = await cleanLeftovers(store, "app", { now: new Date(Date.now() + 2 * 86_400_000) });
    expect(removed).toEqual([{ kind: "pending upload", key: "app/2026/11/01/20261101T020000Z-dddd.dump", startedAt: expect.any(String) }]);
    expect(await s3PendingUploads(`${prefix}/`)).toEqual([]);
  });
});

describe("backup.missed on one server", () => {
  it("schedule --once after 7 missed fire times raises backup.missed for each (once), then runs the catch-up", async () => {
    const db = `missed_${Math.random().toString(16).slice(2, 10)}`;
    await createDatabase(db, "create table t (i int);");
    const dir = tempDir("lifeboat-missed-");
    const storeDir = join(dir, "store");
    const targets = { daily: { database: { host: pg().host, port: pg().port, database: db, user: "postgres", password: { env: "PW" } }, schedule: "rate(1 day)" } };
    const file = join(dir, "lifeboat.config.ts");
    writeFileSync(file, `export default ${JSON.stringify({ storage: { directory: storeDir }, targets, notifications: { webhook: { url: { env: "HOOK_URL" } } } })};`);
    // the newest backup is eight days old: its manifest says so
    const store = new DirectoryStore(storeDir);
    const t = parseConfig({ storage: { directory: storeDir }, targets }).targets.daily!;
    const { results } = await runTargetBackups(t, { target: "daily", resolveSource: async () => conn(db), store });
    const manifestPath = join(storeDir, results[0]!.result!.manifest.object.key.replace(/\.dump$/, ".manifest.json"));
    const eightDaysAgo = new Date(Date.now() - 8 * 86_400_000).toISOString();
    writeFileSync(manifestPath, readFileSync(manifestPath, "utf8").replace(/"startedAt": "[^"]+"/, `"startedAt": "${eightDaysAgo}"`));
    // and so does the target's pointer to its newest backup, which the freshness check reads
    const pointer = join(storeDir, "daily", ".lifeboat-latest.json");
    writeFileSync(pointer, readFileSync(pointer, "utf8").replace(/"startedAt": "[^"]+"/, `"startedAt": "${eightDaysAgo}"`));

    posted.length = 0;
    answer = { status: 200 };
    const env = { PW: pg().password, HOOK_URL: hookUrl };
    const first = await cli(["schedule", "--once", "--config", file], { env });
    expect(first.code, first.stderr).toBe(0);
    const types = posted.map((p) => (p as { type: string }).type);
    expect(types.filter((x) => x === "backup.missed")).toHaveLength(7);
    expect(types.filter((x) => x === "backup.succeeded")).toHaveLength(1); // the catch-up
    const missed = posted.filter((p) => (p as { type: string }).type === "backup.missed") as Array<{ missed: { fireTime: string; newestBackup: { startedAt: string } } }>;
    expect(missed.map((m) => Date.parse(m.missed.fireTime) - Date.parse(eightDaysAgo)).sort((a, b) => a - b)).toEqual([1, 2, 3, 4, 5, 6, 7].map((d) => d * 86_400_000));
    expect(missed[0]!.missed.newestBackup.startedAt).toBe(eightDaysAgo);

    posted.length = 0;
    const second = await cli(["schedule", "--once", "--config", file], { env });
    expect(second.code, second.stderr).toBe(0);
    expect(posted).toEqual([]); // reported once; and the catch-up made the target fresh
  });
});

describe("lifeboat status", () => {
  it("ok, missed and failing targets, with ages, drills and next runs; exit 1 when any is missed or failing", async () => {
    const db = `status_${Math.random().toString(16).slice(2, 10)}`;
    await createDatabase(db, "create table t as select g from generate_series(1, 100) g;");
    const dir = tempDir("lifeboat-status-");
    const storeDir = join(dir, "store");
    const local = { host: pg().host, port: pg().port, database: db, user: "postgres", password: { env: "PW" } };
    const targets = {
      good: { database: local, schedule: "rate(1 day)" },
      stale: { database: local, schedule: "rate(1 day)" },
      broken: { database: { ...local, port: await closedPort() }, schedule: "rate(1 day)", retries: { attempts: 1 } },
    };
    const file = join(dir, "lifeboat.config.ts");
    writeFileSync(file, `export default ${JSON.stringify({ storage: { directory: storeDir }, targets })};`);
    const env = { PW: pg().password };
    for (const t of ["good", "good", "stale"]) expect((await cli(["run", t, "--config", file], { env })).code).toBe(0);
    expect((await cli(["run", "broken", "--config", file], { env })).code).toBe(1);
    // the stale target's newest backup is three days old
    const store = new DirectoryStore(storeDir);
    const [stale] = await listBackups(store, "stale");
    const path = join(storeDir, stale!.object.key.replace(/\.dump$/, ".manifest.json"));
    writeFileSync(path, readFileSync(path, "utf8").replace(/"startedAt": "[^"]+"/, `"startedAt": "${new Date(Date.now() - 3 * 86_400_000).toISOString()}"`));

    const res = await cli(["status", "--config", file, "--json"], { env });
    expect(res.code, res.stderr).toBe(1);
    const out = JSON.parse(res.stdout) as { healthy: boolean; targets: Array<{ target: string; verdict: string; missedFireTimes: string[]; trend: unknown[]; lastRun: { code: string } | null; nextFireTime: string; newestBackup: { size: number } | null }> };
    expect(out.healthy).toBe(false);
    expect(Object.fromEntries(out.targets.map((t) => [t.target, t.verdict]))).toEqual({ good: "ok", stale: "missed", broken: "failing" });
    expect(out.targets.find((t) => t.target === "stale")!.missedFireTimes).toHaveLength(2);
    expect(out.targets.find((t) => t.target === "good")!.trend).toHaveLength(2);
    expect(out.targets.find((t) => t.target === "broken")!.lastRun!.code).toBe("connection_refused");
    expect(Date.parse(out.targets.find((t) => t.target === "good")!.nextFireTime)).toBeGreaterThan(Date.now());

    const human = await cli(["status", "--config", file], { env });
    expect(human.stdout).toMatch(/good\s+OK\s+newest \d{8}T\d{6}Z-[0-9a-f]{4}, 0 min old/);
    expect(human.stdout).toMatch(/broken\s+FAILING/);
    expect((await cli(["status", "good", "--config", file], { env })).code).toBe(0);

    // Prometheus: the same facts as OpenMetrics text, the same exit code
    const prom = await cli(["status", "--config", file, "--format", "openmetrics"], { env });
    expect(prom.code, prom.stderr).toBe(1);
    const samples = new Map(prom.stdout.split("\n").filter((l) => l && !l.startsWith("#")).map((l) => [l.slice(0, l.lastIndexOf(" ")), Number(l.slice(l.lastIndexOf(" ") + 1))]));
    expect(prom.stdout).toContain("# TYPE lifeboat_backup_last_success_timestamp_seconds gauge");
    expect(prom.stdout.trimEnd().endsWith("# EOF")).toBe(true);
    expect(samples.get('lifeboat_target_status{target="stale",status="missed"}')).toBe(1);
    expect(samples.get('lifeboat_target_status{target="stale",status="ok"}')).toBe(0);
    expect(samples.get('lifeboat_target_status{target="good",status="ok"}')).toBe(1);
    expect(samples.get('lifeboat_last_run_success{target="broken"}')).toBe(0);
    expect(samples.get('lifeboat_last_run_success{target="good"}')).toBe(1);
    expect(samples.get('lifeboat_missed_fire_times{target="stale"}')).toBe(2);
    expect(samples.get('lifeboat_backup_last_size_bytes{target="good"}')).toBe(out.targets.find((t) => t.target === "good")!.newestBackup!.size);
    expect(samples.get('lifeboat_backup_last_duration_seconds{target="good"}')).toBeGreaterThan(0);
    expect(Math.abs(samples.get('lifeboat_backup_last_success_timestamp_seconds{target="good"}')! - Date.now() / 1000)).toBeLessThan(600);
    // a target never backed up has no backup samples (absent, not 0: 0 would read as 1970)
    expect([...samples.keys()].filter((k) => k.includes('target="broken"') && k.startsWith("lifeboat_backup_"))).toEqual([]);
    expect(samples.get("lifeboat_scheduler_up")).toBe(0);
    expect((await cli(["status", "--config", file, "--format", "yaml"], { env })).stderr).toContain("--format yaml is not known");
  });
});
