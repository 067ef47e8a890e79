// One EventBridge Scheduler schedule per target, all invoking the launcher with the target as input.
import { launchFailures, scheduleDeadLetters } from "./alarms";
import { lambdaDefaults, plan, rdsInstanceArn } from "./config";
import { runner, runnerEnvironment, runnerTasks, startRunnerPermissions } from "./runner";

export const launcher = new sst.aws.Function("Launcher", {
  ...lambdaDefaults,
  handler: "packages/functions/src/launcher.handler",
  timeout: "1 minute",
  memory: "256 MB",
  environment: runnerEnvironment,
  permissions: [
    ...startRunnerPermissions,
    // its asynchronous failure destination
    { actions: ["sqs:SendMessage"], resources: [launchFailures.arn] },
    // whether a run of the target is still going (ListTasks cannot be narrowed to a resource: the cluster condition does it)
    { actions: ["ecs:ListTasks"], resources: ["*"], conditions: [{ test: "ArnEquals", variable: "ecs:cluster", values: [runner.cluster] }] },
    { actions: ["ecs:DescribeTasks"], resources: [runnerTasks], conditions: [{ test: "ArnEquals", variable: "ecs:cluster", values: [runner.cluster] }] },
    // the status check before a launch, on the configured instances only
    ...(plan.rdsInstances.length ? [{ actions: ["rds:DescribeDBInstances"], resources: plan.rdsInstances.map(rdsInstanceArn) }] : []),
  ],
});

// an asynchronous invocation that still fails after Lambda's two retries lands in the failure queue (alarmed)
new aws.lambda.FunctionEventInvokeConfig("LauncherFailureDestination", {
  functionName: launcher.name,
  maximumRetryAttempts: 2,
  destinationConfig: { onFailure: { destination: launchFailures.arn } },
});

for (const s of plan.schedules) {
  new sst.aws.CronV2(s.component, {
    schedule: s.expression as `cron(${string})`,
    timezone: s.timezone,
    function: launcher,
    event: s.event,
    retries: 2,
    // a delivery that fails after its retries is kept and alarmed, not lost
    dlq: scheduleDeadLetters.arn,
  });
}
