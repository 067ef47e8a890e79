import pRetry from "p-retry";
import { BackupFailedError, abortedAttempt, silentLogger, type AttemptRecord, type BackupFailedEvent, type Logger, type ObjectStore, type RetryPolicy } from "@lifeboat/core";
import { toAttemptError } from "./pg/classify.js";

/**
 * Retries and failure reports shared by the backup pipeline and the steps around it (the daemon's lease on the store):
 * transient failures are retried with the target's policy (capped exponential backoff with jitter, p-retry), each
 * wait announced with the target; permanent ones stop at once; the attempts are kept for the failure event.
 */
export interface RetryOptions {
  target: string;
  policy: RetryPolicy;
  signal?: AbortSignal | undefined;
  log?: Logger | undefined;
  secrets?: Set<string | undefined>;
}

/** The delay before attempt n+1 (p-retry's formula, without its jitter): what the announcement says. */
export function retryDelayMs(policy: RetryPolicy, failedAttempt: number): number {
  return Math.min(policy.delaySeconds * 1000 * 2 ** (failedAttempt - 1), policy.maxDelaySeconds * 1000);
}

export async function withRetries<T>(fn: (attempt: number) => Promise<T>, opts: RetryOptions): Promise<{ value: T; attempts: AttemptRecord[] }> {
  const log = opts.log ?? silentLogger;
  const secrets = opts.secrets ?? new Set<string | undefined>();
  const attempts: AttemptRecord[] = [];
  let started = new Date();
  let current = 0;
  try {
    const value = await pRetry(
      async (n: number) => {
        current = n;
        started = new Date();
        return fn(n);
      },
      {
        retries: opts.policy.attempts - 1,
        factor: 2,
        minTimeout: opts.policy.delaySeconds * 1000,
        maxTimeout: opts.policy.maxDelaySeconds * 1000,
        randomize: true,
        ...(opts.signal ? { signal: opts.signal } : {}),
        onFailedAttempt: ({ error, attemptNumber, retriesLeft }) => {
          const e = toAttemptError(error, secrets);
          attempts.push({ attempt: attemptNumber, code: e.code, kind: e.kind, message: e.message, startedAt: started.toISOString(), finishedAt: new Date().toISOString() });
          const retrying = e.kind === "transient" && retriesLeft > 0 && !opts.signal?.aborted;
          log.log("warn", retrying ? `attempt ${attemptNumber} failed; retrying in about ${Math.round(retryDelayMs(opts.policy, attemptNumber) / 1000)} s` : `attempt ${attemptNumber} failed`, {
            target: opts.target,
            attempt: attemptNumber,
            code: e.code,
            kind: e.kind,
            error: e.message,
          });
        },
        shouldRetry: ({ error }) => toAttemptError(error, secrets).kind === "transient" && !opts.signal?.aborted,
      },
    );
    return { value, attempts };
  } catch (err) {
    const lastErr = opts.signal?.aborted ? abortedAttempt(opts.signal.reason) : toAttemptError(err, secrets);
    if (attempts.length === 0 || attempts[attempts.length - 1]!.attempt !== current) {
      // p-retry does not call onFailedAttempt when it is aborted by the signal
      attempts.push({ attempt: current || 1, code: lastErr.code, kind: lastErr.kind, message: lastErr.message, startedAt: started.toISOString(), finishedAt: new Date().toISOString() });
    }
    throw new BackupFailedError(opts.target, attempts, lastErr.hint);
  }
}

/** The backup.failed event of a run whose attempts all failed. */
export function failedEvent(target: string, runId: string, trigger: string, attempts: AttemptRecord[]): BackupFailedEvent {
  const last = attempts[attempts.length - 1]!;
  return {
    version: 1,
    type: "backup.failed",
    status: "failed",
    time: new Date().toISOString(),
    target,
    runId,
    trigger,
    attempt: last.attempt,
    error: { message: last.message, code: last.code, kind: last.kind, attempts },
  };
}

/**
 * The store as the daemon sees it: a call that fails marks it down and says so once, with the cause; the next call
 * that works says it is back. Per outage one line each, however many cycles and targets meet it.
 */
export class StoreWatch {
  private downSince: Date | undefined;
  constructor(
    private readonly store: ObjectStore,
    private readonly log: Logger,
  ) {}

  get down(): boolean {
    return this.downSince !== undefined;
  }

  async call<T>(what: string, fn: () => Promise<T>): Promise<T> {
    let value: T;
    try {
      value = await fn();
    } catch (err) {
      this.failed(what, err);
      throw err;
    }
    this.ok();
    return value;
  }

  failed(what: string, err: unknown): void {
    if (this.downSince) return;
    this.downSince = new Date();
    const e = toAttemptError(err, []);
    this.log.log("error", `the store ${this.store.url} cannot be used (${what}): runs fail and are reported until it is back`, { store: this.store.url, code: e.code, error: e.message, ...(e.hint ? { hint: e.hint } : {}) });
  }

  ok(): void {
    if (!this.downSince) return;
    this.log.log("info", `the store ${this.store.url} works again`, { store: this.store.url, downSince: this.downSince.toISOString(), downForSeconds: Math.round((Date.now() - this.downSince.getTime()) / 1000) });
    this.downSince = undefined;
  }
}
