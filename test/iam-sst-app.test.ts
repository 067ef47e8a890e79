/**
 * Lifeboat in someone else's SST app, from the installed package: the SST app outside this repository that
 * test/outside-app.test.ts installed during the suite (the packed tarball and sst; an sst.aws.Vpc, sst.aws.Postgres
 * and Aurora databases and the Backups component with targets on them; `sst install`; type-checked there) is
 * synthesized under Pulumi mocks here, after the suite, and passes the IAM check: every call the suite recorded for
 * the runner and the Lambdas (the cloud fixture's targets, which this app backs up too) is allowed by this stack's
 * roles, and the app database's target is judged by its own role.
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "@lifeboat/core";
import type { Component, RecordedCall } from "./support/aws-calls.js";
import { VAULT_SECRET, cloudConfig } from "./support/cloud-fixture.js";
import { ROLES, Stack, denials, recorded } from "./support/iam-check.js";
import { assertLeastPrivilege, statements } from "./support/least-privilege.js";
import { OUTSIDE_APP, PASSWORD_PARAMETER, outsideApp } from "./support/outside-app.js";
import { MOCK_SECRET, ofType, one, synthesize, unwrap } from "./support/sst-synth.js";

let app: string;
let auroraSecret: string;
const stack = new Stack();
let close: (() => void) | undefined;

beforeAll(async () => {
  // installed during the suite by test/outside-app.test.ts (which also type-checks it), or now when run alone
  app = outsideApp();
  const synth = await synthesize("production", { root: app });
  stack.resources = synth.resources;
  stack.region = synth.region;
  stack.component = "Backups";
  // the Aurora cluster's secret, as the deployed config names it (its ARN is made at deploy time)
  auroraSecret = JSON.parse(unwrap(one(stack.resources, "aws:s3/bucketObjectv2:BucketObjectv2", "BackupsDeployedConfig").inputs).content).targets.analytics.database.password.secretsManager;
  expect(auroraSecret).toMatch(/^arn:aws:secretsmanager:eu-west-1:123456789012:secret:.*AnalyticsProxySecret.*-AbCdEf$/);
  stack.targets = { ...cloudConfig.targets, app: { database: {} }, analytics: { database: { password: { secretsManager: auroraSecret } } } };
  // the app databases' runners make the calls the fixture's runners made for a host target with an SSM password
  // (`entry`) and one with a Secrets Manager secret (`vault`), under their own prefixes and with their own secrets
  const as = (from: string, to: string, secret: [string, string]) =>
    recorded("runner")
      .filter((c) => String(c.input.Key ?? c.input.Prefix ?? "").startsWith(`pg/${from}/`) || c.input.Name === secret[0] || c.input.SecretId === secret[0])
      .map((c): RecordedCall => ({
        ...c,
        input: Object.fromEntries(Object.entries(c.input).map(([k, v]) => [k, typeof v === "string" ? (v === secret[0] ? secret[1] : v.replace(new RegExp(`^pg/${from}/`), `pg/${to}/`)) : v])),
      }));
  stack.extraCalls.runner = [...as("entry", "app", ["/lifeboat/entry/pw", PASSWORD_PARAMETER]), ...as("vault", "analytics", [VAULT_SECRET, auroraSecret])];
  close = synth.close;
}, 600_000);
afterAll(() => {
  close?.();
  rmSync(OUTSIDE_APP, { recursive: true, force: true });
});

describe("an SST app outside this repository, with lifeboat installed from the tarball", () => {
  it("takes the database's endpoint, port, name and user from the component, its password into an SSM SecureString only", () => {
    const instance = unwrap(one(stack.resources, "aws:rds/instance:Instance", "DatabaseInstance").inputs);
    const parameter = unwrap(one(stack.resources, "aws:ssm/parameter:Parameter", "BackupsAppDatabasePassword").inputs);
    expect({ name: parameter.name, type: parameter.type }).toEqual({ name: PASSWORD_PARAMETER, type: "SecureString" });
    expect(parameter.value).toMatch(new RegExp(`^${MOCK_SECRET}`));
    const object = unwrap(one(stack.resources, "aws:s3/bucketObjectv2:BucketObjectv2", "BackupsDeployedConfig").inputs);
    const deployed = parseConfig(JSON.parse(object.content), "deployed");
    // through its RDS Proxy: the proxy's endpoint, its certificate (ACM's) verified against the system's roots
    expect(deployed.targets.app!.database).toMatchObject({
      host: expect.stringMatching(/\.proxy-c0ffee\.eu-west-1\.rds\.amazonaws\.com$/),
      sslrootcert: "system",
      port: 5432,
      database: instance.dbName,
      user: instance.username,
      password: { ssm: PASSWORD_PARAMETER },
      sslmode: "verify-full",
    });
    // Aurora: the cluster's endpoint and database, and its own secret (no copy of the password anywhere)
    const cluster = unwrap(one(stack.resources, "aws:rds/cluster:Cluster").inputs);
    expect(deployed.targets.analytics!.database).toMatchObject({
      host: expect.stringMatching(/\.cluster-c0ffee\.eu-west-1\.rds\.amazonaws\.com$/),
      database: cluster.databaseName,
      user: cluster.masterUsername,
      password: { secretsManager: auroraSecret, key: "password" },
    });
    expect(ofType(stack.resources, "aws:ssm/parameter:Parameter").map((p) => unwrap(p.inputs).name).sort()).toEqual([PASSWORD_PARAMETER]);
    // IAM authentication: the instance's endpoint, Lifeboat's own user, no password anywhere
    const reports = unwrap(one(stack.resources, "aws:rds/instance:Instance", "ReportsInstance").inputs);
    expect(deployed.targets.reports!.database).toEqual({ host: expect.stringMatching(/\.c0ffee\.eu-west-1\.rds\.amazonaws\.com$/), port: 5432, database: reports.dbName, user: "lifeboat_iam", iamAuth: true, sslmode: "verify-full", sslrootcert: "/usr/share/lifeboat/rds-global-bundle.pem" });
    // the password is nowhere in what Lifeboat deploys but its parameter: not the config, a task definition, a function
    const lifeboat = stack.resources.filter((r) => r.name.startsWith("Backups") && !r.name.endsWith("DatabasePassword"));
    expect(lifeboat.length).toBeGreaterThan(30);
    expect(lifeboat.filter((r) => JSON.stringify(unwrap(r.inputs)).includes(MOCK_SECRET)).map((r) => r.name)).toEqual([]);
  });

  it("runs in the app's VPC (its public subnets, a security group that lets nothing in); a database's own security group lets it in on 5432", () => {
    const sg = unwrap(one(stack.resources, "aws:ec2/securityGroup:SecurityGroup", "BackupsRunnerSecurityGroup").inputs);
    expect(sg.ingress ?? []).toEqual([]);
    // the databases in the VPC's default group (SST's, which admits the VPC's CIDR through inline rules) get no rule
    // beside those; the one with a group of its own gets one, from the runner's group only
    const vpcDefault = unwrap(one(stack.resources, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup").inputs);
    expect(vpcDefault.ingress).toEqual([expect.objectContaining({ protocol: "-1", cidrBlocks: [expect.any(String)] })]);
    const rules = ofType(stack.resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule").map((r) => ({ name: r.name, ...unwrap(r.inputs) }));
    expect(rules).toEqual([
      { name: "BackupsReportsDatabaseIngress1", securityGroupId: "ReportsGroup-id", referencedSecurityGroupId: "BackupsRunnerSecurityGroup-id", ipProtocol: "tcp", fromPort: 5432, toPort: 5432, description: "Lifeboat runner to PostgreSQL on 5432" },
    ]);
    const env = unwrap(one(stack.resources, "aws:lambda/function:Function", "BackupsLauncherFunction").inputs).environment.variables;
    const publicSubnets = ofType(stack.resources, "aws:ec2/subnet:Subnet").filter((s) => /Public/.test(s.name)).map((s) => `${s.name}-id`);
    expect(JSON.parse(env.LIFEBOAT_SUBNETS).sort()).toEqual(publicSubnets.sort());
    expect(env.LIFEBOAT_ASSIGN_PUBLIC_IP).toBe("true");
  });

  it("the Aurora target's runner role reads the cluster's secret, and no other role does", () => {
    const reads = (role: string) => statements(one(stack.resources, "aws:iam/role:Role", role)).filter((s) => s.Action.includes("secretsmanager:GetSecretValue")).flatMap((s) => s.Resource);
    expect(reads("BackupsRunnerAnalyticsRole")).toEqual([auroraSecret]);
    expect(reads("BackupsRunnerAppRole")).toEqual([]);
    expect(reads("BackupsRunnerVaultRole")).toEqual([VAULT_SECRET]);
  });

  it("the IAM-authenticated target's runner role may connect as its user to that instance only; no other role may", async () => {
    const connect = (user: string, resourceId = "db-REPORTSINSTANCE") => ({ action: "rds-db:connect", resource: `arn:aws:rds-db:eu-west-1:123456789012:dbuser:${resourceId}/${user}`, context: {} });
    const as = (target: string, r: ReturnType<typeof connect>) => stack.evaluate("runner", r, stack.rolePolicies("runner", target));
    expect(await as("reports", connect("lifeboat_iam"))).toBe("Allowed");
    expect(await as("reports", connect("postgres"))).toBe("ImplicitlyDenied");
    expect(await as("reports", connect("lifeboat_iam", "db-DATABASEINSTANCE"))).toBe("ImplicitlyDenied");
    expect(await as("app", connect("lifeboat_iam"))).toBe("ImplicitlyDenied");
    // and it reads no password
    expect(statements(one(stack.resources, "aws:iam/role:Role", "BackupsRunnerReportsRole")).filter((s) => s.Action.some((a) => a.startsWith("ssm:") || a.startsWith("secretsmanager:"))).flatMap((s) => s.Resource)).toEqual([
      "arn:aws:ssm:eu-west-1:123456789012:parameter/lifeboat/heartbeat",
    ]);
  });

  it("the target's runner role reads its own password parameter, and no other target's", () => {
    const ssm = statements(one(stack.resources, "aws:iam/role:Role", "BackupsRunnerAppRole")).filter((s) => s.Action.includes("ssm:GetParameter"));
    // its password, and the heartbeat's URL (every runner pings it)
    expect(ssm.map((s) => s.Resource)).toEqual([[`arn:aws:ssm:eu-west-1:123456789012:parameter${PASSWORD_PARAMETER}`, "arn:aws:ssm:eu-west-1:123456789012:parameter/lifeboat/heartbeat"]]);
  });

  it("transform edits a child's args by its name, as a function or an object", () => {
    const fn = (name: string) => unwrap(one(stack.resources, "aws:lambda/function:Function", name).inputs);
    expect(fn("BackupsLauncherFunction").memorySize).toBe(512);
    expect(fn("BackupsWatcherFunction").timeout).toBe(120);
    expect(fn("BackupsFreshnessFunction").memorySize).toBe(256);
  });

  it("meets least privilege", () => {
    assertLeastPrivilege(stack.resources, "Backups");
  });

  for (const component of Object.keys(ROLES) as Component[]) {
    it(`every call the ${component} makes is allowed by this stack's role`, async () => {
      expect(stack.calls(component).length, `no AWS calls were recorded for the ${component}: run the whole suite (npm test)`).toBeGreaterThan(0);
      const v = await stack.verdicts(component);
      expect(denials(v)).toEqual([]);
      if (component === "runner") expect(v.some((x) => x.target === "app")).toBe(true);
    });
  }
});
