// The topic every result event goes to, with the Slack and webhook subscribers and e-mail subscriptions from the config.
import type { NotificationFilter } from "@lifeboat/core";
import { lambdaDefaults, parameterArn, plan } from "./config";

export const topic = new sst.aws.SnsTopic("Events");

/**
 * Alerts about the notifications themselves (a subscriber that fails): e-mail only, with no Lambda in between, so
 * that a broken Slack or webhook subscriber is still reported when it is the only other channel. Every
 * aws.email address is subscribed, whatever its `on`.
 */
export const alerts = new sst.aws.SnsTopic("Alerts");
plan.email.forEach((e, i) => {
  new aws.sns.TopicSubscription(`AlertsEmail${i + 1}`, { topic: alerts.arn, protocol: "email", endpoint: e.address });
});

/** Deliveries to Slack or the webhook that failed after Lambda's retries (the subscribers' failure destination). */
export const notificationFailures = new sst.aws.Queue("NotificationFailures", {
  transform: { queue: (args) => void (args.messageRetentionSeconds = 14 * 24 * 3600) },
});

/** The subscriber functions, for their alarms. */
export const subscribers: Array<{ name: "Slack" | "Webhook"; functionName: $util.Output<string> }> = [];

/**
 * A subscriber Lambda that delivers to a URL kept in SSM (read by it alone). Subscriptions filter on the message
 * body: Lifeboat's events by status, and CloudWatch alarms (no message attributes) by state.
 */
function subscriber(name: "Slack" | "Webhook", handler: string, parameter: string, environment: Record<string, string>, filterPolicy: NotificationFilter) {
  const subscription = topic.subscribe(
    name,
    {
      ...lambdaDefaults,
      handler,
      timeout: "1 minute",
      memory: "256 MB",
      environment,
      permissions: [
        { actions: ["ssm:GetParameter"], resources: [parameterArn(parameter)] },
        // its asynchronous failure destination
        { actions: ["sqs:SendMessage"], resources: [notificationFailures.arn] },
      ],
    },
    { filter: filterPolicy, transform: { subscription: (args) => void (args.filterPolicyScope = "MessageBody") } },
  );
  const functionName = subscription.nodes.function.apply((f) => f.name);
  // SNS invokes the subscriber asynchronously: a delivery that still fails after Lambda's two retries (Slack down,
  // the parameter missing) is kept in the failure queue, which is alarmed (infra/alarms.ts)
  new aws.lambda.FunctionEventInvokeConfig(`${name}FailureDestination`, {
    functionName,
    maximumRetryAttempts: 2,
    destinationConfig: { onFailure: { destination: notificationFailures.arn } },
  });
  subscribers.push({ name, functionName });
}

if (plan.slack) {
  const { webhookParameter, on, filterPolicy } = plan.slack;
  subscriber("Slack", "packages/functions/src/slack.handler", webhookParameter, { LIFEBOAT_SLACK_PARAMETER: webhookParameter, LIFEBOAT_SLACK_ON: JSON.stringify(on) }, filterPolicy);
}
if (plan.webhook) {
  const { urlParameter, on, filterPolicy } = plan.webhook;
  subscriber("Webhook", "packages/functions/src/webhook.handler", urlParameter, { LIFEBOAT_WEBHOOK_PARAMETER: urlParameter, LIFEBOAT_WEBHOOK_ON: JSON.stringify(on) }, filterPolicy);
}

plan.email.forEach((e, i) => {
  new aws.sns.TopicSubscription(`Email${i + 1}`, {
    topic: topic.arn,
    protocol: "email",
    endpoint: e.address,
    filterPolicy: JSON.stringify(e.filterPolicy),
    filterPolicyScope: "MessageBody",
  });
});
