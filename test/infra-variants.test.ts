import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { assertLeastPrivilege, statements } from "./support/least-privilege.js";
import { one, ofType, synthesize, unwrap, type Recorded } from "./support/sst-synth.js";

/** A deployment into an existing VPC, with SSE-KMS, a storage class transition and Object Lock, on a dev stage. */
vi.mock("../lifeboat.config", () => ({
  default: {
    storage: { s3: { bucket: "acme-backups", prefix: "" } },
    targets: {
      orders: {
        database: { host: "orders.cluster-x.eu-west-1.rds.amazonaws.com", database: "orders", user: "backup", password: { ssm: "/lb/orders" } },
        schedule: "cron(15 1 * * ? *)",
        timezone: "America/New_York",
        retention: { days: 90 },
        aws: { cpu: "2 vCPU", memory: "4 GB" },
        verify: { schedule: "cron(0 5 ? * SUN *)" },
      },
      manual: { database: { host: "h.internal", database: "d", user: "u", password: { ssm: "/lb/manual" } } },
      // IAM database authentication to an instance of an Aurora cluster (the mocks' "aurora" instances belong to one)
      reports: { database: { rds: { instance: "acme-aurora-1" }, database: "reports", user: "lifeboat_iam", iamAuth: true } },
    },
    aws: {
      runner: { architecture: "x86_64", cpu: "0.5 vCPU", memory: "1 GB", logRetention: "3 months" },
      vpc: { id: "vpc-0abc", containerSubnets: ["subnet-0aa", "subnet-0bb"], securityGroups: ["sg-0cc"], databaseSecurityGroups: [{ id: "sg-0db", port: 5433 }], publicIp: true },
      bucket: { kmsKeyArn: "arn:aws:kms:eu-west-1:123456789012:key/1111", transition: { days: 30, storageClass: "GLACIER_IR" }, objectLock: { mode: "COMPLIANCE", days: 30 } },
    },
  },
}));

let resources: Recorded[];
let close: () => void;
beforeAll(async () => {
  ({ resources, close } = await synthesize("dev"));
}, 120_000);
afterAll(() => close?.());

