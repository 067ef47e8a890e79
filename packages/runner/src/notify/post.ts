import { setTimeout as sleep } from "node:timers/promises";
import { LifeboatError, redact, silentLogger, type Logger } from "@lifeboat/core";

/** How a notification is delivered over HTTP: retries, a time limit for the whole of it, a signal that ends it. */
export interface DeliveryOptions {
  /** Attempts for 429 and 5xx answers and network errors (Retry-After is honoured within the time limit). */
  attempts?: number;
  baseDelayMs?: number;
  /**
   * The most one notification may take, waits included (default 60 s): a Retry-After that would pass it ends the
   * retries at once, so a finished backup never waits on a receiver for long.
   */
  timeLimitMs?: number;
  /** Ends any request or wait at once (a daemon's or a runner's SIGTERM). */
  signal?: AbortSignal;
  log?: Logger;
  /** Fields every log line of this delivery carries (the event's target). */
  fields?: Record<string, unknown>;
  /** GET instead of POST (heartbeat pings); the body is then not sent. */
  method?: "GET" | "POST";
}

export const NOTIFY_TIME_LIMIT_MS = 60_000;

/**
 * POSTs a JSON body to a receiver (Slack, a generic webhook), retrying 429, 5xx and network errors with backoff.
 * The URL is a secret: it never reaches a log or an error.
 */
export async function postJson(what: string, url: string, body: string, opts: DeliveryOptions = {}): Promise<void> {
  const attempts = opts.attempts ?? 4;
  const base = opts.baseDelayMs ?? 1000;
  const limit = opts.timeLimitMs ?? NOTIFY_TIME_LIMIT_MS;
  const deadline = Date.now() + limit;
  const abandoned = () => new LifeboatError(`${what} notification abandoned: ${String(opts.signal?.reason ?? "aborted")}`);
  let last = "";
  for (let i = 1; i <= attempts; i++) {
    let status = 0;
    let retryAfter: string | null = null;
    if (opts.signal?.aborted) throw abandoned();
    try {
      const timeout = AbortSignal.timeout(Math.max(1, Math.min(10_000, deadline - Date.now())));
      const signal = opts.signal ? AbortSignal.any([timeout, opts.signal]) : timeout;
      const res = opts.method === "GET" ? await fetch(url, { method: "GET", signal }) : await fetch(url, { method: "POST", headers: { "content-type": "application/json" }, body, signal });
      status = res.status;
      retryAfter = res.headers.get("retry-after");
      const text = await res.text();
      if (res.ok) return;
      last = `HTTP ${status}: ${text.slice(0, 200)}`;
      if (status !== 429 && status < 500) break;
    } catch (err) {
      last = redact((err as Error).message, [url]);
    }
    if (opts.signal?.aborted) throw abandoned();
    if (i < attempts) {
      const delay = retryAfter && /^\d+$/.test(retryAfter) ? Number(retryAfter) * 1000 : base * 2 ** (i - 1) * (1 + Math.random());
      if (Date.now() + delay > deadline) {
        last += ` (a retry in ${Math.round(delay / 1000)} s would pass the notification time limit of ${Math.round(limit / 1000)} s)`;
        break;
      }
      (opts.log ?? silentLogger).log("warn", `${what} notification will be retried in ${Math.round(delay / 1000)} s`, { ...opts.fields, attempt: i, status, delayMs: Math.round(delay) });
      try {
        await sleep(delay, undefined, opts.signal ? { signal: opts.signal } : {});
      } catch {
        throw abandoned();
      }
    }
  }
  throw new LifeboatError(`${what} notification failed: ${redact(last, [url])}`, { hint: `check the ${what} URL secret` });
}
