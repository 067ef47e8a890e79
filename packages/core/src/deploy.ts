import { awsSchema, type AwsConfig, type LifeboatConfig, type Outcome } from "./config.js";
import { ConfigError, type ConfigProblem } from "./errors.js";
import { joinKey, targetPrefix } from "./naming.js";

/**
 * What the AWS deployment creates, derived from the config alone. infra/*.ts maps this plan onto SST components; the
 * plan is where the decisions live, so it can be tested without Pulumi. `deployPlan` also checks what only matters
 * in the cloud (an S3 store; secrets in SSM, since a Fargate task has no access to your shell's environment).
 */
export interface SchedulePlan {
  target: string;
  /** SST component name: PascalCase, unique. */
  component: string;
  expression: string;
  timezone: string;
  /** The launcher's input. EventBridge Scheduler replaces <aws.scheduler.scheduled-time> on each run. */
  event: { source: "lifeboat.schedule"; target: string; scheduledTime: string; mode?: "verify" };
}

export interface LifecycleRulePlan {
  id: string;
  prefix: string;
  expirationDays?: number;
  transition?: { days: number; storageClass: string };
  noncurrentVersionDays?: number;
  abortIncompleteMultipartUploadDays?: number;
}

export interface DeployPlan {
  stage: string;
  bucketName: string;
  prefix: string;
  aws: AwsConfig;
  schedules: SchedulePlan[];
  lifecycle: LifecycleRulePlan[];
  /** Every SSM parameter the runner may read (database passwords and URLs). */
  runnerParameters: string[];
  /** Some target schedules restore drills: the runner must read dumps, not only manifests. */
  drills: boolean;
  slack?: { webhookParameter: string; on: Outcome[] };
  email: Array<{ address: string; filterPolicy: { status: Outcome[] } }>;
  /** Things the deployment leaves out, said aloud at deploy time. */
  warnings: string[];
}

export function pascal(name: string): string {
  return name
    .split(/[^a-zA-Z0-9]+/)
    .filter(Boolean)
    .map((p) => p[0]!.toUpperCase() + p.slice(1))
    .join("");
}

/** Bucket names are global: the "production" stage uses storage.s3.bucket as is, other stages append the stage. */
export function bucketNameFor(bucket: string, stage: string): string {
  return stage === "production" ? bucket : `${bucket}-${stage}`.slice(0, 63).replace(/-+$/, "");
}

export function deployPlan(config: LifeboatConfig, stage: string, source = "lifeboat.config.ts"): DeployPlan {
  const problems: ConfigProblem[] = [];
  if (!config.storage.s3) {
    problems.push({ path: "storage", message: "the AWS deployment stores backups in S3", hint: 'use storage: { s3: { bucket: "a-globally-unique-name", prefix: "lifeboat" } }' });
  }
  const runnerParameters = new Set<string>();
  const warnings: string[] = [];
  const schedules: SchedulePlan[] = [];
  const components = new Map<string, string>();
  for (const [name, t] of Object.entries(config.targets)) {
    // a SQLite file lives on its own machine: `lifeboat schedule` runs it there, the AWS deployment leaves it out
    if (t.engine === "sqlite") {
      warnings.push(`targets.${name} is a SQLite file: the AWS deployment leaves it out; run \`lifeboat schedule\` on the machine that holds it`);
      continue;
    }
    const refs: Array<[string, { env?: string | undefined; ssm?: string | undefined } | undefined]> = [
      ["database.password", t.database.password],
      ["database.url", typeof t.database.url === "object" ? t.database.url : undefined],
    ];
    for (const [path, ref] of refs) {
      if (ref?.env) {
        problems.push({ path: `targets.${name}.${path}`, message: `reads the environment variable ${ref.env}, which a Fargate task does not have`, hint: `store it in SSM: aws ssm put-parameter --type SecureString --name /lifeboat/${name}/... and use { ssm: "/lifeboat/${name}/..." }` });
      }
      if (ref?.ssm) runnerParameters.add(ref.ssm);
    }
    if (typeof t.database.url === "string" && /^(localhost|127\.|::1)/.test(new URL(t.database.url).hostname)) {
      problems.push({ path: `targets.${name}.database.url`, message: "points at localhost, which a Fargate task cannot reach" });
    }
    if (t.verify) {
      schedules.push({
        target: name,
        component: `Verify${pascal(name)}`,
        expression: t.verify.schedule,
        timezone: t.verify.timezone ?? t.timezone,
        event: { source: "lifeboat.schedule", target: name, scheduledTime: "<aws.scheduler.scheduled-time>", mode: "verify" },
      });
    }
    if (!t.schedule) continue;
    const component = `Schedule${pascal(name)}`;
    const clash = components.get(component);
    if (clash) problems.push({ path: `targets.${name}`, message: `its name makes the same AWS resource name as "${clash}" (${component})`, hint: "rename one of them" });
    components.set(component, name);
    schedules.push({
      target: name,
      component,
      expression: t.schedule,
      timezone: t.timezone,
      event: { source: "lifeboat.schedule", target: name, scheduledTime: "<aws.scheduler.scheduled-time>" },
    });
  }
  const slackRef = config.notifications.slack?.webhook;
  if (slackRef?.env) {
    problems.push({ path: "notifications.slack.webhook", message: `reads the environment variable ${slackRef.env}; the Slack Lambda reads SSM`, hint: 'use { ssm: "/lifeboat/slack-webhook-url" }' });
  }
  if (problems.length) throw new ConfigError(source, problems, "cannot be deployed");

  const aws = config.aws ?? awsSchema.parse({});
  const s3 = config.storage.s3!;
  const prefix = s3.prefix;
  const lifecycle: LifecycleRulePlan[] = [
    {
      id: "abort-incomplete-multipart-uploads",
      prefix: prefix ? `${prefix}/` : "",
      abortIncompleteMultipartUploadDays: 1,
      noncurrentVersionDays: aws.bucket.noncurrentVersionDays,
      ...(aws.bucket.transition ? { transition: aws.bucket.transition } : {}),
    },
  ];
  for (const [name, t] of Object.entries(config.targets)) {
    // GFS counts (keepLast, daily, weekly, monthly) have no lifecycle equivalent: on AWS only `days` applies
    if (t.retention?.days) lifecycle.push({ id: `retention-${name}`, prefix: joinKey(prefix, targetPrefix(name)) + "/", expirationDays: t.retention.days });
  }
  const plan: DeployPlan = {
    stage,
    bucketName: bucketNameFor(s3.bucket, stage),
    prefix,
    aws,
    schedules,
    lifecycle,
    runnerParameters: [...runnerParameters].sort(),
    drills: Object.values(config.targets).some((t) => t.verify),
    email: aws.email.map((e) => ({ address: e.address, filterPolicy: { status: e.on } })),
    warnings,
  };
  if (slackRef?.ssm) plan.slack = { webhookParameter: slackRef.ssm, on: config.notifications.slack!.on };
  return plan;
}
