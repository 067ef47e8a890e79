import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LAUNCH_DELIVERIES, parseConfig, runnerRoleName, sha256Hex, type LifeboatEvent } from "@lifeboat/core";
import { backupMetrics } from "@lifeboat/runner";
import exampleConfig from "../lifeboat.config";
import { REPO } from "./support/helpers.js";
import { assertLeastPrivilege, statements } from "./support/least-privilege.js";
import { ACCOUNT, one, ofType, synthesize, unwrap, type Recorded } from "./support/sst-synth.js";

/** The example lifeboat.config.ts, synthesized under Pulumi mocks: what a user would deploy. */
let resources: Recorded[];
let outputs: Record<string, unknown>;
let region: string;
let close: () => void;
beforeAll(async () => {
  ({ resources, outputs, region, close } = await synthesize("production"));
}, 120_000);
afterAll(() => close?.());
const role = (name: string) => one(resources, "aws:iam/role:Role", name);
const fn = (name: string) => unwrap(one(resources, "aws:lambda/function:Function", name).inputs);
const deployedConfig = () => unwrap(one(resources, "aws:s3/bucketObjectv2:BucketObjectv2", "LifeboatDeployedConfig").inputs) as { bucket: string; key: string; content: string; contentType: string };

describe("the deployed config", () => {
  it("is lifeboat.config.ts as JSON, in the bucket outside every target's prefix, read by the runner and the functions with its hash", () => {
    const object = deployedConfig();
    expect({ bucket: object.bucket, key: object.key, contentType: object.contentType }).toEqual({ bucket: "acme-db-backups", key: "lifeboat/.lifeboat/config.json", contentType: "application/json" });
    expect(parseConfig(JSON.parse(object.content), "deployed")).toEqual(parseConfig(exampleConfig, "lifeboat.config.ts"));
    for (const name of ["LifeboatLauncherFunction", "LifeboatWatcherFunction", "LifeboatFreshnessFunction"]) {
      expect(fn(name).environment.variables, name).toMatchObject({ LIFEBOAT_BUCKET: "acme-db-backups", LIFEBOAT_CONFIG_KEY: object.key, LIFEBOAT_CONFIG_SHA256: sha256Hex(object.content) });
    }
  });
});

describe("schedules", () => {
  it("one EventBridge Scheduler schedule per target, with its expression, timezone and the target as input, sent to the launch queue", () => {
    const schedules = ofType(resources, "aws:scheduler/schedule:Schedule").filter((r) => !r.name.startsWith("LifeboatFreshnessCheck")).map((r) => unwrap(r.inputs));
    const queueArn = `arn:aws:sqs:eu-west-1:123456789012:${unwrap(one(resources, "aws:sqs/queue:Queue", "LifeboatLaunchesQueue").inputs).name}`;
    expect(
      schedules.map((s) => ({ expression: s.scheduleExpression, timezone: s.scheduleExpressionTimezone, input: JSON.parse(s.target.input), arn: s.target.arn, state: s.state, window: s.flexibleTimeWindow.mode })),
    ).toEqual([
      { expression: "cron(0 2 * * ? *)", timezone: "Europe/Paris", input: { source: "lifeboat.schedule", target: "prod", scheduledTime: "<aws.scheduler.scheduled-time>" }, arn: queueArn, state: "ENABLED", window: "OFF" },
      { expression: "rate(6 hours)", timezone: "UTC", input: { source: "lifeboat.schedule", target: "staging", scheduledTime: "<aws.scheduler.scheduled-time>" }, arn: queueArn, state: "ENABLED", window: "OFF" },
      { expression: "cron(30 3 ? * SUN *)", timezone: "UTC", input: { source: "lifeboat.schedule", target: "analytics", scheduledTime: "<aws.scheduler.scheduled-time>" }, arn: queueArn, state: "ENABLED", window: "OFF" },
    ]);
    // the schedules' one role may send to the launch queue, and what it could not deliver to the dead-letter queue;
    // only EventBridge Scheduler may assume it
    const schedulerRole = unwrap(one(resources, "aws:iam/role:Role", "LifeboatSchedulerRole").inputs);
    expect(JSON.parse(schedulerRole.assumeRolePolicy).Statement).toEqual([{ Effect: "Allow", Principal: { Service: "scheduler.amazonaws.com" }, Action: "sts:AssumeRole" }]);
    expect(statements(role("LifeboatSchedulerRole"))).toEqual([
      { Effect: "Allow", Action: ["sqs:SendMessage"], Resource: [queueArn] },
      { Effect: "Allow", Action: ["sqs:SendMessage"], Resource: [expect.stringMatching(/^arn:aws:sqs:eu-west-1:123456789012:.*ScheduleDeadLetters/)] },
    ]);
  });

  it("the launch queue: read by the launcher two invocations at a time, one launch per invocation, partial failures redelivered, dead letters after the deliveries the launcher counts on", () => {
    const queue = unwrap(one(resources, "aws:sqs/queue:Queue", "LifeboatLaunchesQueue").inputs);
    expect(queue.visibilityTimeoutSeconds).toBe(360);
    expect(JSON.parse(queue.redrivePolicy)).toEqual({ deadLetterTargetArn: expect.stringMatching(/LaunchDeadLetters/), maxReceiveCount: LAUNCH_DELIVERIES });
    const mapping = unwrap(one(resources, "aws:lambda/eventSourceMapping:EventSourceMapping", "LifeboatLaunchesToLauncher").inputs);
    expect(mapping).toMatchObject({ batchSize: 1, scalingConfig: { maximumConcurrency: 2 }, functionResponseTypes: ["ReportBatchItemFailures"], eventSourceArn: expect.stringMatching(/Launches/) });
    expect(statements(role("LifeboatLauncherRole")).find((x) => x.Action.includes("sqs:ReceiveMessage"))).toEqual({
      Effect: "Allow",
      Action: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"],
      Resource: [expect.stringMatching(/Launches/)],
    });
  });
});

