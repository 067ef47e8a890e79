#!/usr/bin/env node
// Builds the `lifeboat` npm package into dist/package: the CLI (bin/lifeboat.js), the runner container's entry point
// (runner.js) and the public API (index.js: defineConfig; types/: the config's types), compiled from the workspace
// packages' TypeScript by esbuild (already in the tree as tsx's compiler: one bundle per entry point, shared chunks,
// commands loaded on demand) and tsc (declarations). Third-party packages stay dependencies, installed by npm.
// And the AWS deployment: `lifeboat/sst` (sst/index.js: the Backups component, from infra/), the Lambda functions
// built already (functions/: one file per handler, every dependency inside, as Lambda runs them), and the runner
// image's Dockerfile (built from this folder at deploy time).
import { execFileSync } from "node:child_process";
import { cpSync, readFileSync, rmSync, writeFileSync, copyFileSync } from "node:fs";
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

// lifeboat/sst: made of the SST app's globals ($util, sst, aws), imported inside its run(); Lifeboat's own code inside
await build({
  entryPoints: { "sst/index": "infra/package.ts" },
  outdir: out,
  bundle: true,
  format: "esm",
  platform: "node",
  target: "node20",
  external: Object.keys(dependencies).flatMap((d) => [d, `${d}/*`]),
  sourcemap: "linked",
  logLevel: "warning",
});
// its types: written by hand (they name the SST app's own global types), type-checked by the outside-app test
copyFileSync("scripts/sst.d.ts", `${out}/sst/index.d.ts`);

// The Lambda functions, as the Backups component deploys them (its `bundle`): ES modules for Node 22, every
// dependency bundled (the AWS SDK too: the versions tested, not the runtime's), shared code in chunks
await build({
  entryPoints: Object.fromEntries(["launcher", "watcher", "freshness", "slack", "webhook"].map((f) => [f, `packages/functions/src/${f}.ts`])),
  outdir: `${out}/functions`,
  outExtension: { ".js": ".mjs" },
  bundle: true,
  splitting: true,
  format: "esm",
  platform: "node",
  target: "node22",
  minify: true,
  chunkNames: "chunks/[name]-[hash]",
  // CommonJS dependencies inside an ES module bundle still call require()
  banner: { js: 'import { createRequire as __lifeboatRequire } from "node:module"; const require = __lifeboatRequire(import.meta.url);' },
  logLevel: "warning",
});

// The runner image, built from this folder (LIFEBOAT_SOURCE=package): only what the runner needs goes in
copyFileSync("packages/runner/Dockerfile", `${out}/Dockerfile`);
writeFileSync(`${out}/.dockerignore`, ["node_modules", "functions", "sst", "*.map", ""].join("\n"));

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
      exports: {
        ".": { types: "./types/public.d.ts", default: "./index.js" },
        "./sst": { types: "./sst/index.d.ts", default: "./sst/index.js" },
        "./runner": "./runner.js",
        "./package.json": "./package.json",
      },
      types: "./types/public.d.ts",
      engines: root.engines,
      dependencies,
    },
    null,
    2,
  ) + "\n",
);
copyFileSync("README.md", `${out}/README.md`);
// the docs every command's --help names, with the dashboard's screenshots
cpSync("docs", `${out}/docs`, { recursive: true });
console.log(`built lifeboat ${version} into ${out}`);
