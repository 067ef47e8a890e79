import { describe, expect, it } from "vitest";
import { ConfigError, deployPlan, parseConfig } from "@lifeboat/core";

const base = {
  storage: { s3: { bucket: "acme-backups", prefix: "pg" } },
  targets: {
    prod: { database: { rds: { instance: "acme-prod" }, database: "app", user: "backup", password: { ssm: "/lifeboat/prod/pw" } }, schedule: "cron(0 2 * * ? *)", timezone: "Europe/Paris", retention: { days: 35 } },
    "staging-eu": { database: { url: { ssm: "/lifeboat/staging/url" } }, schedule: "rate(6 hours)", retention: { days: 7 } },
    adhoc: { database: { host: "db.internal", database: "x", user: "y" } },
  },
  notifications: { slack: { webhook: { ssm: "/lifeboat/slack" }, on: ["failed"] } },
  aws: { email: [{ address: "oncall@example.com" }, { address: "audit@example.com", on: ["succeeded", "failed"] }], bucket: { transition: { days: 30, storageClass: "GLACIER_IR" } } },
};

describe("deploy plan", () => {
  it("derives one schedule per scheduled target, lifecycle rules per retention, parameters and subscriptions", () => {
    const plan = deployPlan(parseConfig(base), "production");
    expect(plan.bucketName).toBe("acme-backups");
    expect(plan.schedules).toEqual([
      { target: "prod", component: "ScheduleProd", expression: "cron(0 2 * * ? *)", timezone: "Europe/Paris", event: { source: "lifeboat.schedule", target: "prod", scheduledTime: "<aws.scheduler.scheduled-time>" } },
      { target: "staging-eu", component: "ScheduleStagingEu", expression: "rate(6 hours)", timezone: "UTC", event: { source: "lifeboat.schedule", target: "staging-eu", scheduledTime: "<aws.scheduler.scheduled-time>" } },
    ]);
    expect(plan.lifecycle).toEqual([
      { id: "abort-incomplete-multipart-uploads", prefix: "pg/", abortIncompleteMultipartUploadDays: 1, noncurrentVersionDays: 7, transition: { days: 30, storageClass: "GLACIER_IR" } },
      { id: "retention-prod", prefix: "pg/prod/", expirationDays: 35 },
      { id: "retention-staging-eu", prefix: "pg/staging-eu/", expirationDays: 7 },
    ]);
    expect(plan.runnerParameters).toEqual(["/lifeboat/prod/pw", "/lifeboat/staging/url"]);
    expect(plan.slack).toEqual({ webhookParameter: "/lifeboat/slack", on: ["failed"] });
    expect(plan.email).toEqual([
      { address: "oncall@example.com", filterPolicy: { status: ["failed"] } },
      { address: "audit@example.com", filterPolicy: { status: ["succeeded", "failed"] } },
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

  it("SQLite targets are left to the machine that holds the file: no schedule, no parameter", () => {
    const plan = deployPlan(parseConfig({ ...base, targets: { ...base.targets, blog: { engine: "sqlite", database: { path: "/srv/blog.db" }, schedule: "rate(1 hour)" } } }), "production");
    expect(plan.schedules.map((s) => s.target)).toEqual(["prod", "staging-eu"]);
    expect(plan.warnings).toEqual(["targets.blog is a SQLite file: the AWS deployment leaves it out; run `lifeboat schedule` on the machine that holds it"]);
  });

  it("other stages get their own bucket name", () => {
    expect(deployPlan(parseConfig(base), "dev").bucketName).toBe("acme-backups-dev");
  });

  it("refuses what cannot work in the cloud, listing every problem", () => {
    const bad = parseConfig({
      storage: { directory: "/var/backups" },
      targets: {
        a: { database: { host: "h", database: "d", user: "u", password: { env: "PGPASSWORD" } } },
        b: { database: { url: "postgres://u@localhost/d" } },
        "x-y": { database: { url: "postgres://u@h/d" }, schedule: "rate(1 day)" },
        x_y: { database: { url: "postgres://u@h/d" }, schedule: "rate(1 day)" },
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

  it("Fargate sizes are checked against what Fargate accepts", () => {
    expect(() => parseConfig({ ...base, aws: { runner: { cpu: "0.25 vCPU", memory: "4 GB" } } })).toThrow(/aws.runner.memory: 4 GB does not fit 0.25 vCPU: use 0.5 GB or 1-2 GB/);
    expect(() => parseConfig({ ...base, targets: { prod: { ...base.targets.prod, aws: { cpu: "8 vCPU", memory: "18 GB" } } } })).toThrow(/targets.prod.aws.memory: 18 GB does not fit 8 vCPU: use 16-60 GB in steps of 4 GB/);
    expect(parseConfig({ ...base, targets: { prod: { ...base.targets.prod, aws: { cpu: "8 vCPU", memory: "20 GB" } } } }).targets.prod!.aws).toEqual({ cpu: "8 vCPU", memory: "20 GB" });
  });
});
