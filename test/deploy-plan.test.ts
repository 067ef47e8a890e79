import { describe, expect, it } from "vitest";
import { ConfigError, deployPlan, isPrivateHost, parseConfig } from "@lifeboat/core";

const base = {
  storage: { s3: { bucket: "acme-backups", prefix: "pg" } },
  targets: {
    prod: { database: { rds: { instance: "acme-prod" }, database: "app", user: "backup", password: { ssm: "/lifeboat/prod/pw" } }, schedule: "cron(0 2 * * ? *)", timezone: "Europe/Paris", retention: { days: 35 } },
    "staging-eu": { database: { url: { ssm: "/lifeboat/staging/url" } }, schedule: "rate(6 hours)", retention: { days: 7 } },
    adhoc: { database: { host: "db.internal", database: "x", user: "y" } },
  },
  notifications: { slack: { webhook: { ssm: "/lifeboat/slack" }, on: ["failed"] } },
  aws: {
    email: [{ address: "oncall@example.com" }, { address: "audit@example.com", on: ["succeeded", "failed"] }],
    bucket: { transition: { days: 30, storageClass: "GLACIER_IR" } },
    vpc: { id: "vpc-0abc", containerSubnets: ["subnet-0aa"], databaseSecurityGroups: ["sg-0db", { id: "sg-0bb", port: 6432 }] },
  },
};

