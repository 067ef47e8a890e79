import { renderSlackMessage, type LifeboatEvent, type Outcome } from "@lifeboat/core";
import { postJson, type DeliveryOptions } from "./post.js";

export interface SlackOptions extends DeliveryOptions {
  webhookUrl: string;
  on: readonly Outcome[];
  /** The deployment's CloudWatch dashboard, linked from failures. */
  dashboardUrl?: string | undefined;
}

/** Posts one event to a Slack incoming webhook, as a Block Kit message. */
export async function postToSlack(event: LifeboatEvent, opts: SlackOptions): Promise<void> {
  await postJson("Slack", opts.webhookUrl, JSON.stringify(renderSlackMessage(event, { dashboardUrl: opts.dashboardUrl })), opts);
}

/** A bus subscriber that forwards the chosen outcomes to Slack. */
export function slackSubscriber(opts: SlackOptions): (e: LifeboatEvent) => Promise<void> {
  return async (event) => {
    if (!opts.on.includes(event.status)) return;
    await postToSlack(event, { ...opts, fields: { ...opts.fields, target: event.target } });
  };
}
