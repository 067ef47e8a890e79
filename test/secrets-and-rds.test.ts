import { mockClient } from "aws-sdk-client-mock";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { DescribeDBInstancesCommand, RDSClient } from "@aws-sdk/client-rds";
import { beforeEach, describe, expect, it } from "vitest";
import { AttemptError, LifeboatError, parseConfig, redact } from "@lifeboat/core";
import { DefaultSecretResolver, resolveDatabase } from "@lifeboat/runner";

/** AWS control-plane calls with no local twin: the exact requests sent are asserted. */
const ssm = mockClient(SSMClient);
const rds = mockClient(RDSClient);
beforeEach(() => {
  ssm.reset();
  rds.reset();
});

const target = (database: unknown) =>
  parseConfig({ storage: { directory: "/tmp/x" }, targets: { prod: { database } } }).targets.prod!.database;

describe("secrets", () => {
  it("reads an SSM SecureString with decryption", async () => {
    ssm.on(GetParameterCommand).resolves({ Parameter: { Name: "/lifeboat/prod/pw", Value: "s3cr3t-from-ssm" } });
    const resolver = new DefaultSecretResolver({}, new SSMClient({ region: "eu-west-1" }));
    const c = await resolveDatabase(target({ host: "db.internal", database: "app", user: "backup", password: { ssm: "/lifeboat/prod/pw" } }), resolver, "targets.prod.database");
    expect(ssm.commandCalls(GetParameterCommand).map((c) => c.args[0].input)).toEqual([{ Name: "/lifeboat/prod/pw", WithDecryption: true }]);
    expect(c).toEqual({ host: "db.internal", port: 5432, database: "app", user: "backup", password: "s3cr3t-from-ssm", params: {} });
  });

  it("a missing SSM parameter names the parameter and how to create it, never a value", async () => {
    ssm.on(GetParameterCommand).rejects(Object.assign(new Error("Parameter /lifeboat/x not found."), { name: "ParameterNotFound" }));
    const resolver = new DefaultSecretResolver({}, new SSMClient({ region: "eu-west-1" }));
    const err = await resolver.resolve({ ssm: "/lifeboat/x" }, "targets.prod.database.password").catch((e: LifeboatError) => e);
    expect(err).toBeInstanceOf(LifeboatError);
    expect((err as LifeboatError).message).toBe("targets.prod.database.password: cannot read the SSM parameter /lifeboat/x (ParameterNotFound)");
    expect((err as LifeboatError).hint).toBe("create it: aws ssm put-parameter --type SecureString --name /lifeboat/x --value ...");
  });

  it("a URL from the environment may carry the password; sslmode from the config is kept", async () => {
    const resolver = new DefaultSecretResolver({ APP_URL: "postgres://app:p%40ss@db:6432/main?application_name=x" });
    const c = await resolveDatabase(target({ url: { env: "APP_URL" }, sslmode: "require" }), resolver, "t");
    expect(c).toEqual({ host: "db", port: 6432, database: "main", user: "app", password: "p@ss", params: { application_name: "x", sslmode: "require" } });
  });

  it("the deployed runner's default for hosts and URLs is sslmode=require; a target's or URL's own sslmode wins; locally libpq's default stays", async () => {
    const resolver = new DefaultSecretResolver({ PLAIN: "postgres://app@db/main", OWN: "postgres://app@db/main?sslmode=verify-full&sslrootcert=system" });
    const cloud = { defaultSslmode: "require" as const };
    const host = target({ host: "db.example.com", database: "app", user: "backup" });
    expect((await resolveDatabase(host, resolver, "t", undefined, {}, cloud)).params).toEqual({ sslmode: "require" });
    expect((await resolveDatabase(target({ url: { env: "PLAIN" } }), resolver, "t", undefined, {}, cloud)).params).toEqual({ sslmode: "require" });
    expect((await resolveDatabase(target({ url: { env: "OWN" } }), resolver, "t", undefined, {}, cloud)).params).toEqual({ sslmode: "verify-full", sslrootcert: "system" });
    expect((await resolveDatabase(target({ host: "db", database: "a", user: "b", sslmode: "disable" }), resolver, "t", undefined, {}, cloud)).params).toEqual({ sslmode: "disable" });
    expect((await resolveDatabase(host, resolver, "t")).params).toEqual({});
  });
});

