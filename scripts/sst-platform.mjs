#!/usr/bin/env node
// Installs SST's platform (component sources and types under .sst/platform) without AWS and without GitHub, as
// ../shared/notes/sst-offline.md describes, unless the installed one already matches the pinned sst version.
// npm test runs this first: the infra type-check and synthesis tests need it.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync, rmSync, writeFileSync } from "node:fs";

const want = JSON.parse(readFileSync("node_modules/sst/package.json", "utf8")).version;
const versionFile = ".sst/platform/version";
const have = existsSync(versionFile) ? readFileSync(versionFile, "utf8").trim() : "";
if (existsSync(".sst/platform/config.d.ts") && have === want) {
  console.log(`sst platform ${have} already installed`);
} else {
  console.log(`installing the sst ${want} platform into .sst/platform (offline, about 40 s)`);
  // `sst install` bundles the config it is given, and infra/config.ts imports from .sst/platform itself: install
  // from a minimal config with the same app and provider (home: "aws") instead.
  const bootstrap = ".sst-install.config.ts";
  writeFileSync(bootstrap, 'export default $config({ app() { return { name: "lifeboat", home: "aws" }; }, async run() {} });\n');
  try {
    execFileSync("npx", ["sst", "install", "--stage", "ci", "--config", bootstrap], {
      stdio: "inherit",
      env: { ...process.env, SST_NO_BUN: "1", SST_SKIP_DEPENDENCY_CHECK: "1", SST_TELEMETRY_DISABLED: "1" },
    });
  } finally {
    rmSync(bootstrap, { force: true });
  }
}
