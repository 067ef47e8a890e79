import { defineConfig } from "lifeboat";

/**
 * An example backup plan. Copy it, change the names, and check it with `npx lifeboat check --cloud` (`--config F` for another file)
 * (a bad config fails at load, every problem listed). Secrets are never written here: they are named by where to read
 * them from: { ssm: "/parameter/name" } (SSM Parameter Store, what the AWS deployment requires) or { env: "NAME" }
 * (an environment variable, for runs on your own machines).
 *
 * Before `npx sst deploy`, replace every value marked PLACEHOLDER (the bucket name, the RDS instance and hosts, the VPC,
 * subnet and security group ids, the e-mail address): they name things in an example account, and a deploy with them
 * fails (or, for the bucket name, may collide with someone else's).
 */
export default defineConfig({
  storage: {
    s3: { bucket: "acme-db-backups", prefix: "lifeboat", region: "eu-west-1" }, // PLACEHOLDER: a bucket name of your own
    // or an S3-compatible store:  s3: { bucket: "backups", endpoint: "http://127.0.0.1:9000" }  (path-style by default)
    // or a directory:             directory: "/var/backups/lifeboat"
  },
  targets: {
    // An RDS instance: endpoint and port come from DescribeDBInstances; the password from SSM Parameter Store.
    prod: {
      description: "Main application database",
      database: { rds: { instance: "acme-prod" }, database: "app", user: "lifeboat_backup", password: { ssm: "/lifeboat/prod/db-password" } }, // PLACEHOLDER: your instance
      schedule: "cron(0 2 * * ? *)", // every day at 02:00 in `timezone`
      timezone: "Europe/Paris",
      dump: { format: "custom", compression: 6, excludeTables: ["public.sessions"] },
      retries: { attempts: 3, delaySeconds: 60, maxDelaySeconds: 600 },
      retention: { days: 35 },
    },
    // Any server reachable by host name (from the runner's VPC), with its password in SSM.
    staging: {
      // PLACEHOLDER: your host. sslmode "require" encrypts without checking the certificate; "verify-full" with
      // sslrootcert checks it (docs/deploy.md, TLS)
      database: { host: "staging-db.internal", port: 5432, database: "app", user: "backup", password: { ssm: "/lifeboat/staging/db-password" }, sslmode: "require" },
      schedule: "rate(6 hours)",
      retention: { days: 7 },
    },
    // A whole URL kept as a secret (it may carry the password, since it is not in this file).
    analytics: {
      database: { url: { ssm: "/lifeboat/analytics/database-url" } },
      schedule: "cron(30 3 ? * SUN *)", // Sundays at 03:30 UTC
      dump: { format: "plain", compression: 9, schemas: ["reporting"] },
      // a year of weekly backups: the runner deletes older ones after each backup (a target without retention keeps
      // every backup forever, and pays for it)
      retention: { weekly: 52 },
    },
  },
  notifications: {
    slack: { webhook: { ssm: "/lifeboat/slack-webhook-url" }, on: ["failed"] },
  },
  // The AWS deployment (every key has a default; see docs/deploy.md).
  aws: {
    runner: { architecture: "arm64", cpu: "1 vCPU", memory: "2 GB" },
    // RDS and private hosts are reachable only from inside their VPC: the runner runs there, in private subnets with a
    // NAT gateway (or VPC endpoints), and each database security group lets the runner in on its port.
    vpc: {
      id: "vpc-0123456789abcdef0", // PLACEHOLDER: the databases' VPC
      containerSubnets: ["subnet-0123456789abcdef0", "subnet-0fedcba9876543210"], // PLACEHOLDER: its private subnets
      databaseSecurityGroups: ["sg-0123456789abcdef0"], // PLACEHOLDER: the databases' security group
    },
    // PLACEHOLDER: who is told by e-mail (also when Slack itself fails)
    email: [{ address: "oncall@example.com", on: ["failed"] }],
  },
});
