import { UsageError, retentionSchema, type LifeboatConfig, type RetentionPolicy } from "@lifeboat/core";
import { DefaultSecretResolver, cleanLeftovers, listBackups, openCopiesForRun, pruneCopies, pruneTarget } from "@lifeboat/runner";
import { wholeNumber } from "../options.js";
import type { Context } from "../context.js";

export interface PruneCliOptions {
  from?: string;
  dryRun?: boolean;
  days?: string;
  keepLast?: string;
  daily?: string;
  weekly?: string;
  monthly?: string;
}

/** On AWS the bucket's lifecycle rules own retention; prune must not fight them. */
export function lifecycleManaged(config: LifeboatConfig | undefined, from: string | undefined): boolean {
  return Boolean(config?.aws && config.storage.s3 && !from);
}

/** The targets stored directly in a store (backups found under a deeper prefix belong to that prefix's store). */
function targetsIn(backups: { target: string; object: { key: string } }[]): string[] {
  return [...new Set(backups.filter((m) => m.object.key.startsWith(`${m.target}/`)).map((m) => m.target))].sort();
}

export async function pruneCommand(ctx: Context, target: string | undefined, opts: PruneCliOptions): Promise<number> {
  const config = (await ctx.config(opts.from !== undefined))?.config;
  if (lifecycleManaged(config, opts.from)) {
    ctx.out.result(
      "retention of the deployed bucket is enforced by its S3 lifecycle rules (aws in lifeboat.config.ts): prune does nothing there",
      { status: "skipped", reason: "lifecycle-managed" },
    );
    return 0;
  }
  // the bounds of the config's retention schema: a flag that is not a number in them is refused, never ignored
  const bounds = { days: [1, 36500], keepLast: [1, 10000], daily: [1, 3650], weekly: [1, 520], monthly: [1, 1200] } as const;
  const flagName = (k: string) => `--${k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`)}`;
  const flags = Object.fromEntries(
    (Object.keys(bounds) as Array<keyof typeof bounds>).filter((k) => opts[k] !== undefined).map((k) => [k, wholeNumber(opts[k], flagName(k), bounds[k][0], bounds[k][1])]),
  );
  const store = await ctx.store(opts.from, "--from");
  const signal = ctx.interruptible("pruning (between two backups: none is left half deleted)");
  // the config's targets for its own storage; for a store named with --from, the targets found in that store
  const names = target ? [target] : config && !opts.from ? Object.keys(config.targets) : targetsIn(await listBackups(store));
  const results = [];
  const lines: string[] = [];
  for (const name of names) {
    const fromConfig = config?.targets[name]?.retention;
    const parsed = retentionSchema.safeParse(Object.keys(flags).length ? flags : fromConfig ?? {});
    if (!parsed.success) {
      if (target) throw new UsageError(`no retention policy for "${name}"`, "set retention in lifeboat.config.ts, or pass --days / --keep-last / --daily / --weekly / --monthly");
      lines.push(`${name}: no retention policy, nothing pruned`);
      continue;
    }
    const policy: RetentionPolicy = parsed.data;
    const result = await pruneTarget(store, name, policy, { dryRun: Boolean(opts.dryRun), log: ctx.out, signal });
    results.push(result);
    lines.push(`${name}: ${result.decisions.filter((d) => d.keep).length} kept, ${result.decisions.filter((d) => !d.keep).length} ${opts.dryRun ? "would be deleted" : "deleted"} (${JSON.stringify(policy)})`);
    for (const d of result.decisions) lines.push(`  ${d.keep ? "keep  " : opts.dryRun ? "DELETE?" : "DELETE"} ${d.id}  ${d.startedAt}  ${d.reasons.join(", ")}`);
    // the config's copies of this target (not with --from: that store is pruned alone)
    if (config && !opts.from) {
      const copies = await openCopiesForRun(config.storage, new DefaultSecretResolver(), config.targets[name], ctx.out);
      for (const c of await pruneCopies(copies, name, policy, { dryRun: Boolean(opts.dryRun), log: ctx.out, signal })) {
        if (c.skipped) lines.push(`  copy ${c.copy}: ${c.skipped === "store" ? "left to the store's own retention" : "no retention policy, nothing pruned"}`);
        else lines.push(`  copy ${c.copy}: ${c.result!.decisions.filter((d) => d.keep).length} kept, ${c.result!.decisions.filter((d) => !d.keep).length} ${opts.dryRun ? "would be deleted" : "deleted"}`);
        if (c.result) results.push({ ...c.result, copy: c.copy });
      }
    }
  }
  // leftovers of runs that never finished: pending multipart uploads and .partial files older than a day
  const leftovers = [];
  for (const name of target ? [target] : [undefined]) leftovers.push(...(await cleanLeftovers(store, name, { dryRun: Boolean(opts.dryRun), log: ctx.out })));
  for (const l of leftovers) lines.push(`${opts.dryRun ? "would remove" : "removed"} ${l.kind} ${l.key} (started ${l.startedAt})`);
  ctx.out.result(lines.join("\n") || `no backups in ${store.url}`, { dryRun: Boolean(opts.dryRun), store: store.url, results, leftovers });
  return 0;
}
