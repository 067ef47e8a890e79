// The topic every result event goes to, with the Slack and webhook subscribers and e-mail subscriptions from the config.
import type { NotificationFilter } from "@lifeboat/core";
import { lambdaDefaults, maker, parameterArn, type Context } from "./context";
import { dashboardUrl } from "./dashboard";

export function notify(ctx: Context) {
  const { plan } = ctx;
  const make = maker(ctx);
  const topic = make(sst.aws.SnsTopic, "Events", {});

  /**
   * Alerts about the notifications themselves (a subscriber that fails): e-mail only, with no Lambda in between, so
   * that a broken Slack or webhook subscriber is still reported when it is the only other channel. Every
   * aws.email address is subscribed, whatever its `on`.
   */
  const alerts = make(sst.aws.SnsTopic, "Alerts", {});
  plan.email.forEach((e, i) => {
    make(aws.sns.TopicSubscription, `AlertsEmail${i + 1}`, { topic: alerts.arn, protocol: "email", endpoint: e.address });
  });

  /** Deliveries to Slack or the webhook that failed after Lambda's retries (the subscribers' failure destination). */
  const notificationFailures = make(sst.aws.Queue, "NotificationFailures", {
    transform: { queue: (args: aws.sqs.QueueArgs) => void (args.messageRetentionSeconds = 14 * 24 * 3600) },
  });

  /** The subscriber functions, for their alarms. */
  const subscribers: Array<{ name: "Slack" | "Webhook"; functionName: $util.Output<string> }> = [];

  /**
   * A subscriber Lambda that delivers to a URL kept in SSM (read by it alone). Subscriptions filter on the message
   * body: Lifeboat's events by status, and CloudWatch alarms (no message attributes) by state.
   */
  function subscriber(name: "Slack" | "Webhook", parameter: string, environment: Record<string, $util.Input<string>>, filterPolicy: NotificationFilter) {
    // SNS subscriptions are named by SST after the topic and the subscriber's name
    const subscription = topic.subscribe(
      name,
      {
        ...lambdaDefaults(ctx, name === "Slack" ? "slack" : "webhook"),
        timeout: "1 minute",
        memory: "256 MB",
        environment,
        permissions: [
          { actions: ["ssm:GetParameter"], resources: [parameterArn(ctx, parameter)] },
          // its asynchronous failure destination
          { actions: ["sqs:SendMessage"], resources: [notificationFailures.arn] },
        ],
      },
      { filter: filterPolicy, transform: { subscription: (args) => void (args.filterPolicyScope = "MessageBody") } },
    );
    const functionName = subscription.nodes.function.apply((f) => f.name);
    // SNS invokes the subscriber asynchronously: a delivery that still fails after Lambda's two retries (Slack down,
    // the parameter missing) is kept in the failure queue, which is alarmed (alarms.ts)
    make(aws.lambda.FunctionEventInvokeConfig, `${name}FailureDestination`, {
      functionName,
      maximumRetryAttempts: 2,
      destinationConfig: { onFailure: { destination: notificationFailures.arn } },
    });
    subscribers.push({ name, functionName });
  }

  if (plan.slack) {
    const { webhookParameter, on, filterPolicy } = plan.slack;
    subscriber("Slack", webhookParameter, { LIFEBOAT_SLACK_PARAMETER: webhookParameter, LIFEBOAT_SLACK_ON: JSON.stringify(on), LIFEBOAT_DASHBOARD_URL: dashboardUrl(ctx) }, filterPolicy);
  }
  if (plan.webhook) {
    const { urlParameter, on, filterPolicy } = plan.webhook;
    subscriber("Webhook", urlParameter, { LIFEBOAT_WEBHOOK_PARAMETER: urlParameter, LIFEBOAT_WEBHOOK_ON: JSON.stringify(on) }, filterPolicy);
  }

  plan.email.forEach((e, i) => {
    make(aws.sns.TopicSubscription, `Email${i + 1}`, {
      topic: topic.arn,
      protocol: "email",
      endpoint: e.address,
      filterPolicy: JSON.stringify(e.filterPolicy),
      filterPolicyScope: "MessageBody",
    });
  });

  return { topic, alerts, notificationFailures, subscribers };
}
export type Notify = ReturnType<typeof notify>;
