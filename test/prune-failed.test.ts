// A retention that cannot be applied after a backup that succeeded is told, not only logged: backup.prune_failed
// (status failed), from the schedule daemon here (the AWS runner's is in functions.test.ts), with its Slack message.
// The fault: the copy's S3 server is down while `lifeboat schedule --once` runs.
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { renderSlackMessage } from "@lifeboat/core";
import { startEmbeddedS3, type EmbeddedS3 } from "@lifeboat/cli";
import { cli, createDatabase, pg, startEventRecorder, tempDir, unique } from "./support/helpers.js";

let hook: Awaited<ReturnType<typeof startEventRecorder>>;
let offsite: EmbeddedS3 | undefined;

beforeAll(async () => {
  hook = await startEventRecorder();
});
afterAll(async () => {
  await offsite?.stop().catch(() => {});
  await hook?.close();
});

describe("backup.prune_failed", () => {
  it("schedule --once with a copy whose store is down: the backup counts (exit 0), the copy's failure and its retention's are both told", async () => {
    const dir = tempDir("lifeboat-prune-failed-");
    const db = unique("prunefail");
    await createDatabase(db, "create table t as select g from generate_series(1, 100) g;");
    offsite = await startEmbeddedS3({ bucket: "offsite" });
    const file = join(dir, "lifeboat.config.ts");
    writeFileSync(
      file,
      `export default ${JSON.stringify({
        storage: {
          directory: join(dir, "store"),
          copies: [{ name: "offsite", s3: { bucket: "offsite", endpoint: offsite.endpoint, credentials: { accessKeyId: { env: "K" }, secretAccessKey: { env: "S" } } }, retention: { keepLast: 2 } }],
        },
        targets: { app: { database: { host: pg().host, port: pg().port, database: db, user: pg().user, password: { env: "PW" } }, schedule: "rate(1 day)", retention: { keepLast: 3 }, retries: { attempts: 1 } } },
        notifications: { webhook: { url: { env: "HOOK_URL" }, on: ["failed"] } },
      })};`,
    );
    const env = { PW: pg().password, HOOK_URL: hook.url, K: offsite.accessKeyId, S: offsite.secretAccessKey };
    await offsite.stop();
    offsite = undefined;
    const res = await cli(["schedule", "--once", "--config", file], { env });
    expect(res.code, res.stderr).toBe(0);
    expect(hook.events.map((e) => e.type).sort()).toEqual(["backup.copy_failed", "backup.prune_failed"]);
    const failed = hook.events.find((e) => e.type === "backup.prune_failed")!;
    expect(failed).toMatchObject({ status: "failed", target: "app", trigger: "schedule", prune: { store: "offsite", repair: "lifeboat prune app" } });
    expect(res.stderr).toContain("retention could not be applied in copy offsite");
    // what Slack shows of it
    expect(renderSlackMessage(failed).text).toBe(":warning: Retention of *app* could not be applied in copy *offsite*: the backup succeeded, old backups stay until a prune works");
  }, 120_000);
});
