import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { ConfigError, LIFEBOAT_VERSION, SST_VERSION, parseConfig, parseSchedule } from "@lifeboat/core";
import { loadConfig } from "@lifeboat/cli";
import { REPO, cli, tempDir } from "./support/helpers.js";

const valid = {
  storage: { s3: { bucket: "acme-backups", prefix: "pg" } },
  targets: { prod: { database: { host: "db.internal", database: "app", user: "backup", password: { env: "PGPASSWORD" } }, schedule: "cron(0 2 * * ? *)" } },
};

describe("config validation", () => {
  it("applies defaults to a minimal valid config", () => {
    const c = parseConfig(valid);
    expect(c.targets.prod).toMatchObject({
      timezone: "UTC",
      dump: { format: "custom", schemas: [], tables: [] },
      retries: { attempts: 3, delaySeconds: 30, maxDelaySeconds: 300 },
    });
    expect(c.targets.prod!.dump.compression).toBeUndefined(); // the default depends on the pg_dump that runs
  });

  it("lists every problem by path, with hints, in one error", () => {
    const bad = {
      storage: { s3: { bucket: "Bad_Bucket" }, directory: "/x" },
      targets: {
        prod: {
          database: { url: "postgres://app:hunter22@db/app" },
          schedule: "cron(0 2 * * * *)",
          timezone: "Mars/Olympus",
          dump: { format: "tar", compression: 12, schemas: ["--file=/etc/passwd"], extraArgs: "-f /tmp/x" },
          retries: { attempts: 0 },
        },
        "Bad Name": { database: { host: "h", database: "d", user: "u" } },
        staging: { database: { host: "h" }, schedule: "rate(1 days)" },
      },
      notifications: { slack: { webhook: "https://hooks.slack.com/services/T/B/X" } },
    };
    let err: unknown;
    try {
      parseConfig(bad, "lifeboat.config.ts");
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ConfigError);
    const problems = (err as ConfigError).problems.map((p) => `${p.path}: ${p.message}`);
    const expected = [
      "storage.s3.bucket: must be a valid S3 bucket name",
      'storage: give exactly one of s3: { bucket, prefix } or directory: "/path"',
      "targets.prod.database.url: contains a password; passwords never go in the config file",
      'targets.prod.schedule: exactly one of day-of-month and day-of-week must be "?"',
      "targets.prod.timezone: is not an IANA time zone",
      "targets.prod.dump.format:",
      "targets.prod.dump.compression:",
      "targets.prod.dump.schemas[0]: must not start with '-'",
      'targets.prod.dump: unknown key "extraArgs"',
      "targets.prod.retries.attempts:",
      "targets.Bad Name: invalid name: target names are lowercase",
      "targets.staging.database.database: is required with host or rds",
      "targets.staging.database.user: is required with host or rds",
      "targets.staging.schedule: rate(1 days): the unit must be one of minute, hour, day",
      "notifications.slack.webhook:",
    ];
    for (const e of expected) expect(problems.some((p) => p.startsWith(e)), `${e}\n in\n${problems.join("\n")}`).toBe(true);
    expect(problems).toHaveLength(expected.length);
    const message = (err as Error).message;
    expect(message).toContain(`lifeboat.config.ts is invalid (${expected.length} problems)`);
    expect(message).toContain('hint: use url: { env: "DATABASE_URL" }');
    expect(message).not.toContain("hunter22");
    expect(message).not.toContain("hooks.slack.com/services/T/B/X");
  });

  it("lifeboat check validates a config without running anything; --cloud adds the deployment's rules", async () => {
    const dir = tempDir("lifeboat-check-");
    const good = join(dir, "good.config.ts");
    writeFileSync(good, `export default ${JSON.stringify({ storage: { s3: { bucket: "acme-backups", prefix: "pg" } }, targets: { app: { database: { host: "db.example.com", database: "app", user: "u", password: { ssm: "/lb/app" } }, schedule: "rate(1 day)" } } })};\n`);
    const ok = await cli(["check", "--config", good]);
    expect(ok.code, ok.stderr).toBe(0);
    expect(ok.stdout).toContain("good.config.ts: valid: 1 target (app), storage s3://acme-backups/pg");
    const cloud = await cli(["check", "--config", good, "--cloud", "--stage", "dev", "--json"]);
    expect(cloud.code, cloud.stderr).toBe(0);
    expect(JSON.parse(cloud.stdout)).toMatchObject({ valid: true, targets: ["app"], cloud: { stage: "dev", deployable: true, warnings: [expect.stringContaining("targets.app connects with sslmode=require (the runner's default)")] } });
    // what `sst deploy` would refuse: exit 2, the problem named with its fix
    const refused = join(dir, "rds.config.ts");
    writeFileSync(refused, `export default ${JSON.stringify({ storage: { s3: { bucket: "acme-backups" } }, targets: { prod: { database: { rds: { instance: "acme-prod" }, database: "app", user: "u", password: { ssm: "/lb/pw" } } } } })};\n`);
    expect((await cli(["check", "--config", refused])).code).toBe(0);
    const res = await cli(["check", "--config", refused, "--cloud"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('targets.prod.database.rds: RDS instance "acme-prod" is reachable only from inside its VPC');
    // an invalid config: exit 2 as for every command
    const bad = join(dir, "bad.config.ts");
    writeFileSync(bad, `export default { storage: { directory: "/tmp/x" }, targets: {} };\n`);
    expect((await cli(["check", "--config", bad])).code).toBe(2);
  });

  it("the CLI exits 2 and prints every problem for a bad config file", async () => {
    const dir = tempDir("lifeboat-cfg-");
    const file = join(dir, "lifeboat.config.ts");
    writeFileSync(
      file,
      `export default {
        storage: { directory: "/tmp/x" },
        targets: { prod: { database: { rds: { instance: "prod-db" } }, schedule: "cron(0 25 * * ? *)", retention: { days: 0 } } },
      };\n`,
    );
    const res = await cli(["run", "prod", "--config", file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`${file} is invalid (4 problems)`);
    expect(res.stderr).toContain("targets.prod.database.database: is required with host or rds");
    expect(res.stderr).toContain("targets.prod.database.user: is required with host or rds");
    expect(res.stderr).toContain("targets.prod.schedule: hour field: hour 25 is out of range 0-23");
    expect(res.stderr).toContain("targets.prod.retention.days:");
  });

  it("a config that does not load (syntax error) is a config error too", async () => {
    const dir = tempDir("lifeboat-cfg-");
    const file = join(dir, "lifeboat.config.ts");
    writeFileSync(file, "export default { storage: ");
    const res = await cli(["list", "--config", file]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("cannot be loaded");
  });

  it("the example config at the repository root is valid", async () => {
    const c = await loadConfig(join(REPO, "lifeboat.config.ts"));
    expect(Object.keys(c.targets).length).toBeGreaterThan(0);
  });
});

describe("lifeboat init", () => {
  it("writes an SST app that deploys the Backups component from lifeboat.config.ts, which lifeboat check --cloud accepts", async () => {
    const dir = join(tempDir("lifeboat-init-"), "acme-backups");
    const res = await cli(["init", dir, "--region", "eu-west-1", "--rds", "acme-prod", "--database", "app", "--user", "backup", "--vpc", "vpc-0a1b2c3d", "--subnets", "subnet-0a,subnet-0b", "--database-security-group", "sg-0db", "--email", "ops@example.com", "--json"]);
    expect(res.code, res.stderr).toBe(0);
    expect(readdirSync(dir).sort()).toEqual([".gitignore", "lifeboat.config.ts", "package.json", "sst.config.ts"]);
    const result = JSON.parse(res.stdout);
    expect(result).toMatchObject({ app: "acme-backups", bucket: expect.stringMatching(/^acme-backups-db-backups-[0-9a-f]{6}$/) });
    // the secret's place, and the deploy
    expect(result.next).toEqual([
      expect.stringMatching(/^cd .*acme-backups$/),
      "npm install",
      expect.stringMatching(/^aws ssm put-parameter --type SecureString --name \/lifeboat\/app\/db-password --value '\.\.\.' +# the database password$/),
      "npx lifeboat check --cloud",
      "npx sst deploy --stage production",
    ]);
    const pkg = JSON.parse(readFileSync(join(dir, "package.json"), "utf8"));
    expect(pkg).toMatchObject({ name: "acme-backups", private: true, type: "module", dependencies: { lifeboat: `^${LIFEBOAT_VERSION}`, sst: SST_VERSION } });
    // the SST version init pins is the one this repository builds and tests the component with
    expect(JSON.parse(readFileSync(join(REPO, "package.json"), "utf8")).devDependencies.sst).toBe(SST_VERSION);
    const sst = readFileSync(join(dir, "sst.config.ts"), "utf8");
    expect(sst).toContain('const { Backups } = await import("lifeboat/sst");');
    expect(sst).toContain('new Backups("Backups", config)');
    expect(readFileSync(join(dir, ".gitignore"), "utf8").split("\n")).toEqual(expect.arrayContaining(["node_modules", ".sst"]));
    const config = readFileSync(join(dir, "lifeboat.config.ts"), "utf8");
    expect(config).toMatch(/^import \{ defineConfig \} from "lifeboat";/);
    const check = await cli(["check", "--config", join(dir, "lifeboat.config.ts"), "--cloud", "--json"]);
    expect(check.code, check.stderr).toBe(0);
    expect(JSON.parse(check.stdout)).toMatchObject({ targets: ["app"], cloud: { deployable: true } });
    expect(parseConfig((await loadConfig(join(dir, "lifeboat.config.ts"))) as unknown, "x").targets.app!.database).toMatchObject({ rds: { instance: "acme-prod" }, database: "app", user: "backup", password: { ssm: "/lifeboat/app/db-password" } });
  });

  it("never overwrites: a folder with any of its files is refused and left as it was; a bad flag is refused with the fix", async () => {
    const dir = tempDir("lifeboat-init-");
    writeFileSync(join(dir, "package.json"), "{\"name\":\"mine\"}");
    const res = await cli(["init", dir]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("already has package.json: nothing was written");
    expect(res.stderr).toContain("--force");
    expect(readdirSync(dir)).toEqual(["package.json"]);
    expect(readFileSync(join(dir, "package.json"), "utf8")).toBe("{\"name\":\"mine\"}");
    const bad = await cli(["init", join(dir, "x"), "--retention-days", "a month"]);
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain('--retention-days must be a whole number above 0, not "a month"');
    // a config the deployment would refuse is refused before anything is written
    const refused = await cli(["init", join(dir, "y"), "--host", "db.internal", "--database", "app"]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain("db.internal is a private address");
    expect(readdirSync(dir)).toEqual(["package.json"]);
  });
});

describe("EventBridge schedule expressions", () => {
  const valid = [
    "cron(0 2 * * ? *)",
    "cron(0/15 * * * ? *)",
    "cron(30 4 ? * MON-FRI *)",
    "cron(0 12 L * ? *)",
    "cron(0 12 LW * ? *)",
    "cron(0 12 15W * ? *)",
    "cron(0 12 L-2 * ? *)",
    "cron(0 8 ? * 6#3 *)",
    "cron(0 8 ? * 6L *)",
    "cron(0 8 ? * FRI#1 2027)",
    "cron(5,35 14 * JAN,JUL ? 2026-2030)",
    "cron(0 22-2 * * ? *)",
    "rate(1 day)",
    "rate(15 minutes)",
    "rate(1 hour)",
  ];
  it.each(valid)("accepts %s", (e) => expect(parseSchedule(e)).toMatchObject({ ok: true }));

  const invalid: Array<[string, RegExp]> = [
    ["cron(0 2 * * *)", /6 fields/],
    ["cron(0 2 * * * *)", /exactly one of day-of-month and day-of-week must be "\?"/],
    ["cron(0 2 ? * ? *)", /exactly one/],
    ["cron(60 2 * * ? *)", /minute 60 is out of range 0-59/],
    ["cron(0 2 * 13 ? *)", /month 13 is out of range 1-12/],
    ["cron(0 2 ? * 8 *)", /day-of-week 8 is out of range 1-7/],
    ["cron(0 2 ? * 0 *)", /day-of-week 0 is out of range 1-7/],
    ["cron(0 2 * * ? 1969)", /year 1969 is out of range/],
    ["cron(0 2 ? * 6#6 *)", /week number after # must be 1-5/],
    ["cron(0 L * * ? *)", /L, W or #/],
    ["cron(0 2 * * ? 2027,*)", /cannot be combined/],
    ["cron(*/0 2 * * ? *)", /increment/],
    ["rate(0 days)", /positive/],
    ["rate(2 day)", /plural/],
    ["rate(1 week)", /unit must be one of/],
    ["0 2 * * *", /neither cron\(\.\.\.\) nor rate\(\.\.\.\)/],
  ];
  it.each(invalid)("rejects %s", (e, re) => {
    const r = parseSchedule(e);
    expect(r.ok).toBe(false);
    if (!r.ok) expect(r.error).toMatch(re);
  });

  it("keeps the structure a scheduler needs", () => {
    const r = parseSchedule("cron(0/15 9-17 ? * MON-FRI *)");
    expect(r).toEqual({
      ok: true,
      schedule: {
        type: "cron",
        expression: "cron(0/15 9-17 ? * MON-FRI *)",
        fields: {
          minutes: [{ kind: "range", from: 0, to: 59, step: 15 }],
          hours: [{ kind: "range", from: 9, to: 17, step: 1 }],
          dayOfMonth: [{ kind: "none" }],
          month: [{ kind: "any" }],
          dayOfWeek: [{ kind: "range", from: 2, to: 6, step: 1 }],
          year: [{ kind: "any" }],
        },
      },
    });
    expect(parseSchedule("rate(6 hours)")).toEqual({ ok: true, schedule: { type: "rate", expression: "rate(6 hours)", value: 6, unit: "hours", everyMs: 6 * 3_600_000 } });
  });
});
