import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Infra tests synthesize sst.config.ts with the one copy of Pulumi that the SST platform components use.
const platform = fileURLToPath(new URL("./.sst/platform/node_modules/", import.meta.url));
// lifeboat.config.ts imports defineConfig from "lifeboat", as a user's does: here, the sources of that export.
const alias = [
  { find: "@pulumi/pulumi", replacement: platform + "@pulumi/pulumi" },
  { find: "@pulumi/aws", replacement: platform + "@pulumi/aws" },
  { find: /^lifeboat$/, replacement: fileURLToPath(new URL("./packages/core/src/public.ts", import.meta.url)) },
];

// Where the cloud components' tests record their AWS calls for the IAM check (test/support/aws-calls.ts); the
// suite's global setup empties it first, the IAM check removes it when done (outside the temp directory, so that a
// run of single files leaves nothing there).
process.env.LIFEBOAT_AWS_CALLS ??= fileURLToPath(new URL("./node_modules/.cache/lifeboat-aws-calls/", import.meta.url));

// Three test files at a time: Vitest's default is one fewer than the CPUs, which on a 2-core machine (CI, this team's
// machines) is one, and the suite then ran file after file (over 10 minutes). With two, the cores were busy about 70%
// of the run (files wait on PostgreSQL, pg_dump and the S3 server); three measured 9m10s against 9m54s for two. The
// files share one PostgreSQL and one S3 server, each with its own databases, key prefixes and temporary directories.
const common = { pool: "forks" as const, testTimeout: 120_000, hookTimeout: 180_000, maxWorkers: 3 };

export default defineConfig({
  resolve: { alias },
  test: {
    reporters: ["default"],
    projects: [
      {
        resolve: { alias },
        test: {
          ...common,
          name: "suite",
          include: ["test/**/*.test.ts"],
          exclude: ["test/iam*.test.ts"],
          globalSetup: ["test/support/global-setup.ts"],
          setupFiles: ["test/support/setup-env.ts"],
          sequence: { groupOrder: 0 },
        },
      },
      {
        // after the whole suite: it evaluates the AWS calls the suite recorded against the synthesized roles
        resolve: { alias },
        test: { ...common, name: "iam", include: ["test/iam*.test.ts"], globalSetup: ["test/support/iam-teardown.ts"], sequence: { groupOrder: 1 } },
      },
    ],
  },
});
