// One EventBridge Scheduler schedule per target, each sending its fire time to the launch queue; the launcher takes
// launches from the queue a few at a time.
import { LAUNCH_DELIVERIES } from "@lifeboat/core";
import type { Alarms } from "./alarms";
import { lambdaDefaults, maker, rdsInstanceArn, type Context } from "./context";
import type { Runner } from "./runner";

/** Launcher invocations reading the queue at once: ECS takes about 20 task launches a second, a burst of 100. */
export const LAUNCH_CONCURRENCY = 2;

export function schedule(
  ctx: Context,
  { task, runnerEnvironment, runnerTasks, startRunnerPermissions }: Runner,
  { launchDeadLetters, launchFailures, scheduleDeadLetters }: Alarms,
) {
  const { plan } = ctx;
  const make = maker(ctx);

  /**
   * The launch queue. 200 targets due in the same minute are 200 messages, taken two invocations at a time (each
   * launch a few ECS calls, backed off when throttled) instead of 200 launchers calling RunTask at once. A message
   * whose launch may succeed later (ECS throttling or capacity, after the in-call retries) becomes visible again after
   * 6 minutes (six times the launcher's timeout, as AWS advises for SQS event sources); after 3 deliveries it goes to
   * the LaunchDeadLetters queue, which is alarmed.
   */
  const launches = make(sst.aws.Queue, "Launches", {
    visibilityTimeout: "6 minutes",
    dlq: { queue: launchDeadLetters.arn, retry: LAUNCH_DELIVERIES },
    transform: { queue: (args: aws.sqs.QueueArgs) => void (args.messageRetentionSeconds = 24 * 3600) },
  });

  const launcher = make(sst.aws.Function, "Launcher", {
    ...lambdaDefaults(ctx, "launcher"),
    timeout: "1 minute",
    memory: "256 MB",
    environment: runnerEnvironment,
    permissions: [
      ...startRunnerPermissions,
      // its asynchronous failure destination (direct invocations)
      { actions: ["sqs:SendMessage"], resources: [launchFailures.arn] },
      // Lambda's poller reads the launch queue with the function's role
      { actions: ["sqs:ReceiveMessage", "sqs:DeleteMessage", "sqs:GetQueueAttributes", "sqs:ChangeMessageVisibility"], resources: [launches.arn] },
      // whether a run of the target is still going (ListTasks cannot be narrowed to a resource: the cluster condition does it)
      { actions: ["ecs:ListTasks"], resources: ["*"], conditions: [{ test: "ArnEquals", variable: "ecs:cluster", values: [task.cluster] }] },
      { actions: ["ecs:DescribeTasks"], resources: [runnerTasks], conditions: [{ test: "ArnEquals", variable: "ecs:cluster", values: [task.cluster] }] },
      // the status check before a launch, on the configured instances only
      ...(plan.rdsInstances.length ? [{ actions: ["rds:DescribeDBInstances"], resources: plan.rdsInstances.map((r) => rdsInstanceArn(ctx, r)) }] : []),
    ],
  });

  // a direct asynchronous invocation that still fails after Lambda's two retries lands in the failure queue (alarmed)
  make(aws.lambda.FunctionEventInvokeConfig, "LauncherFailureDestination", {
    functionName: launcher.name,
    maximumRetryAttempts: 2,
    destinationConfig: { onFailure: { destination: launchFailures.arn } },
  });

  make(aws.lambda.EventSourceMapping, "LaunchesToLauncher", {
    eventSourceArn: launches.arn,
    functionName: launcher.arn,
    batchSize: 1,
    scalingConfig: { maximumConcurrency: LAUNCH_CONCURRENCY },
    functionResponseTypes: ["ReportBatchItemFailures"],
  });

  /** The schedules' role: send to the launch queue, and what could not be delivered to the dead-letter queue. */
  const schedulerRole = plan.schedules.length
    ? make(aws.iam.Role, "SchedulerRole", {
        assumeRolePolicy: JSON.stringify({
          Version: "2012-10-17",
          Statement: [{ Effect: "Allow", Principal: { Service: "scheduler.amazonaws.com" }, Action: "sts:AssumeRole" }],
        }),
        inlinePolicies: [
          {
            name: "send-launches",
            policy: $jsonStringify({
              Version: "2012-10-17",
              Statement: [
                { Effect: "Allow", Action: ["sqs:SendMessage"], Resource: [launches.arn] },
                { Effect: "Allow", Action: ["sqs:SendMessage"], Resource: [scheduleDeadLetters.arn] },
              ],
            }),
          },
        ],
      })
    : undefined;

  for (const s of plan.schedules) {
    make(aws.scheduler.Schedule, `${s.component}Schedule`, {
      scheduleExpression: s.expression,
      scheduleExpressionTimezone: s.timezone,
      flexibleTimeWindow: { mode: "OFF" },
      state: "ENABLED",
      target: {
        arn: launches.arn,
        roleArn: schedulerRole!.arn,
        input: JSON.stringify(s.event),
        // a delivery that fails after its retries is kept and alarmed, not lost
        retryPolicy: { maximumRetryAttempts: 2 },
        deadLetterConfig: { arn: scheduleDeadLetters.arn },
      },
    });
  }

  return { launches, launcher };
}
