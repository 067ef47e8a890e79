// One EventBridge Scheduler schedule per target, all invoking the launcher with the target as input.
import { plan } from "./config";
import { runnerEnvironment, startRunnerPermissions } from "./runner";

export const launcher = new sst.aws.Function("Launcher", {
  handler: "packages/functions/src/launcher.handler",
  runtime: "nodejs22.x",
  architecture: "arm64",
  timeout: "1 minute",
  memory: "256 MB",
  environment: runnerEnvironment,
  permissions: [...startRunnerPermissions, { actions: ["rds:DescribeDBInstances"], resources: ["*"] }],
});

for (const s of plan.schedules) {
  new sst.aws.CronV2(s.component, {
    schedule: s.expression as `cron(${string})`,
    timezone: s.timezone,
    function: launcher,
    event: s.event,
    retries: 2,
  });
}
