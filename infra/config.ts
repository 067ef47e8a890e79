// The deployment is derived from lifeboat.config.ts alone. A bad config stops `sst deploy` here, with Lifeboat's
// own list of problems. Nothing here is imported from .sst/: `sst install` bundles this file before the platform exists.
import { ConfigError, deployPlan, parseConfig } from "@lifeboat/core";
import raw from "../lifeboat.config";

/**
 * The sst CLI prints an error whose class is named VisibleError as its message alone, without a stack trace (it
 * matches the printed name, as for its own VisibleError in .sst/platform/src/components/error.ts).
 */
export class VisibleError extends Error {}

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

export const region = aws.getRegionOutput().region;
export const account = aws.getCallerIdentityOutput().accountId;
export const partition = aws.getPartitionOutput().partition;

/** ARN of an SSM parameter of this account and region. */
export function parameterArn(name: string) {
  return $interpolate`arn:${partition}:ssm:${region}:${account}:parameter${name}`;
}

/** ARN of an RDS instance of this account (in its own region when the target names one). */
export function rdsInstanceArn(r: { instance: string; region?: string }) {
  return $interpolate`arn:${partition}:rds:${r.region ?? region}:${account}:db:${r.instance}`;
}

/**
 * What every Lifeboat Lambda shares: Node 22 on arm64, and a role that only Lambda may assume. SST's default role
 * also trusts the account root while `sst dev` runs; these functions are never run live, so dev is off.
 */
export const lambdaDefaults = {
  runtime: "nodejs22.x" as const,
  architecture: "arm64" as const,
  dev: false as const,
  transform: {
    role: (args: aws.iam.RoleArgs) => {
      args.assumeRolePolicy = JSON.stringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }],
      });
      return undefined;
    },
  },
};

/**
 * With aws.bucket.kmsKeyArn, S3 encrypts and decrypts every object with that key on the caller's behalf: every role
 * that reads (kms:Decrypt) or writes (kms:GenerateDataKey; kms:Decrypt too for multipart uploads) the bucket needs
 * the key, and only through S3 in this region (kms:ViaService).
 */
export function bucketKeyPermissions() {
  const key = plan.aws.bucket.kmsKeyArn;
  if (!key) return [];
  return [
    {
      actions: ["kms:GenerateDataKey", "kms:Decrypt"],
      resources: [key],
      conditions: [{ test: "StringEquals", variable: "kms:ViaService", values: [$interpolate`s3.${region}.amazonaws.com`] }],
    },
  ];
}
