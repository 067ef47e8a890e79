import { formatBytes, backupSize } from "@lifeboat/core";
import { drillResults, findLeftovers, listBackups } from "@lifeboat/runner";
import type { Context } from "../context.js";

export async function listCommand(ctx: Context, target: string | undefined, opts: { from?: string; all?: boolean }): Promise<number> {
  const store = await ctx.store(opts.from, "--from");
  const backups = await listBackups(store, target, ctx.out);
  const drills = await drillResults(store, target);
  const drillText = (id: string) => drills.get(id)?.outcome ?? "-";
  const rows = backups.map((m) => [m.id, m.target, m.startedAt.replace(/\.\d+Z$/, "Z"), formatBytes(backupSize(m)), m.encryption ? `${m.format}+age` : m.format, drillText(m.id), m.object.sha256]);
  const header = ["ID", "TARGET", "STARTED (UTC)", "SIZE", "FORMAT", "DRILL", "SHA-256"];
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => r[i]!.length)));
  const line = (r: string[]) => r.map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i]!))).join("  ");
  const human = backups.length
    ? [line(header), ...rows.map(line)].join("\n")
    : `no backups in ${store.url}${target ? ` for target "${target}"` : ""}`;
  // --all: also what runs left behind (pending uploads, partial files, dumps without a manifest)
  const leftovers = opts.all ? await findLeftovers(store, target, ctx.out) : undefined;
  const leftoverText = leftovers
    ? leftovers.length
      ? `\n\nleftovers (not backups; \`lifeboat prune\` removes pending uploads and partial files older than a day):\n${leftovers.map((l) => `  ${l.kind.padEnd(21)} ${l.key}${l.startedAt ? `  started ${l.startedAt}` : ""}${l.size !== undefined ? `  ${formatBytes(l.size)}` : ""}`).join("\n")}`
      : "\n\nno leftovers"
    : "";
  ctx.out.result(human + leftoverText, {
    ...(leftovers ? { leftovers } : {}),
    store: store.url,
    backups: backups.map((m) => ({ id: m.id, target: m.target, startedAt: m.startedAt, finishedAt: m.finishedAt, size: backupSize(m), ...(m.parts ? { parts: m.parts.length } : {}), sha256: m.object.sha256, format: m.format, ...(m.encryption ? { encryption: m.encryption } : {}), key: m.object.key, location: store.location(m.object.key), drill: drills.get(m.id) ?? null })),
  });
  return 0;
}
