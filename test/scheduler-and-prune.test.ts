import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseConfig, planRetention } from "@lifeboat/core";
import { Scheduler, type SchedulerClock } from "@lifeboat/runner";
import { cli, createDatabase, s3, unique, url, tempDir } from "./support/helpers.js";

/** A clock the test moves by hand; sleeps resolve when the clock passes them, or on abort. */
class FakeClock implements SchedulerClock {
  private sleepers: Array<{ until: number; resolve: () => void }> = [];
  constructor(private t: number) {}
  now() {
    return new Date(this.t);
  }
  set(iso: string) {
    this.t = Date.parse(iso);
    for (const s of this.sleepers.filter((s) => s.until <= this.t)) s.resolve();
    this.sleepers = this.sleepers.filter((s) => s.until > this.t);
  }
  sleep(ms: number, signal: AbortSignal) {
    return new Promise<void>((resolve) => {
      this.sleepers.push({ until: this.t + ms, resolve });
      signal.addEventListener("abort", () => resolve(), { once: true });
    });
  }
}

const config = parseConfig({
  storage: { directory: "/tmp/unused" },
  targets: {
    often: { database: { url: "postgres://u@h/a" }, schedule: "cron(0/10 * * * ? *)" },
    hourly: { database: { url: "postgres://u@h/b" }, schedule: "rate(1 hour)" },
    manual: { database: { url: "postgres://u@h/c" } },
  },
});

function harness(last: Record<string, string | undefined>) {
  const clock = new FakeClock(Date.parse("2026-11-21T10:00:00Z"));
  const started: Array<[string, string]> = [];
  const finish = new Map<string, (o: "succeeded" | "failed") => void>();
  const logs: Array<{ msg: string; fields: Record<string, unknown> }> = [];
  const scheduler = new Scheduler({
    config,
    clock,
    log: { log: (_l, msg, fields = {}) => void logs.push({ msg, fields }) },
    lastRun: async (name) => (last[name] ? new Date(last[name]!) : undefined),
    runTarget: (name, signal) =>
      new Promise((resolve) => {
        started.push([name, clock.now().toISOString()]);
        finish.set(name, resolve);
        signal.addEventListener("abort", () => resolve("failed"), { once: true });
      }),
  });
  return { clock, started, finish, logs, scheduler };
}

const tickAndSettle = async (s: Scheduler) => {
  const r = s.tick();
  await new Promise((r2) => setImmediate(r2));
  return r;
};

describe("the scheduler daemon (controllable clock)", () => {
  it("fires due targets, never overlaps a target with itself, and catches up once after missed fire times", async () => {
    const { clock, started, finish, logs, scheduler } = harness({ often: "2026-11-21T09:50:00Z", hourly: undefined });
    await scheduler.init();
    expect(scheduler.targets).toEqual(["often", "hourly"]); // "manual" has no schedule

    expect(await tickAndSettle(scheduler)).toEqual(["often", "hourly"]); // often: 10:00 is due; hourly: never backed up
    clock.set("2026-11-21T10:10:00Z");
    expect(await tickAndSettle(scheduler)).toEqual([]); // often is still running: skipped, not queued
    expect(logs.filter((l) => l.msg.startsWith("skipped"))).toEqual([
      { msg: "skipped: the previous run of this target is still in flight", fields: { target: "often", dueAt: "2026-11-21T10:10:00.000Z" } },
    ]);
    expect(await tickAndSettle(scheduler)).toEqual([]); // the skip is logged once per fire time
    expect(logs.filter((l) => l.msg.startsWith("skipped"))).toHaveLength(1);

    finish.get("often")!("succeeded");
    finish.get("hourly")!("succeeded");
    await new Promise((r) => setImmediate(r));
    clock.set("2026-11-21T10:45:00Z"); // 10:10, 10:20, 10:30, 10:40 all passed: one catch-up run
    expect(await tickAndSettle(scheduler)).toEqual(["often"]);
    expect(await tickAndSettle(scheduler)).toEqual([]);
    finish.get("often")!("succeeded");
    await new Promise((r) => setImmediate(r));
    clock.set("2026-11-21T10:50:00Z");
    expect(await tickAndSettle(scheduler)).toEqual(["often"]);
    clock.set("2026-11-21T11:00:00Z");
    finish.get("often")!("succeeded");
    await new Promise((r) => setImmediate(r));
    expect(await tickAndSettle(scheduler)).toEqual(["often", "hourly"]); // rate(1 hour) from its 10:00 start
    expect(started).toEqual([
      ["often", "2026-11-21T10:00:00.000Z"],
      ["hourly", "2026-11-21T10:00:00.000Z"],
      ["often", "2026-11-21T10:45:00.000Z"],
      ["often", "2026-11-21T10:50:00.000Z"],
      ["often", "2026-11-21T11:00:00.000Z"],
      ["hourly", "2026-11-21T11:00:00.000Z"],
    ]);
  });

  it("sleeps until the next due target, and on stop aborts the runs in flight and waits for them", async () => {
    const { clock, started, logs, scheduler } = harness({ often: "2026-11-21T10:00:00Z", hourly: "2026-11-21T09:30:00Z" });
    const stop = new AbortController();
    const loop = scheduler.run(stop.signal);
    await new Promise((r) => setTimeout(r, 20));
    expect(started).toEqual([]); // often next at 10:10, hourly at 10:30
    expect(scheduler.nextWakeMs()).toBe(60_000); // next due in 10 minutes; one look at the clock a minute at most
    clock.set("2026-11-21T10:10:00Z");
    await new Promise((r) => setTimeout(r, 20));
    expect(started).toEqual([["often", "2026-11-21T10:10:00.000Z"]]);
    stop.abort("SIGTERM");
    await loop; // resolves only once the in-flight run has ended (its signal aborted)
    expect(logs.find((l) => l.msg === "stopping")!.fields).toEqual({ runsInFlight: ["often"] });
    expect(logs.at(-1)!.msg).toBe("stopped");
  });
});

