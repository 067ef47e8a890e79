import { LifeboatError, redact, renderSlackMessage, silentLogger, type LifeboatEvent, type Logger, type Outcome } from "@lifeboat/core";

export interface SlackOptions {
  webhookUrl: string;
  on: readonly Outcome[];
  /** Attempts for 429 and 5xx answers (Retry-After is honoured). */
  attempts?: number;
  baseDelayMs?: number;
  log?: Logger;
}

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms));

/** Posts one event to a Slack incoming webhook, retrying 429 and 5xx with backoff. The URL never reaches a log. */
export async function postToSlack(event: LifeboatEvent, opts: SlackOptions): Promise<void> {
  const attempts = opts.attempts ?? 4;
  const base = opts.baseDelayMs ?? 1000;
  const body = JSON.stringify(renderSlackMessage(event));
  let last = "";
  for (let i = 1; i <= attempts; i++) {
    let status = 0;
    let retryAfter: string | null = null;
    try {
      const res = await fetch(opts.webhookUrl, { method: "POST", headers: { "content-type": "application/json" }, body, signal: AbortSignal.timeout(10_000) });
      status = res.status;
      retryAfter = res.headers.get("retry-after");
      const text = await res.text();
      if (res.ok) return;
      last = `HTTP ${status}: ${text.slice(0, 200)}`;
      if (status !== 429 && status < 500) break;
    } catch (err) {
      last = redact((err as Error).message, [opts.webhookUrl]);
    }
    if (i < attempts) {
      const delay = retryAfter && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : base * 2 ** (i - 1) * (1 + Math.random());
      (opts.log ?? silentLogger).log("warn", "slack notification will be retried", { attempt: i, status, delayMs: Math.round(delay) });
      await sleep(delay);
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