describe("deploy plan", () => {
  it("the runner may read the heartbeat's URL from SSM (it pings it itself); one from the environment is refused", () => {
    const withHeartbeat = (url: object) => parseConfig({ ...base, notifications: { ...base.notifications, heartbeat: { url } } });
    expect(deployPlan(withHeartbeat({ ssm: "/lifeboat/heartbeat" }), "production").runnerParameters).toEqual(["/lifeboat/heartbeat", "/lifeboat/prod/pw", "/lifeboat/staging/url"]);
    expect(() => deployPlan(withHeartbeat({ env: "HEARTBEAT_URL" }), "production")).toThrow(/notifications\.heartbeat\.url: reads the environment variable HEARTBEAT_URL/);
  });

  it("derives one schedule per scheduled target, lifecycle rules per retention, parameters and subscriptions", () => {
    const plan = deployPlan(parseConfig(base), "production");
    expect(plan.bucketName).toBe("acme-backups");
    expect(plan.schedules).toEqual([
      { target: "prod", component: "ScheduleProd", expression: "cron(0 2 * * ? *)", timezone: "Europe/Paris", event: { source: "lifeboat.schedule", target: "prod", scheduledTime: "<aws.scheduler.scheduled-time>" } },
      { target: "staging-eu", component: "ScheduleStagingEu", expression: "rate(6 hours)", timezone: "UTC", event: { source: "lifeboat.schedule", target: "staging-eu", scheduledTime: "<aws.scheduler.scheduled-time>" } },
    ]);
    expect(plan.lifecycle).toEqual([
      { id: "abort-incomplete-multipart-uploads", prefix: "pg/", abortIncompleteMultipartUploadDays: 1, transition: { days: 30, storageClass: "GLACIER_IR" } },
      // a replaced or deleted version is kept as long as the target keeps backups (never less than 7 days)
      { id: "retention-prod", prefix: "pg/prod/", expirationDays: 35, noncurrentVersionDays: 35 },
      { id: "retention-staging-eu", prefix: "pg/staging-eu/", expirationDays: 7, noncurrentVersionDays: 7 },
    ]);
    expect(plan.runnerParameters).toEqual(["/lifeboat/prod/pw", "/lifeboat/staging/url"]);
    expect(plan.slack).toEqual({ webhookParameter: "/lifeboat/slack", on: ["failed"], filterPolicy: { $or: [{ status: ["failed"] }, { NewStateValue: ["ALARM"] }] } });
    expect(plan.email).toEqual([
      { address: "oncall@example.com", filterPolicy: { $or: [{ status: ["failed"] }, { NewStateValue: ["ALARM"] }] } },
      { address: "audit@example.com", filterPolicy: { $or: [{ status: ["succeeded", "failed"] }, { NewStateValue: ["ALARM", "OK"] }] } },
    ]);
    expect(plan.aws.runner).toEqual({ architecture: "arm64", cpu: "1 vCPU", memory: "2 GB", storage: "20 GB", logRetention: "1 month" });
  });

  it("targets with verify.schedule get a drill schedule launching the runner in verify mode", () => {
    const plan = deployPlan(parseConfig({ ...base, targets: { ...base.targets, prod: { ...base.targets.prod, verify: { schedule: "cron(0 6 ? * SUN *)" } } } }), "production");
    expect(plan.drills).toBe(true);
    expect(plan.schedules.find((s) => s.component === "VerifyProd")).toEqual({
      target: "prod",
      component: "VerifyProd",
      expression: "cron(0 6 ? * SUN *)",
      timezone: "Europe/Paris",
      event: { source: "lifeboat.schedule", target: "prod", scheduledTime: "<aws.scheduler.scheduled-time>", mode: "verify" },
    });
    expect(deployPlan(parseConfig(base), "production").drills).toBe(false);
  });

  it("an encrypted target's drills read its age identity from SSM: granted only where a drill needs it, required there, never from the environment", () => {
    const recipient = "age1hvyrnertaeyw9wld93kcalhwd7juxxzgq5nnuuyunfq5x65ey44q5e5s3f";
    const identity = { ssm: "/lifeboat/prod/age-identity" };
    const withEncryption = (prod: Record<string, unknown>) => parseConfig({ ...base, targets: { ...base.targets, prod: { ...base.targets.prod, ...prod } } });
    // drilled: the runner may read the identity
    expect(deployPlan(withEncryption({ verify: { schedule: "rate(7 days)" }, encryption: { recipients: [recipient], identity } }), "production").runnerParameters).toEqual(["/lifeboat/prod/age-identity", "/lifeboat/prod/pw", "/lifeboat/staging/url"]);
    // not drilled: backups need only the public key, and the runner gets no read of the identity
    expect(deployPlan(withEncryption({ encryption: { recipients: [recipient], identity } }), "production").runnerParameters).toEqual(["/lifeboat/prod/pw", "/lifeboat/staging/url"]);
    const problems = (prod: Record<string, unknown>) => {
      try {
        deployPlan(withEncryption(prod), "production");
        return [];
      } catch (err) {
        return (err as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
      }
    };
    expect(problems({ verify: { schedule: "rate(7 days)" }, encryption: { recipients: [recipient] } })).toEqual([expect.stringMatching(/^targets\.prod\.encryption\.identity: is required: this target's backups are encrypted and it schedules restore drills/)]);
    expect(problems({ verify: { schedule: "rate(7 days)" }, encryption: { recipients: [recipient], identity: { env: "AGE_ID" } } })).toEqual([expect.stringMatching(/^targets\.prod\.encryption\.identity: reads the environment variable AGE_ID, which a Fargate task does not have/)]);
  });

  it("SQLite targets are left to the machine that holds the file: no schedule, no parameter", () => {
    const plan = deployPlan(parseConfig({ ...base, targets: { ...base.targets, blog: { engine: "sqlite", database: { path: "/srv/blog.db" }, schedule: "rate(1 hour)" } } }), "production");
    expect(plan.schedules.map((s) => s.target)).toEqual(["prod", "staging-eu"]);
    expect(plan.warnings.filter((w) => w.startsWith("targets.") && !w.includes("sslmode=require"))).toEqual(["targets.blog is a SQLite file: the AWS deployment leaves it out; run `lifeboat schedule` on the machine that holds it"]);
  });

  it("TLS: a host or URL target without its own sslmode is told it gets require (encrypted, not verified) and how to verify; a weaker one is told it may be plaintext; RDS says nothing", () => {
    const plan = (database: object) =>
      deployPlan(parseConfig({ ...base, targets: { prod: base.targets.prod, t: { database, schedule: "rate(1 day)", retention: { days: 7 } } } }), "production").warnings.filter((w) => w.startsWith("targets."));
    expect(plan({ host: "db.example.com", database: "a", user: "b" })).toEqual([expect.stringMatching(/^targets\.t connects with sslmode=require \(the runner's default\): encrypted, but the server's certificate is not checked; to check it set database\.sslmode: "verify-full" and database\.sslrootcert: "system"/)]);
    expect(plan({ url: "postgres://u@db.example.com/a?sslmode=prefer" })).toEqual([expect.stringMatching(/^targets\.t connects with sslmode=prefer: the connection may be unencrypted/)]);
    expect(plan({ host: "db.example.com", database: "a", user: "b", sslmode: "disable" })).toEqual([expect.stringMatching(/sslmode=disable: the connection may be unencrypted/)]);
    expect(plan({ host: "db.example.com", database: "a", user: "b", sslmode: "verify-full", sslrootcert: "system" })).toEqual([]);
    expect(plan({ url: "postgres://u@db.example.com/a?sslmode=verify-ca&sslrootcert=/ca.pem" })).toEqual([]);
  });

  it("Slack or a webhook without any e-mail address: the deploy says a failing subscriber could reach nobody", () => {
    const noEmail = parseConfig({ ...base, aws: { ...base.aws, email: [] } });
    expect(deployPlan(noEmail, "production").warnings).toContainEqual(expect.stringMatching(/^no aws\.email: if the Slack or webhook subscriber fails .* add aws\.email/));
    expect(deployPlan(parseConfig(base), "production").warnings.filter((w) => w.startsWith("no aws.email"))).toEqual([]);
  });

  it("an existing VPC: the deploy names the routes the runner needs, which it cannot check", () => {
    const [vpc] = deployPlan(parseConfig(base), "production").warnings.filter((w) => w.startsWith("aws.vpc"));
    expect(vpc).toBe(
      'aws.vpc: the runner\'s subnets (subnet-0aa) need a route to ECR (ecr.api, ecr.dkr: the image), S3, CloudWatch Logs, SSM, SNS, RDS (the instance lookup): a NAT gateway, or VPC endpoints (an S3 gateway endpoint is free; interface endpoints cost about $7.30 a month each per AZ); Lifeboat cannot check this, and without it every run fails to pull its image (docs/deploy.md, "Network")',
    );
    const publicIp = parseConfig({ ...base, aws: { ...base.aws, vpc: { ...base.aws.vpc, publicIp: true } } });
    expect(deployPlan(publicIp, "production").warnings.filter((w) => w.startsWith("aws.vpc"))).toEqual([expect.stringMatching(/^aws\.vpc\.publicIp: the runner's subnets \(subnet-0aa\) must route 0\.0\.0\.0\/0 to an internet gateway/)]);
  });

  it("copies: an AWS bucket is written by the target's role (pruned by the runner when it has a retention), another provider's with keys from SSM; what cannot work in a Fargate task is refused", () => {
    const offsite = { name: "offsite", s3: { bucket: "acme-offsite", prefix: "copies", region: "us-west-2" } };
    const r2 = { name: "r2", s3: { bucket: "acme-r2", endpoint: "https://0123.r2.cloudflarestorage.com", provider: "r2", credentials: { accessKeyId: { ssm: "/lifeboat/r2/id" }, secretAccessKey: { secretsManager: "arn:aws:secretsmanager:eu-west-1:123456789012:secret:r2-Ab12Cd" } } }, retention: "store" };
    const config = { ...base, storage: { ...base.storage, copies: [offsite, r2] }, targets: { ...base.targets, adhoc: { ...base.targets.adhoc, copies: [] } } };
    const plan = deployPlan(parseConfig(config), "production");
    const prod = plan.runnerTargets.find((t) => t.target === "prod")!;
    // prod keeps 35 days: the copy inherits it, and the runner prunes it there (no lifecycle rule in a bucket it does not own)
    expect(prod.copyBuckets).toEqual([{ copy: "offsite", bucket: "acme-offsite", prefix: "copies/prod/", region: "us-west-2", pruned: true, objectLock: false }]);
    expect(prod.copies).toBe(true);
    expect(prod.parameters).toEqual(["/lifeboat/prod/pw", "/lifeboat/r2/id"]);
    expect(prod.secrets).toEqual(["arn:aws:secretsmanager:eu-west-1:123456789012:secret:r2-Ab12Cd"]);
    const adhoc = plan.runnerTargets.find((t) => t.target === "adhoc")!;
    expect([adhoc.copies, adhoc.copyBuckets, adhoc.parameters]).toEqual([false, [], []]);
    // a copy left to its store is never deleted from by the runner
    const kept = deployPlan(parseConfig({ ...config, storage: { ...base.storage, copies: [{ ...offsite, retention: "store" }] } }), "production");
    expect(kept.runnerTargets.find((t) => t.target === "prod")!.copyBuckets[0]!.pruned).toBe(false);
    // a copy with objectLock: its role sets the retention as it writes (s3:PutObjectRetention, infra/runner.ts)
    const locked = deployPlan(parseConfig({ ...config, storage: { ...base.storage, copies: [{ ...offsite, retention: "store", objectLock: { days: 30 } }] } }), "production");
    expect(locked.runnerTargets.find((t) => t.target === "prod")!.copyBuckets[0]).toMatchObject({ pruned: false, objectLock: true });
    expect(plan.warnings.filter((w) => w.includes('copy "offsite"'))).toEqual([
      'targets.prod: copy "offsite" writes to s3://acme-offsite/copies/prod/* as this target\'s runner role (its ARN: the stack\'s output runnerRoles): in another account, its bucket policy must allow that role too (docs/deploy.md, "Copies")',
      'targets.staging-eu: copy "offsite" writes to s3://acme-offsite/copies/staging-eu/* as this target\'s runner role (its ARN: the stack\'s output runnerRoles): in another account, its bucket policy must allow that role too (docs/deploy.md, "Copies")',
    ]);

    const refused = (copies: unknown[]) => {
      try {
        deployPlan(parseConfig({ ...base, storage: { ...base.storage, copies } }), "production");
      } catch (err) {
        return (err as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
      }
      return [];
    };
    // each told once, though storage.copies is every target's
    expect(refused([{ name: "disk", directory: "/mnt/disk" }])).toEqual(['storage.copies[0].directory: copy "disk" is a directory: a Fargate task\'s disk is gone when the task ends']);
    expect(refused([{ name: "b2", s3: { bucket: "acme-b2", endpoint: "https://s3.us-west-004.backblazeb2.com", provider: "b2" } }])).toEqual([
      'storage.copies[0].s3.credentials: copy "b2" is at another provider (https://s3.us-west-004.backblazeb2.com), whose keys the runner\'s role is not',
    ]);
    expect(refused([{ name: "b2", s3: { bucket: "acme-b2", endpoint: "https://s3.us-west-004.backblazeb2.com", credentials: { accessKeyId: { env: "B2_ID" }, secretAccessKey: { ssm: "/b2/secret" } } } }])).toEqual([
      "storage.copies[0].s3.credentials.accessKeyId: reads the environment variable B2_ID, which a Fargate task does not have",
    ]);
    expect(refused([{ name: "same", s3: { bucket: "acme-backups", prefix: "other" } }])).toEqual(['storage.copies[0].s3.bucket: copy "same" is the deployment\'s own bucket (acme-backups): one failure domain']);
    // another stage's bucket is not the production bucket
    expect(() => deployPlan(parseConfig({ ...base, storage: { ...base.storage, copies: [{ name: "prod-bucket", s3: { bucket: "acme-backups" } }] } }), "dev")).not.toThrow();
  });

  it("other stages get their own bucket name", () => {
    expect(deployPlan(parseConfig(base), "dev").bucketName).toBe("acme-backups-dev");
  });

  it("refuses what cannot work in the cloud, listing every problem", () => {
    const bad = parseConfig({
      storage: { directory: "/var/backups" },
      targets: {
        a: { database: { host: "db.example.com", database: "d", user: "u", password: { env: "PGPASSWORD" } } },
        b: { database: { url: "postgres://u@localhost/d" } },
        "x-y": { database: { url: "postgres://u@db.example.com/d" }, schedule: "rate(1 day)" },
        x_y: { database: { url: "postgres://u@db.example.com/d" }, schedule: "rate(1 day)" },
      },
      notifications: { slack: { webhook: { env: "SLACK_URL" } } },
    });
    const err = (() => {
      try {
        deployPlan(bad, "production");
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.message).toContain("lifeboat.config.ts cannot be deployed (5 problems)");
    expect(err!.problems.map((p) => p.path)).toEqual(["storage", "targets.a.database.password", "targets.b.database.url", "targets.x_y", "notifications.slack.webhook"]);
    expect(err!.problems[1]!.message).toBe("reads the environment variable PGPASSWORD, which a Fargate task does not have");
  });

  it("RDS and private hosts need aws.vpc: the deploy stops naming the target and the key to set", () => {
    const { aws: _aws, ...noVpc } = base;
    const err = (() => {
      try {
        deployPlan(parseConfig({ ...noVpc, targets: { ...base.targets, public: { database: { host: "db.example.com", database: "d", user: "u", password: { ssm: "/p" } } }, ip: { database: { url: "postgres://u@10.1.2.3/d" } } } }), "production");
      } catch (e) {
        return e as ConfigError;
      }
    })();
    expect(err).toBeInstanceOf(ConfigError);
    expect(err!.problems.map((p) => p.path)).toEqual(["targets.prod.database.rds", "targets.adhoc.database.host", "targets.ip.database.url"]);
    expect(err!.problems[0]).toEqual({
      path: "targets.prod.database.rds",
      message: 'RDS instance "acme-prod" is reachable only from inside its VPC, and without aws.vpc the runner runs in a new VPC of its own that cannot reach it',
      hint: 'set aws.vpc: { id: "vpc-...", containerSubnets: ["subnet-..."], databaseSecurityGroups: ["sg-..."] } to the database\'s VPC (docs/deploy.md, "Network")',
    });
    // a URL kept in SSM cannot be checked at deploy time: said aloud
    const plan = deployPlan(parseConfig({ ...noVpc, targets: { "staging-eu": base.targets["staging-eu"] } }), "production");
    expect(plan.warnings.filter((w) => w.startsWith("targets."))).toEqual([
      expect.stringContaining("targets.staging-eu connects with sslmode=require (the runner's default unless the URL in SSM sets its own)"),
      expect.stringContaining("targets.staging-eu.database.url is read from SSM at run time"),
    ]);
  });

  it("private hosts are told from public ones", () => {
    for (const h of ["db.internal", "db", "10.0.0.5", "172.20.1.1", "192.168.1.9", "100.64.0.1", "fd00::5", "x.eu-west-1.rds.amazonaws.com", "nas.home.arpa"]) expect(isPrivateHost(h), h).toBe(true);
    for (const h of ["db.example.com", "8.8.8.8", "172.32.0.1", "2001:db8::1", "abc.supabase.co"]) expect(isPrivateHost(h), h).toBe(false);
  });

  it("database security groups get ingress from the runner on each target's port (5432 unless given)", () => {
    const plan = deployPlan(parseConfig({ ...base, targets: { ...base.targets, other: { database: { host: "h.internal", port: 5433, database: "d", user: "u" } } } }), "production");
    expect(plan.databaseIngress).toEqual([
      { securityGroup: "sg-0db", port: 5432 },
      { securityGroup: "sg-0db", port: 5433 },
      { securityGroup: "sg-0bb", port: 6432 },
    ]);
    expect(plan.rdsInstances).toEqual([{ instance: "acme-prod" }]);
  });

  it("the stack's region is the config's: storage.s3.region", () => {
    expect(deployPlan(parseConfig(base), "production").region).toBeUndefined();
    expect(deployPlan(parseConfig({ ...base, storage: { s3: { ...base.storage.s3, region: "eu-central-1" } } }), "production").region).toBe("eu-central-1");
  });

  it("transitions S3 would refuse, or Lifeboat could not read back, are refused at load", () => {
    const withTransition = (transition: unknown) => () => parseConfig({ ...base, aws: { bucket: { transition } } });
    expect(withTransition({ days: 7, storageClass: "STANDARD_IA" })).toThrow(/aws.bucket.transition.days: S3 refuses a transition to STANDARD_IA before 30 days \(got 7\)/);
    expect(withTransition({ days: 29, storageClass: "ONEZONE_IA" })).toThrow(/ONEZONE_IA before 30 days/);
    expect(withTransition({ days: 1, storageClass: "GLACIER" })).toThrow(/aws.bucket.transition.storageClass: GLACIER objects must be restored \(hours\) before they can be read/);
    expect(withTransition({ days: 90, storageClass: "DEEP_ARCHIVE" })).toThrow(/use GLACIER_IR/);
    expect(withTransition({ days: 30, storageClass: "STANDARD_IA" })).not.toThrow();
    expect(withTransition({ days: 1, storageClass: "GLACIER_IR" })).not.toThrow();
    expect(withTransition({ days: 1, storageClass: "INTELLIGENT_TIERING" })).not.toThrow();
  });

  it("keepLast and GFS counts are pruned by the runner (no lifecycle rule for them), and refused with Object Lock", () => {
    const targets = { ...base.targets, prod: { ...base.targets.prod, retention: { days: 35, monthly: 12 } } };
    const plan = deployPlan(parseConfig({ ...base, targets }), "production");
    expect(plan.prunedByRunner).toEqual([{ target: "prod", prefix: "pg/prod/" }]);
    // no expiration for it; its old versions are kept as long as its counts reach (12 months: 372 days)
    expect(plan.lifecycle.filter((r) => r.id !== "abort-incomplete-multipart-uploads")).toEqual([
      { id: "retention-prod", prefix: "pg/prod/", noncurrentVersionDays: 372 },
      { id: "retention-staging-eu", prefix: "pg/staging-eu/", expirationDays: 7, noncurrentVersionDays: 7 },
    ]);
    // keepLast counts the schedule's gaps: 4 weekly backups span 28 days; a target without retention keeps old versions forever
    const weekly = deployPlan(parseConfig({ ...base, targets: { w: { database: { host: "db.example.com", database: "a", user: "b" }, schedule: "cron(0 3 ? * SUN *)", retention: { keepLast: 4 } }, forever: { database: { host: "db.example.com", database: "a", user: "b" } } } }), "production");
    expect(weekly.lifecycle.filter((r) => r.id !== "abort-incomplete-multipart-uploads")).toEqual([{ id: "retention-w", prefix: "pg/w/", noncurrentVersionDays: 28 }]);
    const locked = () => deployPlan(parseConfig({ ...base, targets, aws: { ...base.aws, bucket: { objectLock: { mode: "GOVERNANCE", days: 30 } } } }), "production");
    expect(locked).toThrow(/targets.prod.retention: keepLast, daily, weekly and monthly need the runner to delete old backups, which Object Lock forbids/);
  });

  it("Fargate sizes are checked against what Fargate accepts", () => {
    expect(() => parseConfig({ ...base, aws: { runner: { cpu: "0.25 vCPU", memory: "4 GB" } } })).toThrow(/aws.runner.memory: 4 GB does not fit 0.25 vCPU: use 0.5 GB or 1-2 GB/);
    expect(() => parseConfig({ ...base, targets: { prod: { ...base.targets.prod, aws: { cpu: "8 vCPU", memory: "18 GB" } } } })).toThrow(/targets.prod.aws.memory: 18 GB does not fit 8 vCPU: use 16-60 GB in steps of 4 GB/);
    expect(parseConfig({ ...base, targets: { prod: { ...base.targets.prod, aws: { cpu: "8 vCPU", memory: "20 GB" } } } }).targets.prod!.aws).toEqual({ cpu: "8 vCPU", memory: "20 GB" });
  });
});