describe("scheduled restore drills", () => {
  it("a target's verify.schedule is its own entry, run in verify mode, and waits for that target's backup in flight", async () => {
    const clock = new FakeClock(Date.parse("2026-11-22T06:00:00Z")); // a Sunday
    const calls: Array<[string, string]> = [];
    const finish: Array<() => void> = [];
    const scheduler = new Scheduler({
      config: parseConfig({
        storage: { directory: "/tmp/unused" },
        targets: { db: { database: { url: "postgres://u@h/a" }, schedule: "cron(0 6 * * ? *)", verify: { schedule: "cron(0 6 ? * SUN *)" } } },
      }),
      clock,
      lastRun: async (_name, mode) => (mode === "backup" ? new Date("2026-11-21T06:00:00Z") : new Date("2026-11-15T06:00:00Z")),
      runTarget: (name, _signal, mode) =>
        new Promise((resolve) => {
          calls.push([name, mode]);
          finish.push(() => resolve("succeeded"));
        }),
    });
    await scheduler.init();
    expect(scheduler.targets).toEqual(["db", "db (verify)"]);
    expect(await tickAndSettle(scheduler)).toEqual(["db"]); // the drill waits: the backup is running
    finish.shift()!();
    await new Promise((r) => setImmediate(r));
    expect(await tickAndSettle(scheduler)).toEqual(["db (verify)"]);
    expect(calls).toEqual([
      ["db", "backup"],
      ["db", "verify"],
    ]);
  });
});

