import type { TestProject } from "vitest/node";
import { startEphemeralPostgres } from "@lifeboat/runner";
import { startEmbeddedS3 } from "@lifeboat/cli";

/**
 * One real PostgreSQL cluster (initdb/pg_ctl on a free port, as an unprivileged user when run as root) and one real
 * S3 API server (s3rver on loopback) for the whole run. Each test file creates its own databases and key prefixes.
 */
declare module "vitest" {
  export interface ProvidedContext {
    pg: { host: string; port: number; user: string; password: string; version: string };
    s3: { endpoint: string; bucket: string; accessKeyId: string; secretAccessKey: string; region: string; directory: string };
  }
}

export default async function setup(project: TestProject) {
  process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
  const pg = await startEphemeralPostgres();
  const s3 = await startEmbeddedS3({ bucket: "lifeboat-test" });
  project.provide("pg", { host: pg.host, port: pg.port, user: pg.user, password: pg.password, version: pg.version });
  project.provide("s3", { endpoint: s3.endpoint, bucket: s3.bucket, accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey, region: s3.region, directory: s3.directory });
  return async () => {
    await s3.stop();
    await pg.stop();
  };
}