describe("a deployment with every option", () => {
  it("uses the existing VPC (no VPC created), its security group, and a public IP without a security group open to the world", () => {
    expect(ofType(resources, "aws:ec2/vpc:Vpc")).toEqual([]);
    expect(ofType(resources, "aws:ec2/securityGroup:SecurityGroup")).toEqual([]);
    const env = unwrap(one(resources, "aws:lambda/function:Function", "LifeboatLauncherFunction").inputs).environment.variables;
    expect(JSON.parse(env.LIFEBOAT_SUBNETS)).toEqual(["subnet-0aa", "subnet-0bb"]);
    expect(JSON.parse(env.LIFEBOAT_SECURITY_GROUPS)).toEqual(["sg-0cc"]);
    expect(env.LIFEBOAT_ASSIGN_PUBLIC_IP).toBe("true");
    expect(ofType(resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").map((r) => unwrap(r.inputs))).toEqual([
      { securityGroupId: "sg-0db", referencedSecurityGroupId: "sg-0cc", ipProtocol: "tcp", fromPort: 5433, toPort: 5433, description: "Lifeboat runner to PostgreSQL on 5433" },
    ]);
  });

  it("meets least privilege in this variant too", () => {
    assertLeastPrivilege(resources);
  });

  it("sizes and architecture come from the config; only scheduled targets get a schedule", () => {
    const t = unwrap(one(resources, "aws:ecs/taskDefinition:TaskDefinition").inputs);
    expect([t.cpu, t.memory, t.runtimePlatform.cpuArchitecture]).toEqual(["512", "1024", "X86_64"]);
    expect(unwrap(one(resources, "aws:cloudwatch/logGroup:LogGroup", "LifeboatRunnerLogGroupLifeboatRunner").inputs).retentionInDays).toBe(90);
    const schedules = ofType(resources, "aws:scheduler/schedule:Schedule").filter((r) => !r.name.startsWith("LifeboatFreshnessCheck")).map((r) => unwrap(r.inputs));
    expect(schedules.map((s) => [s.scheduleExpression, s.scheduleExpressionTimezone, JSON.parse(s.target.input)])).toEqual([
      ["cron(0 5 ? * SUN *)", "America/New_York", { source: "lifeboat.schedule", target: "orders", scheduledTime: "<aws.scheduler.scheduled-time>", mode: "verify" }],
      ["cron(15 1 * * ? *)", "America/New_York", { source: "lifeboat.schedule", target: "orders", scheduledTime: "<aws.scheduler.scheduled-time>" }],
    ]);
  });

  it("the bucket of a non-production stage is named after the stage, encrypted with the KMS key, with Object Lock", () => {
    expect(unwrap(one(resources, "aws:s3/bucket:Bucket").inputs)).toEqual({ bucket: "acme-backups-dev", forceDestroy: false, objectLockEnabled: true });
    expect(unwrap(one(resources, "aws:s3/bucketServerSideEncryptionConfiguration:BucketServerSideEncryptionConfiguration").inputs).rules).toEqual([
      { applyServerSideEncryptionByDefault: { sseAlgorithm: "aws:kms", kmsMasterKeyId: "arn:aws:kms:eu-west-1:123456789012:key/1111" }, bucketKeyEnabled: true },
    ]);
    expect(unwrap(one(resources, "aws:s3/bucketObjectLockConfiguration:BucketObjectLockConfiguration").inputs)).toEqual({
      bucket: "acme-backups-dev",
      rule: { defaultRetention: { mode: "COMPLIANCE", days: 30 } },
    });
    expect(unwrap(one(resources, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs).rules).toEqual([
      {
        id: "abort-incomplete-multipart-uploads",
        status: "Enabled",
        filter: { prefix: "" },
        abortIncompleteMultipartUpload: { daysAfterInitiation: 1 },
        transitions: [{ days: 30, storageClass: "GLACIER_IR" }],
      },
      { id: "retention-orders", status: "Enabled", filter: { prefix: "orders/" }, expiration: { days: 90 }, noncurrentVersionExpiration: { noncurrentDays: 90 } },
    ]);
  });

  it("a target's runner may use the KMS key through S3; without a prefix its keys are <target>/; it deletes its own dumps only", () => {
    const role = one(resources, "aws:iam/role:Role", "LifeboatRunnerOrdersRole");
    const st = unwrap(role.inputs).inlinePolicies.flatMap((p: { policy: string }) => JSON.parse(p.policy).Statement);
    expect(st).toContainEqual({ Effect: "Allow", Action: ["kms:GenerateDataKey", "kms:Decrypt"], Resource: ["arn:aws:kms:eu-west-1:123456789012:key/1111"], Condition: { StringEquals: { "kms:ViaService": ["s3.us-east-1.amazonaws.com"] } } });
    expect(st).toContainEqual({ Effect: "Allow", Action: ["s3:PutObject", "s3:AbortMultipartUpload"], Resource: ["arn:aws:s3:::acme-backups-dev/orders/*"] });
    // "orders" schedules restore drills, so its runner reads its dumps too; "manual" does not
    expect(st).toContainEqual({ Effect: "Allow", Action: ["s3:GetObject"], Resource: ["arn:aws:s3:::acme-backups-dev/orders/*", "arn:aws:s3:::acme-backups-dev/.lifeboat/config.json"] });
    expect(statements(one(resources, "aws:iam/role:Role", "LifeboatRunnerManualRole")).find((x) => x.Action.includes("s3:GetObject"))!.Resource).toEqual([
      "arn:aws:s3:::acme-backups-dev/manual/*.manifest.json",
      "arn:aws:s3:::acme-backups-dev/manual/.lifeboat-last-run.json",
      "arn:aws:s3:::acme-backups-dev/manual/.lifeboat-latest.json",
      "arn:aws:s3:::acme-backups-dev/.lifeboat/config.json",
    ]);
    expect(st).toContainEqual({ Effect: "Allow", Action: ["s3:ListBucket"], Resource: ["arn:aws:s3:::acme-backups-dev"], Condition: { StringLike: { "s3:prefix": ["orders/*"] } } });
    expect(st).toContainEqual({ Effect: "Allow", Action: ["s3:ListBucketMultipartUploads"], Resource: ["arn:aws:s3:::acme-backups-dev"] });
    expect(st.filter((x: { Action: string[] }) => x.Action.some((a) => a.startsWith("s3:Delete")))).toEqual([
      { Effect: "Allow", Action: ["s3:DeleteObject"], Resource: ["arn:aws:s3:::acme-backups-dev/orders/*.dump", "arn:aws:s3:::acme-backups-dev/orders/*.sql", "arn:aws:s3:::acme-backups-dev/orders/*.sql.gz"] },
    ]);
  });

  it("IAM authentication to an Aurora instance is granted on its cluster's resource id, as that user only", () => {
    expect(statements(one(resources, "aws:iam/role:Role", "LifeboatRunnerReportsRole")).filter((s) => s.Action.some((a) => a.startsWith("rds-db:")))).toEqual([
      { Effect: "Allow", Action: ["rds-db:connect"], Resource: ["arn:aws:rds-db:us-east-1:123456789012:dbuser:cluster-ACMEAURORA/lifeboat_iam"] },
    ]);
    for (const role of ["LifeboatRunnerOrdersRole", "LifeboatRunnerManualRole"]) expect(JSON.stringify(statements(one(resources, "aws:iam/role:Role", role)))).not.toContain("rds-db:");
  });

  it("no Slack and no e-mail configured: no subscriptions", () => {
    expect(ofType(resources, "aws:sns/topicSubscription:TopicSubscription")).toEqual([]);
  });
});
