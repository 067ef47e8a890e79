import type { RetentionPolicy } from "./config.js";

/**
 * Which backups a retention policy keeps. Pure: the same answer for the same history, policy and clock.
 * - days: every backup that started less than N days ago;
 * - keepLast: the N newest;
 * - daily / weekly / monthly (grandfather-father-son): the newest backup of each of the N most recent UTC days,
 *   ISO weeks, months that have a backup;
 * - the newest backup is always kept, whatever the policy says.
 */
export interface RetentionDecision {
  id: string;
  startedAt: string;
  keep: boolean;
  reasons: string[];
}

function isoWeek(d: Date): string {
  const t = new Date(Date.UTC(d.getUTCFullYear(), d.getUTCMonth(), d.getUTCDate()));
  const day = t.getUTCDay() || 7;
  t.setUTCDate(t.getUTCDate() + 4 - day); // the Thursday of this week decides its year
  const yearStart = Date.UTC(t.getUTCFullYear(), 0, 1);
  const week = Math.ceil(((t.getTime() - yearStart) / 86_400_000 + 1) / 7);
  return `${t.getUTCFullYear()}-W${String(week).padStart(2, "0")}`;
}

export function planRetention(backups: Array<{ id: string; startedAt: string }>, policy: RetentionPolicy, now: Date): RetentionDecision[] {
  const sorted = [...backups].sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : b.id.localeCompare(a.id)));
  const decisions = sorted.map((b) => ({ id: b.id, startedAt: b.startedAt, keep: false, reasons: [] as string[] }));
  const keep = (i: number, reason: string) => {
    decisions[i]!.keep = true;
    decisions[i]!.reasons.push(reason);
  };
  if (decisions.length) keep(0, "newest");
  decisions.forEach((d, i) => {
    if (policy.days !== undefined && now.getTime() - Date.parse(d.startedAt) < policy.days * 86_400_000) keep(i, `within ${policy.days} days`);
    if (policy.keepLast !== undefined && i < policy.keepLast) keep(i, `one of the last ${policy.keepLast}`);
  });
  const buckets: Array<[number | undefined, string, (d: Date) => string]> = [
    [policy.daily, "daily", (d) => d.toISOString().slice(0, 10)],
    [policy.weekly, "weekly", isoWeek],
    [policy.monthly, "monthly", (d) => d.toISOString().slice(0, 7)],
  ];
  for (const [count, label, key] of buckets) {
    if (count === undefined) continue;
    const seen = new Set<string>();
    decisions.forEach((d, i) => {
      const k = key(new Date(d.startedAt));
      if (seen.has(k) || seen.size >= count) return;
      seen.add(k);
      keep(i, `${label} ${k}`);
    });
  }
  return decisions;
}
