import { existsSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { runSimulation } from "@cloud-copilot/iam-simulate";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Component, RecordedCall } from "./support/aws-calls.js";
import { SETTINGS, TEST_BUCKET, TOPIC } from "./support/cloud-fixture.js";
import { ACCOUNT, one, ofType, synthesize, unwrap, type Recorded } from "./support/sst-synth.js";

/**
 * What the code calls, the role allows. The cloud components' own tests (test/functions.test.ts: launcher, watcher,
 * Slack subscriber, the runner in container mode against real PostgreSQL and the local S3 server) record every AWS
 * call they make (test/support/aws-calls.ts). This file runs after them (vitest project "iam"), synthesizes the stack
 * from the same config, maps each call to its IAM action, resource ARN and condition keys, and evaluates it with
 * @cloud-copilot/iam-simulate against the inline policies of that component's role.
 */
vi.mock("../lifeboat.config", async () => ({ default: (await import("./support/cloud-fixture.js")).cloudConfig }));

const ROLES: Record<Component, string> = {
  launcher: "LauncherRole",
  watcher: "WatcherRole",
  slack: "EventsSubscriberSlackFunctionRole",
  webhook: "EventsSubscriberWebhookFunctionRole",
  freshness: "FreshnessRole",
  runner: "RunnerTaskRole",
};

let resources: Recorded[];
let region: string;
let close: () => void;
beforeAll(async () => {
  ({ resources, region, close } = await synthesize("production"));
}, 120_000);
// the recordings are this run's: nothing is left behind
afterAll(() => {
  close?.();
  rmSync(process.env.LIFEBOAT_AWS_CALLS!, { recursive: true, force: true });
});

interface IamRequest {
  action: string;
  resource: string;
  context: Record<string, string>;
}

type Policy = { Version: string; Statement: unknown[] };
const rolePolicies = (component: Component): Policy[] =>
  (unwrap(one(resources, "aws:iam/role:Role", ROLES[component]).inputs).inlinePolicies ?? []).map((p: { policy: string }) => JSON.parse(p.policy));

/** The identifiers the tests used, mapped to what the deployed stack gives each component instead. */
function deployed() {
  const fnEnv = unwrap(one(resources, "aws:lambda/function:Function", "LauncherFunction").inputs).environment.variables;
  const taskDef = unwrap(one(resources, "aws:ecs/taskDefinition:TaskDefinition").inputs);
  const containerEnv = Object.fromEntries(JSON.parse(taskDef.containerDefinitions)[0].environment.map((e: { name: string; value: string }) => [e.name, e.value]));
  const swap = new Map<string, string>([
    [TOPIC, fnEnv.LIFEBOAT_TOPIC_ARN],
    [SETTINGS.cluster, fnEnv.LIFEBOAT_CLUSTER],
    [SETTINGS.taskDefinition, fnEnv.LIFEBOAT_TASK_DEFINITION],
    [TEST_BUCKET, containerEnv.LIFEBOAT_BUCKET],
  ]);
  return { swap, taskRoleArn: taskDef.taskRoleArn as string, executionRoleArn: taskDef.executionRoleArn as string };
}

