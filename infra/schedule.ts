// One EventBridge Scheduler schedule per target, all invoking the launcher with the target as input.
import { lambdaDefaults, plan, rdsInstanceArn } from "./config";
import { runnerEnvironment, startRunnerPermissions } from "./runner";

export const launcher = new sst.aws.Function("Launcher", {
  ...lambdaDefaults,
  handler: "packages/functions/src/launcher.handler",
  timeout: "1 minute",
  memory: "256 MB",
  environment: runnerEnvironment,
  permissions: [
    ...startRunnerPermissions,
    // the status check before a launch, on the configured instances only
    ...(plan.rdsInstances.length ? [{ actions: ["rds:DescribeDBInstances"], resources: plan.rdsInstances.map(rdsInstanceArn) }] : []),
  ],
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
