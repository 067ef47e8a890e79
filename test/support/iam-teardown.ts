import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { REPO } from "./helpers.js";

/**
 * The IAM project's global setup: when the suite did not run first (it builds and packs the package in its global
 * setup), the package is packed here (npm run pack: dist/lifeboat-<version>.tgz) for test/iam-sst-app.test.ts; once
 * every IAM file has read the suite's recorded AWS calls, they are removed.
 */
export default function setup() {
  // the suite's global setup built and packed the package already in this run; alone, the IAM project packs it
  if (!process.env.LIFEBOAT_TEST_BUILT) execFileSync("npm", ["run", "pack"], { cwd: REPO, stdio: "pipe", env: { ...process.env, npm_config_loglevel: "error" } });
  return () => rmSync(process.env.LIFEBOAT_AWS_CALLS!, { recursive: true, force: true });
}
