import type { LifeboatEvent, Outcome } from "@lifeboat/core";
import { postJson, type DeliveryOptions } from "./post.js";

export interface WebhookOptions extends DeliveryOptions {
  url: string;
  on: readonly Outcome[];
}

/**
 * A generic webhook: the event itself (the versioned JSON of docs/operations.md, Events and notifications, the same as on the SNS topic),
 * POSTed as is, for healthchecks, PagerDuty's or a team's own endpoint.
 */
export async function postToWebhook(event: LifeboatEvent, opts: WebhookOptions): Promise<void> {
  await postJson("webhook", opts.url, JSON.stringify(event), opts);
}

export function webhookSubscriber(opts: WebhookOptions): (e: LifeboatEvent) => Promise<void> {
  return async (event) => {
    if (!opts.on.includes(event.status)) return;
    await postToWebhook(event, { ...opts, fields: { ...opts.fields, target: event.target } });
  };
}
