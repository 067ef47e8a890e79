/**
 * EventBridge Scheduler expressions, parsed and validated exactly as AWS accepts them:
 *
 *   cron(minutes hours day-of-month month day-of-week year)   e.g. cron(0 2 * * ? *)
 *   rate(value unit)                                           e.g. rate(1 day), rate(15 minutes)
 *
 * cron rules (https://docs.aws.amazon.com/scheduler/latest/UserGuide/schedule-types.html):
 * - six fields; one of day-of-month / day-of-week must be `?` (and not both);
 * - minutes 0-59, hours 0-23, day-of-month 1-31, month 1-12 or JAN-DEC, day-of-week 1-7 (1 = SUN) or SUN-SAT,
 *   year 1970-2199;
 * - wildcards `,` `-` `*` `/` everywhere; `?` in day fields; `L` and `W` in day-of-month; `L` and `#` in day-of-week.
 *
 * The parse result keeps every field's structure so that a scheduler can evaluate it.
 */

export type CronFieldName = "minutes" | "hours" | "dayOfMonth" | "month" | "dayOfWeek" | "year";

export type CronPart =
  | { kind: "any" } // *
  | { kind: "none" } // ?
  | { kind: "range"; from: number; to: number; step: number } // 5, 1-5, */10, 1-30/5, 5/10
  | { kind: "last" } // L (day-of-month: last day; day-of-week alone: Saturday)
  | { kind: "lastOffset"; offset: number } // L-3 in day-of-month
  | { kind: "lastWeekday" } // LW
  | { kind: "nearestWeekday"; day: number } // 15W
  | { kind: "lastDayOfWeek"; day: number } // 6L = last Friday
  | { kind: "nthDayOfWeek"; day: number; nth: number }; // 6#3 = third Friday

export interface CronSchedule {
  type: "cron";
  expression: string;
  fields: Record<CronFieldName, CronPart[]>;
}

export interface RateSchedule {
  type: "rate";
  expression: string;
  value: number;
  unit: "minutes" | "hours" | "days";
  everyMs: number;
}

export type Schedule = CronSchedule | RateSchedule;

export type ScheduleParse = { ok: true; schedule: Schedule } | { ok: false; error: string };

const MONTHS = ["JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC"];
const DAYS = ["SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT"];

const BOUNDS: Record<CronFieldName, [number, number]> = {
  minutes: [0, 59],
  hours: [0, 23],
  dayOfMonth: [1, 31],
  month: [1, 12],
  dayOfWeek: [1, 7],
  year: [1970, 2199],
};

const ORDER: CronFieldName[] = ["minutes", "hours", "dayOfMonth", "month", "dayOfWeek", "year"];

class FieldError extends Error {}

function value(field: CronFieldName, raw: string): number {
  const upper = raw.toUpperCase();
  if (field === "month" && MONTHS.includes(upper)) return MONTHS.indexOf(upper) + 1;
  if (field === "dayOfWeek" && DAYS.includes(upper)) return DAYS.indexOf(upper) + 1;
  if (!/^\d+$/.test(raw)) throw new FieldError(`"${raw}" is not a valid ${describe(field)} value`);
  const n = Number(raw);
  const [lo, hi] = BOUNDS[field];
  if (n < lo || n > hi) throw new FieldError(`${describe(field)} ${n} is out of range ${lo}-${hi}`);
  return n;
}

function describe(field: CronFieldName): string {
  return { minutes: "minute", hours: "hour", dayOfMonth: "day-of-month", month: "month", dayOfWeek: "day-of-week", year: "year" }[field];
}

