import { createServer, type Server } from "node:http";
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { Transform, type Readable } from "node:stream";
import { join } from "node:path";
import { pathToFileURL } from "node:url";
import { mockClient } from "aws-sdk-client-mock";
import { DescribeTasksCommand, ECSClient, ListTasksCommand, RunTaskCommand } from "@aws-sdk/client-ecs";
import { DescribeDBInstancesCommand, RDSClient } from "@aws-sdk/client-rds";
import { PublishCommand, SNSClient } from "@aws-sdk/client-sns";
import { CreateBucketCommand, DeleteObjectCommand, GetObjectCommand, HeadObjectCommand, PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { Logger } from "@aws-lambda-powertools/logger";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { LAUNCH_DELIVERIES, deployedConfigKey, readDeployedConfig, launchClientToken, parseConfig, sha256Hex, renderSlackMessage, runIdFor, runnerRoleName, type LifeboatEvent } from "@lifeboat/core";
import { S3Store, listBackups, backupAgeMetrics, backupMetrics, generateIdentity, runTargetBackups, runnerMain, s3ClientConfig, snsPublisher, withMetrics } from "@lifeboat/runner";
import { startEmbeddedS3 } from "@lifeboat/cli";
import { createFreshnessCheck, createLauncher, createSlackHandler, createWatcher, createWebhookHandler, deployedConfig } from "@lifeboat/functions";
import { recordAwsCalls } from "./support/aws-calls.js";
import { SETTINGS, TEST_BUCKET, TOPIC, VAULT_SECRET, cloudConfig } from "./support/cloud-fixture.js";
import { conn, createDatabase, pg, s3, s3Client, s3Keys, s3PendingUploads, startRecorder, unique, tempDir } from "./support/helpers.js";

const ecs = mockClient(ECSClient);
const rds = mockClient(RDSClient);
const sns = mockClient(SNSClient);
const ssm = mockClient(SSMClient);
const sm = mockClient(SecretsManagerClient);
// every call here is recorded for the IAM check (test/iam.test.ts), by the component that makes it
const calls = recordAwsCalls(ecs, rds, sns, ssm, sm);
beforeEach(() => {
  ecs.reset();
  rds.reset();
  sns.reset();
  ssm.reset();
  sm.reset();
  // no run of any target is going, unless a test says so
  ecs.on(ListTasksCommand).resolves({ taskArns: [] });
});

const settings = SETTINGS;
const config = parseConfig(cloudConfig);
const logger = new Logger({ serviceName: "test", logLevel: "SILENT" });
const launchRetry = { attempts: 3, minDelayMs: 5 };
const deps = () => ({ config, ecs: new ECSClient({ region: "eu-west-1" }), rds: new RDSClient({ region: "eu-west-1" }), publish: snsPublisher(new SNSClient({ region: "eu-west-1" }), TOPIC), settings, logger, launchRetry });
const published = () => sns.commandCalls(PublishCommand).map((c) => c.args[0].input);
const runTasks = () => ecs.commandCalls(RunTaskCommand).map((c) => c.args[0].input);

function rdsAvailable(status = "available") {
  rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceStatus: status, Endpoint: { Address: "acme-prod.x.rds.amazonaws.com", Port: 5432 } }] });
}

/**
 * What a deployment writes: the config as JSON in the bucket (outside every target's prefix), and the environment
 * that tells the runner and the functions where it is and what its SHA-256 must be.
 */
async function deployConfig(config: unknown): Promise<Record<string, string>> {
  const text = JSON.stringify(config);
  const key = deployedConfigKey(cloudConfig.storage.s3.prefix);
  await s3Client().send(new PutObjectCommand({ Bucket: TEST_BUCKET, Key: key, Body: text, ContentType: "application/json" }));
  return { LIFEBOAT_BUCKET: TEST_BUCKET, LIFEBOAT_CONFIG_KEY: key, LIFEBOAT_CONFIG_SHA256: sha256Hex(text) };
}

describe("the deployed config, read from the bucket by every deployed component", () => {
  for (const component of ["launcher", "watcher", "freshness"] as const) {
    it(`the ${component} reads it, checked against its hash`, async () => {
      calls.as(component);
      // a config of each test's own (a warm function keeps the config it has read, by its hash)
      const env = await deployConfig({ ...cloudConfig, targets: { ...cloudConfig.targets, staging: { ...cloudConfig.targets.staging, description: component } } });
      expect(await deployedConfig(env)).toEqual(parseConfig({ ...cloudConfig, targets: { ...cloudConfig.targets, staging: { ...cloudConfig.targets.staging, description: component } } }));
    });
  }
  it("a copy changed outside a deploy is refused, and so is a missing one, each with what to do", async () => {
    calls.as("launcher");
    // a config of its own (a warm function keeps the config it has read: a change is found at its next cold start)
    const env = await deployConfig({ ...cloudConfig, targets: { ...cloudConfig.targets, staging: { ...cloudConfig.targets.staging, description: "tamper test" } } });
    await deployConfig({ ...cloudConfig, targets: { ...cloudConfig.targets, evil: { database: { url: { env: "X" } } } } });
    await expect(deployedConfig(env)).rejects.toThrow(/config\.json cannot be used .*does not match the config this deployment was made from .*hint: deploy again/s);
    // gone (S3 answers NoSuchKey to a role that may list the bucket, Access Denied to one that may not, as deployed)
    const gone = await deployConfig({ ...cloudConfig, targets: { ...cloudConfig.targets, staging: { ...cloudConfig.targets.staging, description: "gone" } } });
    await s3Client().send(new DeleteObjectCommand({ Bucket: TEST_BUCKET, Key: gone.LIFEBOAT_CONFIG_KEY }));
    await expect(deployedConfig(gone)).rejects.toThrow(/config\.json cannot be used .*does not exist .*deploy again/s);
    const denied = Object.assign(new Error("Access Denied"), { name: "AccessDenied" });
    await expect(readDeployedConfig(() => Promise.reject(denied), "k", undefined, "s3://b/k")).rejects.toThrow(/k cannot be used .*cannot be read: AccessDenied: Access Denied .*a missing object reads as Access Denied/s);
  });
});

