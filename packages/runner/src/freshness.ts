import { createHash } from "node:crypto";
import {
  EVENT_VERSION,
  MISSED_FOLDER,
  defaultGraceMinutes,
  joinKey,
  missedFireTimes,
  parseSchedule,
  silentLogger,
  type BackupMissedEvent,
  type LifeboatConfig,
  type Logger,
  type ObjectStore,
} from "@lifeboat/core";
import { listBackups, readObject, storeJson } from "./catalog.js";

/**
 * The freshness check: every scheduled target's newest backup against its schedule. Each fire time that produced no
 * backup within the target's grace period raises backup.missed once: a marker in the store
 * (`<target>/.lifeboat-missed/<fire time>.json`) remembers what was reported, across invocations and processes. Fire
 * times count from the newest backup; a target with no backup yet is watched from the first check that saw it
 * (`since.json` there), so a new deployment or a new target does not report fire times from before it existed.
 */

function compact(d: Date): string {
  return d.toISOString().replace(/[-:]/g, "").replace(/\.\d+Z$/, "Z");
}

export function missedRunId(target: string, fireTime: string): string {
  const h = createHash("sha256").update(`missed\0${target}\0${fireTime}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

export interface FreshnessOptions {
  now?: Date;
  log?: Logger;
  /** Only these targets (default: every target with a schedule). */
  only?: string[];
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
    let since: Date | undefined;
    for await (const o of store.list(folder + "/")) {
      if (o.key.endsWith("/since.json")) since = new Date((JSON.parse((await readObject(store, o.key)).toString("utf8")) as { since: string }).since);
      else reported.add(o.key);
    }
    if (!since) {
      await storeJson(store, joinKey(folder, "since.json"), { since: now.toISOString() });
      since = now;
    }
    const newest = (await listBackups(store, target, log))[0];
    // with a backup, its history proves the target was due from then on; without one, only since watching began
    const after = newest ? new Date(newest.startedAt) : since;
    const graceMinutes = t.freshness?.graceMinutes ?? defaultGraceMinutes(parsed.schedule, t.timezone, t.maxRunMinutes, now);
    for (const fire of missedFireTimes(parsed.schedule, t.timezone, after, now, graceMinutes * 60_000)) {
      const marker = joinKey(folder, `${compact(fire)}.json`);
      if (reported.has(marker)) continue;
      const fireTime = fire.toISOString();
      const event: BackupMissedEvent = {
        version: EVENT_VERSION,
        type: "backup.missed",
        status: "failed",
        time: now.toISOString(),
        target,
        runId: missedRunId(target, fireTime),
        trigger: "freshness",
        attempt: 0,
        missed: {
          fireTime,
          schedule: t.schedule,
          timezone: t.timezone,
          graceMinutes,
          newestBackup: newest ? { id: newest.id, startedAt: newest.startedAt, ageMs: now.getTime() - Date.parse(newest.startedAt) } : null,
        },
      };
      await opts.publish(event);
      await storeJson(store, marker, { fireTime, reportedAt: now.toISOString(), runId: event.runId });
      log.log("warn", "backup missed", { target, fireTime, graceMinutes, newestBackup: newest?.id ?? null });
      raised.push(event);
    }
  }
  return raised;
}
