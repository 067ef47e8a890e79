import { awsSchema, type CopyConfig, fargateCpuUnits, fargateMemoryMiB, type AwsConfig, type LifeboatConfig, type Outcome, type RetentionPolicy, type SecretRef } from "./config.js";
import { ConfigError, type ConfigProblem } from "./errors.js";
import { joinKey, targetPrefix } from "./naming.js";
import { parseSchedule } from "./schedule.js";
import { nextRun } from "./schedule-eval.js";

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
  /** Every SSM parameter the runner may read (database passwords and URLs; the age identity of targets that drill encrypted backups). */
  runnerParameters: string[];
  /** Some target schedules restore drills: the runner must read dumps, not only manifests. */
  drills: boolean;
  /** The stack's region: storage.s3.region when set (the bucket, the runner and the config agree), else the default. */
  region?: string;
  /** RDS instances the runner and the launcher may describe (and nothing else). */
  rdsInstances: Array<{ instance: string; region?: string }>;
  /** Ingress rules from the runner's security groups into the databases' security groups. */
  databaseIngress: Array<{ securityGroup: string; port: number }>;
  /**
   * Targets whose retention keeps counts (keepLast, daily, weekly, monthly), which lifecycle rules cannot express:
   * the runner prunes each after its successful backups, and may delete only under that target's prefix.
   */
  prunedByRunner: Array<{ target: string; prefix: string }>;
  slack?: { webhookParameter: string; on: Outcome[]; filterPolicy: NotificationFilter };
  webhook?: { urlParameter: string; on: Outcome[]; filterPolicy: NotificationFilter };
  email: Array<{ address: string; filterPolicy: NotificationFilter }>;
  /** What each target's runner role may reach: its keys, its secrets, its RDS instance. */
  runnerTargets: Array<{
    target: string;
    prefix: string;
    parameters: string[];
    secrets: string[];
    rds?: { instance: string; region?: string };
    /** IAM database authentication: rds-db:connect as this user of this instance. */
    iamAuth?: { instance: string; user: string };
    drills: boolean;
    pruned: boolean;
    /**
     * Its copies in AWS S3 buckets (named without credentials of their own), which its role writes to: under the
     * target's keys of the copy's prefix; deleting there only if the runner prunes that copy (its retention, else the
     * target's; not "store"). A bucket of another account must allow the role too (its bucket policy). Copies with
     * credentials of their own (another provider) need only their SSM parameters, which are in `parameters`.
     */
    copyBuckets: Array<{ copy: string; bucket: string; prefix: string; region?: string; pruned: boolean; objectLock: boolean }>;
    /** It has copies: a copy that failed in the run is copied again from the primary, which reads the dumps. */
    copies: boolean;
  }>;
  /** The largest task a launch may ask for (the runner's size and every target's own): RunTask is allowed no more. */
  runTaskLimits: { cpuUnits: number; memoryMiB: number };
  /** Things the deployment leaves out, said aloud at deploy time. */
  warnings: string[];
}

/**
 * A subscription filter on the message body (scope MessageBody): Lifeboat's events by their `status`, and CloudWatch
 * alarm notifications (which carry no message attributes) by their state, ALARM counting as failed and OK as
 * succeeded.
 */
export type NotificationFilter = { $or: Array<{ status: Outcome[] } | { NewStateValue: string[] }> };

export function notificationFilter(on: readonly Outcome[]): NotificationFilter {
  const states = [...(on.includes("failed") ? ["ALARM"] : []), ...(on.includes("succeeded") ? ["OK"] : [])];
  return { $or: [{ status: [...on] }, { NewStateValue: states }] };
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

const PRIVATE_SUFFIXES = [".internal", ".local", ".localdomain", ".lan", ".intranet", ".corp", ".home", ".private", ".home.arpa", ".rds.amazonaws.com"];

/**
 * Whether a host can only be reached inside a private network: private, loopback and link-local addresses, names
 * without a dot, private DNS suffixes, and RDS endpoints (private unless made publicly accessible). A runner in
 * Lifeboat's own VPC cannot reach these.
 */
export function isPrivateHost(host: string): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "");
  const v4 = /^(\d{1,3})\.(\d{1,3})\.\d{1,3}\.\d{1,3}$/.exec(h);
  if (v4) {
    const [a, b] = [Number(v4[1]), Number(v4[2])];
    return a === 10 || a === 127 || (a === 172 && b >= 16 && b <= 31) || (a === 192 && b === 168) || (a === 169 && b === 254) || (a === 100 && b >= 64 && b <= 127);
  }
  if (h.includes(":")) return h === "::1" || /^f[cd]/.test(h) || /^fe[89ab]/.test(h);
  return !h.includes(".") || PRIVATE_SUFFIXES.some((s) => h.endsWith(s));
}

