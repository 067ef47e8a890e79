import { SSMClient } from "@aws-sdk/client-ssm";
import { Logger } from "@aws-lambda-powertools/logger";
import { renderAlarmMessage, type Outcome } from "@lifeboat/core";
import { postJson, postToSlack } from "@lifeboat/runner";
import { createSubscriber, type SubscriberDeps } from "./subscriber.js";

/** The Slack subscriber: SNS delivers Lifeboat events and alarms, the webhook URL comes from SSM. */
export type SlackDeps = SubscriberDeps & {
  /** The stack's CloudWatch dashboard (LIFEBOAT_DASHBOARD_URL), linked from failures and alarms. */
  dashboardUrl?: string | undefined;
};

export function createSlackHandler(deps: SlackDeps) {
  const dashboardUrl = deps.dashboardUrl;
  return createSubscriber("Slack", deps, (m, webhookUrl, delivery) =>
    m.kind === "alarm"
      ? postJson("Slack", webhookUrl, JSON.stringify(renderAlarmMessage(m.alarm, { dashboardUrl })), delivery)
      : postToSlack(m.event, { webhookUrl, on: deps.on, dashboardUrl, ...delivery }),
  );
}

let slack: ReturnType<typeof createSlackHandler> | undefined;
export const handler = async (event: unknown) => {
  slack ??= createSlackHandler({
    ssm: new SSMClient({}),
    parameter: process.env.LIFEBOAT_SLACK_PARAMETER!,
    on: JSON.parse(process.env.LIFEBOAT_SLACK_ON ?? '["succeeded","failed"]') as Outcome[],
    logger: new Logger({ serviceName: "lifeboat-slack" }),
    dashboardUrl: process.env.LIFEBOAT_DASHBOARD_URL || undefined,
  });
  return slack(event);
};
