import { fileURLToPath } from "node:url";
import { defineConfig } from "vitest/config";

// Infra tests synthesize sst.config.ts with the one copy of Pulumi that the SST platform components use.
const platform = fileURLToPath(new URL("./.sst/platform/node_modules/", import.meta.url));

export default defineConfig({
  resolve: {
    alias: {
      "@pulumi/pulumi": platform + "@pulumi/pulumi",
      "@pulumi/aws": platform + "@pulumi/aws",
    },
  },
  test: {
    include: ["test/**/*.test.ts"],
    globalSetup: ["test/support/global-setup.ts"],
    setupFiles: ["test/support/setup-env.ts"],
    pool: "forks",
    testTimeout: 120_000,
    hookTimeout: 180_000,
    reporters: ["default"],
  },
});