describe("failures before any Lifeboat code runs", () => {
  const queueName = (name: string) => unwrap(one(resources, "aws:sqs/queue:Queue", name).inputs);
  it("every schedule has a dead-letter queue; the launcher's failed async invocations go to a failure queue", () => {
    // and so do the Slack subscriber's (SNS invokes it asynchronously)
    const slack = unwrap(one(resources, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "LifeboatSlackFailureDestination").inputs);
    expect(slack.maximumRetryAttempts).toBe(2);
    expect(slack.destinationConfig.onFailure.destination).toContain("NotificationFailures");
    expect(queueName("LifeboatScheduleDeadLettersQueue")).toBeDefined(); // one() throws unless exactly one such queue exists
    for (const s of ofType(resources, "aws:scheduler/schedule:Schedule").map((r) => unwrap(r.inputs))) {
      expect(s.target.deadLetterConfig, s.name).toEqual({ arn: expect.stringMatching(/^arn:aws:sqs:eu-west-1:123456789012:.*ScheduleDeadLetters/) });
      expect(s.target.retryPolicy.maximumRetryAttempts).toBeGreaterThanOrEqual(0);
    }
    const invoke = unwrap(one(resources, "aws:lambda/functionEventInvokeConfig:FunctionEventInvokeConfig", "LifeboatLauncherFailureDestination").inputs);
    expect(invoke).toMatchObject({ maximumRetryAttempts: 2, destinationConfig: { onFailure: { destination: expect.stringMatching(/^arn:aws:sqs:.*LaunchFailures/) } } });
    expect(statements(role("LifeboatLauncherRole")).find((x) => x.Action.includes("sqs:SendMessage"))!.Resource).toEqual([expect.stringMatching(/LaunchFailures/)]);
  });

  it("alarms on both queues, on the freshness check's errors and silence, and on the watcher's errors, all to the events topic", () => {
    const topicArn = `arn:aws:sns:eu-west-1:123456789012:${unwrap(one(resources, "aws:sns/topic:Topic", "LifeboatEventsTopic").inputs).name}`;
    const alertsArn = `arn:aws:sns:eu-west-1:123456789012:${unwrap(one(resources, "aws:sns/topic:Topic", "LifeboatAlertsTopic").inputs).name}`;
    const alarms = ofType(resources, "aws:cloudwatch/metricAlarm:MetricAlarm").map((r) => ({ ...unwrap(r.inputs), resource: r.name }));
    // by name: the order in which Pulumi registers them depends on when their inputs resolve (seen to vary in CI)
    const byName = (rows: unknown[][]) => [...rows].sort((x, y) => String(x[0]).localeCompare(String(y[0])));
    // stable, readable names: what an on-call engineer sees in the console and in the alarm's message
    expect(byName(alarms.map((a) => [a.name, a.namespace, a.metricName, a.comparisonOperator, a.threshold]))).toEqual(
      byName([
        ["lifeboat-production-ScheduleDeliveryFailed", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "GreaterThanThreshold", 0],
        ["lifeboat-production-LaunchFailed", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "GreaterThanThreshold", 0],
        ["lifeboat-production-LaunchDeadLetters", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "GreaterThanThreshold", 0],
        ["lifeboat-production-WatcherErrors", "AWS/Lambda", "Errors", "GreaterThanThreshold", 0],
        ["lifeboat-production-FreshnessErrors", "AWS/Lambda", "Errors", "GreaterThanThreshold", 0],
        ["lifeboat-production-FreshnessNotRunning", "AWS/Lambda", "Invocations", "LessThanThreshold", 1],
        // a notification that fails is itself reported, also by e-mail (no Lambda in between)
        ["lifeboat-production-SlackSubscriberErrors", "AWS/Lambda", "Errors", "GreaterThanThreshold", 0],
        ["lifeboat-production-NotificationFailed", "AWS/SQS", "ApproximateNumberOfMessagesVisible", "GreaterThanThreshold", 0],
      ]),
    );
    for (const a of alarms) {
      const about = /Subscriber|Notification/.test(a.name) ? [topicArn, alertsArn] : [topicArn];
      expect(a.alarmActions, a.name).toEqual(about);
      expect(a.okActions, a.name).toEqual(about);
    }
    expect(alarms.find((a) => a.name === "lifeboat-production-FreshnessNotRunning")!.treatMissingData).toBe("breaching");
  });
});

