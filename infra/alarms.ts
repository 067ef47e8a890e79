// What fails before any Lifeboat code runs still reaches a person: schedule deliveries that fail land in a dead-letter
// queue, launcher invocations that fail after Lambda's retries land in a failure queue, and alarms on both (and on
// the freshness check) publish to the events topic, where Slack, the webhook and e-mail subscribers see them.
import { topic } from "./notify";

const queue = (name: string) => new sst.aws.Queue(name, { transform: { queue: (args) => void (args.messageRetentionSeconds = 14 * 24 * 3600) } });

/** Schedules whose delivery to the launcher failed (EventBridge Scheduler's dead-letter queue). */
export const scheduleDeadLetters = queue("ScheduleDeadLetters");
/** Launcher invocations that failed after Lambda's retries (its asynchronous failure destination). */
export const launchFailures = queue("LaunchFailures");

/** An alarm that tells the topic when it fires and when it is over (above its threshold, unless told otherwise). */
type Metric = Omit<aws.cloudwatch.MetricAlarmArgs, "alarmActions" | "okActions" | "alarmDescription" | "evaluationPeriods" | "comparisonOperator"> & {
  comparisonOperator?: aws.cloudwatch.MetricAlarmArgs["comparisonOperator"];
};
function alarm(name: string, description: string, { comparisonOperator = "GreaterThanThreshold", ...metric }: Metric) {
  return new aws.cloudwatch.MetricAlarm(name, {
    alarmDescription: description,
    comparisonOperator,
    evaluationPeriods: 1,
    alarmActions: [topic.arn],
    okActions: [topic.arn],
    ...metric,
  });
}

const queueHasMessages = (q: sst.aws.Queue) => ({
  namespace: "AWS/SQS",
  metricName: "ApproximateNumberOfMessagesVisible",
  dimensions: { QueueName: q.nodes.queue.name },
  statistic: "Maximum",
  period: 300,
  threshold: 0,
  treatMissingData: "notBreaching",
});

alarm("ScheduleDeliveryFailedAlarm", "Lifeboat: a schedule could not invoke the launcher (see the ScheduleDeadLetters queue)", queueHasMessages(scheduleDeadLetters));
alarm("LaunchFailedAlarm", "Lifeboat: the launcher failed after its retries (see the LaunchFailures queue)", queueHasMessages(launchFailures));

/** An alarm when a function reports errors, and (when it runs on a schedule) when it stops running at all. */
export function alarmOnFunction(name: string, fn: sst.aws.Function, everyMinutes?: number) {
  alarm(`${name}ErrorsAlarm`, `Lifeboat: the ${name} function failed`, {
    namespace: "AWS/Lambda",
    metricName: "Errors",
    dimensions: { FunctionName: fn.name },
    statistic: "Sum",
    period: 900,
    threshold: 0,
    treatMissingData: "notBreaching",
  });
  if (everyMinutes === undefined) return;
  alarm(`${name}NotRunningAlarm`, `Lifeboat: the ${name} function has not run for ${3 * everyMinutes} minutes`, {
    comparisonOperator: "LessThanThreshold",
    namespace: "AWS/Lambda",
    metricName: "Invocations",
    dimensions: { FunctionName: fn.name },
    statistic: "Sum",
    period: 3 * everyMinutes * 60,
    threshold: 1,
    treatMissingData: "breaching",
  });
}