/** The IAM requests one SDK call makes (https://docs.aws.amazon.com/service-authorization/latest/reference/). */
function iamRequests(call: RecordedCall): IamRequest[] {
  const d = deployed();
  const v = (x: unknown) => (typeof x === "string" ? (d.swap.get(x) ?? x) : String(x));
  const i = call.input;
  // a client on the environment's default region is, once deployed, on the stack's region
  const r = call.region || region;
  const object = () => `arn:aws:s3:::${v(i.Bucket)}/${i.Key}`;
  const bucket = () => `arn:aws:s3:::${v(i.Bucket)}`;
  const prefix = { "s3:prefix": String(i.Prefix ?? "") };
  switch (`${call.client}.${call.command}`) {
    case "S3Client.PutObjectCommand":
    case "S3Client.CreateMultipartUploadCommand":
    case "S3Client.UploadPartCommand":
    case "S3Client.CompleteMultipartUploadCommand":
      return [{ action: "s3:PutObject", resource: object(), context: {} }];
    case "S3Client.AbortMultipartUploadCommand":
      return [{ action: "s3:AbortMultipartUpload", resource: object(), context: {} }];
    case "S3Client.GetObjectCommand":
    case "S3Client.HeadObjectCommand":
      return [{ action: "s3:GetObject", resource: object(), context: {} }];
    case "S3Client.DeleteObjectCommand":
      return [{ action: "s3:DeleteObject", resource: object(), context: {} }];
    case "S3Client.ListObjectsV2Command":
      return [{ action: "s3:ListBucket", resource: bucket(), context: prefix }];
    case "S3Client.ListMultipartUploadsCommand":
      return [{ action: "s3:ListBucketMultipartUploads", resource: bucket(), context: prefix }];
    case "SNSClient.PublishCommand":
      return [{ action: "sns:Publish", resource: v(i.TopicArn), context: {} }];
    case "SSMClient.GetParameterCommand":
      return [{ action: "ssm:GetParameter", resource: `arn:aws:ssm:${r}:${ACCOUNT}:parameter${i.Name}`, context: {} }];
    case "RDSClient.DescribeDBInstancesCommand":
      return [{ action: "rds:DescribeDBInstances", resource: `arn:aws:rds:${r}:${ACCOUNT}:db:${i.DBInstanceIdentifier}`, context: {} }];
    case "ECSClient.RunTaskCommand": {
      const cluster = v(i.cluster);
      const passRole = (arn: string) => ({ action: "iam:PassRole", resource: arn, context: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } });
      return [
        { action: "ecs:RunTask", resource: v(i.taskDefinition), context: { "ecs:cluster": cluster } },
        passRole(d.taskRoleArn),
        passRole(d.executionRoleArn),
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
      throw new Error(`${call.component} calls ${call.client}.${call.command}, which test/iam.test.ts cannot map to IAM yet: add it to iamRequests`);
  }
}

async function evaluate(component: Component, request: IamRequest, policies: Policy[]): Promise<string> {
  const res = await runSimulation(
    {
      identityPolicies: policies.map((policy, n) => ({ name: `inline${n}`, policy })),
      serviceControlPolicies: [],
      resourceControlPolicies: [],
      request: {
        principal: `arn:aws:iam::${ACCOUNT}:role/${ROLES[component]}`,
        action: request.action,
        resource: { resource: request.resource, accountId: ACCOUNT },
        contextVariables: request.context,
      },
    },
    {},
  );
  if (res.resultType === "error") return `invalid request: ${JSON.stringify(res.errors)}`;
  return res.overallResult;
}

function recorded(component: Component): RecordedCall[] {
  const file = join(process.env.LIFEBOAT_AWS_CALLS!, `${component}.jsonl`);
  if (!existsSync(file)) return [];
  return readFileSync(file, "utf8").trim().split("\n").filter(Boolean).map((l) => JSON.parse(l) as RecordedCall);
}

/** Every distinct request of a component's recorded calls, with the verdict of its role's policies. */
async function verdicts(component: Component, policies = rolePolicies(component)) {
  const seen = new Map<string, IamRequest>();
  for (const call of recorded(component)) for (const req of iamRequests(call)) seen.set(JSON.stringify(req), req);
  const out: Array<IamRequest & { component: Component; verdict: string }> = [];
  for (const req of seen.values()) out.push({ component, ...req, verdict: await evaluate(component, req, policies) });
  return out;
}

const denials = (v: Awaited<ReturnType<typeof verdicts>>) =>
  v.filter((x) => x.verdict !== "Allowed").map((x) => `${x.component} may not ${x.action} on ${x.resource}${Object.keys(x.context).length ? ` ${JSON.stringify(x.context)}` : ""}: ${x.verdict}`);

describe("every AWS call a deployed component makes is allowed by its synthesized role", () => {
  for (const component of Object.keys(ROLES) as Component[]) {
    it(component, async () => {
      const calls = recorded(component);
      expect(calls.length, `no AWS calls were recorded for the ${component}: run the whole suite (npm test), whose first group records them`).toBeGreaterThan(0);
      const v = await verdicts(component);
      expect(denials(v)).toEqual([]);
      expect(v.length).toBeGreaterThan(0);
    });
  }

  it("the recordings cover what each component does: RDS lookups, runner uploads, reads, prunes and launches", async () => {
    const actions = (c: Component) => new Set((recorded(c).flatMap(iamRequests)).map((r) => r.action));
    expect([...actions("runner")].sort()).toEqual(
      expect.arrayContaining(["rds:DescribeDBInstances", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject", "sns:Publish", "ssm:GetParameter"]),
    );
    expect([...actions("launcher")].sort()).toEqual(expect.arrayContaining(["ecs:DescribeTasks", "ecs:ListTasks", "ecs:RunTask", "ecs:TagResource", "iam:PassRole", "rds:DescribeDBInstances", "sns:Publish"]));
    expect([...actions("watcher")].sort()).toEqual(expect.arrayContaining(["ecs:RunTask", "iam:PassRole", "sns:Publish"]));
    // the drill of an encrypted target reads its age identity: that read, too, is evaluated against the runner's role
    expect(recorded("runner").flatMap(iamRequests).filter((r) => r.action === "ssm:GetParameter").map((r) => r.resource)).toContain(`arn:aws:ssm:eu-west-1:${ACCOUNT}:parameter/lifeboat/drill/age-identity`);
    // and the runner reads the heartbeat's URL, which it pings itself
    expect(recorded("runner").flatMap(iamRequests).filter((r) => r.action === "ssm:GetParameter").map((r) => r.resource)).toContain(`arn:aws:ssm:eu-west-1:${ACCOUNT}:parameter/lifeboat/heartbeat`);
    expect([...actions("slack")]).toEqual(["ssm:GetParameter"]);
    expect([...actions("webhook")]).toEqual(["ssm:GetParameter"]);
    expect([...actions("freshness")].sort()).toEqual(["s3:GetObject", "s3:ListBucket", "s3:PutObject", "sns:Publish"]);
  });

  it("what AWS does on a component's behalf is allowed too: the launcher's failure destination", async () => {
    const destination = unwrap(one(resources, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig").inputs).destinationConfig.onFailure.destination;
    expect(await evaluate("launcher", { action: "sqs:SendMessage", resource: destination, context: {} }, rolePolicies("launcher"))).toBe("Allowed");
  });

  it("fails, naming component, action and resource, when a permission is removed", async () => {
    const withoutRds = rolePolicies("runner").map((p) => ({ ...p, Statement: p.Statement.filter((s: any) => ![s.Action].flat().includes("rds:DescribeDBInstances")) }));
    expect(denials(await verdicts("runner", withoutRds))).toEqual([`runner may not rds:DescribeDBInstances on arn:aws:rds:eu-west-1:${ACCOUNT}:db:acme-orders: ImplicitlyDenied`]);
    const withoutPassCondition = rolePolicies("launcher").map((p) => ({
      ...p,
      Statement: p.Statement.map((s: any) => ([s.Action].flat().includes("iam:PassRole") ? { ...s, Condition: { StringEquals: { "iam:PassedToService": "lambda.amazonaws.com" } } } : s)),
    }));
    expect(denials(await verdicts("launcher", withoutPassCondition))).toHaveLength(2);
  });

  it("no role grants what the code never calls: every Allow statement is used by a recorded call, or by AWS on the component's behalf", async () => {
    // Lambda delivers a failed asynchronous invocation to its destination with the function's own role
    const destination = unwrap(one(resources, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig").inputs).destinationConfig.onFailure.destination;
    const byAws: Partial<Record<Component, IamRequest[]>> = { launcher: [{ action: "sqs:SendMessage", resource: destination, context: {} }] };
    for (const component of Object.keys(ROLES) as Component[]) {
      const requests = [...recorded(component).flatMap(iamRequests), ...(byAws[component] ?? [])];
      for (const policy of rolePolicies(component)) {
        for (const statement of policy.Statement as Array<{ Action: string[] }>) {
          const used = requests.some((r) => statement.Action.includes(r.action));
          expect(used, `${component}: ${JSON.stringify(statement)} is never used by a recorded call`).toBe(true);
        }
      }
    }
  });
});

describe("the stack has no role the check does not know", () => {
  it("every Lambda role and the runner's task role are checked", () => {
    const lambdaRoles = ofType(resources, "aws:lambda/function:Function").map((f) => f.name.replace(/Function$/, "Role"));
    expect(lambdaRoles.sort()).toEqual(Object.values(ROLES).filter((r) => r !== "RunnerTaskRole").sort());
  });
});
