// Runner tasks that stop without reporting (killed, out of memory, never started) become failures, and retries.
import { lambdaDefaults } from "./config";
import { runnerEnvironment, startRunnerPermissions, cluster } from "./runner";

export const watcher = new sst.aws.Function("Watcher", {
  ...lambdaDefaults,
  handler: "packages/functions/src/watcher.handler",
  timeout: "1 minute",
  memory: "256 MB",
  environment: runnerEnvironment,
  permissions: startRunnerPermissions,
});

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
