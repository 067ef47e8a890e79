import type { LifeboatConfig, LocalEventBus, SecretResolver } from "@lifeboat/core";
import type { DeliveryOptions } from "./post.js";
import { heartbeatSubscriber, pingHeartbeat } from "./heartbeat.js";
import { slackSubscriber } from "./slack.js";
import { webhookSubscriber } from "./webhook.js";

/** The config's notifications (Slack, a generic webhook), delivered directly: what runs without the SNS topic. */
export async function subscribeNotifications(bus: LocalEventBus, config: LifeboatConfig, secrets: SecretResolver, opts: DeliveryOptions = {}): Promise<void> {
  const { slack, webhook, heartbeat } = config.notifications;
  if (slack) bus.subscribe(slackSubscriber({ ...opts, webhookUrl: await secrets.resolve(slack.webhook, "notifications.slack.webhook"), on: slack.on }));
  if (webhook) bus.subscribe(webhookSubscriber({ ...opts, url: await secrets.resolve(webhook.url, "notifications.webhook.url"), on: webhook.on }));
  if (heartbeat) bus.subscribe(heartbeatSubscriber({ ...opts, url: await secrets.resolve(heartbeat.url, "notifications.heartbeat.url"), style: heartbeat.style }));
}

/**
 * The heartbeat's "a run started" ping (the end of a run is pinged from its event: subscribeNotifications). A ping
 * that fails is logged, never the run's failure.
 */
export async function heartbeatStarted(config: LifeboatConfig, secrets: SecretResolver, target: string, opts: DeliveryOptions & { url?: string } = {}): Promise<void> {
  const heartbeat = config.notifications.heartbeat;
  if (!heartbeat) return;
  try {
    // (`url`: already resolved by the caller, so that its secret is read once)
    await pingHeartbeat("start", { ...opts, attempts: 2, timeLimitMs: 10_000, url: opts.url ?? (await secrets.resolve(heartbeat.url, "notifications.heartbeat.url")), style: heartbeat.style }, target);
  } catch (err) {
    opts.log?.log("warn", "the heartbeat's start ping failed", { target, error: (err as Error).message });
  }
}
