#!/usr/bin/env node
// Builds the `lifeboat` npm package into dist/package: the CLI (bin/lifeboat.js), the runner container's entry point
// (runner.js) and the public API (index.js: defineConfig; types/: the config's types), compiled from the workspace
// packages' TypeScript by esbuild (already in the tree as tsx's compiler: one bundle per entry point, shared chunks,
// commands loaded on demand) and tsc (declarations). Third-party packages stay dependencies, installed by npm.
import { execFileSync } from "node:child_process";
import { readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
import { build } from "esbuild";

const out = "dist/package";
rmSync(out, { recursive: true, force: true });

const workspaces = ["core", "runner", "cli"].map((p) => JSON.parse(readFileSync(`packages/${p}/package.json`, "utf8")));
const dependencies = Object.fromEntries(
  workspaces
    .flatMap((w) => Object.entries(w.dependencies ?? {}))
    .filter(([name]) => !name.startsWith("@lifeboat/"))
    .sort(([a], [b]) => a.localeCompare(b)),
);
const version = /LIFEBOAT_VERSION = "([^"]+)"/.exec(readFileSync("packages/core/src/index.ts", "utf8"))[1];

await build({
  entryPoints: { "bin/lifeboat": "packages/cli/src/bin.ts", runner: "packages/runner/src/container.ts", index: "packages/core/src/public.ts" },
  outdir: out,
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node20",
  chunkNames: "lib/[name]-[hash]",
  external: Object.keys(dependencies).flatMap((d) => [d, `${d}/*`]),
  banner: { js: "#!/usr/bin/env node" },
  sourcemap: "linked",
  logLevel: "warning",
});

execFileSync(process.execPath, ["node_modules/typescript/bin/tsc", "-p", "tsconfig.types.json"], { stdio: "inherit" });

const root = JSON.parse(readFileSync("package.json", "utf8"));
writeFileSync(
  `${out}/package.json`,
  JSON.stringify(
    {
      name: "lifeboat",
      version,
      description: root.description,
      type: "module",
      license: "MIT",
      bin: { lifeboat: "bin/lifeboat.js" },
      exports: { ".": { types: "./types/public.d.ts", default: "./index.js" }, "./runner": "./runner.js" },
      types: "./types/public.d.ts",
      engines: root.engines,
      dependencies,
    },
    null,
    2,
  ) + "\n",
);
copyFileSync("README.md", `${out}/README.md`);
console.log(`built lifeboat ${version} into ${out}`);
