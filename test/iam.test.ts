import { describe, expect, it, vi } from "vitest";
import type { Component } from "./support/aws-calls.js";
import { VAULT_SECRET, cloudConfig } from "./support/cloud-fixture.js";
import { readFileSync } from "node:fs";
import { fileURLToPath } from "node:url";
import { runnerRoleName } from "@lifeboat/core";
import { ROLES, Stack, denials, keysAwsDoesNotSet, recorded, synthesizedStack, type IamRequest, type Policy } from "./support/iam-check.js";
import { ACCOUNT, one, ofType, unwrap } from "./support/sst-synth.js";

/**
 * What the code calls, the role allows, in the stack of the cloud components' tests' own config
 * (test/support/iam-check.ts says how). test/iam-kms.test.ts checks the same calls against the stack with SSE-KMS.
 */
vi.mock("../lifeboat.config", async () => ({ default: (await import("./support/cloud-fixture.js")).cloudConfig }));

const stack = synthesizedStack("production");
/** A connection with an IAM token, as RDS authorizes it: rds-db:connect on the instance's resource id and the user. */
const iamConnect = (user: string): IamRequest => {
  const resourceId = `db-${Buffer.from("acme-reports").toString("hex").toUpperCase().slice(0, 26)}`;
  return { action: "rds-db:connect", resource: `arn:aws:rds-db:eu-west-1:${ACCOUNT}:dbuser:${resourceId}/${user}`, context: {} };
};

