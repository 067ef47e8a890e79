import { relative } from "node:path";
import { deployPlan } from "@lifeboat/core";
import type { Context } from "../context.js";

/**
 * `lifeboat check [--cloud] [--stage S]`: validates the config (it loads, every value is valid: every problem listed,
 * exit 2) without running anything; with --cloud also the AWS deployment's rules (what `sst deploy` would refuse, and
 * its warnings), for a stage (default production). No database, store or AWS account is touched.
 */
export async function checkCommand(ctx: Context, opts: { cloud?: boolean; stage?: string }): Promise<number> {
  // a config that does not load or is invalid throws a ConfigError (exit 2, every problem listed)
  const { file, config } = await ctx.requireConfig("lifeboat check");
  const shown = relative(process.cwd(), file) || file;
  const targets = Object.keys(config.targets);
  const lines = [`${shown}: valid: ${targets.length} target${targets.length === 1 ? "" : "s"} (${targets.join(", ")}), storage ${config.storage.s3 ? `s3://${config.storage.s3.bucket}${config.storage.s3.prefix ? `/${config.storage.s3.prefix}` : ""}` : config.storage.directory ? `directory ${config.storage.directory}` : "none"}`];
  let warnings: string[] = [];
  if (opts.cloud) {
    const stage = opts.stage ?? "production";
    // what `sst deploy` would refuse is a ConfigError listing every problem (exit 2)
    const plan = deployPlan(config, stage, shown);
    warnings = plan.warnings;
    lines.push(`AWS deployment (stage ${stage}): deployable: bucket ${plan.bucketName}, ${plan.schedules.length} schedule${plan.schedules.length === 1 ? "" : "s"}, ${plan.runnerTargets.length} runner role${plan.runnerTargets.length === 1 ? "" : "s"}`);
    lines.push(...warnings.map((w) => `  warning: ${w}`));
  }
  ctx.out.result(lines.join("\n"), { file, valid: true, targets, ...(opts.cloud ? { cloud: { stage: opts.stage ?? "production", deployable: true, warnings } } : {}) });
  return 0;
}