describe("the freshness check", () => {
  it("runs every 15 minutes; reads manifests and its markers, writes only its markers, publishes to the topic", () => {
    const schedule = unwrap(one(resources, "aws:scheduler/schedule:Schedule", "LifeboatFreshnessCheckSchedule").inputs);
    expect(schedule.scheduleExpression).toBe("rate(15 minutes)");
    expect(schedule.target.arn).toBe(`arn:aws:lambda:eu-west-1:123456789012:function:${fn("LifeboatFreshnessFunction").name}`);
    expect(statements(role("LifeboatFreshnessRole")).filter((s) => s.Action.some((a) => a.startsWith("s3:")))).toEqual([
      { Effect: "Allow", Action: ["s3:ListBucket"], Resource: ["arn:aws:s3:::acme-db-backups"], Condition: { StringLike: { "s3:prefix": ["lifeboat/*"] } } },
      { Effect: "Allow", Action: ["s3:GetObject"], Resource: ["arn:aws:s3:::acme-db-backups/lifeboat/*/.lifeboat-latest.json", "arn:aws:s3:::acme-db-backups/lifeboat/*.manifest.json", "arn:aws:s3:::acme-db-backups/lifeboat/*/.lifeboat-missed/*"] },
      { Effect: "Allow", Action: ["s3:PutObject"], Resource: ["arn:aws:s3:::acme-db-backups/lifeboat/*/.lifeboat-missed/*"] },
      // the deployed config
      { Effect: "Allow", Action: ["s3:GetObject"], Resource: ["arn:aws:s3:::acme-db-backups/lifeboat/.lifeboat/config.json"] },
    ]);
  });
});