function parsePart(field: CronFieldName, part: string): CronPart {
  const [lo, hi] = BOUNDS[field];
  if (part === "*") return { kind: "any" };
  if (part === "?") {
    if (field !== "dayOfMonth" && field !== "dayOfWeek") throw new FieldError(`"?" is only allowed in day-of-month or day-of-week`);
    return { kind: "none" };
  }
  if (field === "dayOfMonth") {
    if (part === "L") return { kind: "last" };
    if (part === "LW") return { kind: "lastWeekday" };
    let m = /^L-(\d+)$/.exec(part);
    if (m) {
      const offset = Number(m[1]);
      if (offset < 1 || offset > 30) throw new FieldError(`"${part}": the offset from the last day must be 1-30`);
      return { kind: "lastOffset", offset };
    }
    m = /^(\d+)W$/.exec(part);
    if (m) return { kind: "nearestWeekday", day: value(field, m[1]!) };
  }
  if (field === "dayOfWeek") {
    if (part === "L") return { kind: "last" };
    let m = /^([A-Za-z]{3}|\d)L$/.exec(part);
    if (m) return { kind: "lastDayOfWeek", day: value(field, m[1]!) };
    m = /^([A-Za-z]{3}|\d)#(\d)$/.exec(part);
    if (m) {
      const nth = Number(m[2]);
      if (nth < 1 || nth > 5) throw new FieldError(`"${part}": the week number after # must be 1-5`);
      return { kind: "nthDayOfWeek", day: value(field, m[1]!), nth };
    }
  }
  // L, W and # as operators, not as letters of a name (4-JUL and 2-WED are ranges like 4-AUG and 2-THU)
  if (/[LW#]/i.test(part.replace(/[A-Za-z]{3}/g, ""))) {
    throw new FieldError(`"${part}" uses L, W or # where ${describe(field)} does not allow it`);
  }
  const [rangeRaw, stepRaw, extra] = part.split("/");
  if (extra !== undefined) throw new FieldError(`"${part}" has more than one "/"`);
  let step = 1;
  if (stepRaw !== undefined) {
    if (!/^\d+$/.test(stepRaw) || Number(stepRaw) < 1) throw new FieldError(`"${part}": the increment after "/" must be a positive whole number`);
    step = Number(stepRaw);
  }
  if (rangeRaw === "*") return { kind: "range", from: lo, to: hi, step };
  if (rangeRaw === undefined || rangeRaw === "") throw new FieldError(`"${part}" is empty before "/"`);
  const dash = rangeRaw.split("-");
  if (dash.length === 1) {
    const from = value(field, dash[0]!);
    // "5/10" means from 5, every 10, up to the end of the field
    return { kind: "range", from, to: stepRaw !== undefined ? hi : from, step };
  }
  if (dash.length === 2) {
    const from = value(field, dash[0]!);
    const to = value(field, dash[1]!);
    // EventBridge allows wrap-around ranges such as FRI-MON or 22-2; kept as from > to for the evaluator.
    return { kind: "range", from, to, step };
  }
  throw new FieldError(`"${part}" is not a valid ${describe(field)} range`);
}

function parseCron(body: string, expression: string): ScheduleParse {
  const raw = body.trim().split(/\s+/);
  if (raw.length !== 6) {
    return {
      ok: false,
      error: `cron expressions have 6 fields (minutes hours day-of-month month day-of-week year), "${expression}" has ${raw.length}`,
    };
  }
  const fields = {} as Record<CronFieldName, CronPart[]>;
  for (let i = 0; i < ORDER.length; i++) {
    const name = ORDER[i]!;
    const text = raw[i]!;
    try {
      const parts = text.split(",").map((p) => {
        if (p === "") throw new FieldError(`empty item in "${text}"`);
        return parsePart(name, p);
      });
      if (parts.length > 1 && parts.some((p) => p.kind === "none" || p.kind === "any")) {
        throw new FieldError(`"*" and "?" cannot be combined with other values in "${text}"`);
      }
      if (parts.length > 1 && parts.some((p) => p.kind !== "range")) {
        throw new FieldError(`L, W and # cannot be combined with other values in "${text}"`);
      }
      fields[name] = parts;
    } catch (e) {
      if (e instanceof FieldError) return { ok: false, error: `${describe(name)} field: ${e.message}` };
      throw e;
    }
  }
  const domNone = fields.dayOfMonth[0]!.kind === "none";
  const dowNone = fields.dayOfWeek[0]!.kind === "none";
  if (domNone === dowNone) {
    return {
      ok: false,
      error: `exactly one of day-of-month and day-of-week must be "?" (for example cron(0 2 * * ? *) or cron(0 2 ? * MON-FRI *))`,
    };
  }
  return { ok: true, schedule: { type: "cron", expression, fields } };
}

function parseRate(body: string, expression: string): ScheduleParse {
  const m = /^\s*(\d+)\s+([a-z]+)\s*$/.exec(body);
  if (!m) return { ok: false, error: `rate expressions look like rate(1 day) or rate(15 minutes), not "${expression}"` };
  const n = Number(m[1]);
  const unit = m[2]!;
  if (n < 1) return { ok: false, error: `the rate value must be a positive whole number, not ${m[1]}` };
  const singular = ["minute", "hour", "day"];
  const plural = ["minutes", "hours", "days"];
  const idx = n === 1 ? singular.indexOf(unit) : plural.indexOf(unit);
  if (idx < 0) {
    const expected = n === 1 ? singular : plural;
    return { ok: false, error: `rate(${n} ${unit}): the unit must be one of ${expected.join(", ")} (singular for 1, plural otherwise)` };
  }
  const units = ["minutes", "hours", "days"] as const;
  const ms = [60_000, 3_600_000, 86_400_000][idx]!;
  return { ok: true, schedule: { type: "rate", expression, value: n, unit: units[idx]!, everyMs: n * ms } };
}

export function parseSchedule(expression: string): ScheduleParse {
  const text = expression.trim();
  let m = /^cron\((.*)\)$/s.exec(text);
  if (m) return parseCron(m[1]!, text);
  m = /^rate\((.*)\)$/s.exec(text);
  if (m) return parseRate(m[1]!, text);
  return { ok: false, error: `"${expression}" is neither cron(...) nor rate(...); for example cron(0 2 * * ? *) or rate(1 day)` };
}

export function isValidTimeZone(tz: string): boolean {
  try {
    new Intl.DateTimeFormat("en-US", { timeZone: tz });
    return true;
  } catch {
    return false;
  }
}
