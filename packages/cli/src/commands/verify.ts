import { UsageError, formatDuration, backupSize } from "@lifeboat/core";
import { findBackup, verifyBackup, verifyKey } from "@lifeboat/runner";
import { connectionArg, type Context } from "../context.js";
import { wholeNumber } from "../options.js";
import { identitiesFor } from "./keys.js";

export interface VerifyCliOptions {
  database?: string;
  from?: string;
  backup: string;
  scratch?: string;
  jobs?: string;
  identity?: string[];
}

export function jobsOption(v: string | undefined): number | undefined {
  return wholeNumber(v, "--jobs", 1, 64);
}

export async function verifyCommand(ctx: Context, target: string | undefined, opts: VerifyCliOptions): Promise<number> {
  const jobs = jobsOption(opts.jobs);
  const scratch = opts.scratch ? connectionArg(opts.scratch, "--scratch") : undefined;
  const config = (await ctx.config(opts.from !== undefined))?.config;
  if (target && !opts.from && config && !config.targets[target]) {
    throw new UsageError(`unknown target "${target}"`, `known targets: ${Object.keys(config.targets).join(", ")}`);
  }
  const store = await ctx.store(opts.from, "--from");
  // a directory store's files are checked where they lie: nothing is downloaded
  const fetching = store.localPath ? "checking" : "downloading";
  const manifest = await findBackup(store, target, opts.backup, ctx.out, opts.database);
  // ad hoc (--from) drills notify nobody, like ad hoc runs; a config target uses the config's notifications
  const bus = await ctx.bus(opts.from ? undefined : config);
  ctx.out.log("info", `verifying ${manifest.target} backup ${manifest.id}`, { size: backupSize(manifest) });
  const t0 = Date.now();
  const identities = await identitiesFor(ctx, opts.identity, manifest, opts.from !== undefined);
  const signal = ctx.interruptible(`the drill of backup ${manifest.id} (its throwaway PostgreSQL and temporary files)`);
  // the config's data checks of the backup's target (verify.checks); an ad hoc drill (--from) has none
  const checks = opts.from ? undefined : config?.targets[manifest.target]?.verify?.checks;
  const result = await verifyBackup({
    store,
    manifest,
    identities,
    signal,
    checks,
    ...(scratch ? { scratch } : {}),
    ...(jobs ? { jobs } : {}),
    log: ctx.out,
    bus,
    onProgress: (p) => {
      if (p.phase === "download") ctx.out.progress(fetching, p.done, Date.now() - t0, p.total);
      else ctx.out.progressItems("restoring", p.done, p.total, "tables");
    },
  });
  const lines = [
    `restore drill of "${manifest.target}" backup ${manifest.id}: ${result.outcome.toUpperCase()}`,
    ...result.checks.map((c) => `  ${c.ok ? "ok  " : "FAIL"}  ${c.check.padEnd(8)} ${c.detail}`),
    `  took ${formatDuration(result.durationMs)} (restore ${formatDuration(result.restoreMs)}) on ${result.server.where} PostgreSQL ${result.server.version}`,
    `  result stored at ${store.location(verifyKey(manifest, result.verifiedAt))}`,
  ];
  ctx.out.result(lines.join("\n"), result);
  return result.outcome === "passed" ? 0 : 1;
}
