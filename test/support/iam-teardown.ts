import { execFileSync } from "node:child_process";
import { rmSync } from "node:fs";
import { REPO } from "./helpers.js";

/**
 * The IAM project's global setup: the package is packed once (npm run pack: dist/lifeboat-<version>.tgz), for the
 * files that install it into SST apps outside this repository (packing in each of them would race: they run side by
 * side); once every IAM file has read the suite's recorded AWS calls, they are removed.
 */
export default function setup() {
  execFileSync("npm", ["run", "pack"], { cwd: REPO, stdio: "pipe", env: { ...process.env, npm_config_loglevel: "error" } });
  return () => rmSync(process.env.LIFEBOAT_AWS_CALLS!, { recursive: true, force: true });
}