describe("lifeboat schedule --once and prune, against real PostgreSQL", () => {
  it("runs a never-backed-up target, then nothing until it is due; prune applies keepLast and always keeps the newest", async () => {
    const db = unique("sched");
    await createDatabase(db, "create table t as select generate_series(1, 50) g;");
    const dir = tempDir("lifeboat-sched-");
    const file = join(dir, "lifeboat.config.ts");
    writeFileSync(
      file,
      `export default { storage: { directory: ${JSON.stringify(join(dir, "store"))} },
        targets: { nightly: { database: { url: { env: "SCHED_URL" } }, schedule: "cron(0 2 * * ? *)", verify: { schedule: "rate(7 days)" }, retention: { keepLast: 2 } } } };`,
    );
    const env = { SCHED_URL: url(db) };
    const first = await cli(["schedule", "--once", "--config", file, "--json"], { env });
    expect(first.code, first.stderr).toBe(0);
    expect(JSON.parse(first.stdout)).toEqual({ ran: ["nightly"], failed: [] });
    expect(first.stderr.split("\n").filter(Boolean).every((l) => JSON.parse(l).time)).toBe(true); // JSON lines
    // the drill waited for the first backup; now it is due (never drilled), then nothing is
    const second = await cli(["schedule", "--once", "--config", file, "--json"], { env });
    expect(JSON.parse(second.stdout)).toEqual({ ran: ["nightly (verify)"], failed: [] });
    expect(second.stderr).toContain('"msg":"restore drill passed"');
    const third = await cli(["schedule", "--once", "--config", file, "--json"], { env });
    expect(JSON.parse(third.stdout)).toEqual({ ran: [], failed: [] });

    for (let i = 0; i < 3; i++) {
      await new Promise((r) => setTimeout(r, 1100));
      expect((await cli(["run", "nightly", "--config", file], { env })).code).toBe(0);
    }
    const dry = await cli(["prune", "nightly", "--config", file, "--dry-run", "--json"], { env });
    const decisions = JSON.parse(dry.stdout).results[0].decisions;
    expect(decisions.map((d: { keep: boolean }) => d.keep)).toEqual([true, true, false, false]);
    expect(decisions[0].reasons).toEqual(["newest", "one of the last 2"]);
    expect(JSON.parse((await cli(["list", "nightly", "--config", file, "--json"], { env })).stdout).backups).toHaveLength(4);
    const real = await cli(["prune", "--config", file], { env });
    expect(real.code, real.stderr).toBe(0);
    expect(real.stdout).toContain("nightly: 2 kept, 2 deleted");
    const left = JSON.parse((await cli(["list", "nightly", "--config", file, "--json"], { env })).stdout).backups;
    expect(left.map((b: { id: string }) => b.id)).toEqual(decisions.slice(0, 2).map((d: { id: string }) => d.id));
  });

  it("prune works on an S3 store too, and on a deployed (lifecycle-managed) bucket it does nothing", async () => {
    const db = unique("prune");
    await createDatabase(db, "create table t(x int);");
    const prefix = unique("prune");
    const store = `s3://${s3().bucket}/${prefix}`;
    for (let i = 0; i < 2; i++) {
      if (i) await new Promise((r) => setTimeout(r, 1100));
      expect((await cli(["run", "--db", url(db), "--to", store, "--name", "p"])).code).toBe(0);
    }
    const res = await cli(["prune", "p", "--from", store, "--keep-last", "1", "--json"]);
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).results[0].deleted).toHaveLength(1);
    expect(JSON.parse((await cli(["list", "--from", store, "--json"])).stdout).backups).toHaveLength(1);
    // the repository's example config deploys to AWS: its bucket's retention belongs to the lifecycle rules
    const managed = await cli(["prune", "--json"]);
    expect(JSON.parse(managed.stdout)).toEqual({ status: "skipped", reason: "lifecycle-managed" });
  });
});

describe("retention planning", () => {
  const daily = Array.from({ length: 113 }, (_, i) => {
    const d = new Date(Date.UTC(2026, 7, 1 + i, 2, 0, 0));
    return { id: d.toISOString().slice(0, 10), startedAt: d.toISOString() };
  });
  const now = new Date("2026-11-21T12:00:00Z");
  const kept = (policy: Parameters<typeof planRetention>[1]) => planRetention(daily, policy, now).filter((d) => d.keep).map((d) => d.id);

  it("GFS daily 7 / weekly 4 / monthly 3 over 113 daily backups keeps the expected 11 (computed with Python)", () => {
    expect(kept({ daily: 7, weekly: 4, monthly: 3 })).toEqual([
      "2026-11-21", "2026-11-20", "2026-11-19", "2026-11-18", "2026-11-17", "2026-11-16", "2026-11-15",
      "2026-11-08", "2026-11-01", "2026-10-31", "2026-09-30",
    ]);
    const d = planRetention(daily, { daily: 7, weekly: 4, monthly: 3 }, now);
    expect(d[0]!.reasons).toEqual(["newest", "daily 2026-11-21", "weekly 2026-W47", "monthly 2026-11"]);
    expect(d.find((x) => x.id === "2026-11-15")!.reasons).toEqual(["daily 2026-11-15", "weekly 2026-W46"]);
  });

  it("days and keepLast", () => {
    expect(kept({ days: 3 })).toEqual(["2026-11-21", "2026-11-20", "2026-11-19"]);
    expect(kept({ keepLast: 2 })).toEqual(["2026-11-21", "2026-11-20"]);
  });

  it("the newest backup is kept even when every rule would drop it", () => {
    const old = [{ id: "a", startedAt: "2026-01-01T00:00:00Z" }, { id: "b", startedAt: "2025-12-01T00:00:00Z" }];
    expect(planRetention(old, { days: 7 }, now).map((d) => [d.id, d.keep, d.reasons])).toEqual([
      ["a", true, ["newest"]],
      ["b", false, []],
    ]);
  });
});
