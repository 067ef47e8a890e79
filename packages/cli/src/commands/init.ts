import { existsSync, mkdirSync, writeFileSync } from "node:fs";
import { basename, join, relative, resolve } from "node:path";
import { LIFEBOAT_VERSION, SST_VERSION, UsageError, deployPlan, parseConfig, type LifeboatConfigInput } from "@lifeboat/core";
import type { Context } from "../context.js";

export interface InitOptions {
  name?: string;
  bucket?: string;
  region?: string;
  target?: string;
  host?: string;
  port?: string;
  database?: string;
  user?: string;
  passwordSsm?: string;
  rds?: string;
  urlSsm?: string;
  schedule?: string;
  timezone?: string;
  retentionDays?: string;
  email?: string;
  vpc?: string;
  subnets?: string;
  databaseSecurityGroup?: string;
  lifeboat?: string;
  force?: boolean;
}

const FILES = ["package.json", "sst.config.ts", "lifeboat.config.ts", ".gitignore"];

/** An SST app name: lowercase letters, digits and dashes, starting with a letter. */
function appName(dir: string, given?: string): string {
  const name = (given ?? basename(dir))
    .toLowerCase()
    .replace(/[^a-z0-9-]+/g, "-")
    .replace(/^[^a-z]+/, "")
    .replace(/-+$/, "")
    .slice(0, 40);
  if (!name) throw new UsageError(`cannot make an SST app name from "${given ?? basename(dir)}"`, "give one with --name (lowercase letters, digits and dashes)");
  return name;
}

/**
 * `lifeboat init [dir]`: writes a minimal SST app that deploys Lifeboat from the installed package (package.json,
 * sst.config.ts calling the Backups component, lifeboat.config.ts from the flags, .gitignore), checked as `lifeboat
 * check --cloud` would before anything is written. Existing files are never overwritten (--force to replace them).
 */
export async function initCommand(ctx: Context, dirArg: string | undefined, opts: InitOptions): Promise<number> {
  const dir = resolve(dirArg ?? ".");
  const name = appName(dir, opts.name);
  const existing = FILES.filter((f) => existsSync(join(dir, f)));
  if (existing.length && !opts.force) {
    throw new UsageError(`${relative(process.cwd(), dir) || "this folder"} already has ${existing.join(", ")}: nothing was written`, "run it in an empty folder, give another one (lifeboat init my-backups), or --force to replace those files");
  }
  const config = configFrom(name, opts);
  // what `lifeboat check --cloud` and `sst deploy` would refuse is refused now, before a file is written
  const plan = deployPlan(parseConfig(config, "lifeboat.config.ts"), "production", "lifeboat.config.ts");

  mkdirSync(dir, { recursive: true });
  writeFileSync(join(dir, "package.json"), packageJson(name, opts.lifeboat ?? `^${LIFEBOAT_VERSION}`));
  writeFileSync(join(dir, "sst.config.ts"), sstConfig(name));
  writeFileSync(join(dir, "lifeboat.config.ts"), lifeboatConfig(config));
  writeFileSync(join(dir, ".gitignore"), ["node_modules", ".sst", ".env", ""].join("\n"));

  const cd = relative(process.cwd(), dir);
  const parameters = plan.runnerParameters;
  const next = [
    ...(cd ? [`cd ${cd}`] : []),
    "npm install",
    ...parameters.map((p) => `aws ssm put-parameter --type SecureString --name ${p} --value '...'   # ${describeParameter(config)}`),
    "npx lifeboat check --cloud",
    "npx sst deploy --stage production",
  ];
  const lines = [
    `wrote an SST app "${name}" in ${cd || "."}: ${FILES.join(", ")}`,
    `  bucket ${plan.bucketName} in ${config.storage.s3!.region}; target ${Object.keys(config.targets)[0]}, ${plan.schedules.length ? `scheduled ${plan.schedules[0]!.expression} (${plan.schedules[0]!.timezone})` : "not scheduled"}`,
    ...plan.warnings.map((w) => `  warning: ${w}`),
    "next:",
    ...next.map((l) => `  ${l}`),
    "(Docker builds the runner image at deploy time; see docs/deploy.md for aws.runner.image instead)",
  ];
  ctx.out.result(lines.join("\n"), { dir, app: name, files: FILES, bucket: plan.bucketName, warnings: plan.warnings, next });
  return 0;
}

/** What init's one SSM parameter holds: the database URL, or its password. */
function describeParameter(config: LifeboatConfigInput): string {
  const t = Object.values(config.targets)[0]!;
  const db = t.database as { url?: unknown };
  return db.url ? "the database URL, postgres://user:password@host:5432/db" : "the database password";
}

