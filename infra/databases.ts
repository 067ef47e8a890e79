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

/** An app database with Lifeboat's own user on it, or IAM authentication: { component: db, user, iamAuth }. */
export interface AppDatabaseTarget {
  component: AppDatabase;
  /** The database to back up (default: the component's). */
  database?: string;
  /** The user (default: the component's master user); required with iamAuth (a user with the rds_iam role). */
  user?: string;
  /** IAM database authentication: no password at all; rds-db:connect as `user` on this database only. */
  iamAuth?: boolean;
  /** With a user of Lifeboat's own (and no iamAuth): where its password is ({ ssm }, { secretsManager }). */
  password?: { ssm?: string; secretsManager?: string; key?: string };
}

function appDatabaseSpec(x: unknown): AppDatabaseTarget | undefined {
  if (isAppDatabase(x)) return { component: x };
  if (x && typeof x === "object" && "component" in x && isAppDatabase((x as { component: unknown }).component)) return x as AppDatabaseTarget;
  return undefined;
}

/** An RDS Proxy endpoint: <name>.proxy-<id>.<region>.rds.amazonaws.com. */
export function isRdsProxy(host: string): boolean {
  return /\.proxy-[a-z0-9]+\.[a-z0-9-]+\.rds\.amazonaws\.com(\.cn)?$/.test(host);
}

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
  const iam: AppDatabaseIam[] = [];
  for (const [target, t] of Object.entries(targets ?? {})) {
    const spec = appDatabaseSpec(t.database);
    if (!spec) {
      planned[target] = deployed[target] = t;
      continue;
    }
    if (!hasVpc) {
      throw new VisibleError(
        `lifeboat: targets.${target}.database is a database of this app: give the Backups component its VPC too (\`vpc\`: the sst.aws.Vpc the database is in)`,
      );
    }
    const db = spec.component;
    const nodes = db.nodes as { cluster?: aws.rds.Cluster; instance?: aws.rds.Instance };
    const tls = { sslmode: "verify-full" as const, sslrootcert: RDS_CA_BUNDLE_IN_IMAGE };
    // through an RDS Proxy (the component's proxy: true, whose endpoint is its host) the certificate is ACM's, from
    // Amazon's public roots, not the RDS bundle's: verified against the system's roots instead (libpq 16+, the image's)
    const deployedTls = { sslmode: "verify-full" as const, sslrootcert: db.host.apply((h) => (isRdsProxy(h) ? "system" : RDS_CA_BUNDLE_IN_IMAGE)) };
    const where = { host: db.host, port: db.port, database: spec.database ?? db.database };
    if (spec.iamAuth) {
      if (!spec.user) {
        throw new VisibleError(`lifeboat: targets.${target}.database.iamAuth needs user: a database user of its own with the rds_iam role (granting rds_iam to the master user would end its password logins)`);
      }
      const resourceId = nodes.cluster ? nodes.cluster.clusterResourceId : nodes.instance ? nodes.instance.resourceId : undefined;
      if (!resourceId) throw new VisibleError(`lifeboat: targets.${target}.database has no RDS instance or cluster here (under \`sst dev\` it is your local database)`);
      // the database must accept IAM authentication: said at deploy time when it does not
      (nodes.cluster ?? nodes.instance)!.iamDatabaseAuthenticationEnabled.apply((on) => {
        if (!on) console.warn(`lifeboat: targets.${target} uses IAM authentication, but its database does not accept it: set iamDatabaseAuthenticationEnabled: true in its transform (${nodes.cluster ? "transform.cluster" : "transform.instance"})`);
      });
      iam.push({ target, user: spec.user, resourceId });
      // through an RDS Proxy, IAM authentication is the proxy's (its own auth settings and a prx- grant): not made here
      db.host.apply((h) => {
        if (isRdsProxy(h)) console.warn(`lifeboat: targets.${target} uses IAM authentication through an RDS Proxy (${h}): Lifeboat grants rds-db:connect on the database, not the proxy; connect to the instance instead (no proxy), or use a password`);
      });
      planned[target] = { ...t, database: { host: `${target}.app-database.invalid`, port: 5432, database: "app", user: spec.user, password: { ssm: PLANNED_PARAMETER }, ...tls } };
      deployed[target] = { ...t, database: { ...where, user: spec.user, iamAuth: true, ...deployedTls } };
      access.push({ target, port: db.port, securityGroups: securityGroupsOf(target, db) });
      continue;
    }
    if (spec.user) {
      // a user of Lifeboat's own, with its own password (the component's is the master user's)
      if (!spec.password) throw new VisibleError(`lifeboat: targets.${target}.database.user is not the master user: give its password ({ ssm: "/..." } or { secretsManager: "arn:..." }), or iamAuth: true`);
      planned[target] = { ...t, database: { host: `${target}.app-database.invalid`, port: 5432, database: "app", user: spec.user, password: spec.password, ...tls } };
      deployed[target] = { ...t, database: { ...where, user: spec.user, password: spec.password, ...deployedTls } };
      access.push({ target, port: db.port, securityGroups: securityGroupsOf(target, db) });
      continue;
    }
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
    // planned: the secret's ARN is known at deploy time only (the runner role gets it from `secrets`)
    const plannedPassword = auroraSecret ? { secretsManager: PLANNED_SECRET, key: "password" } : password;
    planned[target] = { ...t, database: { host: `${target}.app-database.invalid`, port: 5432, database: "app", user: "app", password: plannedPassword, ...tls } };
    deployed[target] = { ...t, database: { ...where, user: db.username, password, ...deployedTls } };
    access.push({ target, port: db.port, securityGroups: securityGroupsOf(target, db) });
  }
  return { planned, deployed, access, secrets, iam };
}

/** An app database target's IAM authentication: rds-db:connect as its user on the instance's or cluster's resource id. */
export interface AppDatabaseIam {
  target: string;
  user: string;
  resourceId: $util.Output<string>;
}

/** The stand-in for an IAM-authenticated app database's password while the deployment is planned (never granted). */
export const PLANNED_PARAMETER = "/lifeboat/planned/none";

/** The stand-in for an app database's secret while the deployment is planned (never granted: see runner.ts). */
export const PLANNED_SECRET = "arn:aws:secretsmanager:us-east-1:000000000000:secret:lifeboat-planned-AAAAAA";