describe("RDS locator", () => {
  const db = () => target({ rds: { instance: "acme-prod", region: "eu-west-1" }, database: "app", user: "backup", password: { env: "PW" } });
  const resolver = new DefaultSecretResolver({ PW: "pw-from-env" });

  const bundle = { LIFEBOAT_RDS_CA_BUNDLE: "/usr/share/lifeboat/rds-global-bundle.pem" };

  it("resolves endpoint and port with DescribeDBInstances, and verifies the server against the RDS CA bundle by default", async () => {
    rds.on(DescribeDBInstancesCommand).resolves({
      DBInstances: [{ DBInstanceIdentifier: "acme-prod", DBInstanceStatus: "available", Endpoint: { Address: "acme-prod.abc.eu-west-1.rds.amazonaws.com", Port: 5433 } }],
    });
    const c = await resolveDatabase(db(), resolver, "t", new RDSClient({ region: "eu-west-1" }), bundle);
    expect(rds.commandCalls(DescribeDBInstancesCommand).map((c) => c.args[0].input)).toEqual([{ DBInstanceIdentifier: "acme-prod" }]);
    expect(c).toEqual({
      host: "acme-prod.abc.eu-west-1.rds.amazonaws.com",
      port: 5433,
      database: "app",
      user: "backup",
      password: "pw-from-env",
      params: { sslmode: "verify-full", sslrootcert: "/usr/share/lifeboat/rds-global-bundle.pem" },
    });
  });

  it("sslmode and sslrootcert stay configurable per target; verification without a CA bundle is a clear configuration error", async () => {
    rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceStatus: "available", Endpoint: { Address: "h.rds.amazonaws.com", Port: 5432 } }] });
    const client = new RDSClient({ region: "eu-west-1" });
    expect((await resolveDatabase({ ...db(), sslmode: "require" }, resolver, "t", client, {})).params).toEqual({ sslmode: "require" });
    expect((await resolveDatabase({ ...db(), sslrootcert: "/etc/my-ca.pem" }, resolver, "t", client, bundle)).params).toEqual({ sslmode: "verify-full", sslrootcert: "/etc/my-ca.pem" });
    const err = await resolveDatabase(db(), resolver, "targets.prod.database", client, {}).catch((e: LifeboatError) => e);
    expect(err).toMatchObject({
      exitCode: 2,
      message: "targets.prod.database: the RDS server's certificate is verified (sslmode=verify-full), but no RDS CA bundle is configured",
      hint: expect.stringContaining("https://truststore.pki.rds.amazonaws.com/global/global-bundle.pem"),
    });
  });

  it("an instance that does not serve connections is a failure that names its state; serving states are accepted", async () => {
    const client = new RDSClient({ region: "eu-west-1" });
    for (const status of ["stopped", "failed", "incompatible-network", "inaccessible-encryption-credentials"]) {
      rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceStatus: status, Endpoint: { Address: "h", Port: 5432 } }] });
      const err = await resolveDatabase(db(), resolver, "t", client, bundle).catch((e: AttemptError) => e);
      expect(err).toBeInstanceOf(AttemptError);
      expect((err as AttemptError).message).toBe(`RDS instance "acme-prod" is ${status}: it does not serve connections`);
    }
    // the nightly RDS backup window and routine changes still serve connections: no false failures
    for (const status of ["available", "backing-up", "modifying", "storage-optimization", "configuring-enhanced-monitoring", "configuring-log-exports", "maintenance", "upgrading"]) {
      rds.on(DescribeDBInstancesCommand).resolves({ DBInstances: [{ DBInstanceStatus: status, Endpoint: { Address: "h.rds.amazonaws.com", Port: 5432 } }] });
      expect((await resolveDatabase(db(), resolver, "t", client, bundle)).host, status).toBe("h.rds.amazonaws.com");
    }
  });

  it("an unknown instance is permanent", async () => {
    rds.on(DescribeDBInstancesCommand).rejects(Object.assign(new Error("DBInstance acme-prod not found."), { name: "DBInstanceNotFoundFault" }));
    const err = await resolveDatabase(db(), resolver, "t", new RDSClient({ region: "eu-west-1" }), bundle).catch((e: AttemptError) => e);
    expect((err as AttemptError).code).toBe("rds_not_found");
    expect((err as AttemptError).kind).toBe("permanent");
  });
});

describe("redaction", () => {
  it("masks known secrets (also URL-encoded), URL passwords, password= keywords and Slack webhooks", () => {
    const text =
      "connect postgres://app:hunter2@db/app failed; password=hunter2 host=db; value p%40ss and p@ss; " +
      "posted to https://hooks.slack.com/services/T0/B0/XYZ";
    expect(redact(text, ["hunter2", "p@ss"])).toBe(
      "connect postgres://app:***@db/app failed; password=*** host=db; value *** and ***; posted to https://hooks.slack.com/***",
    );
  });

  it("masks URL passwords even when the value is not known", () => {
    expect(redact("postgresql://u:unknownpw@h:5432/d")).toBe("postgresql://u:***@h:5432/d");
  });
});
