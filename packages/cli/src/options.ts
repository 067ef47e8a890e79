import { accessSync, constants } from "node:fs";
import { UsageError } from "@lifeboat/core";

/** A whole-number flag within bounds (undefined when not given); anything else is a usage error (exit 2). */
export function wholeNumber(v: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not "${v}"`);
  return n;
}

/**
 * A moment on the command line (--since, --until, --at): an ISO 8601 time or date, or a span back from now (90m, 36h,
 * 30d, 8w, also written "2h ago"). A date alone is midnight UTC; a time without a zone is the machine's local time
 * (JavaScript's Date.parse): the commands print the UTC time they understood.
 */
export function parseWhen(text: string, flag: string, now: Date): Date {
  const span = /^(\d+)\s*(m|min|h|d|w)(?:\s+ago)?$/i.exec(text.trim());
  if (span) return new Date(now.getTime() - Number(span[1]) * { m: 60_000, min: 60_000, h: 3_600_000, d: 86_400_000, w: 604_800_000 }[span[2]!.toLowerCase() as "m" | "min" | "h" | "d" | "w"]);
  const at = Date.parse(text);
  if (/^\d{4}-\d{2}-\d{2}/.test(text.trim()) && !Number.isNaN(at)) return new Date(at);
  throw new UsageError(`${flag} "${text}" is neither a time nor a span of time`, `give a date or time (2026-11-01, 2026-11-01T14:00:00Z) or a span back from now (36h, 30d, 8w, "2h ago")`);
}

/** Every file readable before anything is fetched (--then, refresh.then): else a usage error `<label><file>: ...`. */
export function readableFiles(files: string[], label: string, hint: string): void {
  for (const file of files) {
    try {
      accessSync(file, constants.R_OK);
    } catch {
      throw new UsageError(`${label}${file}: no such readable file`, hint);
    }
  }
}
