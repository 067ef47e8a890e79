import { UsageError, formatBytes, formatDuration } from "@lifeboat/core";
import { displayUrl, findBackup, parsePostgresUrl, restoreBackup } from "@lifeboat/runner";
import type { Context } from "../context.js";

export interface RestoreCliOptions {
  from?: string;
  backup: string;
  to?: string;
  force?: boolean;
  owner: boolean;
}

export async function restoreCommand(ctx: Context, target: string | undefined, opts: RestoreCliOptions): Promise<number> {
  if (!opts.to) throw new UsageError("lifeboat restore needs --to <postgres-url>: the database to restore into", "create it first: createdb <name>");
  const to = parsePostgresUrl(opts.to);
  if (to.password === undefined && process.env.PGPASSWORD) to.password = process.env.PGPASSWORD;
  if (target && !opts.from) {
    const { config } = await ctx.requireConfig(`lifeboat restore ${target}`);
    if (!config.targets[target]) throw new UsageError(`unknown target "${target}"`, `known targets: ${Object.keys(config.targets).join(", ")}`);
  }
  const store = await ctx.store(opts.from, "--from");
  const manifest = await findBackup(store, target, opts.backup, ctx.out);
  ctx.out.log("info", `restoring ${manifest.target} backup ${manifest.id} into ${displayUrl(to)}`, { size: manifest.object.size });
  const t0 = Date.now();
  const res = await restoreBackup({
    store,
    manifest,
    to,
    force: Boolean(opts.force),
    noOwner: !opts.owner,
    log: ctx.out,
    onProgress: (p) => ctx.out.progress("downloading", p.bytes, Date.now() - t0, p.total),
  });
  ctx.out.result(
    [
      `restored backup ${manifest.id} of "${manifest.target}" into ${displayUrl(to)}`,
      `  sha256    ${manifest.object.sha256} (verified)`,
      `  size      ${formatBytes(res.bytes)}`,
      `  download  ${formatDuration(res.downloadMs)}`,
      `  restore   ${formatDuration(res.restoreMs)}`,
    ].join("\n"),
    { status: "restored", backup: manifest.id, target: manifest.target, to: displayUrl(to), sha256: manifest.object.sha256, downloadMs: res.downloadMs, restoreMs: res.restoreMs },
  );
  return 0;
}