function configFrom(name: string, o: InitOptions): LifeboatConfigInput {
  const target = o.target ?? "app";
  const region = o.region ?? process.env.AWS_REGION ?? process.env.AWS_DEFAULT_REGION ?? "us-east-1";
  const bucket = o.bucket ?? `${name}-db-backups-${Math.random().toString(16).slice(2, 8)}`;
  const password = { ssm: o.passwordSsm ?? `/lifeboat/${target}/db-password` };
  const int = (v: string | undefined, flag: string) => {
    if (v === undefined) return undefined;
    const n = Number(v);
    if (!Number.isInteger(n) || n < 1) throw new UsageError(`${flag} must be a whole number above 0, not "${v}"`, `for example ${flag} 30`);
    return n;
  };
  const database = o.rds
    ? { rds: { instance: o.rds }, database: o.database ?? "postgres", user: o.user ?? "postgres", password }
    : o.host
      ? { host: o.host, ...(o.port ? { port: int(o.port, "--port") } : {}), database: o.database ?? "postgres", user: o.user ?? "postgres", password }
      : { url: { ssm: o.urlSsm ?? `/lifeboat/${target}/database-url` } };
  return {
    storage: { s3: { bucket, region } },
    targets: {
      [target]: {
        database,
        schedule: o.schedule ?? "cron(0 3 * * ? *)",
        timezone: o.timezone ?? "UTC",
        retention: { days: int(o.retentionDays, "--retention-days") ?? 30 },
      },
    },
    ...(o.vpc || o.email
      ? {
          aws: {
            ...(o.vpc
              ? {
                  vpc: {
                    id: o.vpc,
                    containerSubnets: (o.subnets ?? "").split(",").filter(Boolean),
                    ...(o.databaseSecurityGroup ? { databaseSecurityGroups: o.databaseSecurityGroup.split(",").filter(Boolean) } : {}),
                  },
                }
              : {}),
            ...(o.email ? { email: [{ address: o.email }] } : {}),
          },
        }
      : {}),
  } as LifeboatConfigInput;
}

function packageJson(name: string, lifeboat: string): string {
  return (
    JSON.stringify(
      {
        name,
        private: true,
        type: "module",
        scripts: { check: "lifeboat check --cloud", deploy: "sst deploy --stage production" },
        dependencies: { lifeboat, sst: SST_VERSION },
      },
      null,
      2,
    ) + "\n"
  );
}

function sstConfig(name: string): string {
  return `/// <reference path="./.sst/platform/config.d.ts" />

// Lifeboat's backups of PostgreSQL, deployed by SST: everything comes from lifeboat.config.ts (npx lifeboat check --cloud).
export default $config({
  async app(input) {
    const { default: config } = await import("./lifeboat.config");
    return {
      name: ${JSON.stringify(name)},
      home: "aws",
      providers: { aws: { region: config.storage.s3?.region as aws.Region } },
      // a production stack keeps its bucket (and its backups) even when the stack is removed
      removal: input?.stage === "production" ? "retain" : "remove",
      protect: input?.stage === "production",
    };
  },
  async run() {
    const { default: config } = await import("./lifeboat.config");
    const { Backups } = await import("lifeboat/sst");
    const backups = new Backups("Backups", config);
    return { bucket: backups.bucket.name, topic: backups.topic.arn, launcher: backups.launcher.name, runnerRoles: backups.runnerRoles };
  },
});
`;
}

function lifeboatConfig(config: LifeboatConfigInput): string {
  return `import { defineConfig } from "lifeboat";

/**
 * What to back up, where to, and when (written by \`lifeboat init\`). Check it with \`npx lifeboat check --cloud\`.
 * Secrets are never written here: { ssm: "/name" } names an SSM parameter (a SecureString) the runner reads.
 * Every setting: docs/configuration.md in Lifeboat's repository, or the types of defineConfig.
 */
export default defineConfig(${source(config)});
`;
}

/** A value as TypeScript source, keys unquoted where they can be (what a person would write). */
function source(v: unknown, indent = ""): string {
  const inner = indent + "  ";
  if (Array.isArray(v)) return v.length ? `[\n${v.map((x) => inner + source(x, inner)).join(",\n")},\n${indent}]` : "[]";
  if (v && typeof v === "object") {
    const entries = Object.entries(v).filter(([, x]) => x !== undefined);
    if (!entries.length) return "{}";
    return `{\n${entries.map(([k, x]) => `${inner}${/^[A-Za-z_$][\w$]*$/.test(k) ? k : JSON.stringify(k)}: ${source(x, inner)}`).join(",\n")},\n${indent}}`;
  }
  return JSON.stringify(v);
}
