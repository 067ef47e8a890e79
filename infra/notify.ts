// The topic every result event goes to, with the Slack and webhook subscribers and e-mail subscriptions from the config.
import type { NotificationFilter } from "@lifeboat/core";
import { lambdaDefaults, parameterArn, plan } from "./config";

export const topic = new sst.aws.SnsTopic("Events");

/**
 * A subscriber Lambda that delivers to a URL kept in SSM (read by it alone). Subscriptions filter on the message
 * body: Lifeboat's events by status, and CloudWatch alarms (no message attributes) by state.
 */
function subscriber(name: "Slack" | "Webhook", handler: string, parameter: string, environment: Record<string, string>, filterPolicy: NotificationFilter) {
  topic.subscribe(
    name,
    {
      ...lambdaDefaults,
      handler,
      timeout: "1 minute",
      memory: "256 MB",
      environment,
      permissions: [{ actions: ["ssm:GetParameter"], resources: [parameterArn(parameter)] }],
    },
    { filter: filterPolicy, transform: { subscription: (args) => void (args.filterPolicyScope = "MessageBody") } },
  );
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
