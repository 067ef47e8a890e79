// What fails before any Lifeboat code runs still reaches a person: schedule deliveries that fail land in a dead-letter
// queue, launcher invocations that fail after Lambda's retries land in a failure queue, and alarms on both (and on
// the freshness check) publish to the events topic, where Slack, the webhook and e-mail subscribers see them. Alarms
// about the notifications themselves (a subscriber failing) also go to the e-mail-only alerts topic.
import { maker, type Context } from "./context";
import type { Notify } from "./notify";

/** An alarm that tells the topic when it fires and when it is over (above its threshold, unless told otherwise). */
type Metric = Omit<aws.cloudwatch.MetricAlarmArgs, "alarmActions" | "okActions" | "alarmDescription" | "evaluationPeriods" | "comparisonOperator"> & {
  comparisonOperator?: aws.cloudwatch.MetricAlarmArgs["comparisonOperator"];
};

export function alarms(ctx: Context, { topic, alerts, notificationFailures }: Notify) {
  const make = maker(ctx);
  const queue = (name: string) =>
    make(sst.aws.Queue, name, { transform: { queue: (args: aws.sqs.QueueArgs) => void (args.messageRetentionSeconds = 14 * 24 * 3600) } });

  /** Schedules whose delivery to the launcher failed (EventBridge Scheduler's dead-letter queue). */
  const scheduleDeadLetters = queue("ScheduleDeadLetters");
  /** Launcher invocations that failed after Lambda's retries (its asynchronous failure destination). */
  const launchFailures = queue("LaunchFailures");
  /** Launches the queue gave up on after its deliveries (the launcher could not read them, or crashed on them). */
  const launchDeadLetters = queue("LaunchDeadLetters");

  /** Every alarm made, for the dashboard's alarm widget. */
  const made: aws.cloudwatch.MetricAlarm[] = [];
  function alarm(name: string, description: string, { comparisonOperator = "GreaterThanThreshold", ...metric }: Metric, opts: { alsoByEmail?: boolean } = {}) {
    const actions = opts.alsoByEmail ? [topic.arn, alerts.arn] : [topic.arn];
    const a = make(aws.cloudwatch.MetricAlarm, name, {
      // a stable, readable name (lifeboat-production-LaunchFailed: the app, the stage), not a generated one
      name: `${$app.name}-${$app.stage}-${name.replace(/Alarm$/, "")}`,
      alarmDescription: description,
      comparisonOperator,
      evaluationPeriods: 1,
      alarmActions: actions,
      okActions: actions,
      ...metric,
    });
    made.push(a);
    return a;
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

  alarm(
    "ScheduleDeliveryFailedAlarm",
    "Lifeboat: a schedule could not invoke the launcher (see the ScheduleDeadLetters queue)",
    queueHasMessages(scheduleDeadLetters),
  );
  alarm("LaunchFailedAlarm", "Lifeboat: the launcher failed after its retries (see the LaunchFailures queue)", queueHasMessages(launchFailures));
  alarm(
    "LaunchDeadLettersAlarm",
    "Lifeboat: a launch was given up after its deliveries (see the LaunchDeadLetters queue)",
    queueHasMessages(launchDeadLetters),
  );

  /** An alarm when a function reports errors, and (when it runs on a schedule) when it stops running at all. */
  function alarmOnFunction(name: string, fn: { name: $util.Input<string> }, everyMinutes?: number, opts: { alsoByEmail?: boolean } = {}) {
    alarm(
      `${name}ErrorsAlarm`,
      `Lifeboat: the ${name} function failed`,
      {
        namespace: "AWS/Lambda",
        metricName: "Errors",
        dimensions: { FunctionName: fn.name },
        statistic: "Sum",
        period: 900,
        threshold: 0,
        treatMissingData: "notBreaching",
      },
      opts,
    );
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

  /**
   * A notification that fails is itself reported: each subscriber's errors, and deliveries given up after Lambda's
   * retries, alarm on the events topic (the other channels) and by e-mail (no Lambda in between). Called once the
   * subscribers exist.
   */
  function alarmOnNotifications(subscribers: Notify["subscribers"]) {
    for (const { name, functionName } of subscribers) alarmOnFunction(`${name}Subscriber`, { name: functionName }, undefined, { alsoByEmail: true });
    if (subscribers.length) {
      alarm(
        "NotificationFailedAlarm",
        "Lifeboat: a notification could not be delivered after retries (see the NotificationFailures queue)",
        queueHasMessages(notificationFailures),
        { alsoByEmail: true },
      );
    }
  }

  return { scheduleDeadLetters, launchFailures, launchDeadLetters, alarmOnFunction, alarmOnNotifications, made };
}
export type Alarms = ReturnType<typeof alarms>;