describe("launcher", () => {
  beforeEach(() => calls.as("launcher"));
  const scheduled = { source: "lifeboat.schedule", target: "prod", scheduledTime: "2026-11-21T02:00:00Z" };

  it("a scheduled event starts one Fargate task with the run as overrides and an idempotency token", async () => {
    rdsAvailable();
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: "arn:aws:ecs:eu-west-1:123456789012:task/lifeboat/abc" }] });
    const result = await createLauncher(deps())(scheduled);
    const runId = runIdFor("prod", "2026-11-21T02:00:00Z");
    expect(result).toEqual({ launched: [{ target: "prod", runId, taskArn: "arn:aws:ecs:eu-west-1:123456789012:task/lifeboat/abc" }], failed: [] });
    expect(rds.commandCalls(DescribeDBInstancesCommand).map((c) => c.args[0].input)).toEqual([{ DBInstanceIdentifier: "acme-prod" }]);
    expect(runTasks()).toEqual([
      {
        cluster: settings.cluster,
        taskDefinition: settings.taskDefinition,
        launchType: "FARGATE",
        count: 1,
        clientToken: launchClientToken("prod", "2026-11-21T02:00:00Z", 1),
        networkConfiguration: { awsvpcConfiguration: { subnets: ["subnet-0a", "subnet-0b"], securityGroups: ["sg-0c"], assignPublicIp: "DISABLED" } },
        overrides: {
          // the target's own runner role (infra/runner.ts: one per target)
          taskRoleArn: `arn:aws:iam::123456789012:role/lifeboat/lifeboat/production/runner/${runnerRoleName("lifeboat/production", "prod")}`,
          cpu: "2048",
          memory: "8192",
          containerOverrides: [
            {
              name: "runner",
              environment: [
                { name: "LIFEBOAT_TARGET", value: "prod" },
                { name: "LIFEBOAT_RUN_ID", value: runId },
                { name: "LIFEBOAT_TRIGGER", value: "schedule" },
                { name: "LIFEBOAT_ATTEMPT", value: "1" },
              ],
            },
          ],
        },
        startedBy: "lb-prod",
        tags: [
          { key: "lifeboat:target", value: "prod" },
          { key: "lifeboat:run-id", value: runId },
          { key: "lifeboat:attempt", value: "1" },
        ],
        propagateTags: "TASK_DEFINITION",
      },
    ]);
    expect(published()).toEqual([]);
  });

  it("from the launch queue: a launch ECS refuses is left for the next delivery, and reported only on the last", async () => {
    rdsAvailable();
    ecs.on(RunTaskCommand).resolves({ tasks: [], failures: [{ reason: "Capacity is unavailable at this time" }] });
    const launch = createLauncher(deps());
    const message = (receives: number) => ({ Records: [{ messageId: "m1", body: JSON.stringify(scheduled), attributes: { ApproximateReceiveCount: String(receives) }, eventSource: "aws:sqs" }] });
    const first = await launch(message(1));
    expect(first.batchItemFailures).toEqual([{ itemIdentifier: "m1" }]);
    expect(first.retried).toEqual([expect.objectContaining({ target: "prod", code: "launch_failed" })]);
    expect(published()).toEqual([]);
    const last = await launch(message(LAUNCH_DELIVERIES));
    expect(last.batchItemFailures).toEqual([]);
    expect(last.failed).toEqual([expect.objectContaining({ target: "prod", code: "launch_failed", error: expect.stringContaining("Capacity is unavailable") })]);
    expect(published().map((p) => JSON.parse(p.Message!).error.code)).toEqual(["launch_failed"]);
    // a message that names no target it knows goes to the dead-letter queue (alarmed), not round and round
    const bad = await launch({ Records: [{ messageId: "m2", body: '{"source":"lifeboat.schedule","target":"nope","scheduledTime":"x"}', attributes: { ApproximateReceiveCount: "1" }, eventSource: "aws:sqs" }] });
    expect(bad.batchItemFailures).toEqual([{ itemIdentifier: "m2" }]);
  });

  it("a duplicate delivery of the same schedule sends the same clientToken (ECS starts no second task)", async () => {
    rdsAvailable();
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: "arn:t" }] });
    const launch = createLauncher(deps());
    await launch(scheduled);
    await launch(scheduled);
    await launch({ ...scheduled, scheduledTime: "2026-11-22T02:00:00Z" });
    const tokens = runTasks().map((i) => i.clientToken);
    expect(tokens[0]).toBe(tokens[1]);
    expect(tokens[2]).not.toBe(tokens[0]);
    expect(tokens[0]).toHaveLength(64);
  });

  it("manual events: one target, several, or all; manual runs are never deduplicated", async () => {
    rdsAvailable();
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: "arn:t" }] });
    const launch = createLauncher(deps());
    expect((await launch({ target: "staging", reason: "before migration" })).launched.map((l) => l.target)).toEqual(["staging"]);
    expect((await launch({ targets: ["staging", "prod"] })).launched.map((l) => l.target)).toEqual(["staging", "prod"]);
    expect((await launch({ all: true })).launched.map((l) => l.target)).toEqual(Object.keys(cloudConfig.targets));
    const inputs = runTasks();
    expect(inputs).toHaveLength(3 + Object.keys(cloudConfig.targets).length);
    expect(new Set(inputs.map((i) => i.clientToken)).size).toBe(inputs.length);
    expect(inputs.every((i) => i.overrides!.containerOverrides![0]!.environment!.some((e) => e.name === "LIFEBOAT_TRIGGER" && e.value === "manual"))).toBe(true);
    // the staging target has no aws sizing: no cpu/memory overrides, the task definition's defaults apply
    expect(inputs[0]!.overrides).not.toHaveProperty("cpu");
  });

  it("a drill (mode verify) starts the runner in verify mode, skips the RDS check, and is deduplicated apart from the backup", async () => {
    rdsAvailable();
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: "arn:t" }] });
    const launch = createLauncher(deps());
    await launch({ ...scheduled, mode: "verify" });
    await launch(scheduled);
    const [drill, backup] = runTasks();
    expect(drill!.overrides!.containerOverrides![0]!.environment).toContainEqual({ name: "LIFEBOAT_MODE", value: "verify" });
    expect(drill!.startedBy).toBe("lbv-prod");
    expect(backup!.startedBy).toBe("lb-prod");
    expect(backup!.overrides!.containerOverrides![0]!.environment!.map((e) => e.name)).not.toContain("LIFEBOAT_MODE");
    expect(drill!.clientToken).not.toBe(backup!.clientToken);
    expect(rds.commandCalls(DescribeDBInstancesCommand)).toHaveLength(1); // only for the backup
    await launch({ target: "staging", mode: "verify", reason: "quarterly drill" });
    expect(runTasks()[2]!.overrides!.containerOverrides![0]!.environment).toContainEqual({ name: "LIFEBOAT_MODE", value: "verify" });
  });

  it("an unknown target is an error that lists the known ones; a malformed event shows the accepted forms", async () => {
    const launch = createLauncher(deps());
    await expect(launch({ target: "nope" })).rejects.toMatchObject({ message: 'unknown target "nope"', hint: `known targets: ${Object.keys(cloudConfig.targets).join(", ")}` });
    await expect(launch({ targets: ["prod", "x", "y"] })).rejects.toMatchObject({ message: 'unknown targets "x", "y"' });
    await expect(launch({ tagret: "prod" })).rejects.toMatchObject({ hint: expect.stringContaining('{"target":"prod"}, {"targets":["prod","staging"]} or {"all":true}') });
    expect(runTasks()).toEqual([]);
  });

  it("an RDS instance that is not available is reported as backup.failed with its status, not launched", async () => {
    rdsAvailable("stopped");
    const result = await createLauncher(deps())(scheduled);
    expect(result.launched).toEqual([]);
    expect(result.failed).toEqual([{ target: "prod", runId: runIdFor("prod", scheduled.scheduledTime), code: "rds_not_available", error: 'RDS instance "acme-prod" is stopped: it does not serve connections' }]);
    expect(runTasks()).toEqual([]);
    const [msg] = published();
    expect(msg!.TopicArn).toBe(TOPIC);
    expect(msg!.MessageAttributes).toEqual({
      type: { DataType: "String", StringValue: "backup.failed" },
      target: { DataType: "String", StringValue: "prod" },
      status: { DataType: "String", StringValue: "failed" },
    });
    expect(JSON.parse(msg!.Message!)).toMatchObject({ version: 1, type: "backup.failed", target: "prod", trigger: "schedule", error: { code: "rds_not_available" } });
  });

  it("a RunTask that ECS refuses for capacity is retried with backoff; still refused after the attempts, it is reported as backup.failed", async () => {
    ecs.on(RunTaskCommand).resolves({ tasks: [], failures: [{ reason: "RESOURCE:MEMORY", detail: "no capacity" }] });
    const result = await createLauncher(deps())({ target: "staging" });
    expect(runTasks()).toHaveLength(3);
    expect(new Set(runTasks().map((i) => i.clientToken)).size).toBe(1); // the same idempotency token each time
    expect(result.failed[0]).toMatchObject({ target: "staging", code: "launch_failed", error: "could not start the runner task: ECS did not start the task: RESOURCE:MEMORY (no capacity)" });
    expect(JSON.parse(published()[0]!.Message!).error.message).toContain("RESOURCE:MEMORY");
  });

  it("capacity and throttling are passing: the retry starts the task and nobody is told of a failure", async () => {
    ecs
      .on(RunTaskCommand)
      .resolvesOnce({ tasks: [], failures: [{ reason: "Capacity is unavailable at this time" }] })
      .rejectsOnce(Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException" }))
      .resolves({ tasks: [{ taskArn: "arn:aws:ecs:eu-west-1:123456789012:task/lifeboat/ok" }] });
    const result = await createLauncher(deps())({ target: "staging" });
    expect(result.launched.map((l) => l.taskArn)).toEqual(["arn:aws:ecs:eu-west-1:123456789012:task/lifeboat/ok"]);
    expect(runTasks()).toHaveLength(3);
    expect(published()).toEqual([]);
  });

  it("a run of the target still going: the launcher starts no second task and reports the skip", async () => {
    ecs.on(ListTasksCommand, { cluster: settings.cluster, startedBy: "lb-staging", desiredStatus: "RUNNING" }).resolves({ taskArns: ["arn:aws:ecs:eu-west-1:123456789012:task/lifeboat/old"] });
    ecs.on(DescribeTasksCommand).resolves({
      tasks: [{ taskArn: "arn:aws:ecs:eu-west-1:123456789012:task/lifeboat/old", overrides: { containerOverrides: [{ name: "runner", environment: [{ name: "LIFEBOAT_RUN_ID", value: "yesterday" }] }] } }],
    });
    const result = await createLauncher(deps())({ source: "lifeboat.schedule", target: "staging", scheduledTime: "2026-11-21T06:00:00Z" });
    expect(runTasks()).toEqual([]);
    expect(result.failed).toEqual([{ target: "staging", runId: runIdFor("staging", "2026-11-21T06:00:00Z"), code: "previous_run_running", error: expect.stringContaining('the previous run of "staging" is still going (arn:aws:ecs:eu-west-1:123456789012:task/lifeboat/old)') }]);
    expect(JSON.parse(published()[0]!.Message!)).toMatchObject({ type: "backup.failed", error: { code: "previous_run_running" } });
  });

  it("a duplicate delivery of a schedule whose task is already going is not a skip: nothing started, nothing reported", async () => {
    const runId = runIdFor("staging", "2026-11-21T06:00:00Z");
    ecs.on(ListTasksCommand).resolves({ taskArns: ["arn:t-first"] });
    ecs.on(DescribeTasksCommand).resolves({ tasks: [{ taskArn: "arn:t-first", overrides: { containerOverrides: [{ name: "runner", environment: [{ name: "LIFEBOAT_RUN_ID", value: runId }] }] } }] });
    const result = await createLauncher(deps())({ source: "lifeboat.schedule", target: "staging", scheduledTime: "2026-11-21T06:00:00Z" });
    expect(result).toEqual({ launched: [{ target: "staging", runId, taskArn: "arn:t-first" }], failed: [] });
    expect(runTasks()).toEqual([]);
    expect(published()).toEqual([]);
  });
});

