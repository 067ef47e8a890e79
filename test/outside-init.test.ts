/**
 * `npx lifeboat init` from the installed package, in an empty folder outside this repository: the app it writes
 * installs (the tarball as its lifeboat), type-checks against SST's platform types and lifeboat/sst's, synthesizes
 * under Pulumi mocks into the stack a user would deploy, and meets least privilege. (The platform is this
 * repository's .sst/platform, copied: the same sst version; test/outside-app.test.ts runs `sst install` itself.)
 */
import { copyFileSync, cpSync, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { spawn } from "node:child_process";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LIFEBOAT_VERSION } from "@lifeboat/core";
import { REPO } from "./support/helpers.js";
import { assertLeastPrivilege } from "./support/least-privilege.js";
import { run, typeCheckApp, writeAppTsconfig } from "./support/sst-app.js";
import { ofType, one, synthesize, unwrap, type Recorded } from "./support/sst-synth.js";

const TARBALL = join(REPO, "dist", `lifeboat-${LIFEBOAT_VERSION}.tgz`);

let home: string;
let app: string;
let resources: Recorded[];
let close: (() => void) | undefined;

beforeAll(async () => {
  // the package as the suite's global setup packed it (test/support/global-setup.ts)
  home = mkdtempSync(join(tmpdir(), "lifeboat-sst-init-"));
  const tarball = join(home, "lifeboat.tgz");
  copyFileSync(TARBALL, tarball);
  // a user's machine: lifeboat installed somewhere, `npx lifeboat init` in an empty folder
  const tools = join(home, "tools");
  mkdirSync(tools);
  writeFileSync(join(tools, "package.json"), JSON.stringify({ name: "tools", private: true }));
  run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund", tarball], tools);
  app = join(home, "acme-backups");
  run(process.execPath, [join(tools, "node_modules/lifeboat/bin/lifeboat.js"), "init", app, "--region", "eu-west-1", "--bucket", "acme-db-backups", "--email", "ops@example.com", "--lifeboat", `file:${tarball}`], home);
  run("npm", ["install", "--prefer-offline", "--no-audit", "--no-fund"], app);
  cpSync(join(REPO, ".sst/platform"), join(app, ".sst/platform"), { recursive: true });
  writeAppTsconfig(app, ["sst.config.ts", "lifeboat.config.ts"]);
  const synth = await synthesize("production", { root: app });
  resources = synth.resources;
  close = synth.close;
}, 600_000);
afterAll(() => {
  close?.();
  if (home) rmSync(home, { recursive: true, force: true });
});

describe("the SST app `lifeboat init` writes, outside this repository", () => {
  it("depends on the lifeboat it was given and the sst Lifeboat is built with", () => {
    const pkg = JSON.parse(readFileSync(join(app, "package.json"), "utf8"));
    expect(Object.keys(pkg.dependencies).sort()).toEqual(["lifeboat", "sst"]);
  });

  it("type-checks against SST's platform types and lifeboat/sst's", () => {
    const tsc = typeCheckApp(app);
    expect(tsc.status, tsc.output).toBe(0);
  }, 120_000);

  it("synthesizes the stack: the bucket, the schedule, the runner built from the installed package, alarms by e-mail", () => {
    expect(unwrap(one(resources, "aws:s3/bucket:Bucket").inputs).bucket).toBe("acme-db-backups");
    const [schedule] = ofType(resources, "aws:scheduler/schedule:Schedule").filter((r) => !r.name.includes("Freshness")).map((r) => unwrap(r.inputs));
    expect(schedule).toMatchObject({ scheduleExpression: "cron(0 3 * * ? *)", scheduleExpressionTimezone: "UTC" });
    const image = unwrap(one(resources, "docker-build:index:Image").inputs);
    expect(image.context.location).toBe(join(app, "node_modules/lifeboat"));
    expect(image.dockerfile.location).toBe(join(app, "node_modules/lifeboat/Dockerfile"));
    expect(image.buildArgs?.LIFEBOAT_SOURCE ?? "package").toBe("package");
    const functions = ofType(resources, "aws:lambda/function:Function").map((f) => unwrap(f.inputs));
    expect(functions.length).toBeGreaterThanOrEqual(3);
    expect(ofType(resources, "aws:sns/topicSubscription:TopicSubscription").map((s) => unwrap(s.inputs)).filter((s) => s.protocol === "email").map((s) => s.endpoint)).toEqual(["ops@example.com", "ops@example.com"]);
  });

  it("meets least privilege", () => {
    assertLeastPrivilege(resources, "Backups");
  });
});

describe("the installed package's dashboard", () => {
  it("serves its pages and its chart library from the package's own dependencies, outside this repository", async () => {
    const store = join(home, "empty-store");
    mkdirSync(store);
    const child = spawn(process.execPath, [join(home, "tools/node_modules/lifeboat/bin/lifeboat.js"), "dashboard", "--from", `file://${store}`, "--port", "0"], { cwd: home, stdio: ["ignore", "pipe", "pipe"] });
    try {
      const url = await new Promise<string>((resolve, reject) => {
        let out = "";
        child.stdout!.on("data", (d: Buffer) => {
          out += d.toString();
          const m = /(http:\/\/\S+)/.exec(out);
          if (m) resolve(m[1]!);
        });
        child.once("exit", (code) => reject(new Error(`dashboard exited ${code}`)));
      });
      const page = await fetch(url);
      expect(page.status).toBe(200);
      expect(await page.text()).toContain("No backups in this store yet");
      const chart = await fetch(new URL("/assets/uPlot.iife.min.js", url));
      expect(chart.status).toBe(200);
      expect((await chart.text()).length).toBeGreaterThan(20_000);
    } finally {
      child.kill("SIGTERM");
      await new Promise((r) => (child.exitCode !== null ? r(undefined) : child.once("exit", r)));
    }
  });
});
