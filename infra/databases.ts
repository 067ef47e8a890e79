// Targets whose database is an sst.aws.Postgres or sst.aws.Aurora of the same app: endpoint, port, database name and
// user come from the component; its password goes to an SSM SecureString that only that target's runner may read
// (never a task definition's environment); its security groups let the runner in on its port.
import { pascal } from "@lifeboat/core";
import { VisibleError } from "./context";
import type { AppDatabaseAccess } from "./runner";

/** What Lifeboat reads from an SST database component (sst.aws.Postgres, sst.aws.Aurora). */
export interface AppDatabase {
  host: $util.Output<string>;
  port: $util.Output<number>;
  database: $util.Output<string>;
  username: $util.Output<string>;
  password: $util.Output<string>;
  nodes: { instance?: unknown; cluster?: unknown };
}

/** Where the runner image keeps Amazon RDS's CA bundle (packages/runner/Dockerfile). */
export const RDS_CA_BUNDLE_IN_IMAGE = "/usr/share/lifeboat/rds-global-bundle.pem";

export function isAppDatabase(x: unknown): x is AppDatabase {
  return $util.Resource.isInstance(x) && ["host", "port", "database", "username", "password", "nodes"].every((k) => k in (x as object));
}

/** The SSM parameter that holds an app database's password, for one target. */
export function appDatabasePasswordParameter(target: string): string {
  return `/lifeboat/${$app.name}/${$app.stage}/${target}/database-password`;
}

function securityGroupsOf(target: string, db: AppDatabase): $util.Output<string[]> {
  const nodes = db.nodes as { cluster?: aws.rds.Cluster; instance?: aws.rds.Instance };
  // Aurora: the cluster's groups (its nodes.instance is an instance of the cluster); Postgres: the instance's (none
  // given: the VPC's default group)
  if (nodes.cluster) return nodes.cluster.vpcSecurityGroupIds.apply((g) => g ?? []);
  if (nodes.instance) return nodes.instance.vpcSecurityGroupIds.apply((g) => g ?? []);
  throw new VisibleError(
    `lifeboat: targets.${target}.database is an SST database that has no RDS instance or cluster here (under \`sst dev\` it is your local database): deploy with \`sst deploy\`, or give a host instead`,
  );
}

/**
 * Splits the targets: `planned` (app databases as placeholders, for planning the deployment), `deployed` (their real
 * endpoints, resolved at deploy time, for the config the runner reads) and `access` (the security groups to open).
 */
export function appDatabaseTargets<T extends { database: unknown }>(
  name: string,
  parent: $util.ComponentResource,
  targets: Record<string, T>,
  hasVpc: boolean,
) {
  const planned: Record<string, T> = {};
  const deployed: Record<string, T> = {};
  const access: AppDatabaseAccess[] = [];
  const secrets: Array<{ target: string; arn: $util.Output<string> }> = [];
  for (const [target, t] of Object.entries(targets ?? {})) {
    if (!isAppDatabase(t.database)) {
      planned[target] = deployed[target] = t;
      continue;
    }
    if (!hasVpc) {
      throw new VisibleError(
        `lifeboat: targets.${target}.database is a database of this app: give the Backups component its VPC too (\`vpc\`: the sst.aws.Vpc the database is in)`,
      );
    }
    const db = t.database;
    // Aurora keeps its credentials in a Secrets Manager secret (JSON: username, password), which the runner reads
    // itself; sst.aws.Postgres exposes no secret, so its password is copied to an SSM SecureString for the runner
    const auroraSecret = (db as { secretArn?: $util.Output<string> }).secretArn;
    let password: { ssm: string } | { secretsManager: $util.Output<string> | string; key: string };
    if (auroraSecret) {
      password = { secretsManager: auroraSecret, key: "password" };
      secrets.push({ target, arn: auroraSecret });
    } else {
      const parameter = appDatabasePasswordParameter(target);
      new aws.ssm.Parameter(
        `${name}${pascal(target)}DatabasePassword`,
        { name: parameter, type: "SecureString", value: db.password, description: `Lifeboat: the password of target ${target}'s database` },
        { parent },
      );
      password = { ssm: parameter };
    }
    // RDS's certificate, verified against Amazon RDS's CA bundle (in the runner image)
    const tls = { sslmode: "verify-full" as const, sslrootcert: RDS_CA_BUNDLE_IN_IMAGE };
    // planned: the secret's ARN is known at deploy time only (the runner role gets it from `secrets`)
    const plannedPassword = auroraSecret ? { secretsManager: PLANNED_SECRET, key: "password" } : password;
    planned[target] = { ...t, database: { host: `${target}.app-database.invalid`, port: 5432, database: "app", user: "app", password: plannedPassword, ...tls } };
    deployed[target] = { ...t, database: { host: db.host, port: db.port, database: db.database, user: db.username, password, ...tls } };
    access.push({ target, port: db.port, securityGroups: securityGroupsOf(target, db) });
  }
  return { planned, deployed, access, secrets };
}

/** The stand-in for an app database's secret while the deployment is planned (never granted: see runner.ts). */
export const PLANNED_SECRET = "arn:aws:secretsmanager:us-east-1:000000000000:secret:lifeboat-planned-AAAAAA";
