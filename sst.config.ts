/// <reference path="./.sst/platform/config.d.ts" />

// Lifeboat on AWS: EventBridge schedules -> launcher Lambda -> Fargate runner -> S3, events on SNS -> Slack.
// Everything is derived from lifeboat.config.ts; see docs/deploy.md.
export default $config({
  async app(input) {
    // One region for the bucket, the runner and the config: the stack deploys where storage.s3.region says (the
    // config is validated, with every problem listed, when run() loads it).
    const { default: raw } = await import("./lifeboat.config");
    const region = raw.storage?.s3?.region;
    return {
      name: "lifeboat",
      home: "aws",
      ...(region ? { providers: { aws: { region: region as aws.Region } } } : {}),
      // a production stack keeps its bucket (and its backups) even when the stack is removed
      removal: input?.stage === "production" ? "retain" : "remove",
      protect: input?.stage === "production",
    };
  },
  async run() {
    const { bucket } = await import("./infra/storage");
    const { topic } = await import("./infra/notify");
    const { cluster } = await import("./infra/runner");
    const { launcher } = await import("./infra/schedule");
    await import("./infra/watch");
    return { bucket: bucket.name, topic: topic.arn, launcher: launcher.name, cluster: cluster.nodes.cluster.name };
  },
});
