import { UsageError, formatBytes, formatDuration } from "@lifeboat/core";
import { displayUrl, findBackup, parsePostgresUrl, restoreBackup } from "@lifeboat/runner";
import type { Context } from "../context.js";
import { jobsOption } from "./verify.js";

export interface RestoreCliOptions {
  from?: string;
  backup: string;
  to?: string;
  force?: boolean;
  owner: boolean;
  jobs?: string;
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
    ...(jobsOption(opts.jobs) ? { jobs: jobsOption(opts.jobs)! } : {}),
    log: ctx.out,
    onProgress: (p) => {
      if (p.phase === "download") ctx.out.progress("downloading", p.done, Date.now() - t0, p.total);
      else {
        if (p.done === 1) ctx.out.endProgress();
        ctx.out.progressItems("restoring", p.done, p.total, "tables");
      }
    },
  });
  ctx.out.result(
    [
      `restored backup ${manifest.id} of "${manifest.target}" into ${displayUrl(to)}`,
      `  sha256    ${manifest.object.sha256} (verified)`,
      `  size      ${formatBytes(res.bytes)}`,
      `  download  ${formatDuration(res.downloadMs)}`,
      `  restore   ${formatDuration(res.restoreMs)} (${res.singleTransaction ? "one transaction" : `${res.jobs} parallel jobs`})`,
    ].join("\n"),
    { status: "restored", backup: manifest.id, target: manifest.target, to: displayUrl(to), sha256: manifest.object.sha256, downloadMs: res.downloadMs, restoreMs: res.restoreMs, jobs: res.jobs },
  );
  return 0;
}
