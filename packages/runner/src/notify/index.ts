import type { LifeboatConfig, LocalEventBus, SecretResolver } from "@lifeboat/core";
import type { DeliveryOptions } from "./post.js";
import { slackSubscriber } from "./slack.js";
import { webhookSubscriber } from "./webhook.js";

/** The config's notifications (Slack, a generic webhook), delivered directly: what runs without the SNS topic. */
export async function subscribeNotifications(bus: LocalEventBus, config: LifeboatConfig, secrets: SecretResolver, opts: DeliveryOptions = {}): Promise<void> {
  const { slack, webhook } = config.notifications;
  if (slack) bus.subscribe(slackSubscriber({ ...opts, webhookUrl: await secrets.resolve(slack.webhook, "notifications.slack.webhook"), on: slack.on }));
  if (webhook) bus.subscribe(webhookSubscriber({ ...opts, url: await secrets.resolve(webhook.url, "notifications.webhook.url"), on: webhook.on }));
}