describe("watcher", () => {
  beforeEach(() => calls.as("watcher"));
  const stopped = (exitCode: number | undefined, attempt: string, target = "prod", extra: Record<string, unknown> = {}) => ({
    version: "0",
    id: "e1",
    "detail-type": "ECS Task State Change",
    source: "aws.ecs",
    account: "123456789012",
    time: "2026-11-21T02:10:00Z",
    region: "eu-west-1",
    resources: ["arn:aws:ecs:eu-west-1:123456789012:task/lifeboat/abc"],
    detail: {
      taskArn: "arn:aws:ecs:eu-west-1:123456789012:task/lifeboat/abc",
      lastStatus: "STOPPED",
      stopCode: "EssentialContainerExited",
      stoppedReason: "Essential container in task exited",
      containers: [{ name: "runner", ...(exitCode === undefined ? {} : { exitCode }), reason: exitCode === 137 ? "OutOfMemoryError: Container killed due to memory usage" : undefined }],
      overrides: {
        containerOverrides: [
          {
            name: "runner",
            environment: [
              { name: "LIFEBOAT_TARGET", value: target },
              { name: "LIFEBOAT_RUN_ID", value: "run-123" },
              { name: "LIFEBOAT_TRIGGER", value: "schedule" },
              { name: "LIFEBOAT_ATTEMPT", value: attempt },
            ],
          },
        ],
      },
      ...extra,
    },
  });
  const watcher = () => createWatcher({ config, ecs: new ECSClient({ region: "eu-west-1" }), publish: snsPublisher(new SNSClient({ region: "eu-west-1" }), TOPIC), settings, logger, launchRetry });

  it("a runner killed for memory is reported with ECS's reason and relaunched as the next attempt", async () => {
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: "arn:aws:ecs:eu-west-1:123456789012:task/lifeboat/def" }] });
    expect(await watcher()(stopped(137, "1"))).toEqual({ action: "reported", target: "prod", relaunched: "arn:aws:ecs:eu-west-1:123456789012:task/lifeboat/def" });
    const [input] = runTasks();
    expect(input!.overrides!.containerOverrides![0]!.environment).toEqual([
      { name: "LIFEBOAT_TARGET", value: "prod" },
      { name: "LIFEBOAT_RUN_ID", value: "run-123" },
      { name: "LIFEBOAT_TRIGGER", value: "retry" },
      { name: "LIFEBOAT_ATTEMPT", value: "2" },
    ]);
    expect(input!.clientToken).toBe(launchClientToken("prod", "run-123", 2));
    const event = JSON.parse(published()[0]!.Message!);
    expect(event).toMatchObject({ type: "backup.failed", target: "prod", runId: "run-123", attempt: 1, error: { code: "task_killed" } });
    expect(event.error.message).toContain("exit code 137");
    expect(event.error.message).toContain("OutOfMemoryError: Container killed due to memory usage");
    expect(event.error.message).toContain("Relaunched as attempt 2");
  });

  it("a drill that died is relaunched as a drill", async () => {
    ecs.on(RunTaskCommand).resolves({ tasks: [{ taskArn: "arn:t2" }] });
    const event = stopped(137, "1");
    event.detail.overrides.containerOverrides[0]!.environment.push({ name: "LIFEBOAT_MODE", value: "verify" });
    await watcher()(event);
    expect(runTasks()[0]!.overrides!.containerOverrides![0]!.environment).toContainEqual({ name: "LIFEBOAT_MODE", value: "verify" });
  });

  it("a task that never started (image pull error) is reported; on its last attempt it is not relaunched", async () => {
    const res = await watcher()(stopped(undefined, "3", "prod", { stopCode: "TaskFailedToStart", stoppedReason: "CannotPullContainerError: pull image manifest has been retried 5 time(s)" }));
    expect(res).toEqual({ action: "reported", target: "prod" });
    expect(runTasks()).toEqual([]);
    const event = JSON.parse(published()[0]!.Message!);
    expect(event.error.code).toBe("task_not_started");
    expect(event.error.message).toContain("CannotPullContainerError");
    expect(event.error.message).toContain("No attempts left.");
  });

  it("exit 0 and 1 were reported by the runner itself; exit 2 (configuration) is reported but never relaunched", async () => {
    expect(await watcher()(stopped(0, "1"))).toMatchObject({ action: "ignored" });
    expect(await watcher()(stopped(1, "1"))).toMatchObject({ action: "ignored" });
    expect(published()).toEqual([]);
    expect(await watcher()(stopped(2, "1"))).toEqual({ action: "reported", target: "prod" });
    expect(runTasks()).toEqual([]);
    expect(JSON.parse(published()[0]!.Message!).error).toMatchObject({ code: "runner_config_error", kind: "permanent" });
  });

  it("exit 3 (the run ended, its result could not be published) is reported by the watcher, and not run again", async () => {
    expect(await watcher()(stopped(3, "1"))).toEqual({ action: "reported", target: "prod" });
    expect(runTasks()).toEqual([]);
    const event = JSON.parse(published()[0]!.Message!);
    expect(event.error).toMatchObject({ code: "runner_unreported" });
    expect(event.error.message).toContain("lifeboat status prod");
  });

  it("tasks that are not Lifeboat runs, and states other than STOPPED, are ignored", async () => {
    const foreign = stopped(137, "1");
    foreign.detail.overrides.containerOverrides = [];
    expect(await watcher()(foreign)).toEqual({ action: "ignored", why: "not a Lifeboat run" });
    const running = stopped(undefined, "1");
    running.detail.lastStatus = "RUNNING";
    expect(await watcher()(running)).toEqual({ action: "ignored", why: "status RUNNING" });
    expect(published()).toEqual([]);
  });
});

