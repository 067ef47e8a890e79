import {
  ConditionalWriteFailed,
  EVENT_VERSION,
  MISSED_FOLDER,
  defaultGraceMinutes,
  joinKey,
  compactTime,
  missedFireTimes,
  parseSchedule,
  runIdFor,
  silentLogger,
  type BackupMissedEvent,
  type LifeboatConfig,
  type Logger,
  type ObjectStore,
} from "@lifeboat/core";
import { listBackups, readJsonIfExists, storeOnce } from "./catalog.js";
import { readLatest } from "./target-run.js";

/**
 * The freshness check: every scheduled target's newest backup against its schedule. Each fire time that produced no
 * backup within the target's grace period raises backup.missed once: a marker in the store
 * (`<target>/.lifeboat-missed/<fire time>.json`) remembers what was reported, across invocations and processes. Fire
 * times count from the newest backup; a target with no backup yet is watched from the first check that saw it
 * (`since.json` there), so a new deployment or a new target does not report fire times from before it existed.
 */

/** When the check began watching a target: fire times of a target never backed up count from then. */
export function sinceKey(target: string): string {
  return joinKey(target, MISSED_FOLDER, "since.json");
}

/** When the check began watching the target (recorded now, the first time it is asked). */
async function watchedSince(store: ObjectStore, target: string, now: Date): Promise<Date> {
  const since = await readJsonIfExists<{ since: string }>(store, sinceKey(target));
  if (since) return new Date(since.since);
  try {
    await storeOnce(store, sinceKey(target), { since: now.toISOString() });
  } catch (err) {
    // another check recorded it first: its time counts
    if (!(err instanceof ConditionalWriteFailed)) throw err;
    return new Date((await readJsonIfExists<{ since: string }>(store, sinceKey(target)))?.since ?? now.toISOString());
  }
  return now;
}

export interface FreshnessOptions {
  now?: Date;
  log?: Logger;
  /** Only these targets (default: every target with a schedule). */
  only?: string[];
  /** What should have run the targets (said in the event, so that a message points at the right place). */
  scheduler?: "eventbridge" | "lifeboat schedule";
  /** Delivers one event; it must resolve only once the event is out (the marker is written after it). */
  publish: (e: BackupMissedEvent) => Promise<void>;
  /** Told each checked target's newest backup (its start), or that it has none: for a metric of its age. */
  newest?: (target: string, startedAt: string | undefined) => void;
}

/** Targets checked at once. */
const FRESHNESS_CONCURRENCY = 8;

export async function checkFreshness(config: LifeboatConfig, store: ObjectStore, opts: FreshnessOptions): Promise<BackupMissedEvent[]> {
  const now = opts.now ?? new Date();
  const log = opts.log ?? silentLogger;
  const byTarget = new Map<string, BackupMissedEvent[]>();
  const due = Object.entries(config.targets).filter(([target, t]) => t.schedule && (!opts.only || opts.only.includes(target)));
  // several targets at once (each a few small reads): hundreds of targets stay well inside the check's time
  let next = 0;
  await Promise.all(
    Array.from({ length: Math.min(FRESHNESS_CONCURRENCY, due.length) }, async () => {
      while (next < due.length) {
        const [target, t] = due[next++]!;
        const raised: BackupMissedEvent[] = [];
        byTarget.set(target, raised);
        await checkTarget(target, t, raised);
      }
    }),
  );
  // in the config's order, each target's fire times in order
  return due.flatMap(([target]) => byTarget.get(target) ?? []);

  async function checkTarget(target: string, t: LifeboatConfig["targets"][string], raised: BackupMissedEvent[]): Promise<void> {
    const parsed = parseSchedule(t.schedule!);
    if (!parsed.ok) return; // validated at load
    const folder = joinKey(target, MISSED_FOLDER);
    const reported = new Set<string>();
    for await (const o of store.list(folder + "/")) reported.add(o.key);
    const since = await watchedSince(store, target, now);
    // the target's pointer to its newest backup (one small read); a target backed up only by an older Lifeboat has
    // none yet, and its manifests are read once more
    const newest = (await readLatest(store, target)) ?? (await listBackups(store, target, log))[0];
    opts.newest?.(target, newest?.startedAt);
    // with a backup, its history proves the target was due from then on; without one, only since watching began
    const after = newest ? new Date(newest.startedAt) : since;
    const graceMinutes = t.freshness?.graceMinutes ?? defaultGraceMinutes(parsed.schedule, t.timezone, t.maxRunMinutes, now);
    for (const fire of missedFireTimes(parsed.schedule, t.timezone, after, now, graceMinutes * 60_000)) {
      const marker = joinKey(folder, `${compactTime(fire)}.json`);
      if (reported.has(marker)) continue;
      const fireTime = fire.toISOString();
      const event: BackupMissedEvent = {
        version: EVENT_VERSION,
        type: "backup.missed",
        status: "failed",
        time: now.toISOString(),
        target,
        runId: runIdFor(`${target}\0missed`, fireTime),
        trigger: "freshness",
        attempt: 0,
        missed: {
          fireTime,
          schedule: t.schedule!,
          timezone: t.timezone,
          graceMinutes,
          newestBackup: newest ? { id: newest.id, startedAt: newest.startedAt, ageMs: now.getTime() - Date.parse(newest.startedAt) } : null,
          ...(opts.scheduler ? { scheduler: opts.scheduler } : {}),
        },
      };
      await opts.publish(event);
      // written once: a marker is never replaced (a second check at the same moment has published the same event,
      // whose runId lets subscribers tell it is one)
      await storeOnce(store, marker, { fireTime, reportedAt: now.toISOString(), runId: event.runId }).catch((err: unknown) => {
        if (!(err instanceof ConditionalWriteFailed)) throw err;
      });
      log.log("warn", "backup missed", { target, fireTime, graceMinutes, newestBackup: newest?.id ?? null });
      raised.push(event);
    }
  }
}
