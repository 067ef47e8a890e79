import { execFileSync, spawnSync } from "node:child_process";
import { readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { LIFEBOAT_VERSION } from "@lifeboat/core";
import { REPO, tempDir } from "./support/helpers.js";

/**
 * What users install: `npm run pack` builds the tarball (compiled JavaScript), which is installed into an empty
 * directory outside the repository; its `lifeboat` runs the demo there, and a lifeboat.config.ts there imports
 * defineConfig from "lifeboat", loads and type-checks.
 */
let dir: string;
const npm = (args: string[], cwd: string) => execFileSync("npm", args, { cwd, stdio: "pipe", env: { ...process.env, npm_config_loglevel: "error" } }).toString();
const lifeboat = (args: string[]) => spawnSync(process.execPath, [join(dir, "node_modules/lifeboat/bin/lifeboat.js"), ...args], { cwd: dir, env: { ...process.env, CI: "" }, encoding: "utf8" });

beforeAll(() => {
  npm(["run", "pack"], REPO);
  dir = tempDir("lifeboat-install-");
  writeFileSync(join(dir, "package.json"), JSON.stringify({ name: "a-user-project", private: true, type: "module" }));
  npm(["install", "--no-audit", "--no-fund", join(REPO, "dist", `lifeboat-${LIFEBOAT_VERSION}.tgz`)], dir);
}, 300_000);
afterAll(() => rmSync(dir, { recursive: true, force: true }));

describe("the installed package", () => {
  it("is compiled JavaScript: no TypeScript of Lifeboat's own in it", () => {
    const files = readdirSync(join(dir, "node_modules/lifeboat"), { recursive: true }).map(String);
    expect(files).toContain(join("bin", "lifeboat.js"));
    expect(files).toContain("runner.js");
    expect(files.filter((f) => f.endsWith(".ts") && !f.endsWith(".d.ts"))).toEqual([]);
    const v = lifeboat(["--version"]);
    expect([v.status, v.stdout.trim()]).toEqual([0, LIFEBOAT_VERSION]);
  });

  it("runs the demo outside the repository", () => {
    const demo = lifeboat(["demo"]);
    expect(demo.status, demo.stderr).toBe(0);
    expect(demo.stdout).toContain("schema identical");
  }, 180_000);

  it("loads and type-checks a lifeboat.config.ts that imports defineConfig from \"lifeboat\"", () => {
    writeFileSync(
      join(dir, "lifeboat.config.ts"),
      `import { defineConfig } from "lifeboat";\nexport default defineConfig({ storage: { directory: "./backups" }, targets: { app: { database: { url: "postgres://app@localhost/app" }, retention: { keepLast: 7 } } } });\n`,
    );
    const status = lifeboat(["status", "--json"]);
    expect(status.status, status.stderr).toBe(0);
    expect(JSON.parse(status.stdout).targets.map((t: { target: string }) => t.target)).toEqual(["app"]);
    const tsc = (file: string) => spawnSync(process.execPath, [join(REPO, "node_modules/typescript/bin/tsc"), "--noEmit", "--strict", "--module", "esnext", "--moduleResolution", "bundler", "--target", "es2022", "--skipLibCheck", file], { cwd: dir, encoding: "utf8" });
    expect(tsc("lifeboat.config.ts").status).toBe(0);
    writeFileSync(join(dir, "bad.config.ts"), `import { defineConfig } from "lifeboat";\nexport default defineConfig({ storage: { directory: "./b" }, targets: { app: { database: { url: "x" }, retention: { keepLast: "7" } } } });\n`);
    const bad = tsc("bad.config.ts");
    expect(bad.status).not.toBe(0);
    expect(bad.stdout).toContain("Type 'string' is not assignable to type 'number'");
  });

  it("installed globally (npm install -g), loads a config that imports \"lifeboat\" from a directory without node_modules", () => {
    const prefix = tempDir("lifeboat-global-");
    npm(["install", "-g", "--prefix", prefix, "--no-audit", "--no-fund", join(REPO, "dist", `lifeboat-${LIFEBOAT_VERSION}.tgz`)], dir);
    const etc = tempDir("lifeboat-etc-"); // like /etc/lifeboat: no package.json, no node_modules
    writeFileSync(join(etc, "lifeboat.config.ts"), `import { defineConfig } from "lifeboat";\nexport default defineConfig({ storage: { directory: "${etc}/b" }, targets: { app: { database: { url: "postgres://app@localhost/app" } } } });\n`);
    const res = spawnSync(join(prefix, "bin", "lifeboat"), ["status", "--config", join(etc, "lifeboat.config.ts"), "--json"], { cwd: tmpdir(), env: { ...process.env, CI: "" }, encoding: "utf8" });
    expect(res.status, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).targets.map((t: { target: string }) => t.target)).toEqual(["app"]);
  }, 120_000);
});
