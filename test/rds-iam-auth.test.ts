/**
 * IAM database authentication (database.iamAuth) against a real PostgreSQL: no stored password; each connection of
 * psql, pg_dump -j and pg_restore -j authenticates with the token in the password file libpq reads then, and the file
 * is replaced as tokens age. The server here plays RDS's part: the signer sets each new token as the role's password,
 * so a connection with an old token fails (stricter than RDS, which accepts a token for 15 minutes).
 */
import { spawnSync } from "node:child_process";
import { readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mockClient } from "aws-sdk-client-mock";
import { DescribeDBInstancesCommand, RDSClient } from "@aws-sdk/client-rds";
import { afterEach, beforeEach, describe, expect, it } from "vitest";
import { deployPlan, parseConfig } from "@lifeboat/core";
import { DefaultSecretResolver, closeIamTokenFiles, findTool, query, resolveDatabase, rdsSigner, toolEnv, type ConnectionInfo } from "@lifeboat/runner";
import { conn, createDatabase, pg, tempDir, unique } from "./support/helpers.js";

const rds = mockClient(RDSClient);
beforeEach(() => rds.reset());

const target = (database: unknown) => parseConfig({ storage: { directory: "/tmp/x" }, targets: { prod: { database } } }).targets.prod!.database;

describe("database.iamAuth", () => {
  const closing: Array<() => void> = [];
  afterEach(() => {
    closeIamTokenFiles();
    closing.splice(0).forEach((c) => c());
  });

  it("every connection of psql, a parallel pg_dump and a parallel pg_restore authenticates with the token current when it opens", async () => {
    const user = unique("iam_user");
    const db = unique("iamsrc");
    await createDatabase(db, `create table a as select g, md5(g::text) t from generate_series(1, 20000) g; create table b as select g from generate_series(1, 20000) g; create table c as select g, g * 2 h from generate_series(1, 20000) g;`);
    await query(conn(), `create role "${user}" login password 'not-a-token'; grant pg_read_all_data to "${user}"; grant create on database "${db}" to "${user}";`);
    const copy = unique("iamcopy");
    await query(conn(), `create database "${copy}" owner "${user}";`);
    closing.push(() => void query(conn(), `drop database if exists "${copy}"; drop database if exists "${db}"; drop role if exists "${user}";`).catch(() => undefined));

    // RDS's part: the instance's endpoint, and a server that accepts the token just made (and no older one)
    rds.on(DescribeDBInstancesCommand, { DBInstanceIdentifier: "acme-iam" }).resolves({ DBInstances: [{ DBInstanceStatus: "available", Endpoint: { Address: "localhost", Port: pg().port } }] });
    // the token the signer makes: the test decides when it changes (RDS accepts a token for 15 minutes; here the
    // server accepts only the one the test set last, so a connection that used an old one would fail)
    const signed: Array<{ hostname: string; port: number; username: string; region: string }> = [];
    let current = "token-first";
    const signer = async (e: (typeof signed)[number]) => {
      signed.push(e);
      return current;
    };
    await query(conn(), `alter role "${user}" password '${current}';`);
    const dir = tempDir("lifeboat-iamauth-");
    const ca = join(dir, "ca.pem");
    writeFileSync(ca, pg().caCert);
    const db0 = target({ rds: { instance: "acme-iam", region: "eu-west-1" }, database: db, user, iamAuth: true, sslrootcert: ca });
    const c: ConnectionInfo = await resolveDatabase(db0, new DefaultSecretResolver({}), "targets.prod.database", new RDSClient({ region: "eu-west-1" }), {}, { signer, refreshMs: 250 });

    expect(signed[0]).toEqual({ hostname: "localhost", port: pg().port, username: user, region: "eu-west-1" });
    expect(c.password).toBeUndefined();
    expect(c.params).toEqual({ sslmode: "verify-full", sslrootcert: ca });
    const env = toolEnv(c, { PATH: process.env.PATH, PGPASSWORD: "from-the-shell" });
    expect(env.PGPASSWORD).toBeUndefined();
    expect(env.PGPASSFILE).toBe(c.passfile);
    expect(statSync(c.passfile!).mode & 0o777).toBe(0o600);
    expect(readFileSync(c.passfile!, "utf8")).toBe(`localhost:${pg().port}:*:${user}:token-first\n`);

    const tool = async (name: string, args: string[], database = db) => {
      const bin = (await findTool(name as "psql")).path;
      const res = spawnSync(bin, args, { env: { ...env, PGHOST: c.host, PGPORT: String(c.port), PGUSER: c.user, PGDATABASE: database, PGSSLMODE: "verify-full", PGSSLROOTCERT: ca }, encoding: "utf8" });
      return { code: res.status, out: res.stdout, err: res.stderr };
    };
    const psql = await tool("psql", ["-XAtc", "select current_user"]);
    expect(psql, psql.err).toMatchObject({ code: 0, out: `${user}\n` });

    // a parallel dump: its worker connections open after the leader's
    const out = join(dir, "dump");
    const dump = await tool("pg_dump", ["-Fd", "-j", "2", "-f", out]);
    expect(dump.code, dump.err).toBe(0);
    // a new token: the file takes it on its next refresh, and the server stops accepting the old one
    current = "token-second";
    const deadline = Date.now() + 10_000;
    while (!readFileSync(c.passfile!, "utf8").includes("token-second") && Date.now() < deadline) await new Promise((r) => setTimeout(r, 50));
    await query(conn(), `alter role "${user}" password '${current}';`);
    expect(signed.length).toBeGreaterThan(1);
    const restore = await tool("pg_restore", ["-j", "2", "--no-owner", "-d", copy, out], copy);
    expect(restore.code, restore.err).toBe(0);
    const count = await tool("psql", ["-XAtc", "select (select count(*) from a) + (select count(*) from b) + (select count(*) from c)"], copy);
    expect(count, count.err).toMatchObject({ code: 0, out: "60000\n" });

    // and the check can fail: a token the file does not hold (the role's password changed behind its back) is refused
    await query(conn(), `alter role "${user}" password 'rotated-elsewhere';`);
    const refused = await tool("psql", ["-XAtc", "select 1"]);
    expect(refused.code).not.toBe(0);
    expect(refused.err).toContain("password authentication failed");
  }, 120_000);

  it("the real signer makes an RDS auth token for the endpoint and user, signed locally (no call leaves the machine)", async () => {
    const env = { AWS_ACCESS_KEY_ID: process.env.AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY: process.env.AWS_SECRET_ACCESS_KEY };
    process.env.AWS_ACCESS_KEY_ID = "AKIDEXAMPLE";
    process.env.AWS_SECRET_ACCESS_KEY = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    try {
      const token = await rdsSigner({ hostname: "acme-iam.c0ffee.eu-west-1.rds.amazonaws.com", port: 5432, username: "lifeboat_backup", region: "eu-west-1" });
      const url = new URL(`https://${token}`);
      expect(url.host).toBe("acme-iam.c0ffee.eu-west-1.rds.amazonaws.com:5432");
      expect(Object.fromEntries(url.searchParams)).toMatchObject({ Action: "connect", DBUser: "lifeboat_backup", "X-Amz-Algorithm": "AWS4-HMAC-SHA256", "X-Amz-Expires": "900" });
      expect(url.searchParams.get("X-Amz-Credential")).toMatch(/^AKIDEXAMPLE\/\d{8}\/eu-west-1\/rds-db\/aws4_request$/);
    } finally {
      for (const [k, v] of Object.entries(env)) (v === undefined ? delete process.env[k] : (process.env[k] = v));
    }
  });

  it("the config: rds only, no password, verified TLS", () => {
    const problems = (database: unknown) => {
      try {
        target(database);
        return [];
      } catch (e) {
        return (e as { problems: Array<{ path: string; message: string }> }).problems.map((p) => `${p.path}: ${p.message}`);
      }
    };
    expect(problems({ rds: { instance: "acme" }, database: "app", user: "u", iamAuth: true })).toEqual([]);
    expect(problems({ host: "acme.c0ffee.eu-west-1.rds.amazonaws.com", database: "app", user: "u", iamAuth: true })).toEqual([]);
    expect(problems({ url: "postgres://u@db.example.com/app", iamAuth: true })).toEqual([expect.stringContaining("iamAuth: is for RDS and Aurora")]);
    expect(problems({ rds: { instance: "acme" }, database: "app", user: "u", iamAuth: true, password: { ssm: "/x" } })).toEqual([expect.stringContaining("password: is not used with iamAuth")]);
    expect(problems({ rds: { instance: "acme" }, database: "app", user: "u", iamAuth: true, sslmode: "require" })).toEqual([expect.stringContaining("sslmode: must verify the server with iamAuth")]);
    // deployed: the instance's resource id is looked up in the stack's region
    const config = (region?: string) => parseConfig({ storage: { s3: { bucket: "acme-backups", region: "eu-west-1" } }, targets: { prod: { database: { rds: { instance: "acme", ...(region ? { region } : {}) }, database: "app", user: "u", iamAuth: true } } }, aws: { vpc: { id: "vpc-0a1b2c3d", containerSubnets: ["subnet-0a"] } } });
    expect(deployPlan(config(), "production").runnerTargets[0]!.iamAuth).toEqual({ instance: "acme", user: "u" });
    expect(() => deployPlan(config("us-east-1"), "production")).toThrow(/targets\.prod\.database\.rds\.region: IAM authentication to an instance in another region \(us-east-1\)/);
    // a host names no instance whose resource id the deployment could grant rds-db:connect on
    const byHost = parseConfig({ storage: { s3: { bucket: "acme-backups", region: "eu-west-1" } }, targets: { prod: { database: { host: "acme.c0ffee.eu-west-1.rds.amazonaws.com", database: "app", user: "u", iamAuth: true } } } });
    expect(() => deployPlan(byHost, "production")).toThrow(/targets\.prod\.database\.iamAuth: needs rds: \{ instance \} in the AWS deployment/);
  });
});
