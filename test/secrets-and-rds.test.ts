import { mockClient } from "aws-sdk-client-mock";
import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { DescribeDBInstancesCommand, RDSClient } from "@aws-sdk/client-rds";
import { GetSecretValueCommand, SecretsManagerClient } from "@aws-sdk/client-secrets-manager";
import { beforeEach, describe, expect, it } from "vitest";
import { AttemptError, LifeboatError, parseConfig, redact } from "@lifeboat/core";
import { DefaultSecretResolver, resolveDatabase } from "@lifeboat/runner";

/** AWS control-plane calls with no local twin: the exact requests sent are asserted. */
const ssm = mockClient(SSMClient);
const rds = mockClient(RDSClient);
const sm = mockClient(SecretsManagerClient);
beforeEach(() => {
  ssm.reset();
  rds.reset();
  sm.reset();
});
/** An RDS-managed master user secret's ARN (the name RDS gives it, with Secrets Manager's 6-character suffix). */
const RDS_SECRET = "arn:aws:secretsmanager:eu-central-1:123456789012:secret:rds!db-0f1e2d3c-4b5a-6978-8a9b-0c1d2e3f4a5b-Ab12Cd";

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

describe("Secrets Manager secrets", () => {
  it("reads one field of an RDS-managed secret's JSON, from the secret's own region", async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ username: "postgres", password: "pw-from-secrets-manager" }) });
    const resolver = new DefaultSecretResolver({});
    const c = await resolveDatabase(target({ host: "db.internal", database: "app", user: "postgres", password: { secretsManager: RDS_SECRET, key: "password" } }), resolver, "targets.prod.database");
    const calls = sm.commandCalls(GetSecretValueCommand);
    expect(calls.map((c) => c.args[0].input)).toEqual([{ SecretId: RDS_SECRET }]);
    expect(await (calls[0]!.thisValue as SecretsManagerClient).config.region()).toBe("eu-central-1");
    expect(c.password).toBe("pw-from-secrets-manager");
    // without key, the whole string
    sm.on(GetSecretValueCommand).resolves({ SecretString: "plain-secret" });
    expect(await new DefaultSecretResolver({}).resolve({ secretsManager: RDS_SECRET }, "x")).toBe("plain-secret");
  });

  it("a missing field, a secret that is not JSON, a missing secret: each named with its fix, never a value", async () => {
    sm.on(GetSecretValueCommand).resolves({ SecretString: JSON.stringify({ username: "postgres", pass: "hunter2-value" }) });
    const missing = await new DefaultSecretResolver({}).resolve({ secretsManager: RDS_SECRET, key: "password" }, "targets.prod.database.password").catch((e: LifeboatError) => e);
    expect((missing as LifeboatError).message).toBe(`targets.prod.database.password: the Secrets Manager secret ${RDS_SECRET} has no string field "password" (its fields: username, pass)`);
    expect((missing as LifeboatError).exitCode).toBe(2);
    sm.on(GetSecretValueCommand).resolves({ SecretString: "hunter2-value" });
    const notJson = await new DefaultSecretResolver({}).resolve({ secretsManager: RDS_SECRET, key: "password" }, "p").catch((e: LifeboatError) => e);
    expect((notJson as LifeboatError).message).toBe(`p: the Secrets Manager secret ${RDS_SECRET} is not JSON, so it has no field "password"`);
    for (const e of [missing, notJson]) expect(JSON.stringify({ m: (e as Error).message, h: (e as LifeboatError).hint })).not.toContain("hunter2");
    sm.on(GetSecretValueCommand).rejects(Object.assign(new Error("Secrets Manager can't find the specified secret."), { name: "ResourceNotFoundException" }));
    const gone = await new DefaultSecretResolver({}).resolve({ secretsManager: RDS_SECRET }, "p").catch((e: LifeboatError) => e);
    expect((gone as LifeboatError).message).toBe(`p: cannot read the Secrets Manager secret ${RDS_SECRET} (ResourceNotFoundException)`);
    expect((gone as LifeboatError).hint).toContain("with its 6-character suffix");
  });

  it("the config takes exactly one place per secret; key only with secretsManager; a full ARN", () => {
    const problems = (password: unknown) => {
      try {
        target({ host: "db.internal", database: "app", user: "app", password });
        return [];
      } catch (e) {
        return (e as { problems: Array<{ path: string; message: string }> }).problems.map((p) => `${p.path}: ${p.message}`);
      }
    };
    expect(problems({ secretsManager: RDS_SECRET, key: "password" })).toEqual([]);
    expect(problems({ ssm: "/x", secretsManager: RDS_SECRET })).toEqual([expect.stringContaining('give exactly one of { env: "VAR_NAME" }, { ssm: "/parameter/name" } or { secretsManager:')]);
    expect(problems({ ssm: "/x", key: "password" })).toEqual([expect.stringMatching(/key: key is read from a Secrets Manager secret's JSON: give it with secretsManager only$/)]);
    expect(problems({ secretsManager: "arn:aws:secretsmanager:eu-central-1:123456789012:secret:db-password" })).toEqual([expect.stringContaining("must be a Secrets Manager secret's full ARN")]);
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