const COUNT_RULES = ["keepLast", "daily", "weekly", "monthly"] as const;

/**
 * Whether a retention policy keeps counts (keepLast, daily, weekly, monthly), which S3 lifecycle rules cannot
 * express: in the AWS deployment the runner prunes such a target after each successful backup.
 */
export function prunedByRunner(retention: RetentionPolicy | undefined): boolean {
  return retention !== undefined && COUNT_RULES.some((k) => retention[k] !== undefined);
}

/**
 * The sslmode a host or URL target sets itself (database.sslmode, then ?sslmode= in an inline URL); undefined when it
 * sets none, and the deployed runner uses "require". A URL read from SSM counts as not setting one.
 */
export function ownSslmode(db: LifeboatConfig["targets"][string]["database"]): string | undefined {
  return db.sslmode ?? (typeof db.url === "string" ? (new URL(db.url).searchParams.get("sslmode") ?? undefined) : undefined);
}

/**
 * How many days a retention policy can keep a backup: days, or the span its counts cover (daily N: N days, weekly N:
 * 7N, monthly N: 31N, keepLast N: N times the schedule's longest gap between two fire times over the next 40, at
 * least a day); undefined when backups are kept forever.
 */
export function retentionSpanDays(r: RetentionPolicy | undefined, schedule?: string, timeZone = "UTC"): number | undefined {
  if (!r) return undefined;
  const spans = [r.days, r.daily, r.weekly && 7 * r.weekly, r.monthly && 31 * r.monthly, r.keepLast && r.keepLast * scheduleGapDays(schedule, timeZone)];
  const known = spans.filter((d): d is number => typeof d === "number" && d > 0);
  return known.length ? Math.max(...known) : undefined;
}

function scheduleGapDays(expression: string | undefined, timeZone: string): number {
  const parsed = expression ? parseSchedule(expression) : undefined;
  if (!parsed?.ok) return 1;
  let longest = 0;
  let at = new Date(Date.UTC(2026, 0, 1));
  for (let i = 0; i < 40; i++) {
    const next = nextRun(parsed.schedule, timeZone, at, at);
    if (!next) break;
    longest = Math.max(longest, next.getTime() - at.getTime());
    at = next;
  }
  return Math.max(1, Math.ceil(longest / 86_400_000));
}

/** A target's copies (its own, else storage.copies), as the runner opens them. */
function copiesFor(config: LifeboatConfig, t: LifeboatConfig["targets"][string]): CopyConfig[] {
  return t.copies ?? config.storage.copies ?? [];
}

/** Where a target's i-th copy is written in the config: its own copies, else storage.copies. */
function copyPath(name: string, t: LifeboatConfig["targets"][string], i: number): string {
  return t.copies ? `targets.${name}.copies[${i}]` : `storage.copies[${i}]`;
}

/**
 * `appVpc`: the runner runs in a VPC of the SST app the component is in (its `vpc`), whose ids are known only at
 * deploy time; private databases there are reachable as with aws.vpc.
 */
