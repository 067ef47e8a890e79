import { describe, expect, it } from "vitest";
import { nextCronTime, nextRun, parseSchedule, type CronSchedule, type Schedule } from "@lifeboat/core";

/**
 * Fire times pinned to EventBridge Scheduler semantics. The expected instants were computed independently (Python's
 * calendar and zoneinfo), not with this code.
 */
const cron = (e: string) => {
  const r = parseSchedule(e);
  if (!r.ok || r.schedule.type !== "cron") throw new Error(e);
  return r.schedule as CronSchedule;
};
const iso = (d: Date | undefined) => d?.toISOString().replace(".000Z", "Z");

const table: Array<[string, string, string, string | undefined, string]> = [
  // expression, time zone, after (UTC), expected next (UTC), why
  ["cron(0 2 * * ? *)", "UTC", "2026-11-21T04:30:00Z", "2026-11-22T02:00:00Z", "daily at 02:00"],
  ["cron(0/15 * * * ? *)", "UTC", "2026-11-21T10:07:00Z", "2026-11-21T10:15:00Z", "every 15 minutes"],
  ["cron(0/15 * * * ? *)", "UTC", "2026-11-21T10:15:00Z", "2026-11-21T10:30:00Z", "strictly after"],
  ["cron(30 4 ? * MON-FRI *)", "UTC", "2026-11-20T05:00:00Z", "2026-11-23T04:30:00Z", "weekdays: Friday after the time -> Monday"],
  ["cron(0 9 ? * 1 *)", "UTC", "2026-11-21T12:00:00Z", "2026-11-22T09:00:00Z", "day-of-week 1 is SUN"],
  ["cron(0 9 ? * 7 *)", "UTC", "2026-11-20T12:00:00Z", "2026-11-21T09:00:00Z", "day-of-week 7 is SAT"],
  ["cron(0 12 L * ? *)", "UTC", "2026-02-10T00:00:00Z", "2026-02-28T12:00:00Z", "L: last day of February 2026"],
  ["cron(0 12 L * ? *)", "UTC", "2028-02-10T00:00:00Z", "2028-02-29T12:00:00Z", "L: leap year"],
  ["cron(0 12 L-2 * ? *)", "UTC", "2026-11-01T00:00:00Z", "2026-11-28T12:00:00Z", "L-2: two days before the last"],
  ["cron(0 12 LW * ? *)", "UTC", "2026-02-10T00:00:00Z", "2026-02-27T12:00:00Z", "LW: Feb 28 2026 is a Saturday -> Friday 27"],
  ["cron(0 12 15W * ? *)", "UTC", "2026-11-01T00:00:00Z", "2026-11-16T12:00:00Z", "15W: the 15th is a Sunday -> Monday 16"],
  ["cron(0 12 1W * ? *)", "UTC", "2026-07-15T00:00:00Z", "2026-08-03T12:00:00Z", "1W: Aug 1 is a Saturday -> Monday 3 (not July 31)"],
  ["cron(0 12 31W * ? *)", "UTC", "2026-05-01T00:00:00Z", "2026-05-29T12:00:00Z", "31W: May 31 is a Sunday -> Friday 29"],
  ["cron(0 8 ? * 6#3 *)", "UTC", "2026-12-01T00:00:00Z", "2026-12-18T08:00:00Z", "6#3: third Friday"],
  ["cron(0 8 ? * FRI#1 *)", "UTC", "2026-11-07T00:00:00Z", "2026-12-04T08:00:00Z", "FRI#1: first Friday of the next month"],
  ["cron(0 8 ? * 6L *)", "UTC", "2026-11-01T00:00:00Z", "2026-11-27T08:00:00Z", "6L: last Friday"],
  ["cron(0 22-2 * * ? *)", "UTC", "2026-11-21T02:30:00Z", "2026-11-21T22:00:00Z", "wrap-around hour range"],
  ["cron(0 22-2 * * ? *)", "UTC", "2026-11-21T23:30:00Z", "2026-11-22T00:00:00Z", "wrap-around continues after midnight"],
  ["cron(0 0 ? * FRI-MON *)", "UTC", "2026-11-24T12:00:00Z", "2026-11-27T00:00:00Z", "FRI-MON skips Tuesday-Thursday"],
  ["cron(5,35 14 * JAN,JUL ? 2027-2030)", "UTC", "2026-11-21T00:00:00Z", "2027-01-01T14:05:00Z", "lists, month names, year range"],
  ["cron(0 0 1 1 ? 2030)", "UTC", "2030-01-01T00:00:00Z", undefined, "a year that has passed never fires again"],
  ["cron(0 2 * * ? *)", "Europe/Paris", "2026-11-21T04:30:00Z", "2026-11-22T01:00:00Z", "02:00 Paris is 01:00 UTC in winter"],
  ["cron(0 2 * * ? *)", "Europe/Paris", "2026-03-28T12:00:00Z", "2026-03-30T00:00:00Z", "02:00 does not exist on 2026-03-29 in Paris: skipped"],
  ["cron(30 2 * * ? *)", "America/New_York", "2027-03-13T00:00:00Z", "2027-03-13T07:30:00Z", "before spring forward (EST)"],
  ["cron(30 2 * * ? *)", "America/New_York", "2027-03-13T12:00:00Z", "2027-03-15T06:30:00Z", "02:30 does not exist on 2027-03-14: skipped"],
  ["cron(30 1 * * ? *)", "America/New_York", "2026-10-31T12:00:00Z", "2026-11-01T05:30:00Z", "01:30 happens twice on 2026-11-01: the first (EDT)"],
  ["cron(30 1 * * ? *)", "America/New_York", "2026-11-01T05:30:00Z", "2026-11-02T06:30:00Z", "...and only once: not again at 06:30Z"],
];

describe("EventBridge cron evaluation", () => {
  it.each(table)("%s in %s after %s -> %s (%s)", (expr, tz, after, expected) => {
    expect(iso(nextCronTime(cron(expr), new Date(after), tz))).toBe(expected);
  });
});

describe("next run of a target", () => {
  const rate = (e: string) => (parseSchedule(e) as { ok: true; schedule: Schedule }).schedule;
  const now = new Date("2026-11-21T10:00:00Z");

  it("rate: the last run plus the rate; rate(1 day) is 24 hours even across a DST change", () => {
    expect(iso(nextRun(rate("rate(6 hours)"), "UTC", new Date("2026-11-21T04:00:00Z"), now))).toBe("2026-11-21T10:00:00Z");
    expect(iso(nextRun(rate("rate(1 day)"), "America/New_York", new Date("2027-03-13T07:00:00Z"), now))).toBe("2027-03-14T07:00:00Z");
  });

  it("cron: the first fire time after the last run; missed fire times give one catch-up run", () => {
    const c = rate("cron(0 2 * * ? *)");
    expect(iso(nextRun(c, "UTC", new Date("2026-11-21T02:00:00Z"), now))).toBe("2026-11-22T02:00:00Z");
    // last run three days ago: the next fire time is in the past, so the target is due now, once
    expect(nextRun(c, "UTC", new Date("2026-11-18T02:00:00Z"), now)!.getTime()).toBeLessThan(now.getTime());
  });

  it("a target never backed up is due now", () => {
    expect(nextRun(rate("cron(0 2 * * ? *)"), "UTC", undefined, now)).toEqual(now);
    expect(nextRun(rate("rate(1 day)"), "UTC", undefined, now)).toEqual(now);
  });
});
