import { UsageError } from "@lifeboat/core";

/** A whole-number flag within bounds (undefined when not given); anything else is a usage error (exit 2). */
export function wholeNumber(v: string | undefined, flag: string, min: number, max: number): number | undefined {
  if (v === undefined) return undefined;
  const n = Number(v);
  if (v.trim() === "" || !Number.isInteger(n) || n < min || n > max) throw new UsageError(`${flag} must be a whole number from ${min} to ${max}, not "${v}"`);
  return n;
}
