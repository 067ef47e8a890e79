import { describe, expect, it, vi } from "vitest";
import { synthesize } from "./support/sst-synth.js";

/** A config that cannot work in the cloud stops the deployment with Lifeboat's own list, before any resource. */
vi.mock("../lifeboat.config", () => ({
  default: {
    storage: { directory: "/var/backups" },
    targets: { app: { database: { url: { env: "DATABASE_URL" } }, schedule: "cron(0 2 * * ? *)" } },
  },
}));

describe("a config that cannot be deployed", () => {
  it("fails with every problem listed, as a VisibleError (no stack trace for the user)", async () => {
    const err = await synthesize("production").catch((e: Error) => e);
    expect(err).toBeInstanceOf(Error);
    expect((err as Error).constructor.name).toBe("VisibleError");
    expect((err as Error).message).toBe(
      [
        "lifeboat.config.ts cannot be deployed (2 problems):",
        '  - storage: the AWS deployment stores backups in S3 (hint: use storage: { s3: { bucket: "a-globally-unique-name", prefix: "lifeboat" } })',
        '  - targets.app.database.url: reads the environment variable DATABASE_URL, which a Fargate task does not have (hint: store it in SSM: aws ssm put-parameter --type SecureString --name /lifeboat/app/... and use { ssm: "/lifeboat/app/..." })',
      ].join("\n"),
    );
  });
});
