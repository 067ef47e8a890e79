// What every part of the component shares: the validated config and its deploy plan, the component's naming, and the
// account's ARNs. Nothing here is imported from .sst/: the platform's globals ($app, $interpolate, aws, sst) are
// the SST app's own.
import { ConfigError, deployPlan, parseConfig, roleScope, type DeployPlan, type LifeboatConfig } from "@lifeboat/core";

/**
 * The sst CLI prints an error whose class is named VisibleError as its message alone, without a stack trace (it
 * matches the printed name, as for its own VisibleError in .sst/platform/src/components/error.ts).
 */
export class VisibleError extends Error {}

/** Validates a config and plans its deployment for this stage; a bad config is every problem, listed. */
export function planDeployment(raw: unknown, source: string, opts: { appVpc?: boolean } = {}): { config: LifeboatConfig; plan: DeployPlan } {
  try {
    const config = parseConfig(raw, source);
    return { config, plan: deployPlan(config, $app.stage, source, opts) };
  } catch (err) {
    if (err instanceof ConfigError) throw new VisibleError(err.message);
    throw err;
  }
}

export interface Context {
  /** The component's name: every child's name starts with it. */
  name: string;
  parent: $util.ComponentResource;
  config: LifeboatConfig;
  plan: DeployPlan;
  /** The runner roles' scope in the account (app and stage). */
  scope: string;
  /** The children of a Lifeboat app deployed before the component keep their state under their old names. */
  adoptTopLevel: boolean;
  region: $util.Output<string>;
  account: $util.Output<string>;
  partition: $util.Output<string>;
  /** How the Lambda functions' code and the runner's image are found (this repository, or the installed package). */
  code: Code;
  /** Edits of a child's args before it is created, by the child's own name (`transform` of the component). */
  transform?: Record<string, ((args: any) => void) | Record<string, unknown> | undefined> | undefined;
}

export interface Code {
  /** A Lambda handler: { handler } (SST builds it) or { bundle, handler } (built already). */
  handler(name: "launcher" | "watcher" | "freshness" | "slack" | "webhook"): { handler: string; bundle?: string };
  /** The runner image, built at deploy time (aws.runner.image names a published one instead). */
  image: { context: string; dockerfile: string; args?: Record<string, string> };
}

export function context(
  name: string,
  parent: $util.ComponentResource,
  config: LifeboatConfig,
  plan: DeployPlan,
  code: Code,
  adoptTopLevel: boolean,
  transform: Context["transform"],
): Context {
  return {
    name,
    transform,
    parent,
    config,
    plan,
    scope: roleScope($app.name, $app.stage),
    adoptTopLevel,
    region: aws.getRegionOutput({}, { parent }).region,
    account: aws.getCallerIdentityOutput({}, { parent }).accountId,
    partition: aws.getPartitionOutput({}, { parent }).partition,
    code,
  };
}

/**
 * Makes a child: `make(sst.aws.Queue, "Launches", args)` is `new sst.aws.Queue("<component>Launches", args, opts)`,
 * the component as its parent, the child's transform from the component's `transform` applied first (SST's style:
 * a function that edits the args, or an object merged into them), and (adoptTopLevel) an alias to its old name.
 */
export function maker(ctx: Context) {
  return <C extends new (name: string, args: any, opts?: any) => any>(Ctor: C, own: string, args: ConstructorParameters<C>[1]): InstanceType<C> => {
    const edit = ctx.transform?.[own];
    if (typeof edit === "function") edit(args);
    else if (edit && typeof edit === "object") Object.assign(args, edit);
    return new Ctor(`${ctx.name}${own}`, args, {
      parent: ctx.parent,
      ...(ctx.adoptTopLevel ? { aliases: [{ name: own, parent: $util.rootStackResource }] } : {}),
    });
  };
}

/** ARN of an SSM parameter of this account and region. */
export function parameterArn(ctx: Context, name: string) {
  return $interpolate`arn:${ctx.partition}:ssm:${ctx.region}:${ctx.account}:parameter${name}`;
}

/** ARN of an RDS instance of this account (in its own region when the target names one). */
export function rdsInstanceArn(ctx: Context, r: { instance: string; region?: string }) {
  return $interpolate`arn:${ctx.partition}:rds:${r.region ?? ctx.region}:${ctx.account}:db:${r.instance}`;
}

/**
 * What every Lifeboat Lambda shares: Node 22 on arm64, and a role that only Lambda may assume. SST's default role
 * also trusts the account root while `sst dev` runs; these functions are never run live, so dev is off.
 */
export function lambdaDefaults(ctx: Context, fn: Parameters<Code["handler"]>[0]) {
  return {
    ...ctx.code.handler(fn),
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
}

/**
 * With aws.bucket.kmsKeyArn, S3 encrypts and decrypts every object with that key on the caller's behalf: every role
 * that reads (kms:Decrypt) or writes (kms:GenerateDataKey; kms:Decrypt too for multipart uploads) the bucket needs
 * the key, and only through S3 in this region (kms:ViaService).
 */
export function bucketKeyPermissions(ctx: Context, actions = ["kms:GenerateDataKey", "kms:Decrypt"]) {
  const key = ctx.plan.aws.bucket.kmsKeyArn;
  if (!key) return [];
  return [
    {
      actions,
      resources: [key],
      conditions: [{ test: "StringEquals", variable: "kms:ViaService", values: [$interpolate`s3.${ctx.region}.amazonaws.com`] }],
    },
  ];
}
