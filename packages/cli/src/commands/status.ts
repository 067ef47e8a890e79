import { UsageError, formatAge, formatBytes, formatDuration } from "@lifeboat/core";
import { targetStatus, type TargetStatus } from "@lifeboat/runner";
import type { Context } from "../context.js";

/**
 * `lifeboat status [target]`: each target's newest backup and its age, its verdict, the latest drill, the next fire
 * time and a small trend. Exit 1 when any target is missed or failing, so that it works as a monitoring check.
 */
export async function statusCommand(ctx: Context, target: string | undefined): Promise<number> {
  const { config } = await ctx.requireConfig("lifeboat status");
  if (target !== undefined && !config.targets[target]) throw new UsageError(`unknown target "${target}"`, `known targets: ${Object.keys(config.targets).join(", ")}`);
  const store = await ctx.store(undefined, "--from");
  const now = new Date();
  const statuses: TargetStatus[] = [];
  for (const name of target ? [target] : Object.keys(config.targets)) statuses.push(await targetStatus(config, store, name, now));
  const bad = statuses.filter((s) => s.verdict === "missed" || s.verdict === "failing");
  const lines = statuses.flatMap((s) => {
    const newest = s.newestBackup ? `newest ${s.newestBackup.id}, ${formatAge(s.newestBackup.ageMs)} old, ${formatBytes(s.newestBackup.size)}` : "no backup yet";
    const out = [`${s.target.padEnd(16)} ${s.verdict.toUpperCase().padEnd(8)} ${newest}`];
    if (s.verdict === "failing" && s.lastRun) out.push(`  last run failed at ${s.lastRun.finishedAt} (${s.lastRun.code}): ${s.lastRun.error?.split("\n")[0] ?? ""}`);
    if (s.missedFireTimes.length) out.push(`  missed: ${s.missedFireTimes.join(", ")}`);
    out.push(`  schedule ${s.schedule ?? "none (manual)"}${s.nextFireTime ? `, next ${s.nextFireTime}` : ""}; drill ${s.latestDrill ? `${s.latestDrill.outcome} ${s.latestDrill.verifiedAt}` : "never"}`);
    if (s.trend.length > 1) out.push(`  trend: ${s.trend.map((b) => `${formatBytes(b.size)}/${formatDuration(b.durationMs)}`).join(" -> ")}`);
    return out;
  });
  ctx.out.result(lines.join("\n"), { store: store.url, targets: statuses, healthy: bad.length === 0 });
  return bad.length ? 1 : 0;
}
