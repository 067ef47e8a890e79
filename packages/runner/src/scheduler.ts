import { errorMessage, nextRun, parseSchedule, silentLogger, type LifeboatConfig, type Logger, type Schedule } from "@lifeboat/core";

/**
 * The local twin of EventBridge Scheduler: evaluates the same expressions (same parser, same DST rules), runs due
 * targets, never two runs of one target at once, and on stop waits for the runs in flight, which get the abort
 * signal and stop cleanly. The last run of each target comes from the store (its newest manifest), so a restart
 * neither repeats a backup nor forgets one: missed fire times give a single catch-up run.
 */
export interface SchedulerClock {
  now(): Date;
  /** Resolves after `ms`, or early when `signal` aborts. */
  sleep(ms: number, signal: AbortSignal): Promise<void>;
}

export const systemClock: SchedulerClock = {
  now: () => new Date(),
  sleep: (ms, signal) =>
    new Promise((resolve) => {
      const t = setTimeout(done, ms);
      signal.addEventListener("abort", done, { once: true });
      function done() {
        clearTimeout(t);
        signal.removeEventListener("abort", done);
        resolve();
      }
    }),
};

/** skipped: another scheduler holds the target's lease (it runs the target). */
export type RunOutcome = "succeeded" | "failed" | "skipped";

export type ScheduledMode = "backup" | "verify" | "refresh";

export interface SchedulerOptions {
  config: LifeboatConfig;
  /**
   * Runs one target (backup, notifications, prune; or a restore drill); must honour the signal. It may return what
   * the run produced (a backup's id, size, duration) for the "run succeeded" line.
   */
  runTarget: (target: string, signal: AbortSignal, mode: ScheduledMode) => Promise<RunOutcome | { outcome: RunOutcome; fields: Record<string, unknown> }>;
  /** When the target last started a backup that succeeded (its newest manifest), or last ran a drill, if ever. */
  lastRun: (target: string, mode: ScheduledMode) => Promise<Date | undefined>;
  /** Only these targets (default: every target with a schedule). */
  only?: string[];
  clock?: SchedulerClock;
  log?: Logger;
  /** Longest sleep between two looks at the clock. */
  maxSleepMs?: number;
}

interface Entry {
  name: string;
  mode: ScheduledMode;
  /** How logs and tick() name it: the target, or "<target> (verify)" for its drills. */
  label: string;
  schedule: Schedule;
  timezone: string;
  last: Date | undefined;
  running: Promise<void> | undefined;
  skippedFor: number | undefined;
  /** How its latest run ended (for `schedule --once`'s exit code). */
  outcome: RunOutcome | undefined;
}

export class Scheduler {
  private readonly entries: Entry[];
  private readonly clock: SchedulerClock;
  private readonly log: Logger;
  private readonly runs = new AbortController();

  constructor(private readonly opts: SchedulerOptions) {
    this.clock = opts.clock ?? systemClock;
    this.log = opts.log ?? silentLogger;
    const entry = (name: string, mode: ScheduledMode, expression: string, timezone: string): Entry => {
      const parsed = parseSchedule(expression);
      if (!parsed.ok) throw new Error(`targets.${name}: ${parsed.error}`); // validated at load already
      return { name, mode, label: mode === "backup" ? name : `${name} (${mode})`, schedule: parsed.schedule, timezone, last: undefined, running: undefined, skippedFor: undefined, outcome: undefined };
    };
    this.entries = Object.entries(opts.config.targets)
      .filter(([name]) => !opts.only || opts.only.includes(name))
      .flatMap(([name, t]) => [
        ...(t.schedule ? [entry(name, "backup", t.schedule, t.timezone)] : []),
        ...(t.verify?.schedule ? [entry(name, "verify", t.verify.schedule, t.verify.timezone ?? t.timezone)] : []),
        ...(t.refresh?.schedule ? [entry(name, "refresh", t.refresh.schedule, t.refresh.timezone ?? t.timezone)] : []),
      ]);
  }

  get targets(): string[] {
    return this.entries.map((e) => e.label);
  }