describe("every AWS call a deployed component makes is allowed by its synthesized role", () => {
  for (const component of Object.keys(ROLES) as Component[]) {
    it(component, async () => {
      const calls = recorded(component);
      expect(calls.length, `no AWS calls were recorded for the ${component}: run the whole suite (npm test), whose first group records them`).toBeGreaterThan(0);
      const v = await stack.verdicts(component);
      expect(denials(v)).toEqual([]);
      expect(v.length).toBeGreaterThan(0);
    });
  }

  it("the recordings cover what each component does: RDS lookups, runner uploads, reads, prunes and launches", async () => {
    const actions = (c: Component) => new Set((recorded(c).flatMap((c) => stack.iamRequests(c))).map((r) => r.action));
    expect([...actions("runner")].sort()).toEqual(
      expect.arrayContaining(["rds:DescribeDBInstances", "s3:DeleteObject", "s3:GetObject", "s3:ListBucket", "s3:PutObject", "sns:Publish", "ssm:GetParameter"]),
    );
    expect([...actions("launcher")].sort()).toEqual(expect.arrayContaining(["ecs:DescribeTasks", "ecs:ListTasks", "ecs:RunTask", "ecs:TagResource", "iam:PassRole", "rds:DescribeDBInstances", "sns:Publish"]));
    expect([...actions("watcher")].sort()).toEqual(expect.arrayContaining(["ecs:RunTask", "iam:PassRole", "sns:Publish"]));
    // the drill of an encrypted target reads its age identity: that read, too, is evaluated against the runner's role
    expect(recorded("runner").flatMap((c) => stack.iamRequests(c)).filter((r) => r.action === "ssm:GetParameter").map((r) => r.resource)).toContain(`arn:aws:ssm:eu-west-1:${ACCOUNT}:parameter/lifeboat/drill/age-identity`);
    // and the runner reads the heartbeat's URL, which it pings itself
    expect(recorded("runner").flatMap((c) => stack.iamRequests(c)).filter((r) => r.action === "ssm:GetParameter").map((r) => r.resource)).toContain(`arn:aws:ssm:eu-west-1:${ACCOUNT}:parameter/lifeboat/heartbeat`);
    expect([...actions("slack")]).toEqual(["ssm:GetParameter"]);
    expect([...actions("webhook")]).toEqual(["ssm:GetParameter"]);
    expect([...actions("freshness")].sort()).toEqual(["s3:GetObject", "s3:ListBucket", "s3:PutObject", "sns:Publish"]);
  });

  it("what AWS does on a component's behalf is allowed too: the launcher's and the subscribers' failure destinations", async () => {
    const destination = (n: string) => unwrap(one(stack.resources, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", n).inputs).destinationConfig.onFailure.destination;
    expect(await stack.evaluate("launcher", { action: "sqs:SendMessage", resource: destination("LifeboatLauncherFailureDestination"), context: {} })).toBe("Allowed");
    expect(await stack.evaluate("slack", { action: "sqs:SendMessage", resource: destination("LifeboatSlackFailureDestination"), context: {} })).toBe("Allowed");
    expect(await stack.evaluate("webhook", { action: "sqs:SendMessage", resource: destination("LifeboatWebhookFailureDestination"), context: {} })).toBe("Allowed");
  });

  it("fails, naming component, action and resource, when a permission is removed", async () => {
    const withoutRds = (t: string) => stack.rolePolicies("runner", t).map((p) => ({ ...p, Statement: p.Statement.filter((s: any) => ![s.Action].flat().includes("rds:DescribeDBInstances")) }));
    expect(denials(await stack.verdicts("runner", withoutRds))).toEqual([`runner (rdsprod) may not rds:DescribeDBInstances on arn:aws:rds:eu-west-1:${ACCOUNT}:db:acme-orders: ImplicitlyDenied`]);
    const withoutPassCondition = stack.rolePolicies("launcher").map((p) => ({
      ...p,
      Statement: p.Statement.map((s: any) => ([s.Action].flat().includes("iam:PassRole") ? { ...s, Condition: { StringEquals: { "iam:PassedToService": "lambda.amazonaws.com" } } } : s)),
    }));
    // every PassRole the launcher makes (the task definition's two roles, each launched target's own) is then denied
    const passes = new Set(recorded("launcher").flatMap((c) => stack.iamRequests(c)).filter((r) => r.action === "iam:PassRole").map((r) => r.resource));
    const denied = denials(await stack.verdicts("launcher", withoutPassCondition));
    expect(passes.size).toBeGreaterThan(2);
    expect(denied).toHaveLength(passes.size);
    expect(denied.every((d) => d.includes(" may not iam:PassRole on "))).toBe(true);
  });

  it("no role grants what the code never calls: every allowed action is used by a recorded call, or by AWS on the component's behalf", async () => {
    // Lambda delivers a failed asynchronous invocation to its destination with the function's own role
    const destination = unwrap(one(stack.resources, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "LifeboatLauncherFailureDestination").inputs).destinationConfig.onFailure.destination;
    const failed = (n: string) => ({ action: "sqs:SendMessage", resource: unwrap(one(stack.resources, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", n).inputs).destinationConfig.onFailure.destination, context: {} });
    // and Lambda's SQS poller reads the launch queue with the launcher's role
    const launches = `arn:aws:sqs:eu-west-1:${ACCOUNT}:${unwrap(one(stack.resources, "aws:sqs/queue:Queue", "LifeboatLaunchesQueue").inputs).name}`;
    const poller = ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"].map((action) => ({ action, resource: launches, context: {} }));
    const byAws: Partial<Record<Component, IamRequest[]>> = {
      launcher: [{ action: "sqs:SendMessage", resource: destination, context: {} }, ...poller],
      slack: [failed("LifeboatSlackFailureDestination")],
      webhook: [failed("LifeboatWebhookFailureDestination")],
      // an IAM-authenticated target's connections: RDS checks rds-db:connect when the token is presented
      runner: [iamConnect("lifeboat_iam")],
    };
    for (const r of poller) expect(await stack.evaluate("launcher", r), r.action).toBe("Allowed");
    expect((Object.keys(ROLES) as Component[]).flatMap((c) => stack.unusedActions(c, byAws[c]))).toEqual([]);
    // per action, not per statement: an unused action beside a used one is found
    const policies = stack.rolePolicies("freshness");
    const widened = policies.map((p) => ({ ...p, Statement: p.Statement.map((st) => ([st.Action].flat().includes("sns:Publish") ? { ...st, Action: ["sns:Publish", "sns:DeleteTopic"] } : st)) }));
    const spy = Object.assign(Object.create(stack) as Stack, { rolePolicies: () => widened });
    expect(spy.unusedActions("freshness")).toEqual([expect.stringMatching(/^freshness: sns:DeleteTopic/)]);
  });

  it("a request with a condition key AWS does not set for its action fails the check itself", async () => {
    // AWS sets no s3:prefix for ListMultipartUploads: a request that carried one would hide a statement AWS denies
    const fabricated: IamRequest = { action: "s3:ListBucketMultipartUploads", resource: "arn:aws:s3:::b", context: { "s3:prefix": "pg/" } };
    expect(await keysAwsDoesNotSet(fabricated)).toEqual(["s3:prefix"]);
    expect(await stack.evaluate("runner", fabricated)).toBe("invalid request: AWS sets no s3:prefix for s3:ListBucketMultipartUploads");
    expect(await keysAwsDoesNotSet({ action: "s3:ListBucket", resource: "arn:aws:s3:::b", context: { "s3:prefix": "pg/" } })).toEqual([]);
    expect(await keysAwsDoesNotSet({ action: "ecs:RunTask", resource: "x", context: { "ecs:cluster": "c", "aws:SourceIp": "10.0.0.1" } })).toEqual([]);
  });

  it("the runner's failure paths are recorded and allowed: a failed run's dump deleted, pending uploads listed and aborted", async () => {
    const requests = recorded("runner").flatMap((c) => stack.iamRequests(c));
    // a dump whose manifest could not be written, deleted by a target that is not pruned (test "entry")
    expect(requests.filter((r) => r.action === "s3:DeleteObject" && r.resource.includes("/pg/entry/")).map((r) => r.resource)).toEqual([expect.stringMatching(/\.dump$/)]);
    expect(requests.some((r) => r.action === "s3:ListBucketMultipartUploads")).toBe(true);
    expect(requests.some((r) => r.action === "s3:AbortMultipartUpload")).toBe(true);
  });
});

describe("one target, one scope", () => {
  it("IAM database authentication: the target's role may connect as its user to its instance, and no other role or user", async () => {
    const as = (target: string, r: IamRequest) => stack.evaluate("runner", r, stack.rolePolicies("runner", target));
    expect(await as("rdsiam", iamConnect("lifeboat_iam"))).toBe("Allowed");
    expect(await as("rdsiam", iamConnect("postgres"))).toBe("ImplicitlyDenied");
    expect(await as("rdsiam", { ...iamConnect("lifeboat_iam"), resource: iamConnect("lifeboat_iam").resource.replace(/dbuser:[^/]+/, "dbuser:db-OTHERINSTANCE") })).toBe("ImplicitlyDenied");
    expect(await as("entry", iamConnect("lifeboat_iam"))).toBe("ImplicitlyDenied");
    // nothing else has it
    for (const t of stack.runnerTargets().filter((t) => t !== "rdsiam")) expect(JSON.stringify(stack.rolePolicies("runner", t)), t).not.toContain("rds-db:");
  });

  it("a target's runner role reads only its own secrets and writes only under its own prefix", async () => {
    const as = (target: string, action: string, resource: string, context: Record<string, string> = {}) => stack.evaluate("runner", { action, resource, context }, stack.rolePolicies("runner", target));
    const param = (name: string) => `arn:aws:ssm:eu-west-1:${ACCOUNT}:parameter${name}`;
    const key = (k: string) => `arn:aws:s3:::acme-backups/pg/${k}`;
    expect(await as("entry", "ssm:GetParameter", param("/lifeboat/entry/pw"))).toBe("Allowed");
    expect(await as("entry", "ssm:GetParameter", param("/lifeboat/drill/pw"))).toBe("ImplicitlyDenied");
    expect(await as("entry", "ssm:GetParameter", param("/lifeboat/drill/age-identity"))).toBe("ImplicitlyDenied");
    const write = { "s3:ObjectCreationOperation": "true", "s3:if-none-match": "*" };
    expect(await as("entry", "s3:PutObject", key("entry/2026/12/03/x.dump"), write)).toBe("Allowed");
    expect(await as("entry", "s3:PutObject", key("drill/2026/12/03/x.dump"), write)).toBe("ImplicitlyDenied");
    expect(await as("entry", "s3:GetObject", key("drill/2026/12/03/x.manifest.json"))).toBe("ImplicitlyDenied");
    expect(await as("entry", "s3:ListBucket", "arn:aws:s3:::acme-backups", { "s3:prefix": "pg/drill/" })).toBe("ImplicitlyDenied");
    expect(await as("entry", "s3:DeleteObject", key("kept/2026/12/03/x.manifest.json"))).toBe("ImplicitlyDenied");
    expect(await as("kept", "s3:DeleteObject", key("kept/2026/12/03/x.manifest.json"))).toBe("Allowed");
    // only a target that drills reads its dumps
    expect(await as("drill", "s3:GetObject", key("drill/2026/12/03/x.dump"))).toBe("Allowed");
    expect(await as("entry", "s3:GetObject", key("entry/2026/12/03/x.dump"))).toBe("ImplicitlyDenied");
    expect(await as("entry", "rds:DescribeDBInstances", `arn:aws:rds:eu-west-1:${ACCOUNT}:db:acme-orders`)).toBe("ImplicitlyDenied");
    // a Secrets Manager secret: its target's role alone
    expect(await as("vault", "secretsmanager:GetSecretValue", VAULT_SECRET)).toBe("Allowed");
    expect(await as("entry", "secretsmanager:GetSecretValue", VAULT_SECRET)).toBe("ImplicitlyDenied");
  });

  it("copies: the target's role writes and lists its keys in the copy bucket, deletes there only what it prunes, never reads; another provider's copy is reached with its own keys", async () => {
    const as = (target: string, action: string, resource: string, context: Record<string, string> = {}) => stack.evaluate("runner", { action, resource, context }, stack.rolePolicies("runner", target));
    const copyKey = (k: string) => `arn:aws:s3:::acme-offsite/pg/${k}`;
    const write = { "s3:ObjectCreationOperation": "true", "s3:if-none-match": "*" };
    expect(await as("copied", "s3:PutObject", copyKey("copied/2026/12/03/x.dump"), write)).toBe("Allowed");
    expect(await as("copied", "s3:PutObject", copyKey("entry/2026/12/03/x.dump"), write)).toBe("ImplicitlyDenied");
    expect(await as("entry", "s3:PutObject", copyKey("entry/2026/12/03/x.dump"), write)).toBe("ImplicitlyDenied");
    expect(await as("copied", "s3:GetObject", copyKey("copied/2026/12/03/x.dump"))).toBe("ImplicitlyDenied");
    expect(await as("copied", "s3:ListBucket", "arn:aws:s3:::acme-offsite", { "s3:prefix": "pg/copied/" })).toBe("Allowed");
    expect(await as("copied", "s3:ListBucket", "arn:aws:s3:::acme-offsite", { "s3:prefix": "pg/" })).toBe("ImplicitlyDenied");
    // keepLast 1 there: the runner prunes it, which reads the copy's manifests (and nothing else there)
    expect(await as("copied", "s3:DeleteObject", copyKey("copied/2026/12/03/x.manifest.json"))).toBe("Allowed");
    expect(await as("copied", "s3:GetObject", copyKey("copied/2026/12/03/x.manifest.json"))).toBe("Allowed");
    // a failed copy is copied again from the deployment's bucket: the target reads its own dumps there
    expect(await as("copied", "s3:GetObject", "arn:aws:s3:::acme-backups/pg/copied/2026/12/03/x.dump")).toBe("Allowed");
    // what the runner did in the tests (test/functions.test.ts): written, listed and pruned in the copy bucket; the
    // other provider's keys read from SSM; none of its calls to that provider made as the role
    const requests = recorded("runner").flatMap((c) => stack.iamRequests(c));
    const inCopy = [...new Set(requests.filter((r) => r.resource.startsWith("arn:aws:s3:::acme-offsite")).map((r) => r.action))].sort();
    expect(inCopy).toEqual(expect.arrayContaining(["s3:DeleteObject", "s3:ListBucket", "s3:PutObject"]));
    expect(requests.filter((r) => r.action === "ssm:GetParameter").map((r) => r.resource)).toEqual(expect.arrayContaining([`arn:aws:ssm:eu-west-1:${ACCOUNT}:parameter/lifeboat/copied/r2-key-id`, `arn:aws:ssm:eu-west-1:${ACCOUNT}:parameter/lifeboat/copied/r2-secret`]));
    expect(requests.some((r) => r.resource.includes("acme-r2"))).toBe(false);
    expect(recorded("runner").filter((c) => c.endpoint && c.input.Bucket === "acme-r2" && /^(PutObject|CompleteMultipartUpload)Command$/.test(c.command)).length).toBeGreaterThan(0);
  });

  it("a copy bucket in another account: docs/deploy.md's bucket policy allows every write and listing the runner made there, and refuses its reads and deletes", async () => {
    const doc = readFileSync(fileURLToPath(new URL("../docs/deploy.md", import.meta.url)), "utf8");
    const section = doc.slice(doc.indexOf("### Copies (3-2-1)"));
    const documented = JSON.parse(/```json\n([\s\S]*?)\n```/.exec(section)![1]!) as Policy;
    // the doc's example is target prod: the same policy for the fixture's target "copied", its role as the principal
    const role = `arn:aws:iam::${ACCOUNT}:role/lifeboat/lifeboat/production/runner/${runnerRoleName("lifeboat/production", "copied")}`;
    const policy = JSON.parse(JSON.stringify(documented).replaceAll("arn:aws:iam::111111111111:role/lifeboat/acme/production/runner/lb-0123456789-prod", role).replaceAll("pg/prod/", "pg/copied/")) as Policy;
    const other = { bucketPolicy: policy, account: "222222222222", principal: role };
    const as = (action: string, resource: string, context: Record<string, string> = {}) => stack.evaluate("runner", { action, resource, context }, stack.rolePolicies("runner", "copied"), other);
    // the documented policy is for a copy left to its store (retention: "store"): the fixture's copy is also pruned,
    // whose reads of its manifests and deletes the policy refuses (below)
    const made = recorded("runner").flatMap((c) => stack.iamRequests(c)).filter((r) => r.resource.startsWith("arn:aws:s3:::acme-offsite") && r.action !== "s3:DeleteObject" && r.action !== "s3:GetObject");
    expect(made.length).toBeGreaterThan(3);
    for (const r of made) expect(await as(r.action, r.resource, r.context), `${r.action} ${r.resource}`).toBe("Allowed");
    // a failed upload's leftovers are looked for (no recorded failure in a copy bucket: asked here)
    expect(await as("s3:ListBucketMultipartUploads", "arn:aws:s3:::acme-offsite")).toBe("Allowed");
    const key = "arn:aws:s3:::acme-offsite/pg/copied/2026/12/03/20261203T020000Z-ab12.dump";
    expect(await as("s3:GetObject", key)).toBe("ImplicitlyDenied");
    expect(await as("s3:GetObject", key.replace(/\.dump$/, ".manifest.json"))).toBe("ImplicitlyDenied");
    expect(await as("s3:DeleteObject", key)).toBe("ImplicitlyDenied");
    expect(await as("s3:PutObject", key, { "s3:ObjectCreationOperation": "true" })).toBe("ExplicitlyDenied");
    // the copy's objectLock (GOVERNANCE, 30 days) was set as it wrote; a longer or COMPLIANCE retention is refused
    expect(made.filter((r) => r.action === "s3:PutObjectRetention").length).toBeGreaterThan(0);
    const retention = (mode: string, days: number) => as("s3:PutObjectRetention", key, { "s3:object-lock-mode": mode, "s3:object-lock-remaining-retention-days": String(days) });
    expect(await retention("GOVERNANCE", 30)).toBe("Allowed");
    expect(await retention("GOVERNANCE", 3650)).toBe("ImplicitlyDenied");
    expect(await retention("COMPLIANCE", 30)).toBe("ImplicitlyDenied");
    // without the bucket's consent, the role alone gets nowhere in another account
    const none = { ...other, bucketPolicy: { Version: "2012-10-17", Statement: [] } as unknown as Policy };
    expect(await stack.evaluate("runner", made[0]!, stack.rolePolicies("runner", "copied"), none)).not.toBe("Allowed");
  });

  it("the launcher passes the target's role with each launch, and may pass only this stage's runner roles", async () => {
    const [call] = recorded("launcher").filter((c) => c.command === "RunTaskCommand");
    const passes = stack.iamRequests(call!).filter((r) => r.action === "iam:PassRole").map((r) => r.resource);
    expect(passes).toContainEqual(expect.stringMatching(new RegExp(`^arn:aws:iam::${ACCOUNT}:role/lifeboat/lifeboat/production/runner/lb-[0-9a-f]{10}-`)));
    const other = { action: "iam:PassRole", resource: `arn:aws:iam::${ACCOUNT}:role/lifeboat/dev/runner/lb-0123456789-prod`, context: { "iam:PassedToService": "ecs-tasks.amazonaws.com" } };
    expect(await stack.evaluate("launcher", other)).toBe("ImplicitlyDenied");
  });
});

describe("what a launcher may start", () => {
  it("only the runner's task family in its cluster, no larger than the config's largest target, never with ECS Exec", async () => {
    const [call] = recorded("launcher").filter((c) => c.command === "RunTaskCommand");
    const [runTask] = stack.iamRequests(call!);
    expect(runTask!.action).toBe("ecs:RunTask");
    const ask = (context: Record<string, string>) => stack.evaluate("launcher", { ...runTask!, context: { ...runTask!.context, ...context } });
    // the fixture's largest target is prod: 2 vCPU, 8 GB
    expect(await ask({ "ecs:task-cpu": "2048", "ecs:task-memory": "8192" })).toBe("Allowed");
    expect(await ask({ "ecs:task-cpu": "16384" })).toBe("ImplicitlyDenied");
    expect(await ask({ "ecs:task-memory": "122880" })).toBe("ImplicitlyDenied");
    expect(await ask({ "ecs:enable-execute-command": "true" })).toBe("ImplicitlyDenied");
    expect(await stack.evaluate("watcher", { ...runTask!, context: { ...runTask!.context, "ecs:task-cpu": "16384" } })).toBe("ImplicitlyDenied");
  });
});

describe("history that the runner cannot destroy", () => {
  const key = (k: string) => `arn:aws:s3:::acme-backups/pg/prod/2026/12/03/${k}`;
  const put = (k: string, context: Record<string, string>) => stack.evaluate("runner", { action: "s3:PutObject", resource: key(k), context });

  it("the runner's own role cannot overwrite a stored dump, part, manifest or drill result: the bucket refuses a write without If-None-Match", async () => {
    for (const k of ["20261203T020000Z-ab12.dump", "20261203T020000Z-ab12.part-001.dump", "20261203T020000Z-ab12.sql.gz", "20261203T020000Z-ab12.manifest.json", "20261203T020000Z-ab12.20261203T060000000Z.verify.json"]) {
      expect(await put(k, { "s3:ObjectCreationOperation": "true" }), k).toBe("ExplicitlyDenied");
      expect(await put(k, { "s3:ObjectCreationOperation": "true", "s3:if-none-match": "*" }), k).toBe("Allowed");
      // CreateMultipartUpload and UploadPart take no conditional header: only CompleteMultipartUpload is held to it
      expect(await put(k, { "s3:ObjectCreationOperation": "false" }), k).toBe("Allowed");
    }
    // the freshness check's markers too
    expect(await stack.evaluate("freshness", { action: "s3:PutObject", resource: "arn:aws:s3:::acme-backups/pg/prod/.lifeboat-missed/20261203T020000Z.json", context: { "s3:ObjectCreationOperation": "true" } })).toBe("ExplicitlyDenied");
    // the run record is replaced by compare-and-swap, outside the write-once keys
    expect(await stack.evaluate("runner", { action: "s3:PutObject", resource: "arn:aws:s3:::acme-backups/pg/prod/.lifeboat-last-run.json", context: { "s3:ObjectCreationOperation": "true", "s3:if-match": '"abc"' } })).toBe("Allowed");
    // and every write the runner and the freshness check made in the tests passed the bucket's policy (the checks
    // above evaluate each recorded call with it): a write-once key written without the header would fail them
    const writes = (["runner", "freshness"] as Component[]).flatMap((c) => recorded(c).flatMap((call) => stack.iamRequests(call))).filter((r) => r.action === "s3:PutObject" && r.context["s3:ObjectCreationOperation"] === "true");
    expect(writes.filter((w) => /\.(dump|manifest\.json|verify\.json)$/.test(w.resource)).every((w) => w.context["s3:if-none-match"] === "*")).toBe(true);
    expect(writes.some((w) => w.resource.endsWith(".verify.json"))).toBe(true);
  });

  it("no role may delete a version, change versioning, lifecycle or the bucket's policy", () => {
    const forbidden = /^s3:(\*|DeleteObjectVersion|PutBucketVersioning|PutLifecycleConfiguration|PutBucketPolicy|DeleteBucketPolicy|PutBucketObjectLockConfiguration|BypassGovernanceRetention)$/;
    const granted = ofType(stack.resources, "aws:iam/role:Role").flatMap((r) =>
      (unwrap(r.inputs).inlinePolicies ?? []).flatMap((p: { policy: string }) => JSON.parse(p.policy).Statement as Array<{ Action: string | string[] }>).flatMap((st: { Action: string | string[] }) => [st.Action].flat().map((a) => `${r.name}: ${a}`)),
    );
    expect(granted.length).toBeGreaterThan(10);
    expect(granted.filter((g) => forbidden.test(g.split(": ")[1]!))).toEqual([]);
    // the check itself catches such a grant
    expect(forbidden.test("s3:DeleteObjectVersion")).toBe(true);
  });
});

describe("the stack has no role the check does not know", () => {
  it("every Lambda role and the runner's task role are checked", () => {
    const lambdaRoles = ofType(stack.resources, "aws:lambda/function:Function").map((f) => f.name.replace(/Function$/, "Role"));
    expect(lambdaRoles.sort()).toEqual((Object.keys(ROLES) as Component[]).filter((c) => c !== "runner").map((c) => stack.roleName(c)).sort());
    // and every target (but SQLite ones, which stay on their own machine) has its runner role
    expect(stack.runnerTargets()).toEqual(Object.keys(cloudConfig.targets));
  });
});
