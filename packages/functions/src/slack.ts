import { SSMClient } from "@aws-sdk/client-ssm";
import { Logger } from "@aws-lambda-powertools/logger";
import type { Outcome } from "@lifeboat/core";
import { postToSlack } from "@lifeboat/runner";
import { createSubscriber, type SubscriberDeps } from "./subscriber.js";

/** The Slack subscriber: SNS delivers Lifeboat events, the webhook URL comes from SSM. */
export interface SlackDeps extends SubscriberDeps {
  baseDelayMs?: number;
}

export function createSlackHandler(deps: SlackDeps) {
  return createSubscriber("Slack", deps, (e, webhookUrl) => postToSlack(e, { webhookUrl, on: deps.on, ...(deps.baseDelayMs !== undefined ? { baseDelayMs: deps.baseDelayMs } : {}) }));
}

let slack: ReturnType<typeof createSlackHandler> | undefined;
export const handler = async (event: unknown) => {
  slack ??= createSlackHandler({
    ssm: new SSMClient({}),
    parameter: process.env.LIFEBOAT_SLACK_PARAMETER!,
    on: JSON.parse(process.env.LIFEBOAT_SLACK_ON ?? '["succeeded","failed"]') as Outcome[],
    logger: new Logger({ serviceName: "lifeboat-slack" }),
  });
  return slack(event);
};
