#!/usr/bin/env node
// Installs SST's platform (component sources and types under .sst/platform) with the standard `npx sst install`, on
// the project's own sst.config.ts, offline (no AWS, no GitHub: ../shared/notes/sst-offline.md), unless the installed
// one already matches the pinned sst version. npm test runs this first: the infra type-check and synthesis tests need
// it, and on a clean clone (CI) it proves that `npx sst install` works there with no Lifeboat-specific step.
import { execFileSync } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";

const want = JSON.parse(readFileSync("node_modules/sst/package.json", "utf8")).version;
const versionFile = ".sst/platform/version";
const have = existsSync(versionFile) ? readFileSync(versionFile, "utf8").trim() : "";
if (existsSync(".sst/platform/config.d.ts") && have === want) {
  console.log(`sst platform ${have} already installed`);
} else {
  console.log(`npx sst install: the sst ${want} platform into .sst/platform (offline, about 40 s)`);
  execFileSync("npx", ["sst", "install", "--stage", "ci"], {
    stdio: "inherit",
    env: { ...process.env, SST_NO_BUN: "1", SST_SKIP_DEPENDENCY_CHECK: "1", SST_TELEMETRY_DISABLED: "1" },
  });
}
