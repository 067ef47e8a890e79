/**
 * The SST app outside this repository that test/outside-app.test.ts installs during the suite (npm install of the
 * packed tarball, `sst install`: the slow part, run beside the suite's other files) and test/iam-sst-app.test.ts
 * synthesizes and checks after the suite (it needs the AWS calls the suite recorded), then removes. In a folder of the
 * system's temp directory that both know (not under node_modules: Vitest would not compile the platform's TypeScript
 * there; not in this repository: its node_modules would lend the app what the tarball lacks); either file run alone
 * prepares it itself.
 */
import { existsSync, mkdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LIFEBOAT_VERSION, SST_VERSION } from "@lifeboat/core";
import { cloudConfig } from "./cloud-fixture.js";
import { REPO } from "./helpers.js";
import { run, writeAppTsconfig } from "./sst-app.js";

export const OUTSIDE_APP = join(tmpdir(), `lifeboat-outside-app-${process.getuid?.() ?? 0}`);
export const TARBALL = join(REPO, "dist", `lifeboat-${LIFEBOAT_VERSION}.tgz`);
export const PASSWORD_PARAMETER = "/lifeboat/acme/production/app/database-password";

/** The cloud fixture's deployment without its VPC ids (this app gives its own sst.aws.Vpc), plus the app's databases. */
export const fixture = { storage: cloudConfig.storage, notifications: cloudConfig.notifications, targets: cloudConfig.targets };
if (Object.keys(cloudConfig).sort().join() !== "aws,notifications,storage,targets") throw new Error("cloud-fixture.ts has keys this test does not carry over: add them to `fixture`");
export const SST_CONFIG = `/// <reference path="./.sst/platform/config.d.ts" />
export default $config({
  app() {
    return { name: "acme", home: "aws", providers: { aws: { region: "eu-west-1" } } };
  },
  async run() {
    const { Backups } = await import("lifeboat/sst");
    const vpc = new sst.aws.Vpc("Vpc");
    const db = new sst.aws.Postgres("Database", { vpc, proxy: true });
    // a database given a security group of its own, and an Aurora cluster
    const reportsGroup = new aws.ec2.SecurityGroup("ReportsGroup", { vpcId: vpc.id });
    const reports = new sst.aws.Postgres("Reports", {
      vpc,
      transform: { instance: (args) => void Object.assign(args, { vpcSecurityGroupIds: [reportsGroup.id], iamDatabaseAuthenticationEnabled: true }) },
    });
    const analytics = new sst.aws.Aurora("Analytics", { engine: "postgres", vpc });
    const backups = new Backups("Backups", {
      storage: ${JSON.stringify(fixture.storage)},
      notifications: ${JSON.stringify(fixture.notifications)},
      vpc,
      // SST's style: a function that edits a child's args, or an object merged into them
      transform: { Launcher: (args) => void (args.memory = "512 MB"), Watcher: { timeout: "2 minutes" } },
      targets: {
        ${Object.entries(fixture.targets).map(([name, t]) => `${JSON.stringify(name)}: ${JSON.stringify(t)},`).join("\n        ")}
        app: { database: db, schedule: "cron(0 3 * * ? *)", retention: { days: 14 } },
        // no password at all: IAM database authentication, as a user of its own
        reports: { database: { component: reports, user: "lifeboat_iam", iamAuth: true }, schedule: "rate(1 day)" },
        analytics: { database: analytics, schedule: "rate(1 day)" },
      },
    });
    return { bucket: backups.bucket.name, topic: backups.topic.arn, launcher: backups.launcher.name };
  },
});
`;


/** Writes and installs the app (the packed tarball and sst, then `sst install`, offline) into OUTSIDE_APP. */
export function prepareOutsideApp(): string {
  const app = OUTSIDE_APP;
  rmSync(app, { recursive: true, force: true });
  mkdirSync(app, { recursive: true });
  writeFileSync(join(app, "package.json"), JSON.stringify({ name: "acme", private: true, type: "module", dependencies: { lifeboat: `file:${TARBALL}`, sst: SST_VERSION } }, null, 2));
  writeFileSync(join(app, "sst.config.ts"), SST_CONFIG);
  writeAppTsconfig(app, ["sst.config.ts"]);
  run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund"], app);
  // SST's own install, offline (../shared/notes/sst-offline.md): the platform's sources and types in .sst/platform
  run("npx", ["sst", "install", "--stage", "ci"], app, { SST_NO_BUN: "1", SST_SKIP_DEPENDENCY_CHECK: "1", SST_TELEMETRY_DISABLED: "1" });
  return app;
}

/** The app as test/outside-app.test.ts left it, or installed now. */
export function outsideApp(): string {
  return existsSync(join(OUTSIDE_APP, ".sst", "platform", "config.d.ts")) && existsSync(join(OUTSIDE_APP, "node_modules", "lifeboat")) ? OUTSIDE_APP : prepareOutsideApp();
}
