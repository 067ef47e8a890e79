// `lifeboat/sst` in the npm package: the Backups component, with its Lambda functions built already (functions/)
// and the runner image built from the installed package (its Dockerfile), or `aws.runner.image`.
import "./guard";
import { createRequire } from "node:module";
import { dirname, join, relative } from "node:path";
import { fileURLToPath } from "node:url";
import { useCode } from "./backups";

export { Backups, type BackupsArgs } from "./backups";

/** The installed package's folder, relative to the SST app's root (SST joins image contexts and bundles to it). */
function packageDir(): string {
  const root = $cli.paths.root;
  let dir: string;
  try {
    dir = dirname(createRequire(join(root, "package.json")).resolve("lifeboat/package.json"));
  } catch {
    dir = join(dirname(fileURLToPath(import.meta.url)), "..");
  }
  return relative(root, dir) || ".";
}

const dir = packageDir();
useCode({
  handler: (fn) => ({ bundle: join(dir, "functions"), handler: `${fn}.handler` }),
  image: { context: dir, dockerfile: "Dockerfile" },
});
