import { nextRun } from "./schedule-eval.js";
import type { Schedule } from "./schedule.js";

/**
 * Which fire times of a schedule produced no backup. A fire time F is missed when it came after the newest backup
 * started (and after the check began watching the target), and its grace period has passed with no newer backup.
 * Pure: the same answer for the same history and clock. At most `max` fire times, the most recent ones.
 */
export function missedFireTimes(schedule: Schedule, timezone: string, after: Date, now: Date, graceMs: number, max = 10): Date[] {
  const cutoff = now.getTime() - graceMs;
  const out: Date[] = [];
  let t = nextRun(schedule, timezone, after, now);
  for (let steps = 0; t && t.getTime() <= cutoff && steps < 100_000; steps++) {
    out.push(t);
    if (out.length > max) out.shift();
    t = nextRun(schedule, timezone, t, now);
  }
  return out;
}

/**
 * The default grace period: how long after a fire time its backup may still be running. A run lasts at most
 * maxRunMinutes, and never usefully longer than the schedule's interval; half an hour more for the launch.
 */
export function defaultGraceMinutes(schedule: Schedule, timezone: string, maxRunMinutes: number, now: Date = new Date()): number {
  const first = nextRun(schedule, timezone, now, now);
  const second = first ? nextRun(schedule, timezone, first, now) : undefined;
  const intervalMinutes = first && second ? (second.getTime() - first.getTime()) / 60_000 : maxRunMinutes;
  return Math.ceil(Math.min(maxRunMinutes, intervalMinutes) + 30);
}
