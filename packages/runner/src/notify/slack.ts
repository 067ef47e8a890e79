import { setTimeout as sleep } from "node:timers/promises";
import { LifeboatError, redact, renderSlackMessage, silentLogger, type LifeboatEvent, type Logger, type Outcome } from "@lifeboat/core";

export interface SlackOptions {
  webhookUrl: string;
  on: readonly Outcome[];
  /** Attempts for 429 and 5xx answers (Retry-After is honoured within the time limit). */
  attempts?: number;
  baseDelayMs?: number;
  /**
   * The most one notification may take, waits included (default 60 s): a Retry-After that would pass it ends the
   * retries at once, so a finished backup never waits on Slack for long.
   */
  timeLimitMs?: number;
  /** Ends any request or wait at once (a daemon's or a runner's SIGTERM). */
  signal?: AbortSignal;
  log?: Logger;
}

export const SLACK_TIME_LIMIT_MS = 60_000;

/** Posts one event to a Slack incoming webhook, retrying 429 and 5xx with backoff. The URL never reaches a log. */
export async function postToSlack(event: LifeboatEvent, opts: SlackOptions): Promise<void> {
  const attempts = opts.attempts ?? 4;
  const base = opts.baseDelayMs ?? 1000;
  const limit = opts.timeLimitMs ?? SLACK_TIME_LIMIT_MS;
  const deadline = Date.now() + limit;
  const body = JSON.stringify(renderSlackMessage(event));
  let last = "";
  for (let i = 1; i <= attempts; i++) {
    let status = 0;
    let retryAfter: string | null = null;
    if (opts.signal?.aborted) throw new LifeboatError(`Slack notification abandoned: ${String(opts.signal.reason ?? "aborted")}`);
    try {
      const timeout = AbortSignal.timeout(Math.max(1, Math.min(10_000, deadline - Date.now())));
      const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
      const res = await fetch(opts.webhookUrl, { method: "POST", headers: { "content-type": "application/json" }, body, signal });
      status = res.status;
      retryAfter = res.headers.get("retry-after");
      const text = await res.text();
      if (res.ok) return;
      last = `HTTP ${status}: ${text.slice(0, 200)}`;
      if (status !== 429 && status < 500) break;
    } catch (err) {
      last = redact((err as Error).message, [opts.webhookUrl]);
    }
    if (opts.signal?.aborted) throw new LifeboatError(`Slack notification abandoned: ${String(opts.signal.reason ?? "aborted")}`);
    if (i < attempts) {
      const delay = retryAfter && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : base * 2 ** (i - 1) * (1 + Math.random());
      if (Date.now() + delay > deadline) {
        last += ` (a retry in ${Math.round(delay / 1000)} s would pass the notification time limit of ${Math.round(limit / 1000)} s)`;
        break;
      }
      (opts.log ?? silentLogger).log("warn", "slack notification will be retried", { attempt: i, status, delayMs: Math.round(delay) });
      try {
        await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : {});
      } catch {
        throw new LifeboatError(`Slack notification abandoned: ${String(opts.signal?.reason ?? "aborted")}`);
      }
    }
  }
  throw new LifeboatError(`Slack notification failed: ${redact(last, [opts.webhookUrl])}`, { hint: "check the webhook URL secret" });
}

/** A bus subscriber that forwards the chosen outcomes to Slack. */
export function slackSubscriber(opts: SlackOptions): (e: LifeboatEvent) => Promise<void> {
  return async (event) => {
    if (!opts.on.includes(event.status)) return;
    await postToSlack(event, opts);
  };
}
