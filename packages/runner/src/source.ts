import { DescribeDBInstancesCommand, RDSClient } from "@aws-sdk/client-rds";
import { AttemptError, type DatabaseConfig, type SecretResolver } from "@lifeboat/core";
import { parsePostgresUrl, type ConnectionInfo } from "./pg/connection.js";

/**
 * Resolves a target's database config to a connection: a URL (inline or from a secret), host/port/database/user with
 * a password secret, or an RDS instance looked up with DescribeDBInstances.
 */
export async function resolveDatabase(db: DatabaseConfig, secrets: SecretResolver, what: string, rds?: RDSClient): Promise<ConnectionInfo> {
  const password = db.password ? await secrets.resolve(db.password, `${what}.password`) : undefined;
  const params: Record<string, string> = db.sslmode ? { sslmode: db.sslmode } : {};
  if (db.url !== undefined) {
    const url = typeof db.url === "string" ? db.url : await secrets.resolve(db.url, `${what}.url`);
    const c = parsePostgresUrl(url);
    return { ...c, password: password ?? c.password, params: { ...c.params, ...params } };
  }
  if (db.host !== undefined) {
    return { host: db.host, port: db.port ?? 5432, database: db.database!, user: db.user!, password, params };
  }
  const endpoint = await rdsEndpoint(db.rds!, rds);
  return {
    host: endpoint.host,
    port: endpoint.port,
    database: db.database!,
    user: db.user!,
    password,
    params: { sslmode: db.sslmode ?? "require" },
  };
}

/**
 * Where an RDS instance answers, with DescribeDBInstances. An instance that is not `available` (stopped, backing up,
 * modifying) is a transient failure naming its status; an unknown one is permanent.
 */
export async function rdsEndpoint(rdsConfig: { instance: string; region?: string | undefined }, rds?: RDSClient): Promise<{ host: string; port: number }> {
  const instance = rdsConfig.instance;
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
  if (inst.DBInstanceStatus !== "available") {
    throw new AttemptError("rds_not_available", "transient", `RDS instance "${instance}" is ${inst.DBInstanceStatus}, not available`);
  }
  return { host: inst.Endpoint.Address, port: inst.Endpoint.Port ?? 5432 };
}
