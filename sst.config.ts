/// <reference path="./.sst/platform/config.d.ts" />

// Lifeboat on AWS from this repository: lifeboat.config.ts, deployed by the Backups component (infra/backups.ts, the
// same component the npm package ships as `lifeboat/sst`). See docs/deploy.md.
export default $config({
  async app(input) {
    // One region for the bucket, the runner and the config: the stack deploys where storage.s3.region says (the
    // config is validated, with every problem listed, when run() makes the component).
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
    const { default: config } = await import("./lifeboat.config");
    const { Backups } = await import("./infra/backups");
    // adoptTopLevel: this app's resources were named without the component's name before the component existed
    const backups = new Backups("Lifeboat", { ...config, adoptTopLevel: true });
    return { bucket: backups.bucket.name, topic: backups.topic.arn, launcher: backups.launcher.name, cluster: backups.cluster.nodes.cluster.name, dashboard: backups.dashboardUrl, runnerRoles: backups.runnerRoles };
  },
});