export function deployPlan(config: LifeboatConfig, stage: string, source = "lifeboat.config.ts", opts: { appVpc?: boolean } = {}): DeployPlan {
  const problems: ConfigProblem[] = [];
  if (!config.storage.s3) {
    problems.push({ path: "storage", message: "the AWS deployment stores backups in S3", hint: 'use storage: { s3: { bucket: "a-globally-unique-name", prefix: "lifeboat" } }' });
  }
  const provider = config.storage.s3?.provider;
  if (provider && provider !== "aws") {
    problems.push({ path: "storage.s3.provider", message: `is ${provider}: the AWS deployment makes its bucket in AWS S3`, hint: 'remove provider (or use "aws"); another provider\'s store is for `lifeboat run --to` and one server' });
  }
  const targetParameters = new Map<string, Set<string>>();
  const targetSecrets = new Map<string, Set<string>>();
  const warnings: string[] = [];
  const schedules: SchedulePlan[] = [];
  const components = new Map<string, string>();
  for (const [name, t] of Object.entries(config.targets)) {
    // a SQLite file lives on its own machine: `lifeboat schedule` runs it there, the AWS deployment leaves it out
    if (t.refresh) warnings.push(`targets.${name}.refresh: the AWS deployment does not run refreshes: run \`lifeboat refresh ${name}\` from a machine that reaches both databases (cron, a systemd timer)`);
    if (t.engine === "sqlite") {
      warnings.push(`targets.${name} is a SQLite file: the AWS deployment leaves it out; run \`lifeboat schedule\` on the machine that holds it`);
      continue;
    }
    const refs: Array<[string, SecretRef | undefined]> = [
      ["database.password", t.database.password],
      ["database.url", typeof t.database.url === "object" ? t.database.url : undefined],
    ];
    // an encrypted target's scheduled drills decrypt with the identity, which the runner reads (in drill mode only)
    if (t.verify?.schedule && t.encryption) {
      if (!t.encryption.identity) {
        problems.push({ path: `targets.${name}.encryption.identity`, message: "is required: this target's backups are encrypted and it schedules restore drills, which decrypt them", hint: `store the identity in SSM (aws ssm put-parameter --type SecureString --name /lifeboat/${name}/age-identity --value file://identity.txt) and use { ssm: "/lifeboat/${name}/age-identity" }` });
      } else refs.push(["encryption.identity", t.encryption.identity]);
    }
    const own = new Set<string>();
    targetParameters.set(name, own);
    const secrets = new Set<string>();
    targetSecrets.set(name, secrets);
    // copies with credentials of their own read them from SSM (or Secrets Manager), as the database's
    for (const [i, c] of copiesFor(config, t).entries()) {
      if (c.s3?.credentials) refs.push([`${copyPath(name, t, i)}.s3.credentials.accessKeyId`, c.s3.credentials.accessKeyId], [`${copyPath(name, t, i)}.s3.credentials.secretAccessKey`, c.s3.credentials.secretAccessKey]);
    }
    for (const [path, ref] of refs) {
      if (ref?.ssm) own.add(ref.ssm);
      if (ref?.secretsManager) secrets.add(ref.secretsManager);
      if (ref?.env) {
        const where = path.startsWith("storage.") || path.startsWith("targets.") ? path : `targets.${name}.${path}`;
        problems.push({ path: where, message: `reads the environment variable ${ref.env}, which a Fargate task does not have`, hint: `store it in SSM: aws ssm put-parameter --type SecureString --name /lifeboat/${name}/... and use { ssm: "/lifeboat/${name}/..." }` });
      }
    }
    const urlHost = typeof t.database.url === "string" ? new URL(t.database.url).hostname : undefined;
    if (!t.database.rds) {
      const set = ownSslmode(t.database);
      const tls = set ?? "require";
      if (tls === "require") {
        const why = set ? "" : typeof t.database.url === "object" ? " (the runner's default unless the URL in SSM sets its own)" : " (the runner's default)";
        warnings.push(`targets.${name} connects with sslmode=require${why}: encrypted, but the server's certificate is not checked; to check it set database.sslmode: "verify-full" and database.sslrootcert: "system" (a certificate from a public CA; libpq 16+, as in the runner image) or the path of the CA file`);
      } else if (tls === "disable" || tls === "allow" || tls === "prefer") {
        warnings.push(`targets.${name} connects with sslmode=${tls}: the connection may be unencrypted, password and data readable on the network; remove sslmode (the runner then requires TLS) or set "verify-full"`);
      }
    }
    if (urlHost !== undefined && /^(localhost|127\.|\[?::1)/.test(urlHost)) {
      problems.push({ path: `targets.${name}.database.url`, message: "points at localhost, which a Fargate task cannot reach" });
    } else if (!config.aws?.vpc && !opts.appVpc) {
      // Lifeboat's own VPC has public subnets only: it reaches databases on the internet, nothing private
      const where = t.database.rds
        ? { path: "database.rds", what: `RDS instance "${t.database.rds.instance}" is reachable only from inside its VPC` }
        : t.database.host !== undefined && isPrivateHost(t.database.host)
          ? { path: "database.host", what: `${t.database.host} is a private address` }
          : urlHost !== undefined && isPrivateHost(urlHost)
            ? { path: "database.url", what: `${urlHost} is a private address` }
            : undefined;
      if (where) {
        problems.push({
          path: `targets.${name}.${where.path}`,
          message: `${where.what}, and without aws.vpc the runner runs in a new VPC of its own that cannot reach it`,
          hint: 'set aws.vpc: { id: "vpc-...", containerSubnets: ["subnet-..."], databaseSecurityGroups: ["sg-..."] } to the database\'s VPC (docs/deploy.md, "Network")',
        });
      }
      if (typeof t.database.url === "object") {
        warnings.push(`targets.${name}.database.url is read from SSM at run time, so its host cannot be checked now: without aws.vpc the runner reaches only databases on the internet`);
      }
    }
    if (prunedByRunner(t.retention) && config.aws?.bucket.objectLock) {
      problems.push({
        path: `targets.${name}.retention`,
        message: "keepLast, daily, weekly and monthly need the runner to delete old backups, which Object Lock forbids",
        hint: "use retention: { days: N } with Object Lock, or remove aws.bucket.objectLock",
      });
    }
    if (t.verify?.schedule) {
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
  if (slackRef && !slackRef.ssm) {
    problems.push({ path: "notifications.slack.webhook", message: `reads ${slackRef.env ? `the environment variable ${slackRef.env}` : "Secrets Manager"}; the Slack Lambda reads SSM`, hint: 'use { ssm: "/lifeboat/slack-webhook-url" }' });
  }
  const webhookRef = config.notifications.webhook?.url;
  if (webhookRef && !webhookRef.ssm) {
    problems.push({ path: "notifications.webhook.url", message: `reads ${webhookRef.env ? `the environment variable ${webhookRef.env}` : "Secrets Manager"}; the webhook Lambda reads SSM`, hint: 'use { ssm: "/lifeboat/webhook-url" }' });
  }
  // the heartbeat is pinged by the runner itself, as each run starts and ends
  const heartbeatRef = config.notifications.heartbeat?.url;
  if (heartbeatRef?.env) {
    problems.push({ path: "notifications.heartbeat.url", message: `reads the environment variable ${heartbeatRef.env}, which a Fargate task does not have`, hint: 'use { ssm: "/lifeboat/heartbeat-url" }' });
  }
  for (const [name, t] of Object.entries(config.targets)) {
    if (t.database.iamAuth && !t.database.rds) {
      problems.push({ path: `targets.${name}.database.iamAuth`, message: "needs rds: { instance } in the AWS deployment: rds-db:connect is granted on the instance's resource id, which a host does not name", hint: 'use database: { rds: { instance: "..." }, database, user, iamAuth: true } (or, in an SST app, the database component itself)' });
    }
    const other = t.database.rds?.region;
    if (t.database.iamAuth && other && other !== config.storage.s3?.region) {
      problems.push({ path: `targets.${name}.database.rds.region`, message: `IAM authentication to an instance in another region (${other}) than the stack's is not supported yet (its resource id is looked up in the stack's region)`, hint: "deploy a stack in that region for this target, or use a password: { ssm } or { secretsManager }" });
    }
  }
  const primaryBucket = config.storage.s3 ? bucketNameFor(config.storage.s3.bucket, stage) : undefined;
  for (const [name, t] of Object.entries(config.targets)) {
    if (t.engine === "sqlite") continue;
    for (const [i, c] of copiesFor(config, t).entries()) {
      const path = copyPath(name, t, i);
      if (c.directory !== undefined) {
        problems.push({ path: `${path}.directory`, message: `copy "${c.name}" is a directory: a Fargate task's disk is gone when the task ends`, hint: "give the deployment an S3 copy (a bucket in another account or region, or another provider's with credentials in SSM); a directory copy is for `lifeboat schedule` on a server" });
      } else if (c.s3 && !c.s3.credentials && (c.s3.endpoint !== undefined || (c.s3.provider !== undefined && c.s3.provider !== "aws"))) {
        problems.push({ path: `${path}.s3.credentials`, message: `copy "${c.name}" is at another provider (${c.s3.endpoint ?? c.s3.provider}), whose keys the runner's role is not`, hint: 'add credentials: { accessKeyId: { ssm: "/lifeboat/offsite/key-id" }, secretAccessKey: { ssm: "/lifeboat/offsite/secret" } }' });
      } else if (c.s3 && !c.s3.credentials && c.s3.bucket === primaryBucket) {
        problems.push({ path: `${path}.s3.bucket`, message: `copy "${c.name}" is the deployment's own bucket (${c.s3.bucket}): one failure domain`, hint: "a copy is another bucket: in another account or region" });
      }
    }
  }
  // storage.copies is every target's: its problems are told once
  const told = new Set<string>();
  const unique = problems.filter((p) => !told.has(`${p.path}\0${p.message}`) && told.add(`${p.path}\0${p.message}`));
  if (unique.length) throw new ConfigError(source, unique, "cannot be deployed");

  const aws = config.aws ?? awsSchema.parse({});
  const s3 = config.storage.s3!;
  const prefix = s3.prefix;
  const lifecycle: LifecycleRulePlan[] = [
    {
      id: "abort-incomplete-multipart-uploads",
      prefix: prefix ? `${prefix}/` : "",
      abortIncompleteMultipartUploadDays: 1,
      ...(aws.bucket.transition ? { transition: aws.bucket.transition } : {}),
    },
  ];
  const rdsInstances = new Map<string, { instance: string; region?: string }>();
  const ports = new Set<number>();
  for (const [name, t] of Object.entries(config.targets)) {
    if (t.engine === "sqlite") continue;
    const targetKeys = joinKey(prefix, targetPrefix(name)) + "/";
    // a deleted or replaced version (a prune, a runner gone wrong) stays recoverable at least as long as the target
    // keeps its backups; a target that keeps them forever keeps its old versions too
    const span = retentionSpanDays(t.retention, t.schedule, t.timezone);
    const noncurrent = span === undefined ? {} : { noncurrentVersionDays: Math.max(aws.bucket.noncurrentVersionDays, span) };
    // counts (keepLast, daily, weekly, monthly) have no lifecycle equivalent, and an age rule would delete what they
    // keep: the runner applies the whole policy after each successful backup (runnerTargets: pruned). An age alone is
    // a lifecycle rule.
    const expiration = !prunedByRunner(t.retention) && t.retention?.days ? { expirationDays: t.retention.days } : {};
    if (span !== undefined) lifecycle.push({ id: `retention-${name}`, prefix: targetKeys, ...expiration, ...noncurrent });
    const rds = t.database.rds;
    if (rds) rdsInstances.set(`${rds.region ?? ""}/${rds.instance}`, { instance: rds.instance, ...(rds.region ? { region: rds.region } : {}) });
    const url = typeof t.database.url === "string" ? new URL(t.database.url) : undefined;
    ports.add(t.database.port ?? (url?.port ? Number(url.port) : 5432));
  }
  const databaseIngress = (aws.vpc?.databaseSecurityGroups ?? []).flatMap((g) =>
    typeof g === "string" ? [...ports].sort((a, b) => a - b).map((port) => ({ securityGroup: g, port })) : [{ securityGroup: g.id, port: g.port }],
  );
  const runnerTargets: DeployPlan["runnerTargets"] = Object.entries(config.targets)
    .filter(([, t]) => t.engine !== "sqlite")
    .map(([name, t]) => ({
      target: name,
      prefix: joinKey(prefix, targetPrefix(name)) + "/",
      // its own secrets, and the heartbeat's URL, which every run pings
      parameters: [...(targetParameters.get(name) ?? []), ...(heartbeatRef?.ssm ? [heartbeatRef.ssm] : [])].sort(),
      secrets: [...(targetSecrets.get(name) ?? []), ...(heartbeatRef?.secretsManager ? [heartbeatRef.secretsManager] : [])].sort(),
      ...(t.database.rds ? { rds: { instance: t.database.rds.instance, ...(t.database.rds.region ? { region: t.database.rds.region } : {}) } } : {}),
      ...(t.database.iamAuth && t.database.rds ? { iamAuth: { instance: t.database.rds.instance, user: t.database.user! } } : {}),
      drills: Boolean(t.verify?.schedule),
      pruned: prunedByRunner(t.retention),
      copies: copiesFor(config, t).length > 0,
      // the runner's own role writes to AWS copies without credentials; Lifeboat makes no lifecycle rule in a bucket
      // it does not own, so the runner prunes any copy with a retention (its own, else the target's), not "store"
      copyBuckets: copiesFor(config, t)
        .filter((c) => c.s3 && !c.s3.credentials)
        .map((c) => ({
          copy: c.name,
          bucket: c.s3!.bucket,
          prefix: joinKey(c.s3!.prefix, targetPrefix(name)) + "/",
          ...(c.s3!.region ? { region: c.s3!.region } : {}),
          pruned: c.retention !== "store" && (c.retention ?? t.retention) !== undefined,
          // its objects are written with an Object Lock retention (s3:PutObjectRetention)
          objectLock: c.objectLock !== undefined,
        })),
    }));
  const plan: DeployPlan = {
    stage,
    bucketName: bucketNameFor(s3.bucket, stage),
    prefix,
    aws,
    schedules,
    lifecycle,
    runnerParameters: [...new Set([...runnerTargets.flatMap((t) => t.parameters), ...(heartbeatRef?.ssm ? [heartbeatRef.ssm] : [])])].sort(),
    drills: Object.values(config.targets).some((t) => t.verify?.schedule),
    ...(s3.region ? { region: s3.region } : {}),
    rdsInstances: [...rdsInstances.values()],
    databaseIngress,
    prunedByRunner: runnerTargets.filter((t) => t.pruned).map(({ target, prefix }) => ({ target, prefix })),
    runnerTargets,
    runTaskLimits: {
      cpuUnits: Math.max(fargateCpuUnits(aws.runner.cpu), ...Object.values(config.targets).map((t) => (t.aws?.cpu ? fargateCpuUnits(t.aws.cpu) : 0))),
      memoryMiB: Math.max(fargateMemoryMiB(aws.runner.memory), ...Object.values(config.targets).map((t) => (t.aws?.memory ? fargateMemoryMiB(t.aws.memory) : 0))),
    },
    email: aws.email.map((e) => ({ address: e.address, filterPolicy: notificationFilter(e.on) })),
    warnings,
  };
  for (const t of runnerTargets) {
    for (const c of t.copyBuckets) {
      plan.warnings.push(
        `targets.${t.target}: copy "${c.copy}" writes to s3://${c.bucket}/${c.prefix}* as this target's runner role (its ARN: the stack's output runnerRoles): in another account, its bucket policy must allow that role too (docs/deploy.md, "Copies")${c.region ? "" : `; no region given: the bucket is expected in the stack's region (${plan.region ?? "the default"})`}`,
      );
    }
  }
  if (aws.vpc) {
    // routes cannot be read at deploy time from the config alone: said aloud, with what the runner needs
    const services = ["ECR (ecr.api, ecr.dkr: the image)", "S3", "CloudWatch Logs", "SSM", "SNS", ...(rdsInstances.size ? ["RDS (the instance lookup)"] : []), ...(config.notifications.heartbeat ? ["the heartbeat's URL"] : [])];
    plan.warnings.push(
      aws.vpc.publicIp
        ? `aws.vpc.publicIp: the runner's subnets (${aws.vpc.containerSubnets.join(", ")}) must route 0.0.0.0/0 to an internet gateway; Lifeboat cannot check this: without it every run fails to pull its image`
        : `aws.vpc: the runner's subnets (${aws.vpc.containerSubnets.join(", ")}) need a route to ${services.join(", ")}: a NAT gateway, or VPC endpoints (an S3 gateway endpoint is free; interface endpoints cost about $7.30 a month each per AZ); Lifeboat cannot check this, and without it every run fails to pull its image (docs/deploy.md, "Network")`,
    );
  }
  if ((slackRef?.ssm || webhookRef?.ssm) && plan.email.length === 0) {
    plan.warnings.push(
      "no aws.email: if the Slack or webhook subscriber fails (a missing parameter, the service down), its alarm goes to the same topic and may reach nobody; add aws.email: [{ address: \"oncall@example.com\" }] (alerts about failing notifications are e-mailed with no Lambda in between)",
    );
  }
  if (slackRef?.ssm) plan.slack = { webhookParameter: slackRef.ssm, on: config.notifications.slack!.on, filterPolicy: notificationFilter(config.notifications.slack!.on) };
  if (webhookRef?.ssm) plan.webhook = { urlParameter: webhookRef.ssm, on: config.notifications.webhook!.on, filterPolicy: notificationFilter(config.notifications.webhook!.on) };
  return plan;
}
