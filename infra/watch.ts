// Runner tasks that stop without reporting (killed, out of memory, never started) become failures, and retries; and
// the freshness check, which turns fire times that produced no backup into backup.missed.
import { LATEST_FILE, MISSED_FOLDER } from "@lifeboat/core";
import type { Alarms } from "./alarms";
import { bucketKeyPermissions, lambdaDefaults, maker, type Context } from "./context";
import type { Notify } from "./notify";
import { readConfigPermissions, type Runner } from "./runner";

export function watch(
  ctx: Context,
  { bucket, configKey }: { bucket: sst.aws.Bucket; configKey: string },
  { topic }: Notify,
  { cluster, runnerEnvironment, startRunnerPermissions }: Runner,
  { alarmOnFunction, scheduleDeadLetters }: Alarms,
) {
  const { plan } = ctx;
  const make = maker(ctx);

  const watcher = make(sst.aws.Function, "Watcher", {
    ...lambdaDefaults(ctx, "watcher"),
    timeout: "1 minute",
    memory: "256 MB",
    environment: runnerEnvironment,
    permissions: startRunnerPermissions,
  });

  // a watcher that fails loses the report of a runner that died: its errors are alarmed
  alarmOnFunction("Watcher", watcher);

  const stopped = make(aws.cloudwatch.EventRule, "RunnerStopped", {
    description: "Lifeboat runner tasks that stopped",
    eventPattern: $jsonStringify({
      source: ["aws.ecs"],
      "detail-type": ["ECS Task State Change"],
      detail: { clusterArn: [cluster.nodes.cluster.arn], lastStatus: ["STOPPED"] },
    }),
  });

  make(aws.cloudwatch.EventTarget, "RunnerStoppedTarget", { rule: stopped.name, arn: watcher.arn });

  make(aws.lambda.Permission, "RunnerStoppedInvoke", {
    action: "lambda:InvokeFunction",
    function: watcher.name,
    principal: "events.amazonaws.com",
    sourceArn: stopped.arn,
  });

  // The freshness check: every 15 minutes, each scheduled target's newest backup against its schedule; a fire time
  // that produced no backup becomes backup.missed, once (markers under <target>/.lifeboat-missed/).
  const scheduled = plan.schedules.some((s) => !s.event.mode);
  if (!scheduled) return { watcher };
  const under = (path: string) => (plan.prefix ? $interpolate`${bucket.arn}/${plan.prefix}/${path}` : $interpolate`${bucket.arn}/${path}`);
  const freshness = make(sst.aws.Function, "Freshness", {
    ...lambdaDefaults(ctx, "freshness"),
    timeout: "5 minutes",
    memory: "256 MB",
    environment: {
      LIFEBOAT_BUCKET: bucket.name,
      LIFEBOAT_TOPIC_ARN: topic.arn,
      LIFEBOAT_CONFIG_KEY: configKey,
      LIFEBOAT_CONFIG_SHA256: runnerEnvironment.LIFEBOAT_CONFIG_SHA256,
    },
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
      // the config, and (the manifests it reads and the markers it writes are encrypted with the bucket's key, when
      // it has one) the key through S3
      ...readConfigPermissions(ctx, bucket, configKey, { key: false }),
      ...bucketKeyPermissions(ctx),
    ],
  });
  make(sst.aws.CronV2, "FreshnessCheck", { schedule: "rate(15 minutes)", function: freshness, retries: 0, dlq: scheduleDeadLetters.arn });
  // the check that reports missed backups is itself watched: its errors, and its silence
  alarmOnFunction("Freshness", freshness, 15);
  return { watcher, freshness };
}