describe("the runner task", () => {
  const taskDef = () => unwrap(one(resources, "aws:ecs/taskDefinition:TaskDefinition").inputs);

  it("is an arm64 Fargate task of the configured size, built from packages/runner/Dockerfile", () => {
    const t = taskDef();
    expect({ cpu: t.cpu, memory: t.memory, platform: t.runtimePlatform, compat: t.requiresCompatibilities }).toEqual({
      cpu: "1024",
      memory: "2048",
      platform: { cpuArchitecture: "ARM64", operatingSystemFamily: "LINUX" },
      compat: ["FARGATE"],
    });
    const image = unwrap(one(resources, "docker-build:index:Image").inputs);
    expect(image.dockerfile).toEqual({ location: expect.stringMatching(/packages\/runner\/Dockerfile$/) });
    // this repository builds its JavaScript first (the package ships it built)
    expect(image.buildArgs).toMatchObject({ LIFEBOAT_SOURCE: "repository" });
    // the stages that only handle JavaScript run on the build machine's platform, not emulated for arm64; only their
    // plain JavaScript output (/out) reaches the image
    const dockerfile = readFileSync(join(REPO, "packages/runner/Dockerfile"), "utf8");
    expect(dockerfile.match(/^FROM .*$/gm)).toEqual([
      "FROM --platform=$BUILDPLATFORM node:22-bookworm-slim AS from-package",
      "FROM --platform=$BUILDPLATFORM node:22-bookworm-slim AS from-repository",
      "FROM from-${LIFEBOAT_SOURCE} AS app",
      "FROM node:22-bookworm-slim",
    ]);
    expect(dockerfile.match(/^COPY --from=.*$/gm)).toEqual(["COPY --from=app /out /app"]);
    // an environment override cannot make node load other code: NODE_OPTIONS and the loader's variables are cleared
    const entrypoint = JSON.parse(/^ENTRYPOINT (.*)$/m.exec(dockerfile)![1]!) as string[];
    expect(entrypoint).toEqual(["env", "-u", "NODE_OPTIONS", "-u", "NODE_PATH", "-u", "LD_PRELOAD", "-u", "LD_LIBRARY_PATH", "node", "/app/runner.js"]);
    expect(image.platforms).toEqual(["linux/arm64"]);
  });

  it("gets names in its environment and no secret values; logs are kept a month", () => {
    const [container] = JSON.parse(taskDef().containerDefinitions);
    expect(container.environment.filter((e: { name: string }) => e.name.startsWith("LIFEBOAT_"))).toEqual([
      { name: "LIFEBOAT_BUCKET", value: "acme-db-backups" },
      { name: "LIFEBOAT_TOPIC_ARN", value: expect.stringMatching(/^arn:aws:sns:eu-west-1:123456789012:lifeboat-production-LifeboatEventsTopic-/) },
      // said in every event the runner publishes (with the region, the task and a link to its logs)
      { name: "LIFEBOAT_STAGE", value: "production" },
      // the config it reads from the bucket, and that config's hash: a copy changed outside a deploy is refused
      { name: "LIFEBOAT_CONFIG_KEY", value: "lifeboat/.lifeboat/config.json" },
      { name: "LIFEBOAT_CONFIG_SHA256", value: sha256Hex(deployedConfig().content) },
    ]);
    expect(container.secrets).toEqual([]);
    expect(JSON.stringify(container)).not.toMatch(/password|hooks\.slack\.com|PGPASSWORD/i);
    expect(unwrap(one(resources, "aws:cloudwatch/logGroup:LogGroup", "LifeboatRunnerLogGroupLifeboatRunner").inputs).retentionInDays).toBe(30);
  });

  it("each target's runner has a role of its own: its prefix, its parameters, its RDS instance, the topic; deletes its dumps only, no ECS Exec", () => {
    const topic = unwrap(one(resources, "aws:sns/topic:Topic", "LifeboatEventsTopic").inputs);
    const mine = (t: string, p: string) => `arn:aws:s3:::acme-db-backups/lifeboat/${t}/${p}`;
    const prod = one(resources, "aws:iam/role:Role", "LifeboatRunnerProdRole");
    expect({ name: unwrap(prod.inputs).name, path: unwrap(prod.inputs).path }).toEqual({ name: runnerRoleName("lifeboat/production", "prod"), path: "/lifeboat/lifeboat/production/runner/" });
    expect(statements(prod)).toEqual([
      { Effect: "Allow", Action: ["s3:PutObject", "s3:AbortMultipartUpload"], Resource: [mine("prod", "*")] },
      { Effect: "Allow", Action: ["s3:GetObject"], Resource: [mine("prod", "*.manifest.json"), mine("prod", ".lifeboat-last-run.json"), mine("prod", ".lifeboat-latest.json"), "arn:aws:s3:::acme-db-backups/lifeboat/.lifeboat/config.json"] },
      { Effect: "Allow", Action: ["s3:ListBucket"], Resource: ["arn:aws:s3:::acme-db-backups"], Condition: { StringLike: { "s3:prefix": ["lifeboat/prod/*"] } } },
      // AWS sets no s3:prefix for ListMultipartUploads: a condition on it would deny every call
      { Effect: "Allow", Action: ["s3:ListBucketMultipartUploads"], Resource: ["arn:aws:s3:::acme-db-backups"] },
      // a failed run's own dump (its manifest could not be written): dumps only, never a manifest or a drill result
      { Effect: "Allow", Action: ["s3:DeleteObject"], Resource: [mine("prod", "*.dump"), mine("prod", "*.sql"), mine("prod", "*.sql.gz")] },
      { Effect: "Allow", Action: ["ssm:GetParameter"], Resource: ["arn:aws:ssm:eu-west-1:123456789012:parameter/lifeboat/prod/db-password"] },
      { Effect: "Allow", Action: ["rds:DescribeDBInstances"], Resource: ["arn:aws:rds:eu-west-1:123456789012:db:acme-prod"] },
      { Effect: "Allow", Action: ["sns:Publish"], Resource: [expect.stringContaining(topic.name)] },
    ]);
    // "analytics" (weekly counts, pruned by the runner) may delete under its own prefix, and reads its URL only
    const analytics = statements(one(resources, "aws:iam/role:Role", "LifeboatRunnerAnalyticsRole"));
    expect(analytics.find((x) => x.Action.includes("s3:DeleteObject"))!.Resource).toEqual([mine("analytics", "*")]);
    expect(analytics.find((x) => x.Action.includes("ssm:GetParameter"))!.Resource).toEqual(["arn:aws:ssm:eu-west-1:123456789012:parameter/lifeboat/analytics/database-url"]);
    expect(analytics.some((x) => x.Action.includes("rds:DescribeDBInstances"))).toBe(false);
    // the task definition's own role grants nothing: every launch passes its target's role
    expect(statements(role("LifeboatRunnerTaskRole"))).toEqual([]);
  });

  it("runs in the databases' VPC: its own security group (no ingress), and each database's group lets it in on 5432", () => {
    const sg = one(resources, "aws:ec2/securityGroup:SecurityGroup", "LifeboatRunnerSecurityGroup");
    expect(unwrap(sg.inputs)).toMatchObject({ vpcId: "vpc-0123456789abcdef0", egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] }] });
    expect(unwrap(sg.inputs).ingress).toBeUndefined();
    expect(ofType(resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").map((r) => unwrap(r.inputs))).toEqual([
      { securityGroupId: "sg-0123456789abcdef0", referencedSecurityGroupId: "LifeboatRunnerSecurityGroup-id", ipProtocol: "tcp", fromPort: 5432, toPort: 5432, description: "Lifeboat runner to PostgreSQL on 5432" },
    ]);
    const env = fn("LifeboatLauncherFunction").environment.variables;
    expect(JSON.parse(env.LIFEBOAT_SECURITY_GROUPS)).toEqual(["LifeboatRunnerSecurityGroup-id"]);
    expect(JSON.parse(env.LIFEBOAT_SUBNETS)).toEqual(["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"]);
    expect(env.LIFEBOAT_ASSIGN_PUBLIC_IP).toBe("false");
    expect(ofType(resources, "aws:ec2/vpc:Vpc")).toEqual([]);
    // an existing VPC's routes and endpoints are the user's: none is created (the deploy says what is needed)
    expect(ofType(resources, "aws:ec2/vpcEndpoint:VpcEndpoint")).toEqual([]);
  });

  it("meets least privilege: Lambda-only trust, an execution role that reads nothing, no open ingress, scoped PassRole and RunTask", () => {
    assertLeastPrivilege(resources);
  });

  it("no role may delete a version, and only the runner may delete: dumps, and under the prefix of the target it prunes", () => {
    for (const r of ofType(resources, "aws:iam/role:Role")) {
      for (const st of statements(r)) {
        if (st.Effect !== "Allow") continue;
        const deletes = st.Action.filter((a) => /^s3:(\*|Delete|PutLifecycle|PutBucket)/.test(a));
        if (/^LifeboatRunner.+Role$/.test(r.name) && deletes.length) {
          // a target's own dumps; everything of its own only when the runner prunes it (analytics)
          const t = r.name.replace(/^LifeboatRunner|Role$/g, "").toLowerCase();
          expect(deletes).toEqual(["s3:DeleteObject"]);
          expect(st.Resource.every((x) => x.startsWith(`arn:aws:s3:::acme-db-backups/lifeboat/${t}/`) && (/\*\.(dump|sql|sql\.gz)$/.test(x) || t === "analytics")), JSON.stringify(st.Resource)).toBe(true);
        } else expect(deletes, r.name).toEqual([]);
      }
    }
  });
});

