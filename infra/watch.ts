// Runner tasks that stop without reporting (killed, out of memory, never started) become failures, and retries.
import { LATEST_FILE, MISSED_FOLDER } from "@lifeboat/core";
import { alarmOnFunction, scheduleDeadLetters } from "./alarms";
import { bucketKeyPermissions, lambdaDefaults, plan } from "./config";
import { topic } from "./notify";
import { runnerEnvironment, startRunnerPermissions, cluster } from "./runner";
import { bucket } from "./storage";

export const watcher = new sst.aws.Function("Watcher", {
  ...lambdaDefaults,
  handler: "packages/functions/src/watcher.handler",
  timeout: "1 minute",
  memory: "256 MB",
  environment: runnerEnvironment,
  permissions: startRunnerPermissions,
});

// a watcher that fails loses the report of a runner that died: its errors are alarmed
alarmOnFunction("Watcher", watcher);

const stopped = new aws.cloudwatch.EventRule("RunnerStopped", {
  description: "Lifeboat runner tasks that stopped",
  eventPattern: $jsonStringify({
    source: ["aws.ecs"],
    "detail-type": ["ECS Task State Change"],
    detail: { clusterArn: [cluster.nodes.cluster.arn], lastStatus: ["STOPPED"] },
  }),
});

new aws.cloudwatch.EventTarget("RunnerStoppedTarget", { rule: stopped.name, arn: watcher.arn });

new aws.lambda.Permission("RunnerStoppedInvoke", {
  action: "lambda:InvokeFunction",
  function: watcher.name,
  principal: "events.amazonaws.com",
  sourceArn: stopped.arn,
});

// The freshness check: every 15 minutes, each scheduled target's newest backup against its schedule; a fire time
// that produced no backup becomes backup.missed, once (markers under <target>/.lifeboat-missed/).
const scheduled = plan.schedules.some((s) => !s.event.mode);
if (scheduled) {
  const under = (path: string) => (plan.prefix ? $interpolate`${bucket.arn}/${plan.prefix}/${path}` : $interpolate`${bucket.arn}/${path}`);
  const freshness = new sst.aws.Function("Freshness", {
    ...lambdaDefaults,
    handler: "packages/functions/src/freshness.handler",
    timeout: "5 minutes",
    memory: "256 MB",
    environment: { LIFEBOAT_BUCKET: bucket.name, LIFEBOAT_TOPIC_ARN: topic.arn },
    permissions: [
      {
        actions: ["s3:ListBucket"],
        resources: [bucket.arn],
        ...(plan.prefix ? { conditions: [{ test: "StringLike", variable: "s3:prefix", values: [`${plan.prefix}/*`] }] } : {}),
      },
      // each target's pointer to its newest backup (and manifests, for targets backed up before pointers existed)
      { actions: ["s3:GetObject"], resources: [under(`*/${LATEST_FILE}`), under("*.manifest.json"), under(`*/${MISSED_FOLDER}/*`)] },
      { actions: ["s3:PutObject"], resources: [under(`*/${MISSED_FOLDER}/*`)] },
      { actions: ["sns:Publish"], resources: [topic.arn] },
      // the manifests it reads and the markers it writes are encrypted with the bucket's key, when it has one
      ...bucketKeyPermissions(),
    ],
  });
  new sst.aws.CronV2("FreshnessCheck", { schedule: "rate(15 minutes)", function: freshness, retries: 0, dlq: scheduleDeadLetters.arn });
  // the check that reports missed backups is itself watched: its errors, and its silence
  alarmOnFunction("Freshness", freshness, 15);
}
