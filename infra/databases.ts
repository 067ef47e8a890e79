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

/** The RDS resource behind a database component: Aurora's cluster, or Postgres's instance (none under `sst dev`). */
function rdsNodeOf(target: string, db: AppDatabase): { cluster: aws.rds.Cluster } | { instance: aws.rds.Instance } {
  const nodes = db.nodes as { cluster?: aws.rds.Cluster; instance?: aws.rds.Instance };
  // Aurora's nodes.instance is an instance of its cluster: the cluster is what has the security groups and the
  // resource id IAM authentication is granted on
  if (nodes.cluster) return { cluster: nodes.cluster };
  if (nodes.instance) return { instance: nodes.instance };
  throw new VisibleError(
    `lifeboat: targets.${target}.database is an SST database that has no RDS instance or cluster here (under \`sst dev\` it is your local database): deploy with \`sst deploy\`, or give a host instead`,
  );
}

/** Where the runner's config says a database is while the deployment is planned (its endpoint is known at deploy time). */
const plannedEndpoint = (target: string) => ({ host: `${target}.app-database.invalid`, port: 5432, database: "app" });

/**
 * Splits the targets: `planned` (app databases as placeholders, for planning the deployment), `deployed` (their real
 * endpoints, resolved at deploy time, for the config the runner reads), `access` (the security groups to open), and
 * what the runner roles are granted once known: `secrets` (Aurora's), `iam` (rds-db:connect).
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
    const rds = rdsNodeOf(target, db);
    const node = "cluster" in rds ? rds.cluster : rds.instance;
    // RDS's certificate, verified against Amazon RDS's CA bundle (in the runner image); through an RDS Proxy (the
    // component's proxy: true, whose endpoint is its host) the certificate is ACM's, from Amazon's public roots, not
    // the RDS bundle's: verified against the system's roots instead (libpq 16+, the image's)
    const tls = { sslmode: "verify-full" as const, sslrootcert: RDS_CA_BUNDLE_IN_IMAGE };
    const deployedTls = { ...tls, sslrootcert: db.host.apply((h) => (isRdsProxy(h) ? "system" : RDS_CA_BUNDLE_IN_IMAGE)) };

    // who the runner connects as, and how it authenticates: at planning time, and once deployed
    let user: string | $util.Output<string>;
    let plannedAuth: Record<string, unknown>;
    let deployedAuth: Record<string, unknown>;
    if (spec.iamAuth) {
      if (!spec.user) {
        throw new VisibleError(`lifeboat: targets.${target}.database.iamAuth needs user: a database user of its own with the rds_iam role (granting rds_iam to the master user would end its password logins)`);
      }
      user = spec.user;
      // the database must accept IAM authentication, and not through a proxy (a proxy's IAM authentication is its own,
      // with a prx- grant, not made here): said at deploy time
      node.iamDatabaseAuthenticationEnabled.apply((on) => {
        if (!on) console.warn(`lifeboat: targets.${target} uses IAM authentication, but its database does not accept it: set iamDatabaseAuthenticationEnabled: true in its transform (${"cluster" in rds ? "transform.cluster" : "transform.instance"})`);
      });
      db.host.apply((h) => {
        if (isRdsProxy(h)) console.warn(`lifeboat: targets.${target} uses IAM authentication through an RDS Proxy (${h}): Lifeboat grants rds-db:connect on the database, not the proxy; connect to the instance instead (no proxy), or use a password`);
      });
      iam.push({ target, user: spec.user, resourceId: "cluster" in rds ? rds.cluster.clusterResourceId : rds.instance.resourceId });
      plannedAuth = { password: { ssm: PLANNED_PARAMETER } };
      deployedAuth = { iamAuth: true };
    } else if (spec.user) {
      // a user of Lifeboat's own, with its own password (the component's is the master user's)
      if (!spec.password) throw new VisibleError(`lifeboat: targets.${target}.database.user is not the master user: give its password ({ ssm: "/..." } or { secretsManager: "arn:..." }), or iamAuth: true`);
      user = spec.user;
      plannedAuth = deployedAuth = { password: spec.password };
    } else {
      // the master user. Aurora keeps its credentials in a Secrets Manager secret (JSON: username, password), which the
      // runner reads itself (its ARN is known at deploy time: the runner role gets it from `secrets`); sst.aws.Postgres
      // exposes no secret, so its password is copied to an SSM SecureString for the runner
      user = db.username;
      const auroraSecret = (db as { secretArn?: $util.Output<string> }).secretArn;
      if (auroraSecret) {
        secrets.push({ target, arn: auroraSecret });
        plannedAuth = { password: { secretsManager: PLANNED_SECRET, key: "password" } };
        deployedAuth = { password: { secretsManager: auroraSecret, key: "password" } };
      } else {
        const parameter = appDatabasePasswordParameter(target);
        new aws.ssm.Parameter(
          `${name}${pascal(target)}DatabasePassword`,
          { name: parameter, type: "SecureString", value: db.password, description: `Lifeboat: the password of target ${target}'s database` },
          { parent },
        );
        plannedAuth = deployedAuth = { password: { ssm: parameter } };
      }
    }
    planned[target] = { ...t, database: { ...plannedEndpoint(target), user: typeof user === "string" ? user : "app", ...plannedAuth, ...tls } };
    deployed[target] = { ...t, database: { host: db.host, port: db.port, database: spec.database ?? db.database, user, ...deployedAuth, ...deployedTls } };
    access.push({ target, port: db.port, securityGroups: node.vpcSecurityGroupIds.apply((g) => g ?? []) });
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