  /**
   * Reads each target's last run. One that cannot be read (the store is down) counts as never run: the target is due
   * at once, and its run meets the outage, is retried and reported like any failed run, instead of the daemon
   * waiting silently or exiting.
   */
  async init(): Promise<void> {
    for (const e of this.entries) {
      let unknown = false;
      try {
        e.last = await this.opts.lastRun(e.name, e.mode);
      } catch (err) {
        e.last = undefined;
        unknown = true;
        this.log.log("debug", "the last run could not be read", { target: e.name, mode: e.mode, error: errorMessage(err) });
      }
      const next = nextRun(e.schedule, e.timezone, e.last, this.clock.now());
      this.log.log("info", "scheduled", { target: e.name, mode: e.mode, schedule: e.schedule.expression, timezone: e.timezone, lastRun: unknown ? "unknown (the store cannot be read): due now" : (e.last?.toISOString() ?? null), nextRun: next?.toISOString() ?? null });
    }
  }

  /** Starts every due target that is not already running; returns the names started. */
  tick(): string[] {
    const now = this.clock.now();
    const started: string[] = [];
    for (const e of this.entries) {
      // a drill waits for the same target's backup in flight: it should drill that backup
      if (e.mode === "verify" && this.entries.some((b) => b.name === e.name && b.mode === "backup" && b.running)) continue;
      const next = nextRun(e.schedule, e.timezone, e.last, now);
      if (!next || next.getTime() > now.getTime()) continue;
      if (e.running) {
        if (e.skippedFor !== next.getTime()) {
          e.skippedFor = next.getTime();
          this.log.log("warn", "skipped: the previous run of this target is still in flight", { target: e.name, ...(e.mode === "verify" ? { mode: e.mode } : {}), dueAt: next.toISOString() });
        }
        continue;
      }
      e.last = now;
      e.skippedFor = undefined;
      started.push(e.label);
      const fields = { target: e.name, ...(e.mode === "verify" ? { mode: e.mode } : {}) };
      this.log.log("info", "run started", { ...fields, dueAt: next.toISOString() });
      e.running = this.opts
        .runTarget(e.name, this.runs.signal, e.mode)
        .then((result) => {
          const { outcome, fields: details } = typeof result === "string" ? { outcome: result, fields: {} } : result;
          e.outcome = outcome;
          this.log.log(outcome === "failed" ? "error" : "info", `run ${outcome}`, { ...fields, ...details });
        })
        .catch((err) => {
          e.outcome = "failed";
          this.log.log("error", "run failed", { ...fields, error: errorMessage(err) });
        })
        .finally(() => (e.running = undefined));
    }
    return started;
  }

  /** Milliseconds until the next due target (capped), from the clock's now. */
  nextWakeMs(): number {
    const now = this.clock.now();
    const max = this.opts.maxSleepMs ?? 60_000;
    let wait = max;
    for (const e of this.entries) {
      const next = nextRun(e.schedule, e.timezone, e.last, now);
      if (next) wait = Math.min(wait, Math.max(0, next.getTime() - now.getTime()));
    }
    return Math.max(wait, 250);
  }

  async inFlight(): Promise<void> {
    await Promise.all(this.entries.map((e) => e.running));
  }

  /** `schedule --once`: what is due now, then wait for it; which runs started, and which of them failed. */
  async once(): Promise<{ started: string[]; failed: string[] }> {
    await this.init();
    const started = this.tick();
    await this.inFlight();
    return { started, failed: this.entries.filter((e) => started.includes(e.label) && e.outcome === "failed").map((e) => e.label) };
  }

  /** The daemon loop, until `signal` aborts; then the runs in flight are aborted and awaited. */
  async run(signal: AbortSignal): Promise<void> {
    await this.init();
    while (!signal.aborted) {
      this.tick();
      await this.clock.sleep(this.nextWakeMs(), signal);
    }
    const inFlight = this.entries.filter((e) => e.running).map((e) => e.label);
    this.log.log("info", "stopping", { runsInFlight: inFlight });
    this.runs.abort(signal.reason ?? "stopping");
    await this.inFlight();
    this.log.log("info", "stopped");
  }
}
