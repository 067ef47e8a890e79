// The topic every result event goes to, with the Slack subscriber and e-mail subscriptions from the config.
import { lambdaDefaults, parameterArn, plan } from "./config";

export const topic = new sst.aws.SnsTopic("Events");

// subscriptions filter on the message body: Lifeboat's events by status, and CloudWatch alarms (no attributes) by state
const bodyScope = (args: aws.sns.TopicSubscriptionArgs) => {
  args.filterPolicyScope = "MessageBody";
  return undefined;
};

if (plan.slack) {
  topic.subscribe(
    "Slack",
    {
      ...lambdaDefaults,
      handler: "packages/functions/src/slack.handler",
      timeout: "1 minute",
      memory: "256 MB",
      environment: { LIFEBOAT_SLACK_PARAMETER: plan.slack.webhookParameter, LIFEBOAT_SLACK_ON: JSON.stringify(plan.slack.on) },
      permissions: [{ actions: ["ssm:GetParameter"], resources: [parameterArn(plan.slack.webhookParameter)] }],
    },
    { filter: plan.slack.filterPolicy, transform: { subscription: bodyScope } },
  );
}

if (plan.webhook) {
  topic.subscribe(
    "Webhook",
    {
      ...lambdaDefaults,
      handler: "packages/functions/src/webhook.handler",
      timeout: "1 minute",
      memory: "256 MB",
      environment: { LIFEBOAT_WEBHOOK_PARAMETER: plan.webhook.urlParameter, LIFEBOAT_WEBHOOK_ON: JSON.stringify(plan.webhook.on) },
      permissions: [{ actions: ["ssm:GetParameter"], resources: [parameterArn(plan.webhook.urlParameter)] }],
    },
    { filter: plan.webhook.filterPolicy, transform: { subscription: bodyScope } },
  );
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
