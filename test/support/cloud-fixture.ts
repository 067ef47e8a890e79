/**
 * One deployment, seen from both sides: the config the cloud components' tests run with (launcher, watcher, Slack
 * subscriber, the runner in container mode), and the identifiers those tests hand them in place of what the deployed
 * stack gives them. test/iam.test.ts synthesizes the stack from the same config and maps each identifier back to the
 * stack's own (by the environment variable the stack sets), so the calls recorded in the tests are evaluated against
 * the roles a user would deploy.
 */
import type { RunnerTaskSettings } from "@lifeboat/runner";

export const TEST_BUCKET = "lifeboat-test";
export const TOPIC = "arn:aws:sns:eu-west-1:123456789012:lifeboat-events";
export const SETTINGS: RunnerTaskSettings = {
  cluster: "arn:aws:ecs:eu-west-1:123456789012:cluster/lifeboat",
  taskDefinition: "arn:aws:ecs:eu-west-1:123456789012:task-definition/lifeboat-runner:3",
  container: "runner",
  subnets: ["subnet-0a", "subnet-0b"],
  securityGroups: ["sg-0c"],
  assignPublicIp: false,
  targetRoles: { arnPrefix: "arn:aws:iam::123456789012:role/lifeboat/lifeboat/production/runner/", scope: "lifeboat/production" },
};

const pw = (target: string) => ({ ssm: `/lifeboat/${target}/pw` });
export const VAULT_SECRET = "arn:aws:secretsmanager:eu-west-1:123456789012:secret:rds!db-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b-Ab12Cd";

/** The deployment's config. The runner tests point `entry`, `drill`, `kept` and `rdsprod` at the test's own server. */
export const cloudConfig = {
  storage: { s3: { bucket: "acme-backups", prefix: "pg", region: "eu-west-1" } },
  targets: {
    prod: {
      database: { rds: { instance: "acme-prod" }, database: "app", user: "backup", password: pw("prod") },
      schedule: "cron(0 2 * * ? *)",
      aws: { cpu: "2 vCPU", memory: "8 GB" },
      retries: { attempts: 3 },
    },
    staging: { database: { host: "staging.internal", database: "app", user: "backup", password: pw("staging") }, schedule: "rate(6 hours)", retries: { attempts: 2 } },
    entry: { database: { host: "entry.internal", database: "entry", user: "postgres", password: pw("entry") } },
    drill: {
      database: { host: "drill.internal", database: "drill", user: "postgres", password: pw("drill") },
      verify: { schedule: "rate(7 days)" },
      // encrypted backups (a public key: not a secret); the drills' identity lives in SSM
      encryption: { recipients: ["age1hvyrnertaeyw9wld93kcalhwd7juxxzgq5nnuuyunfq5x65ey44q5e5s3f"], identity: { ssm: "/lifeboat/drill/age-identity" } },
    },
    kept: { database: { host: "kept.internal", database: "kept", user: "postgres", password: pw("kept") }, retention: { keepLast: 2 } },
    rdsprod: { database: { rds: { instance: "acme-orders" }, database: "orders", user: "postgres", password: pw("rdsprod") }, retries: { attempts: 1 } },
    // no password: IAM database authentication (a token per connection; rds-db:connect as lifeboat_iam)
    rdsiam: { database: { rds: { instance: "acme-reports" }, database: "reports", user: "lifeboat_iam", iamAuth: true } },
    // its password in Secrets Manager, as RDS keeps a managed master user's (JSON, key "password")
    // 3-2-1: an AWS bucket (another account's, in the deployment) written by the target's own role and pruned by the
    // runner, and another provider's bucket with keys of its own from SSM, left to that store's retention
    copied: {
      database: { host: "copied.internal", database: "copied", user: "postgres", password: pw("copied") },
      copies: [
        { name: "offsite", s3: { bucket: "acme-offsite", prefix: "pg", region: "eu-west-1" }, retention: { keepLast: 1 }, objectLock: { mode: "GOVERNANCE", days: 30 } },
        {
          name: "r2",
          s3: { bucket: "acme-r2", prefix: "pg", endpoint: "https://0123456789abcdef.r2.cloudflarestorage.com", provider: "r2", credentials: { accessKeyId: { ssm: "/lifeboat/copied/r2-key-id" }, secretAccessKey: { ssm: "/lifeboat/copied/r2-secret" } } },
          retention: "store",
        },
      ],
    },
    vault: { database: { host: "vault.internal", database: "vault", user: "postgres", password: { secretsManager: VAULT_SECRET, key: "password" } } },
  },
  // the heartbeat is pinged by the runner itself: its role reads the URL's parameter (the runner tests leave it out of
  // the config they write, but the one test of the heartbeat)
  notifications: { slack: { webhook: { ssm: "/lifeboat/slack" }, on: ["failed"] }, webhook: { url: { ssm: "/lifeboat/webhook" }, on: ["succeeded", "failed"] }, heartbeat: { url: { ssm: "/lifeboat/heartbeat" } } },
  aws: { vpc: { id: "vpc-0a1b2c3d", containerSubnets: ["subnet-0a", "subnet-0b"], databaseSecurityGroups: ["sg-0db"] } },
} as const;