describe("Slack subscriber Lambda", () => {
  beforeEach(() => calls.as("slack"));
  let server: Server;
  let hookUrl = "";
  const received: any[] = [];
  const answers: number[] = [];
  beforeAll(async () => {
    server = createServer(async (req, res) => {
      let body = "";
      for await (const c of req) body += c;
      received.push(JSON.parse(body));
      const status = answers.shift() ?? 200;
      if (status === 429) res.setHeader("retry-after", "0");
      res.writeHead(status).end();
    });
    await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
    hookUrl = `http://127.0.0.1:${(server.address() as { port: number }).port}/services/T/B/HOOKSECRET`;
  });
  afterAll(() => new Promise<void>((r) => server.close(() => r())));

  const snsEvent = (events: LifeboatEvent[]) => ({
    Records: events.map((e, i) => ({
      EventSource: "aws:sns",
      EventVersion: "1.0",
      EventSubscriptionArn: `${TOPIC}:sub`,
      Sns: {
        Type: "Notification",
        MessageId: `m${i}`,
        TopicArn: TOPIC,
        Subject: "Lifeboat",
        Message: JSON.stringify(e),
        Timestamp: "2026-11-21T02:10:00.000Z",
        SignatureVersion: "1",
        Signature: "x",
        SigningCertUrl: "https://sns.eu-west-1.amazonaws.com/cert.pem",
        UnsubscribeUrl: "https://sns.eu-west-1.amazonaws.com/?Action=Unsubscribe",
        MessageAttributes: { type: { Type: "String", Value: e.type } },
      },
    })),
  });
  const failedEvent: LifeboatEvent = {
    version: 1, type: "backup.failed", status: "failed", time: "2026-11-21T02:10:00Z", target: "prod", runId: "r1", trigger: "schedule", attempt: 3,
    error: { message: "password authentication failed for user \"backup\"", code: "auth_failed", kind: "permanent", attempts: [] },
  };
  const okEvent: LifeboatEvent = {
    version: 1, type: "backup.succeeded", status: "succeeded", time: "2026-11-21T02:10:00Z", target: "prod", runId: "r2", trigger: "schedule", attempt: 1,
    backup: { id: "20261121T020000Z-abcd", location: "s3://acme-backups/pg/prod/x.dump", key: "prod/x.dump", size: 1, sha256: "b".repeat(64), durationMs: 5, format: "custom" },
    restoreCommand: "lifeboat restore prod --backup 20261121T020000Z-abcd --to <postgres-url>",
  };

  it("reads the webhook from SSM once, retries Slack's 429, and posts only the configured outcomes", async () => {
    ssm.on(GetParameterCommand).resolves({ Parameter: { Value: hookUrl } });
    received.length = 0;
    answers.push(429);
    const handler = createSlackHandler({ ssm: new SSMClient({ region: "eu-west-1" }), parameter: "/lifeboat/slack", on: ["failed"], logger, baseDelayMs: 5 });
    expect(await handler(snsEvent([failedEvent, okEvent]))).toEqual({ posted: 1, skipped: 1 });
    expect(await handler(snsEvent([failedEvent]))).toEqual({ posted: 1, skipped: 0 });
    expect(ssm.commandCalls(GetParameterCommand).map((c) => c.args[0].input)).toEqual([{ Name: "/lifeboat/slack", WithDecryption: true }]);
    expect(received).toHaveLength(3); // 429, then success, then the second invocation
    expect(received[1].text).toContain("Backup of *prod* FAILED after 0 attempt(s): auth_failed");
    expect(JSON.stringify(received[1].blocks)).toContain("password authentication failed");
  });

  it("links the stack's CloudWatch dashboard from a failure and an alarm, not from a success", async () => {
    ssm.on(GetParameterCommand).resolves({ Parameter: { Value: hookUrl } });
    received.length = 0;
    const dashboardUrl = "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/lifeboat-production";
    const handler = createSlackHandler({ ssm: new SSMClient({ region: "eu-west-1" }), parameter: "/lifeboat/slack", on: ["failed", "succeeded"], logger, dashboardUrl });
    expect(await handler(snsEvent([failedEvent, okEvent]))).toEqual({ posted: 2, skipped: 0 });
    const link = `<${dashboardUrl}|CloudWatch dashboard of every target>`;
    expect(JSON.stringify(received[0].blocks)).toContain(JSON.stringify(link).slice(1, -1));
    expect(JSON.stringify(received[1].blocks)).not.toContain("CloudWatch dashboard");
    const alarm = { AlarmName: "lifeboat-production-LaunchFailed", AlarmDescription: "Lifeboat: the launcher failed", NewStateValue: "ALARM", NewStateReason: "x", StateChangeTime: "2026-11-21T02:20:00.000+0000" };
    const record = { Records: [{ ...snsEvent([failedEvent]).Records[0]!, Sns: { ...snsEvent([failedEvent]).Records[0]!.Sns, Message: JSON.stringify(alarm), MessageAttributes: {} } }] };
    expect(await handler(record)).toEqual({ posted: 1, skipped: 0 });
    expect(JSON.stringify(received[2].blocks)).toContain("CloudWatch dashboard of every target");
  });

  it("renders the deployment's CloudWatch alarms readably: ALARM as a failure, OK as resolved", async () => {
    ssm.on(GetParameterCommand).resolves({ Parameter: { Value: hookUrl } });
    received.length = 0;
    const alarm = (state: string) => ({
      AlarmName: "lifeboat-production-LaunchFailedAlarm-abc",
      AlarmDescription: "Lifeboat: the launcher failed after its retries (see the LaunchFailures queue)",
      NewStateValue: state,
      NewStateReason: "Threshold Crossed: 1 datapoint [1.0] was greater than the threshold (0.0).",
      StateChangeTime: "2026-11-21T02:20:00.000+0000",
      Region: "EU (Ireland)",
    });
    const record = (m: unknown) => ({ Records: [{ ...snsEvent([failedEvent]).Records[0]!, Sns: { ...snsEvent([failedEvent]).Records[0]!.Sns, Message: JSON.stringify(m), MessageAttributes: {} } }] });
    const handler = createSlackHandler({ ssm: new SSMClient({ region: "eu-west-1" }), parameter: "/lifeboat/slack", on: ["failed"], logger });
    expect(await handler(record(alarm("ALARM")))).toEqual({ posted: 1, skipped: 0 });
    expect(await handler(record(alarm("OK")))).toEqual({ posted: 0, skipped: 1 }); // on: failed only
    expect(received[0].text).toBe(":rotating_light: Lifeboat: the launcher failed after its retries (see the LaunchFailures queue)");
    expect(JSON.stringify(received[0].blocks)).toContain("is ALARM in EU (Ireland)");
    const both = createSlackHandler({ ssm: new SSMClient({ region: "eu-west-1" }), parameter: "/lifeboat/slack", on: ["succeeded", "failed"], logger });
    await both(record(alarm("OK")));
    expect(received[1].text).toMatch(/^:white_check_mark: Resolved: Lifeboat: the launcher failed/);
  });

  it("a missing webhook parameter fails the delivery (Lambda retries it, then its failure destination keeps it), and the next one reads the parameter once it exists", async () => {
    ssm.on(GetParameterCommand).rejects(Object.assign(new Error("Parameter /lifeboat/slack not found."), { name: "ParameterNotFound" }));
    received.length = 0;
    const handler = createSlackHandler({ ssm: new SSMClient({ region: "eu-west-1" }), parameter: "/lifeboat/slack", on: ["failed"], logger, baseDelayMs: 5 });
    await expect(handler(snsEvent([failedEvent]))).rejects.toThrow("Slack: cannot read the SSM parameter /lifeboat/slack (ParameterNotFound): create it with aws ssm put-parameter --type SecureString --name /lifeboat/slack");
    expect(received).toEqual([]);
    ssm.on(GetParameterCommand).resolves({ Parameter: { Value: hookUrl } });
    expect(await handler(snsEvent([failedEvent]))).toEqual({ posted: 1, skipped: 0 });
    expect(received).toHaveLength(1);
  });

  it("rejects an event that is not an SNS event", async () => {
    const handler = createSlackHandler({ ssm: new SSMClient({ region: "eu-west-1" }), parameter: "/lifeboat/slack", on: ["failed"], logger });
    await expect(handler({ hello: "world" })).rejects.toThrow();
  });

  describe("generic webhook subscriber Lambda", () => {
    beforeEach(() => calls.as("webhook"));

    it("POSTs each event's JSON as published, with the URL from SSM, for the configured outcomes", async () => {
      ssm.on(GetParameterCommand).resolves({ Parameter: { Value: hookUrl.replace("/services/T/B/HOOKSECRET", "/ping/TOKEN123") } });
      received.length = 0;
      const handler = createWebhookHandler({ ssm: new SSMClient({ region: "eu-west-1" }), parameter: "/lifeboat/webhook", on: ["succeeded", "failed"], logger, baseDelayMs: 5 });
      expect(await handler(snsEvent([failedEvent, okEvent]))).toEqual({ posted: 2, skipped: 0 });
      expect(received).toEqual([failedEvent, okEvent]);
      expect(ssm.commandCalls(GetParameterCommand).map((c) => c.args[0].input)).toEqual([{ Name: "/lifeboat/webhook", WithDecryption: true }]);
    });
  });
});

