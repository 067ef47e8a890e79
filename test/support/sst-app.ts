/**
 * SST apps made outside this repository by the tests (test/outside-app.test.ts and test/iam-sst-app.test.ts, test/outside-init.test.ts): running
 * npm and sst there, and type-checking them against their own .sst/platform types and the installed lifeboat/sst's.
 */
import { execFileSync, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { REPO } from "./helpers.js";

/** Runs a command in `cwd` (npm quiet), its output as text; a non-zero exit throws with it. */
export function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv = {}): string {
  return execFileSync(cmd, args, { cwd, stdio: "pipe", env: { ...process.env, npm_config_loglevel: "error", ...env } }).toString();
}

/** A tsconfig for an SST app's own files, as `tsc -p` type-checks them (strict, bundler resolution). */
export function writeAppTsconfig(app: string, include: string[]): void {
  writeFileSync(join(app, "tsconfig.json"), JSON.stringify({ compilerOptions: { target: "ES2022", module: "ESNext", moduleResolution: "Bundler", strict: true, skipLibCheck: true, noEmit: true }, include }));
}

/** `tsc -p` in the app (this repository's TypeScript): exit status and what it printed. */
export function typeCheckApp(app: string): { status: number | null; output: string } {
  const tsc = spawnSync(process.execPath, [join(REPO, "node_modules/typescript/bin/tsc"), "-p", "tsconfig.json"], { cwd: app, encoding: "utf8" });
  return { status: tsc.status, output: tsc.stdout + tsc.stderr };
}
