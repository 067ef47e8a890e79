import { SSMClient } from "@aws-sdk/client-ssm";
import { Logger } from "@aws-lambda-powertools/logger";
import type { Outcome } from "@lifeboat/core";
import { postJson, postToWebhook } from "@lifeboat/runner";
import { createSubscriber, type SubscriberDeps } from "./subscriber.js";

/** The generic webhook subscriber: each event's JSON, as published on the topic, POSTed to a URL kept in SSM. */
export function createWebhookHandler(deps: SubscriberDeps) {
  // alarms go out as CloudWatch wrote them, events as Lifeboat published them
  return createSubscriber("webhook", deps, (m, url, delivery) => (m.kind === "alarm" ? postJson("webhook", url, JSON.stringify(m.alarm), delivery) : postToWebhook(m.event, { url, on: deps.on, ...delivery })));
}

let webhook: ReturnType<typeof createWebhookHandler> | undefined;
export const handler = async (event: unknown) => {
  webhook ??= createWebhookHandler({
    ssm: new SSMClient({}),
    parameter: process.env.LIFEBOAT_WEBHOOK_PARAMETER!,
    on: JSON.parse(process.env.LIFEBOAT_WEBHOOK_ON ?? '["succeeded","failed"]') as Outcome[],
    logger: new Logger({ serviceName: "lifeboat-webhook" }),
  });
  return webhook(event);
};
