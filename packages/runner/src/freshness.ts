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
}

export async function checkFreshness(config: LifeboatConfig, store: ObjectStore, opts: FreshnessOptions): Promise<BackupMissedEvent[]> {
  const now = opts.now ?? new Date();
  const log = opts.log ?? silentLogger;
  const raised: BackupMissedEvent[] = [];
  for (const [target, t] of Object.entries(config.targets)) {
    if (!t.schedule || (opts.only && !opts.only.includes(target))) continue;
    const parsed = parseSchedule(t.schedule);
    if (!parsed.ok) continue; // validated at load
    const folder = joinKey(target, MISSED_FOLDER);
    const reported = new Set<string>();
    for await (const o of store.list(folder + "/")) reported.add(o.key);
    const since = await watchedSince(store, target, now);
    const newest = (await listBackups(store, target, log))[0];
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
          schedule: t.schedule,
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
  return raised;
}