describe("one region", () => {
  it("the stack deploys to storage.s3.region: the bucket, the runner and the config agree", () => {
    expect(region).toBe("eu-west-1");
    const env = fn("LifeboatLauncherFunction").environment.variables;
    expect(env.LIFEBOAT_TASK_DEFINITION).toMatch(/^arn:aws:ecs:eu-west-1:/);
    expect(env.LIFEBOAT_TOPIC_ARN).toMatch(/^arn:aws:sns:eu-west-1:/);
  });
});

describe("the bucket", () => {
  it("is named from the config, survives stack removal, blocks public access, enforces TLS, is versioned and encrypted", () => {
    expect(unwrap(one(resources, "aws:s3/bucket:Bucket").inputs)).toEqual({ bucket: "acme-db-backups", forceDestroy: false });
    expect(unwrap(one(resources, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock").inputs)).toEqual({
      bucket: "acme-db-backups",
      blockPublicAcls: true,
      blockPublicPolicy: true,
      ignorePublicAcls: true,
      restrictPublicBuckets: true,
    });
    const policy = JSON.parse(unwrap(one(resources, "aws:s3/bucketPolicy:BucketPolicy").inputs).policy);
    expect(policy.Statement).toEqual([
      { Effect: "Deny", Action: ["s3:*"], Resource: ["arn:aws:s3:::acme-db-backups", "arn:aws:s3:::acme-db-backups/*"], Principal: "*", Condition: { Bool: { "aws:SecureTransport": ["false"] } } },
      // history is written once: no object is created on these keys without If-None-Match, by anyone
      {
        Effect: "Deny",
        Action: ["s3:PutObject"],
        Resource: ["*.dump", "*.sql", "*.sql.gz", "*.manifest.json", "*.verify.json", "*/.lifeboat-missed/*", "*/.lifeboat-runs/*"].map((p) => `arn:aws:s3:::acme-db-backups/lifeboat/${p}`),
        Principal: "*",
        Condition: { Null: { "s3:if-none-match": ["true"] }, Bool: { "s3:ObjectCreationOperation": ["true"] } },
      },
    ]);
    expect(unwrap(one(resources, "aws:s3/bucketVersioning:BucketVersioning").inputs).versioningConfiguration).toEqual({ status: "Enabled" });
    expect(unwrap(one(resources, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs).rules).toEqual([
      { applyServerSideEncryptionByDefault: { sseAlgorithm: "AES256" }, bucketKeyEnabled: false },
    ]);
    expect(ofType(resources, "aws:s3/bucketCorsConfiguration:BucketCorsConfiguration")).toEqual([]);
    expect(ofType(resources, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration")).toEqual([]);
  });

  it("lifecycle rules implement each target's retention and abort incomplete multipart uploads after one day", () => {
    expect(unwrap(one(resources, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs).rules).toEqual([
      { id: "abort-incomplete-multipart-uploads", status: "Enabled", filter: { prefix: "lifeboat/" }, abortIncompleteMultipartUpload: { daysAfterInitiation: 1 } },
      { id: "retention-prod", status: "Enabled", filter: { prefix: "lifeboat/prod/" }, expiration: { days: 35 }, noncurrentVersionExpiration: { noncurrentDays: 35 } },
      { id: "retention-staging", status: "Enabled", filter: { prefix: "lifeboat/staging/" }, expiration: { days: 7 }, noncurrentVersionExpiration: { noncurrentDays: 7 } },
      // pruned by the runner (weekly: 52): no expiration, old versions kept the year its counts reach
      { id: "retention-analytics", status: "Enabled", filter: { prefix: "lifeboat/analytics/" }, noncurrentVersionExpiration: { noncurrentDays: 364 } },
    ]);
  });
});

describe("notifications", () => {
  it("SNS subscriptions: the Slack Lambda and e-mail, each filtering the body: events by outcome, alarms by state", () => {
    const all = ofType(resources, "aws:sns/topicSubscription:TopicSubscription").map((r) => ({ ...unwrap(r.inputs), resource: r.name }));
    const alertsTopic = `arn:aws:sns:eu-west-1:123456789012:${unwrap(one(resources, "aws:sns/topic:Topic", "LifeboatAlertsTopic").inputs).name}`;
    // the alerts topic: every e-mail address, unfiltered (only alarms about failing notifications go there)
    expect(all.filter((s) => s.topic === alertsTopic).map((s) => ({ protocol: s.protocol, endpoint: s.endpoint, filter: s.filterPolicy }))).toEqual([{ protocol: "email", endpoint: "oncall@example.com", filter: undefined }]);
    const subs = all.filter((s) => s.topic !== alertsTopic);
    const failedOnly = { $or: [{ status: ["failed"] }, { NewStateValue: ["ALARM"] }] };
    expect(
      subs.map((s) => ({ protocol: s.protocol, filter: JSON.parse(s.filterPolicy), scope: s.filterPolicyScope, endpoint: s.protocol === "email" ? s.endpoint : "lambda" })).sort((a, b) => a.protocol.localeCompare(b.protocol)),
    ).toEqual([
      { protocol: "email", filter: failedOnly, scope: "MessageBody", endpoint: "oncall@example.com" },
      { protocol: "lambda", filter: failedOnly, scope: "MessageBody", endpoint: "lambda" },
    ]);
    const slack = fn("LifeboatEventsSubscriberSlackFunctionFunction");
    expect(slack.runtime).toBe("nodejs22.x");
    expect(slack.environment.variables).toMatchObject({ LIFEBOAT_SLACK_PARAMETER: "/lifeboat/slack-webhook-url", LIFEBOAT_SLACK_ON: '["failed"]' });
    expect(statements(role("LifeboatEventsSubscriberSlackFunctionRole")).filter((s) => s.Action.includes("ssm:GetParameter"))).toEqual([
      { Effect: "Allow", Action: ["ssm:GetParameter"], Resource: ["arn:aws:ssm:eu-west-1:123456789012:parameter/lifeboat/slack-webhook-url"] },
    ]);
  });
});

describe("launcher and watcher", () => {
  it("the launcher knows where to start tasks and may start only this task family", () => {
    const env = fn("LifeboatLauncherFunction").environment.variables;
    expect(env).toMatchObject({ LIFEBOAT_CONTAINER: "LifeboatRunner", LIFEBOAT_ASSIGN_PUBLIC_IP: "false", LIFEBOAT_TASK_DEFINITION: expect.stringMatching(/task-definition\/.*-LifeboatRunner:1$/) });
    const s = statements(role("LifeboatLauncherRole"));
    const cluster = `arn:aws:ecs:eu-west-1:${ACCOUNT}:cluster/${unwrap(one(resources, "aws:ecs/cluster:Cluster").inputs).name}`;
    expect(s.find((x) => x.Action.includes("ecs:RunTask"))).toEqual({
      Effect: "Allow",
      Action: ["ecs:RunTask"],
      Resource: [expect.stringMatching(/task-definition\/.*-LifeboatRunner:\*$/)],
      // the example's largest task: prod's default 1 vCPU / 2 GB (no target overrides it)
      Condition: { ArnEquals: { "ecs:cluster": [cluster] }, NumericLessThanEqualsIfExists: { "ecs:task-cpu": ["1024"], "ecs:task-memory": ["2048"] }, BoolIfExists: { "ecs:enable-execute-command": ["false"] } },
    });
    // the task definition's two roles, and this stage's target roles (by path)
    expect(s.find((x) => x.Action.includes("iam:PassRole"))!.Resource).toEqual([expect.any(String), expect.any(String), "arn:aws:iam::123456789012:role/lifeboat/lifeboat/production/runner/*"]);
    expect(fn("LifeboatLauncherFunction").environment.variables).toMatchObject({ LIFEBOAT_STAGE: "production", LIFEBOAT_RUNNER_ROLES: "arn:aws:iam::123456789012:role/lifeboat/lifeboat/production/runner/", LIFEBOAT_ROLE_SCOPE: "lifeboat/production" });
    expect(s.find((x) => x.Action.includes("ecs:TagResource"))).toEqual({
      Effect: "Allow",
      Action: ["ecs:TagResource"],
      Resource: [`arn:aws:ecs:eu-west-1:${ACCOUNT}:task/${cluster.split("/").pop()}/*`],
      Condition: { StringEquals: { "ecs:CreateAction": ["RunTask"] } },
    });
    expect(s.find((x) => x.Action.includes("rds:DescribeDBInstances"))!.Resource).toEqual([`arn:aws:rds:eu-west-1:${ACCOUNT}:db:acme-prod`]);
    expect(fn("LifeboatLauncherFunction").memorySize).toBe(256);
  });

  it("an EventBridge rule sends this cluster's stopped tasks to the watcher", () => {
    const rule = unwrap(one(resources, "aws:cloudwatch/eventRule:EventRule").inputs);
    expect(JSON.parse(rule.eventPattern)).toEqual({
      source: ["aws.ecs"],
      "detail-type": ["ECS Task State Change"],
      detail: { clusterArn: [expect.stringMatching(/^arn:aws:ecs:eu-west-1:123456789012:cluster\/lifeboat-production-LifeboatClusterCluster-/)], lastStatus: ["STOPPED"] },
    });
    const target = unwrap(one(resources, "aws:cloudwatch/eventTarget:EventTarget").inputs);
    expect(target.arn).toContain(fn("LifeboatWatcherFunction").name);
    const perm = unwrap(one(resources, "aws:lambda/permission:Permission", "LifeboatRunnerStoppedInvoke").inputs);
    expect(perm).toMatchObject({ action: "lambda:InvokeFunction", principal: "events.amazonaws.com" });
  });

  it("stack outputs name what the CLI needs, and the dashboard", async () => {
    expect(Object.keys(outputs).sort()).toEqual(["bucket", "cluster", "dashboard", "launcher", "runnerRoles", "topic"]);
    // the ARN of each target's runner role, for the bucket policy of a copy bucket in another account (docs/deploy.md)
    const roles = await new Promise<Record<string, string>>((resolve) => (outputs.runnerRoles as { apply: (f: (v: Record<string, string>) => void) => void }).apply(resolve));
    expect(roles).toEqual({
      prod: `arn:aws:iam::123456789012:role/${unwrap(one(resources, "aws:iam/role:Role", "LifeboatRunnerProdRole").inputs).name}`,
      staging: `arn:aws:iam::123456789012:role/${unwrap(one(resources, "aws:iam/role:Role", "LifeboatRunnerStagingRole").inputs).name}`,
      analytics: `arn:aws:iam::123456789012:role/${unwrap(one(resources, "aws:iam/role:Role", "LifeboatRunnerAnalyticsRole").inputs).name}`,
    });
    expect(roles.prod).toBe(`arn:aws:iam::123456789012:role/${runnerRoleName("lifeboat/production", "prod")}`);
    const dashboardUrl = await new Promise((resolve) => (outputs.dashboard as { apply: (f: (v: unknown) => void) => void }).apply(resolve));
    expect(dashboardUrl).toBe("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/lifeboat-production");
  });
});

describe("the CloudWatch dashboard", () => {
  const board = () => unwrap(one(resources, "aws:cloudwatch/dashboard:Dashboard").inputs);
  const widgets = () => JSON.parse(board().dashboardBody).widgets as Array<{ type: string; x: number; y: number; width: number; properties: { title?: string; metrics?: unknown[][]; alarms?: string[]; region?: string } }>;

  it("one per stack, named after the app and stage; the Slack subscriber links it from failures", () => {
    expect(board().dashboardName).toBe("lifeboat-production");
    expect(fn("LifeboatEventsSubscriberSlackFunctionFunction").environment.variables.LIFEBOAT_DASHBOARD_URL).toBe("https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/lifeboat-production");
  });

  it("per target: size, duration and outcomes (backups, failures, missed fire times, drills) from the metrics Lifeboat emits", () => {
    const metricNames = (title: string) => widgets().find((w) => w.properties.title === title)!.properties.metrics!.map((m) => m.slice(0, 6));
    for (const t of ["prod", "staging", "analytics"]) {
      expect(metricNames(`${t}: backup size`)).toEqual([["Lifeboat", "BackupBytes", "service", "runner", "Target", t]]);
      expect(metricNames(`${t}: backup duration`)).toEqual([["Lifeboat", "BackupDuration", "service", "runner", "Target", t]]);
      expect(metricNames(`${t}: outcomes`).map((m) => m[1])).toEqual(["BackupSucceeded", "BackupFailed", "BackupMissed", "DrillPassed", "DrillFailed", "CopyFailed", "PruneFailed"]);
      expect(metricNames(`${t}: newest backup age`)).toEqual([["Lifeboat", "NewestBackupAge", "service", "runner", "Target", t]]);
    }
    // the names the runner's (and the Lambdas') embedded metric format uses: the widgets draw what is emitted
    const emitted = backupMetrics({ version: 1, type: "backup.failed", status: "failed", time: "", target: "prod", runId: "r", trigger: "schedule", attempt: 1 } as unknown as LifeboatEvent).serializeMetrics() as { _aws: { CloudWatchMetrics: Array<{ Namespace: string; Dimensions: string[][] }> } };
    expect(emitted._aws.CloudWatchMetrics[0]).toMatchObject({ Namespace: "Lifeboat", Dimensions: [["service", "Target"]] });
    expect(widgets().every((w) => w.x + w.width <= 24)).toBe(true);
    expect(new Set(widgets().map((w) => w.properties.region).filter(Boolean))).toEqual(new Set(["eu-west-1"]));
  });

  it("the queues where failures wait, and every alarm of the stack", () => {
    const queues = widgets().find((w) => w.properties.title === "queues where failures wait")!.properties.metrics!.map((m) => String(m[3]));
    expect(queues).toHaveLength(4);
    for (const q of queues) expect(q).toMatch(/^lifeboat-production-Lifeboat(ScheduleDeadLetters|LaunchFailures|LaunchDeadLetters|NotificationFailures)Queue-/);
    const alarms = widgets().find((w) => w.type === "alarm")!.properties.alarms!;
    expect(alarms.sort()).toEqual(ofType(resources, "aws:cloudwatch/metricAlarm:MetricAlarm").map((a) => `arn:aws:mock:eu-west-1:123456789012:metricalarm/${unwrap(a.inputs).name}`).sort());
  });
});
