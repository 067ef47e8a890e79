import type { RDSClient } from "@aws-sdk/client-rds";
import { AttemptError, LifeboatError, type DatabaseConfig, type SecretResolver } from "@lifeboat/core";
import { parsePostgresUrl, type ConnectionInfo } from "./pg/connection.js";
import { IamTokenFile, type TokenSigner } from "./iam-auth.js";

/**
 * IAM authentication: the password file of tokens for this endpoint and user, kept fresh while the process lives.
 * Tokens are signed for the instance's region (database.rds.region), else the RDS client's, else the environment's.
 */
async function iamPassfile(db: DatabaseConfig, host: string, port: number, rds: RDSClient | undefined, env: NodeJS.ProcessEnv, opts: { signer?: TokenSigner; refreshMs?: number }): Promise<string> {
  const region = db.rds?.region ?? (rds ? await rds.config.region() : (env.AWS_REGION ?? env.AWS_DEFAULT_REGION));
  if (!region) throw new LifeboatError("IAM authentication needs the database's region", { exitCode: 2, hint: "set database.rds.region, or AWS_REGION" });
  return (await IamTokenFile.start({ hostname: host, port, username: db.user!, region }, opts)).path;
}

/**
 * Resolves a target's database config to a connection: a URL (inline or from a secret), host/port/database/user with
 * a password secret, or an RDS instance looked up with DescribeDBInstances.
 *
 * `defaultSslmode` applies to hosts and URLs that set no sslmode themselves (database.sslmode, or ?sslmode= in the
 * URL): the deployed runner passes "require", so that a database across a network is never spoken to in plaintext
 * (libpq's own default, prefer, falls back to it). Local runs keep libpq's default (and PGSSLMODE).
 */
export async function resolveDatabase(
  db: DatabaseConfig,
  secrets: SecretResolver,
  what: string,
  rds?: RDSClient,
  env: NodeJS.ProcessEnv = process.env,
  opts: { defaultSslmode?: "require"; signer?: TokenSigner; refreshMs?: number } = {},
): Promise<ConnectionInfo> {
  const password = db.password ? await secrets.resolve(db.password, `${what}.password`) : undefined;
  const params: Record<string, string> = { ...(db.sslmode ? { sslmode: db.sslmode } : {}), ...(db.sslrootcert ? { sslrootcert: db.sslrootcert } : {}) };
  const withDefault = (p: Record<string, string>) => (p.sslmode === undefined && opts.defaultSslmode ? { ...p, sslmode: opts.defaultSslmode } : p);
  if (db.url !== undefined) {
    const url = typeof db.url === "string" ? db.url : await secrets.resolve(db.url, `${what}.url`);
    const c = parsePostgresUrl(url);
    return { ...c, password: password ?? c.password, params: withDefault({ ...c.params, ...params }) };
  }
  if (db.host !== undefined) {
    const port = db.port ?? 5432;
    // IAM authentication to an RDS or Aurora endpoint given by its host (an SST app's database): its region is the runner's
    const passfile = db.iamAuth ? await iamPassfile(db, db.host, port, undefined, env, opts) : undefined;
    // a token is a credential: the server is verified (against the RDS CA bundle unless the target names a CA)
    const tls = db.iamAuth && !params.sslmode ? { sslmode: "verify-full", ...(params.sslrootcert || !env.LIFEBOAT_RDS_CA_BUNDLE ? {} : { sslrootcert: env.LIFEBOAT_RDS_CA_BUNDLE }) } : {};
    return { host: db.host, port, database: db.database!, user: db.user!, password, ...(passfile ? { passfile } : {}), params: withDefault({ ...params, ...tls }) };
  }
  // RDS: the server's certificate is verified against the RDS CA bundle unless the target says otherwise
  const sslmode = db.sslmode ?? "verify-full";
  const sslrootcert = db.sslrootcert ?? env.LIFEBOAT_RDS_CA_BUNDLE;
  if (sslmode.startsWith("verify-") && !sslrootcert) {
    throw new LifeboatError(`${what}: the RDS server's certificate is verified (sslmode=${sslmode}), but no RDS CA bundle is configured`, {
      exitCode: 2,
      hint: `download ${RDS_CA_BUNDLE_URL} and set LIFEBOAT_RDS_CA_BUNDLE to its path or database.sslrootcert (the runner image has it); or set database.sslmode`,
    });
  }
  const endpoint = await rdsEndpoint(db.rds!, rds);
  // IAM authentication: a token for each connection, from a password file kept fresh while the process lives
  const passfile = db.iamAuth ? await iamPassfile(db, endpoint.host, endpoint.port, rds, env, opts) : undefined;
  return {
    host: endpoint.host,
    port: endpoint.port,
    database: db.database!,
    user: db.user!,
    password,
    ...(passfile ? { passfile } : {}),
    params: { sslmode, ...(sslrootcert ? { sslrootcert } : {}) },
  };
}

