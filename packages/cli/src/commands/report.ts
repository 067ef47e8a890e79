import { writeFile } from "node:fs/promises";
import { resolve } from "node:path";
import { UsageError } from "@lifeboat/core";
import type { Context } from "../context.js";
import { parseWhen } from "../options.js";

export interface ReportCommandOptions {
  out?: string;
  from?: string;
  since?: string;
  until?: string;
}

/**
 * `lifeboat report --out FILE.html`: the period's evidence (every fire time and its outcome, every drill with its row
 * counts, restore time and checksum, retention, Object Lock, encryption recipients) as one self-contained HTML file.
 */
export async function reportCommand(ctx: Context, target: string | undefined, opts: ReportCommandOptions): Promise<number> {
  if (!opts.out) throw new UsageError("lifeboat report needs --out FILE.html", "for example: lifeboat report --out backup-evidence.html --since 90d");
  const { StoreView } = await import("../dashboard/model.js");
  const { renderReport } = await import("../dashboard/report.js");
  const now = new Date();
  const to = opts.until ? parseWhen(opts.until, "--until", now) : now;
  const from = parseWhen(opts.since ?? "30d", "--since", now);
  if (from >= to) throw new UsageError(`the period is empty: --since ${opts.since ?? "30d"} is not before --until ${opts.until ?? "now"}`);
  const config = (await ctx.config(Boolean(opts.from)))?.config;
  const store = await ctx.store(opts.from, "--from");
  const view = new StoreView(store, config);
  const names = await view.targetNames();
  if (target !== undefined && !names.includes(target)) throw new UsageError(`unknown target "${target}"`, names.length ? `known targets: ${names.join(", ")}` : `${store.url} holds no target`);
  const targets = [];
  for (const name of target ? [target] : names) targets.push(await view.target(name, now, { from, to }));
  const text = await renderReport({ storeUrl: store.url, config, targets, period: { from, to }, generatedAt: now });
  const file = resolve(opts.out);
  await writeFile(file, text);
  const fires = targets.reduce((n, t) => n + t.fires.length, 0);
  const drills = targets.reduce((n, t) => n + [...t.drills.values()].flat().filter((d) => d.verifiedAt >= from.toISOString() && d.verifiedAt <= to.toISOString()).length, 0);
  ctx.out.result(`wrote ${file}: ${targets.length} target${targets.length === 1 ? "" : "s"}, ${fires} fire times or runs, ${drills} drills, ${from.toISOString()} to ${to.toISOString()}`, { file, from: from.toISOString(), to: to.toISOString(), targets: targets.map((t) => t.name), fires, drills });
  return 0;
}
