// The deployment is derived from lifeboat.config.ts alone. A bad config stops `sst deploy` here, with Lifeboat's
// own list of problems.
import { ConfigError, deployPlan, parseConfig } from "@lifeboat/core";
import { VisibleError } from "../.sst/platform/src/components/error";
import raw from "../lifeboat.config";

function load() {
  try {
    const config = parseConfig(raw, "lifeboat.config.ts");
    return { config, plan: deployPlan(config, $app.stage) };
  } catch (err) {
    if (err instanceof ConfigError) throw new VisibleError(err.message);
    throw err;
  }
}

export const { config, plan } = load();
for (const warning of plan.warnings) console.warn(`lifeboat: ${warning}`);

/** ARN of an SSM parameter of this account and region. */
export function parameterArn(name: string) {
  const region = aws.getRegionOutput().region;
  const account = aws.getCallerIdentityOutput().accountId;
  const partition = aws.getPartitionOutput().partition;
  return $interpolate`arn:${partition}:ssm:${region}:${account}:parameter${name}`;
}