/** Amazon RDS's certificate bundle for every region (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/UsingWithRDS.SSL.html). */
export const RDS_CA_BUNDLE_URL = "https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem";

/**
 * RDS states in which an instance does not serve connections
 * (https://docs.aws.amazon.com/AmazonRDS/latest/UserGuide/accessing-monitoring.html#Overview.DBInstance.Status).
 * Every other state serves them: available, and the nightly backing-up, modifying, storage-optimization,
 * configuring-*, maintenance, ... in which refusing would be a false failure.
 */
const RDS_NOT_SERVING = [/^stopped$/, /^stopping$/, /^starting$/, /^failed$/, /^deleting$/, /^creating$/, /^rebooting$/, /^storage-full$/, /^restore-error$/, /^insufficient-capacity$/, /^incompatible-/, /^inaccessible-encryption-credentials/];

export function rdsServes(status: string): boolean {
  return !RDS_NOT_SERVING.some((re) => re.test(status));
}

/**
 * Where an RDS instance answers, with DescribeDBInstances. An instance in a state that does not serve connections
 * (stopped, failed, ...) is a failure naming its state; an unknown instance is permanent.
 */
export async function rdsEndpoint(rdsConfig: { instance: string; region?: string | undefined }, rds?: RDSClient): Promise<{ host: string; port: number }> {
  const instance = rdsConfig.instance;
  const { DescribeDBInstancesCommand, RDSClient } = await import("@aws-sdk/client-rds"); // loaded for rds targets only
  const client = rds ?? new RDSClient(rdsConfig.region ? { region: rdsConfig.region } : {});
  let res;
  try {
    res = await client.send(new DescribeDBInstancesCommand({ DBInstanceIdentifier: instance }));
  } catch (err) {
    const name = (err as Error).name;
    if (name === "DBInstanceNotFoundFault") {
      throw new AttemptError("rds_not_found", "permanent", `RDS instance "${instance}" does not exist in this account and region`, {
        hint: "check rds.instance and rds.region",
      });
    }
    throw new AttemptError("rds_lookup_failed", "transient", `cannot describe RDS instance "${instance}": ${name}`);
  }
  const inst = res.DBInstances?.[0];
  if (!inst?.Endpoint?.Address) {
    throw new AttemptError("rds_no_endpoint", "transient", `RDS instance "${instance}" has no endpoint yet (status ${inst?.DBInstanceStatus ?? "unknown"})`);
  }
  const status = inst.DBInstanceStatus ?? "unknown";
  if (!rdsServes(status)) {
    throw new AttemptError("rds_not_available", "transient", `RDS instance "${instance}" is ${status}: it does not serve connections`, {
      hint: status === "stopped" || status === "stopping" ? "start it (aws rds start-db-instance), or schedule the backup while it runs" : "see the instance's events in the RDS console",
    });
  }
  return { host: inst.Endpoint.Address, port: inst.Endpoint.Port ?? 5432 };
}
