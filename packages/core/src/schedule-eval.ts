import type { CronPart, CronSchedule, Schedule } from "./schedule.js";

/**
 * When an EventBridge Scheduler expression fires, evaluated the way AWS does:
 * - cron fields in the schedule's IANA time zone; day-of-week 1-7 = SUN-SAT; L, W, # as in EventBridge;
 * - daylight saving: a local time that does not exist (spring forward) is skipped; a local time that happens twice
 *   (fall back) fires once, at its first occurrence;
 * - rate(N days) is N x 24 hours, whatever the clock says.
 * The same parser validates configs (schedule.ts), so what validates is what runs.
 */

const formatters = new Map<string, Intl.DateTimeFormat>();
function formatter(timeZone: string): Intl.DateTimeFormat {
  let f = formatters.get(timeZone);
  if (!f) {
    f = new Intl.DateTimeFormat("en-US", { timeZone, hourCycle: "h23", year: "numeric", month: "numeric", day: "numeric", hour: "numeric", minute: "numeric" });
    formatters.set(timeZone, f);
  }
  return f;
}

interface Wall {
  y: number;
  mo: number;
  d: number;
  h: number;
  mi: number;
}

export function wallTime(instant: number, timeZone: string): Wall {
  const p = Object.fromEntries(formatter(timeZone).formatToParts(new Date(instant)).map((x) => [x.type, x.value]));
  return { y: Number(p.year), mo: Number(p.month), d: Number(p.day), h: Number(p.hour), mi: Number(p.minute) };
}

const asUtc = (w: Wall) => Date.UTC(w.y, w.mo - 1, w.d, w.h, w.mi);

/** The first instant whose local time in `timeZone` is `w`, or undefined when that local time does not exist. */
export function instantOf(w: Wall, timeZone: string): number | undefined {
  const guess = asUtc(w);
  const candidates = new Set<number>();
  for (const probe of [guess - 14 * 3_600_000, guess, guess + 14 * 3_600_000]) {
    const offset = asUtc(wallTime(probe, timeZone)) - Math.floor(probe / 60_000) * 60_000;
    candidates.add(guess - offset);
  }
  const valid = [...candidates].filter((t) => asUtc(wallTime(t, timeZone)) === guess).sort((a, b) => a - b);
  return valid[0];
}

function expand(parts: CronPart[], lo: number, hi: number): Set<number> {
  const out = new Set<number>();
  for (const p of parts) {
    if (p.kind === "any") for (let v = lo; v <= hi; v++) out.add(v);
    else if (p.kind === "range") {
      // wrap-around ranges (22-2, FRI-MON) walk past the top of the field and start again at its bottom
      const span = p.to >= p.from ? p.to - p.from : hi - p.from + 1 + (p.to - lo);
      for (let i = 0; i <= span; i += p.step) out.add(((p.from - lo + i) % (hi - lo + 1)) + lo);
    }
  }
  return out;
}

const daysIn = (y: number, mo: number) => new Date(Date.UTC(y, mo, 0)).getUTCDate();
const dowOf = (y: number, mo: number, d: number) => new Date(Date.UTC(y, mo - 1, d)).getUTCDay() + 1; // 1 = SUN
const isWeekday = (y: number, mo: number, d: number) => {
  const w = dowOf(y, mo, d);
  return w >= 2 && w <= 6;
};

function nearestWeekday(y: number, mo: number, day: number): number | undefined {
  const last = daysIn(y, mo);
  if (day > last) return undefined;
  const w = dowOf(y, mo, day);
  if (w === 7) return day === 1 ? 3 : day - 1; // Saturday -> Friday (or Monday the 3rd)
  if (w === 1) return day === last ? day - 2 : day + 1; // Sunday -> Monday (or Friday before the end)
  return day;
}

function domMatches(parts: CronPart[], y: number, mo: number, d: number): boolean {
  const last = daysIn(y, mo);
  return parts.some((p) => {
    switch (p.kind) {
      case "any":
        return true;
      case "range":
        return expand([p], 1, 31).has(d);
      case "last":
        return d === last;
      case "lastOffset":
        return d === last - p.offset;
      case "lastWeekday": {
        let x = last;
        while (!isWeekday(y, mo, x)) x--;
        return d === x;
      }
      case "nearestWeekday":
        return nearestWeekday(y, mo, p.day) === d;
      default:
        return false;
    }
  });
}

function dowMatches(parts: CronPart[], y: number, mo: number, d: number): boolean {
  const w = dowOf(y, mo, d);
  const last = daysIn(y, mo);
  return parts.some((p) => {
    switch (p.kind) {
      case "any":
        return true;
      case "range":
        return expand([p], 1, 7).has(w);
      case "last":
        return w === 7; // L alone in day-of-week: Saturday
      case "lastDayOfWeek":
        return w === p.day && d + 7 > last;
      case "nthDayOfWeek":
        return w === p.day && Math.ceil(d / 7) === p.nth;
      default:
        return false;
    }
  });
}

/** The first fire time strictly after `after`, or undefined if the expression never fires again (years run out). */
export function nextCronTime(s: CronSchedule, after: Date, timeZone: string): Date | undefined {
  const minutes = [...expand(s.fields.minutes, 0, 59)].sort((a, b) => a - b);
  const hours = [...expand(s.fields.hours, 0, 23)].sort((a, b) => a - b);
  const months = expand(s.fields.month, 1, 12);
  const years = expand(s.fields.year, 1970, 2199);
  const useDom = s.fields.dayOfMonth[0]!.kind !== "none";
  const start = wallTime(after.getTime(), timeZone);
  let y = start.y;
  let mo = start.mo;
  let d = start.d;
  for (let i = 0; i < 366 * 230; i++) {
    if (y > 2199) return undefined;
    if (!years.has(y)) {
      y++, (mo = 1), (d = 1);
      continue;
    }
    if (!months.has(mo)) {
      mo === 12 ? (y++, (mo = 1)) : mo++;
      d = 1;
      continue;
    }
    if (useDom ? domMatches(s.fields.dayOfMonth, y, mo, d) : dowMatches(s.fields.dayOfWeek, y, mo, d)) {
      for (const h of hours) {
        for (const mi of minutes) {
          const t = instantOf({ y, mo, d, h, mi }, timeZone);
          if (t !== undefined && t > after.getTime()) return new Date(t);
        }
      }
    }
    if (d >= daysIn(y, mo)) {
      d = 1;
      mo === 12 ? (y++, (mo = 1)) : mo++;
    } else d++;
  }
  return undefined;
}

/**
 * The next run of a schedule for a scheduler that last started this target at `lastRun` (undefined: never).
 * cron: the first fire time after the last run. rate: the last run plus the rate. A target with no backup at all is
 * due now (as an EventBridge rate schedule without a start date fires at once): it is the one most at risk.
 * Several missed fire times (the scheduler was down) give one catch-up run, not one per missed time.
 */
export function nextRun(schedule: Schedule, timeZone: string, lastRun: Date | undefined, now: Date): Date | undefined {
  if (!lastRun) return now;
  if (schedule.type === "rate") return new Date(lastRun.getTime() + schedule.everyMs);
  return nextCronTime(schedule, lastRun, timeZone);
}