describe("the runner container entry point", () => {
  beforeEach(() => calls.as("runner"));
  const dirs: string[] = [];
  afterAll(() => dirs.forEach((d) => rmSync(d, { recursive: true, force: true })));

  /**
   * The deployment's config (test/support/cloud-fixture.ts) with the target's database pointed at the test server,
   * written where LIFEBOAT_CONFIG finds it: what the runner image carries, with a reachable host.
   */
  function entryConfig(target: keyof typeof cloudConfig.targets, database: Record<string, unknown>, opts: { heartbeat?: boolean } = {}) {
    const t = cloudConfig.targets[target] as Record<string, any>;
    const { heartbeat, ...notifications } = cloudConfig.notifications;
    return { ...cloudConfig, notifications: opts.heartbeat ? { ...notifications, heartbeat } : notifications, targets: { [target]: { ...t, database: { ...t.database, ...database } } } };
  }
  function configFile(target: keyof typeof cloudConfig.targets, database: Record<string, unknown>, opts: { heartbeat?: boolean } = {}): string {
    const dir = tempDir("lifeboat-entry-");
    dirs.push(dir);
    const file = join(dir, "lifeboat.config.ts");
    writeFileSync(file, `export default ${JSON.stringify(entryConfig(target, database, opts))};`);
    return file;
  }
  const local = (db: string) => ({ host: "127.0.0.1", port: pg().port, database: db });
  const password = (target: string) => ssm.on(GetParameterCommand, { Name: `/lifeboat/${target}/pw`, WithDecryption: true }).resolves({ Parameter: { Value: pg().password } });
  const runEnv = (file: string, target: string, extra: Record<string, string> = {}) => ({
    ...process.env,
    LIFEBOAT_CONFIG: file,
    LIFEBOAT_TARGET: target,
    LIFEBOAT_TRIGGER: "schedule",
    LIFEBOAT_ATTEMPT: "1",
    LIFEBOAT_BUCKET: s3().bucket,
    LIFEBOAT_TOPIC_ARN: TOPIC,
    ...extra,
  });

  it("runs a target from the deployed config against real PostgreSQL and S3, publishes to SNS, reads the password from SSM", async () => {
    const db = unique("entry");
    await createDatabase(db, "create table t as select g from generate_series(1, 100) g;");
    password("entry");
    const lines: Array<{ level: string; msg: string; fields: Record<string, unknown> }> = [];
    // the ECS task metadata endpoint v4, as Fargate serves it to the container (the fields the runner reads)
    const metadata = createServer((req, res) => {
      const body = req.url === "/v4/abc/task" ? { TaskARN: "arn:aws:ecs:eu-west-1:123456789012:task/lifeboat/0f1e2d3c4b5a" } : { LogOptions: { "awslogs-group": "/sst/cluster/lifeboat-production/Runner", "awslogs-region": "eu-west-1", "awslogs-stream": "runner/runner/0f1e2d3c4b5a" } };
      res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify(body));
    });
    await new Promise<void>((r) => metadata.listen(0, "127.0.0.1", r));
    const ecsMetadata = `http://127.0.0.1:${(metadata.address() as { port: number }).port}/v4/abc`;
    // as deployed: the config from the bucket (checked against its hash), no config file
    const { LIFEBOAT_CONFIG: _file, ...env } = runEnv("", "entry", { ...(await deployConfig(entryConfig("entry", local(db)))), LIFEBOAT_RUN_ID: "run-e", LIFEBOAT_STAGE: "production", AWS_REGION: "eu-west-1", ECS_CONTAINER_METADATA_URI_V4: ecsMetadata });
    const code = await runnerMain(env, {
      log: (level, msg, fields = {}) => void lines.push({ level, msg, fields }),
    }).finally(() => metadata.close());
    expect(code, JSON.stringify(lines)).toBe(0);
    // every log line of the run carries its id and target
    expect(lines.length).toBeGreaterThan(2);
    expect(lines.filter((l) => l.fields.runId !== "run-e" || l.fields.target !== "entry")).toEqual([]);
    const keys = await s3Keys("pg/entry/");
    expect(keys.map((k) => k.replace(/\d{4}\/\d{2}\/\d{2}\/\d{8}T\d{6}Z-[0-9a-f]{4}/, "<id>").replace(/\d{8}T\d{6}Z-[0-9a-f]{8}\.json$/, "<run>.json"))).toEqual([
      "pg/entry/.lifeboat-last-run.json",
      "pg/entry/.lifeboat-latest.json",
      "pg/entry/.lifeboat-runs/<run>.json",
      "pg/entry/<id>.dump",
      "pg/entry/<id>.manifest.json",
    ]);
    const [msg] = published();
    expect(msg!.MessageAttributes!.type!.StringValue).toBe("backup.succeeded");
    // an e-mail subscriber reads the subject and the first line: the outcome in words
    expect(msg!.Subject).toMatch(/^Lifeboat: Backup of entry succeeded \(\d+(\.\d+)? [KM]?i?B in .+\)$/);
    expect(msg!.Message!.split("\n").slice(0, 2)).toEqual(["{", expect.stringMatching(/^ {2}"summary": "Backup of entry succeeded \(/)]);
    expect(JSON.parse(msg!.Message!)).toMatchObject({ target: "entry", runId: "run-e", trigger: "schedule", attempt: 1 });
    expect(msg!.Message).not.toContain(pg().password);
    // where it ran: stage, region, task, and a link to this task's log stream
    expect(JSON.parse(msg!.Message!).origin).toEqual({
      stage: "production",
      region: "eu-west-1",
      task: "arn:aws:ecs:eu-west-1:123456789012:task/lifeboat/0f1e2d3c4b5a",
      logs: "https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Fsst$252Fcluster$252Flifeboat-production$252FRunner/log-events/runner$252Frunner$252F0f1e2d3c4b5a",
    });
    const slack = renderSlackMessage(JSON.parse(msg!.Message!));
    expect(JSON.stringify(slack.blocks.at(-1))).toContain("stage *production* · eu-west-1 · task `0f1e2d3c4b5a` · <https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#logsV2:log-groups/log-group/$252Fsst");
  });

  it("a target whose password is an RDS-managed secret in Secrets Manager: one field of its JSON, read by the runner", async () => {
    const db = unique("vault");
    await createDatabase(db, "create table t as select g from generate_series(1, 10) g;");
    sm.on(GetSecretValueCommand, { SecretId: VAULT_SECRET }).resolves({ SecretString: JSON.stringify({ username: "postgres", password: pg().password }) });
    const { LIFEBOAT_CONFIG: _file, ...env } = runEnv("", "vault", await deployConfig(entryConfig("vault", local(db))));
    const lines: string[] = [];
    expect(await runnerMain(env, { log: (_l, m, f) => void lines.push(`${m} ${JSON.stringify(f ?? {})}`) }), lines.join("\n")).toBe(0);
    expect(sm.commandCalls(GetSecretValueCommand).map((c) => c.args[0].input)).toEqual([{ SecretId: VAULT_SECRET }]);
    expect((await s3Keys("pg/vault/")).some((k) => k.endsWith(".manifest.json"))).toBe(true);
    expect(lines.join("\n")).not.toContain(pg().password);
  });

  it("pings the heartbeat as the run starts and when it succeeded, with the URL read from SSM (its own parameter)", async () => {
    const hb = await startRecorder();
    const pings = hb.requests;
    try {
      const db = unique("entryhb");
      await createDatabase(db, "create table t as select g from generate_series(1, 10) g;");
      password("entry");
      ssm.on(GetParameterCommand, { Name: "/lifeboat/heartbeat", WithDecryption: true }).resolves({ Parameter: { Value: `${hb.url}/ping/HBKEY` } });
      const lines: string[] = [];
      const code = await runnerMain(runEnv(configFile("entry", local(db), { heartbeat: true }), "entry"), { log: (_l, msg, f) => void lines.push(`${msg} ${JSON.stringify(f ?? {})}`) });
      expect(code, lines.join("\n")).toBe(0);
      expect(pings).toEqual(["GET /ping/HBKEY/start", "GET /ping/HBKEY"]);
      expect(ssm.commandCalls(GetParameterCommand).map((c) => c.args[0].input.Name).sort()).toEqual(["/lifeboat/entry/pw", "/lifeboat/heartbeat"]);
      expect(lines.join("\n")).not.toContain("HBKEY");
    } finally {
      await hb.close();
    }
  });

  it("an RDS target: the endpoint from DescribeDBInstances, TLS verified against the CA bundle the image carries", async () => {
    const db = unique("rdsprod");
    await createDatabase(db, "create table t as select g from generate_series(1, 10) g;");
    password("rdsprod");
    // the test server's certificate is for "localhost", signed by the test CA (test/support/global-setup.ts)
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: "acme-orders" }).resolves({ DBInstances: [{ DBInstanceStatus: "available", Endpoint: { Address: "localhost", Port: pg().port } }] });
    const dir = tempDir("lifeboat-ca-");
    dirs.push(dir);
    const bundle = join(dir, "rds-global-bundle.pem");
    writeFileSync(bundle, pg().caCert);
    const file = configFile("rdsprod", { database: db });
    const lines: string[] = [];
    const log = { log: (_l: string, m: string, f?: Record<string, unknown>) => void lines.push(`${m} ${JSON.stringify(f ?? {})}`) };
    expect(await runnerMain(runEnv(file, "rdsprod", { LIFEBOAT_RDS_CA_BUNDLE: bundle }), log), lines.join("\n")).toBe(0);
    expect(rds.commandCalls(DescribeDBInstancesCommand).map((c) => c.args[0].input)).toEqual([{ DBInstanceIdentifier: "acme-orders" }]);
    expect(JSON.parse(published()[0]!.Message!)).toMatchObject({ type: "backup.succeeded", target: "rdsprod" });

    // a server whose certificate the bundle does not vouch for is refused (verify-full), and reported
    sns.resetHistory();
    const otherCa = join(dir, "other-ca.pem");
    execFileSync("openssl", ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=Another CA", "-keyout", join(dir, "other.key"), "-out", otherCa], { stdio: "pipe" });
    expect(await runnerMain(runEnv(file, "rdsprod", { LIFEBOAT_RDS_CA_BUNDLE: otherCa }), { log: () => {} })).toBe(1);
    const failed = JSON.parse(published()[0]!.Message!);
    expect(failed).toMatchObject({ type: "backup.failed", target: "rdsprod" });
    expect(failed.error.message).toContain("certificate verify failed");
  });

  it("a target with keepLast: the runner prunes it after each successful backup", async () => {
    const db = unique("kept");
    await createDatabase(db, "create table t (i int);");
    password("kept");
    const file = configFile("kept", local(db));
    for (let i = 0; i < 3; i++) expect(await runnerMain(runEnv(file, "kept"), { log: () => {} })).toBe(0);
    const manifests = (await s3Keys("pg/kept/")).filter((k) => k.endsWith(".manifest.json"));
    expect(manifests).toHaveLength(2);
    expect((await s3Keys("pg/kept/")).filter((k) => k.endsWith(".dump"))).toHaveLength(2);
  });

  it("a target with copies: each run writes them (an AWS bucket as the target's role, another provider with keys from SSM), prunes the one with a retention, and a copy that fails is published as backup.copy_failed", async () => {
    const db = unique("copied");
    await createDatabase(db, "create table t as select g, md5(g::text) as note from generate_series(1, 2000) g;");
    password("copied");
    // the AWS copy bucket, on the same local S3 as the deployment's bucket (another account's, once deployed)
    await s3Client().send(new CreateBucketCommand({ Bucket: "acme-offsite", ObjectLockEnabledForBucket: true })).catch((e: Error) => { if (e.name !== "BucketAlreadyOwnedByYou") throw e; });
    // the other provider: its own S3 server, its own keys (from SSM)
    const r2 = await startEmbeddedS3({ bucket: "acme-r2" });
    try {
      ssm.on(GetParameterCommand, { Name: "/lifeboat/copied/r2-key-id", WithDecryption: true }).resolves({ Parameter: { Value: r2.accessKeyId } });
      ssm.on(GetParameterCommand, { Name: "/lifeboat/copied/r2-secret", WithDecryption: true }).resolves({ Parameter: { Value: r2.secretAccessKey } });
      const config = entryConfig("copied", local(db));
      // the R2 copy pruned by the runner here (the fixture leaves it to its store): a prune that fails is told too
      const copies = (cloudConfig.targets.copied.copies as readonly any[]).map((c) => (c.name === "r2" ? { ...c, retention: { keepLast: 5 }, s3: { ...c.s3, endpoint: r2.endpoint } } : c));
      const file = configFile("copied", local(db));
      writeFileSync(file, `export default ${JSON.stringify({ ...config, targets: { copied: { ...config.targets.copied!, copies } } })};`);
      const lines: string[] = [];
      const log = { log: (_l: string, m: string, f?: Record<string, unknown>) => void lines.push(`${m} ${JSON.stringify(f ?? {})}`) };
      for (let i = 0; i < 2; i++) expect(await runnerMain(runEnv(file, "copied", { LIFEBOAT_RUN_ID: `copied-${i}` }), log), lines.join("\n")).toBe(0);
      const manifests = (keys: string[]) => keys.filter((k) => k.endsWith(".manifest.json")).map((k) => k.split("/").pop());
      const primary = manifests(await s3Keys("pg/copied/"));
      expect(primary).toHaveLength(2);
      // the AWS copy keeps 1 (its own keepLast, pruned by the runner); the other provider's is left to its store
      const listed = async (store: S3Store) => {
        const keys: string[] = [];
        for await (const o of store.list("copied/")) keys.push(o.key);
        return keys;
      };
      const [newest] = await listBackups(new S3Store({ bucket: s3().bucket, prefix: "pg" }, s3Client()), "copied");
      const offsite = await listed(new S3Store({ bucket: "acme-offsite", prefix: "pg" }, s3Client()));
      expect(manifests(offsite)).toEqual([`${newest!.id}.manifest.json`]);
      // its objectLock: every object it holds is retained 30 days from its write, in GOVERNANCE mode
      for (const key of offsite) {
        const head = await s3Client().send(new HeadObjectCommand({ Bucket: "acme-offsite", Key: `pg/${key}` }));
        expect(head.ObjectLockMode, key).toBe("GOVERNANCE");
        expect(Math.abs(head.ObjectLockRetainUntilDate!.getTime() - (Date.now() + 30 * 86_400_000))).toBeLessThan(10 * 60_000);
      }
      const other = new S3Store({ bucket: "acme-r2", prefix: "pg", endpoint: r2.endpoint }, Object.assign(new S3Client({ ...s3ClientConfig({ bucket: "acme-r2", endpoint: r2.endpoint }), credentials: { accessKeyId: r2.accessKeyId, secretAccessKey: r2.secretAccessKey } }), { [Symbol.for("lifeboat.test-client")]: true }));
      expect(manifests(await listed(other)).sort()).toEqual(primary.sort());
      // the other provider down: the backup still counts (exit 0), the copy's failure is published for Slack and webhooks
      await r2.stop();
      sns.resetHistory();
      expect(await runnerMain(runEnv(file, "copied", { LIFEBOAT_RUN_ID: "copied-down" }), log), lines.join("\n")).toBe(0);
      const events = published().map((p) => JSON.parse(p.Message!) as LifeboatEvent);
      expect(events.map((e) => e.type).sort()).toEqual(["backup.copy_failed", "backup.prune_failed", "backup.succeeded"]);
      expect(events.find((e) => e.type === "backup.copy_failed")).toMatchObject({ target: "copied", status: "failed", copy: { name: "r2" } });
      expect(events.find((e) => e.type === "backup.prune_failed")).toMatchObject({ target: "copied", status: "failed", runId: "copied-down", prune: { store: "r2", repair: "lifeboat prune copied" } });
      expect(manifests(await s3Keys("pg/copied/"))).toHaveLength(3);
    } finally {
      await r2.stop().catch(() => {});
    }
  });

  it("a result that cannot be published (SNS refuses) makes the runner exit 3, for the watcher to report", async () => {
    const db = unique("unpub");
    await createDatabase(db, "create table t (i int);");
    password("entry");
    sns.on(PublishCommand).rejects(Object.assign(new Error("the topic is gone"), { name: "NotFoundException" }));
    const lines: string[] = [];
    const code = await runnerMain(runEnv(configFile("entry", local(db)), "entry"), { log: (_l, m) => void lines.push(m) });
    expect(code).toBe(3);
    expect(lines).toContain("the run's result could not be published");
  });

  it("in verify mode, drills the target's latest (encrypted) backup in a throwaway cluster, with the identity from SSM, and publishes backup.verified", async () => {
    const db = unique("drill");
    await createDatabase(db, "create table t as select g from generate_series(1, 250) g;");
    password("drill");
    const { identity, recipient } = await generateIdentity();
    const file = configFile("drill", local(db));
    writeFileSync(file, readFileSync(file, "utf8").replace(cloudConfig.targets.drill.encryption.recipients[0], recipient));
    const quiet = { log: () => {} };
    expect(await runnerMain(runEnv(file, "drill"), quiet)).toBe(0);
    // the backup reads no identity: only the drill does
    expect(ssm.commandCalls(GetParameterCommand).map((c) => c.args[0].input.Name)).toEqual(["/lifeboat/drill/pw"]);
    const [stored] = (await s3Keys("pg/drill/")).filter((k) => k.endsWith(".dump"));
    const body = await s3Client().send(new GetObjectCommand({ Bucket: TEST_BUCKET, Key: stored! }));
    expect(Buffer.from(await body.Body!.transformToByteArray()).subarray(0, 21).toString()).toBe("age-encryption.org/v1");

    // without the identity in SSM the drill fails and says so (a person is told: backup.verify_failed)
    ssm.on(GetParameterCommand, { Name: "/lifeboat/drill/age-identity", WithDecryption: true }).rejects(Object.assign(new Error("Parameter /lifeboat/drill/age-identity not found."), { name: "ParameterNotFound" }));
    expect(await runnerMain(runEnv(file, "drill", { LIFEBOAT_MODE: "verify", LIFEBOAT_RUN_ID: "drill-0" }), quiet)).toBe(1);

    ssm.on(GetParameterCommand, { Name: "/lifeboat/drill/age-identity", WithDecryption: true }).resolves({ Parameter: { Value: `# lifeboat drill identity\n${identity}\n` } });
    expect(await runnerMain(runEnv(file, "drill", { LIFEBOAT_MODE: "verify", LIFEBOAT_RUN_ID: "drill-1" }), quiet)).toBe(0);
    const events = published().map((p) => JSON.parse(p.Message!));
    expect(events.map((e) => e.type)).toEqual(["backup.succeeded", "backup.verify_failed", "backup.verified"]);
    expect(events[1].verification.failures).toEqual([expect.stringMatching(/^decrypt: .*\/lifeboat\/drill\/age-identity.*an identity is needed/)]);
    expect(events.at(-1)).toMatchObject({ type: "backup.verified", target: "drill", runId: "drill-1", verification: { tables: 1, failures: [] } });
    expect(JSON.stringify(events)).not.toContain("AGE-SECRET-KEY");
    // each drill's verdict is an object of its own, never replaced: the failed one stays beside the passed one
    expect((await s3Keys("pg/drill/")).filter((k) => k.endsWith(".verify.json"))).toHaveLength(2);
  });

  it("in verify mode, a target with no backup yet is a clear failure (exit 1), published as backup.verify_failed", async () => {
    const dir = tempDir("lifeboat-entry-");
    dirs.push(dir);
    const file = join(dir, "lifeboat.config.ts");
    writeFileSync(file, `export default { storage: { directory: ${JSON.stringify(join(dir, "store"))} }, targets: { empty: { database: { url: "postgres://u@h/d" } } } };`);
    const lines: string[] = [];
    const message = `no backup of "empty" to drill in ${pathToFileURL(join(dir, "store")).href}`;
    expect(await runnerMain({ LIFEBOAT_CONFIG: file, LIFEBOAT_TARGET: "empty", LIFEBOAT_MODE: "verify", LIFEBOAT_TOPIC_ARN: TOPIC, LIFEBOAT_RUN_ID: "drill-none" }, { log: (_l, m) => void lines.push(m) })).toBe(1);
    expect(lines).toEqual([message]);
    const events = published().map((p) => JSON.parse(p.Message!));
    expect(events).toEqual([expect.objectContaining({ type: "backup.verify_failed", status: "failed", target: "empty", runId: "drill-none", verification: expect.objectContaining({ failures: [message] }) })]);
  });

  it("an unknown target exits 2", async () => {
    const dir = tempDir("lifeboat-entry-");
    dirs.push(dir);
    writeFileSync(join(dir, "lifeboat.config.ts"), `export default { storage: { directory: "/tmp/x" }, targets: { a: { database: { url: "postgres://u@h/d" } } } };`);
    const lines: string[] = [];
    expect(await runnerMain({ LIFEBOAT_CONFIG: join(dir, "lifeboat.config.ts"), LIFEBOAT_TARGET: "b" }, { log: (_l, m) => void lines.push(m) })).toBe(2);
    expect(lines).toEqual(['unknown target "b"']);
  });
});

describe("the runner's store calls on its failure paths (recorded for the IAM check)", () => {
  beforeEach(() => calls.as("runner"));
  const entry = () => {
    const t = config.targets.entry!;
    return { ...t, retries: { ...t.retries, attempts: 1 } };
  };

  it("a dump whose manifest cannot be written is deleted by the runner, even for a target it never prunes", async () => {
    const db = unique("nomanifest");
    await createDatabase(db, "create table t as select g from generate_series(1, 100) g;");
    const real = new S3Store({ bucket: s3().bucket, prefix: "pg" });
    const store = Object.assign(Object.create(real) as S3Store, {
      put: (key: string, body: Readable, opts?: Record<string, unknown>) =>
        key.endsWith(".manifest.json") ? Promise.reject(Object.assign(new Error("We encountered an internal error."), { name: "InternalError" })) : real.put(key, body, opts),
    });
    const before = await s3Keys("pg/entry/");
    const err = await runTargetBackups(entry(), { target: "entry", resolveSource: async () => conn(db), store }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((await s3Keys("pg/entry/")).filter((k) => !before.includes(k) && !k.includes("/.lifeboat-"))).toEqual([]);
  });

  it("an upload that fails after its first part: the multipart upload is aborted and the pending uploads checked", async () => {
    const db = unique("midupload");
    // about 16 MB of text that compresses poorly: several 5 MiB parts
    await createDatabase(db, "create table t as select g, md5(random()::text) || md5(random()::text) || md5(random()::text) as v from generate_series(1, 200000) g;");
    const real = new S3Store({ bucket: s3().bucket, prefix: "pg" });
    const store = Object.assign(Object.create(real) as S3Store, {
      put: (key: string, body: Readable, opts?: Record<string, unknown>) => {
        let seen = 0;
        const failing = new Transform({
          transform(chunk: Buffer, _enc, done) {
            seen += chunk.length;
            done(seen > 11 * 1024 * 1024 ? new Error("the dump stream broke") : null, chunk);
          },
        });
        body.on("error", (e) => failing.destroy(e));
        return real.put(key, body.pipe(failing), { ...opts, expectedBytes: 64 * 1024 * 1024 });
      },
    });
    const err = await runTargetBackups(entry(), { target: "entry", resolveSource: async () => conn(db), store }).catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect(await s3PendingUploads("pg/entry/")).toEqual([]);
  });
});

describe("the freshness check Lambda", () => {
  beforeEach(() => calls.as("freshness"));

  it("publishes backup.missed once per fire time that produced no backup, from the bucket's manifests; a second run publishes nothing", async () => {
    // a real backup of "staging" (rate(6 hours)) in the bucket, under the deployment's prefix, made as the runner would
    calls.as("runner");
    const db = unique("fresh");
    await createDatabase(db, "create table t (i int);");
    const store = new S3Store({ bucket: s3().bucket, prefix: "pg" });
    const staging = config.targets.staging!;
    const { results } = await runTargetBackups({ ...staging, retries: { ...staging.retries, attempts: 1 } }, { target: "staging", resolveSource: async () => conn(db), store });
    const started = Date.parse(results[0]!.result!.manifest.startedAt);
    // two days later: fire times every 6 hours after the backup, reported once their grace (6 h 30 min) has passed
    const now = () => new Date(started + 48 * 3_600_000);
    calls.as("freshness");
    const ages = new Map<string, number | undefined>();
    const check = createFreshnessCheck({ config, store, publish: snsPublisher(new SNSClient({ region: "eu-west-1" }), TOPIC), logger, now, age: (t, s) => void ages.set(t, s) });
    const first = await check({});
    // each scheduled target's newest backup age, for the dashboard (none for a target never backed up)
    expect(Object.fromEntries(ages)).toEqual({ prod: undefined, staging: 48 * 3600 });
    expect(backupAgeMetrics("staging", 48 * 3600)!.serializeMetrics()).toMatchObject({ Target: "staging", NewestBackupAge: 172800, service: "runner" });
    expect(backupAgeMetrics("prod", undefined)).toBeUndefined();
    expect(first.missed.map((m) => m.target)).toEqual(["staging", "staging", "staging", "staging", "staging", "staging"]);
    expect(first.missed.map((m) => Date.parse(m.fireTime) - started)).toEqual([6, 12, 18, 24, 30, 36].map((h) => h * 3_600_000));
    const events = published().map((p) => ({ attrs: p.MessageAttributes, body: JSON.parse(p.Message!) }));
    expect(events).toHaveLength(6);
    expect(events[0]!.attrs).toEqual({
      type: { DataType: "String", StringValue: "backup.missed" },
      target: { DataType: "String", StringValue: "staging" },
      status: { DataType: "String", StringValue: "failed" },
    });
    expect(events[5]!.body).toMatchObject({
      version: 1,
      type: "backup.missed",
      target: "staging",
      trigger: "freshness",
      missed: { schedule: "rate(6 hours)", timezone: "UTC", graceMinutes: 390, newestBackup: { id: results[0]!.result!.manifest.id, ageMs: 48 * 3_600_000 } },
    });
    // the next run of the check (and any other process) reports nothing twice
    expect((await check({})).missed).toEqual([]);
    expect(published()).toHaveLength(6);
    // targets never backed up are watched from the first check: nothing from before it
    expect((await s3Keys("pg/prod/.lifeboat-missed/")).map((k) => k.split("/").pop())).toEqual(["since.json"]);
  });
});

describe("metrics", () => {
  it("emits EMF with the target as a dimension", () => {
    const m = backupMetrics({
      version: 1, type: "backup.succeeded", status: "succeeded", time: "", target: "prod", runId: "r", trigger: "schedule", attempt: 1,
      backup: { id: "i", location: "l", key: "k", size: 4096, sha256: "c".repeat(64), durationMs: 1234, format: "custom" }, restoreCommand: "",
    }).serializeMetrics();
    expect(m._aws.CloudWatchMetrics[0]).toEqual({
      Namespace: "Lifeboat",
      Dimensions: [["service", "Target"]],
      Metrics: [
        { Name: "BackupSucceeded", Unit: "Count" },
        { Name: "BackupDuration", Unit: "Milliseconds" },
        { Name: "BackupBytes", Unit: "Bytes" },
      ],
    });
    expect(m).toMatchObject({ Target: "prod", BackupSucceeded: 1, BackupDuration: 1234, BackupBytes: 4096 });
  });

  it("the Lambdas' publishers emit each event's metric after publishing it (a missed fire time, a failure the watcher reports)", async () => {
    const published: string[] = [];
    const lines: string[] = [];
    const write = process.stdout.write.bind(process.stdout);
    const spy = (chunk: unknown) => (lines.push(String(chunk)), true);
    const log = console.log;
    process.stdout.write = spy as typeof process.stdout.write;
    console.log = (...a: unknown[]) => void lines.push(a.map(String).join(" "));
    try {
      await withMetrics(async (e) => void published.push(e.type))({ version: 1, type: "backup.missed", status: "failed", time: "", target: "prod", runId: "r", trigger: "schedule", attempt: 1, missed: { fireTime: "2026-12-03T02:00:00Z", schedule: "rate(1 day)", checkedAt: "" } } as unknown as LifeboatEvent);
    } finally {
      process.stdout.write = write;
      console.log = log;
    }
    expect(published).toEqual(["backup.missed"]);
    const emf = lines.map((l) => l.trim()).filter((l) => l.startsWith("{")).map((l) => JSON.parse(l));
    expect(emf).toEqual([expect.objectContaining({ Target: "prod", BackupMissed: 1, service: "runner" })]);
    // a publish that fails emits nothing (the event did not go out)
    await expect(withMetrics(async () => Promise.reject(new Error("SNS down")))({ target: "prod", type: "backup.missed" } as unknown as LifeboatEvent)).rejects.toThrow("SNS down");
  });
});
