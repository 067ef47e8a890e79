import type { Logger } from "./ports.js";

/**
 * Errors that carry what a person needs: what went wrong, how to fix it, and which exit code the CLI should use.
 * Exit codes: 1 = the run failed, 2 = usage or configuration error.
 */
export type FailureKind = "transient" | "permanent";

export class LifeboatError extends Error {
  readonly exitCode: number;
  readonly hint: string | undefined;
  constructor(message: string, opts: { exitCode?: number; hint?: string; cause?: unknown } = {}) {
    super(message, opts.cause === undefined ? undefined : { cause: opts.cause });
    this.name = new.target.name;
    this.exitCode = opts.exitCode ?? 1;
    this.hint = opts.hint;
  }
}

/** Bad flags, a missing argument, an unreadable store URL: the user must change the command. Exit code 2. */
export class UsageError extends LifeboatError {
  constructor(message: string, hint?: string) {
    super(message, hint === undefined ? { exitCode: 2 } : { exitCode: 2, hint });
  }
}

export interface ConfigProblem {
  path: string;
  message: string;
  hint?: string;
}

/** The config failed validation. Lists every problem, by path. Exit code 2. */
export class ConfigError extends LifeboatError {
  readonly problems: ConfigProblem[];
  constructor(source: string, problems: ConfigProblem[], verdict = "is invalid") {
    const lines = problems.map((p) => `  - ${p.path || "(root)"}: ${p.message}${p.hint ? ` (hint: ${p.hint})` : ""}`);
    super(`${source} ${verdict} (${problems.length} problem${problems.length === 1 ? "" : "s"}):\n${lines.join("\n")}`, {
      exitCode: 2,
    });
    this.problems = problems;
  }
}

/** One attempt of a backup failed. `kind` decides whether another attempt is worth it. */
export class AttemptError extends LifeboatError {
  readonly kind: FailureKind;
  readonly code: string;
  constructor(code: string, kind: FailureKind, message: string, opts: { hint?: string; cause?: unknown } = {}) {
    // a configuration error met outside a backup run (lifeboat list with no region) exits 2 as well
    super(message, { ...opts, exitCode: CONFIG_CODES.has(code) ? 2 : 1 });
    this.code = code;
    this.kind = kind;
  }
}

export interface AttemptRecord {
  attempt: number;
  code: string;
  kind: FailureKind;
  message: string;
  startedAt: string;
  finishedAt: string;
}

/** Every attempt failed (or a permanent failure stopped the run). Lists every attempt. Exit code 1. */
/** The attempt code of a configuration error met during a run: permanent, and the run exits 2. */
export const CONFIG_ERROR = "config_error";
/** Attempt codes that are the user's configuration to fix (exit code 2, never retried). */
export const CONFIG_CODES: ReadonlySet<string> = new Set([CONFIG_ERROR, "s3_credentials", "s3_region"]);

export class BackupFailedError extends LifeboatError {
  readonly target: string;
  readonly attempts: AttemptRecord[];
  constructor(target: string, attempts: AttemptRecord[], hint?: string) {
    const last = attempts[attempts.length - 1];
    const lines = attempts.map((a) => `  attempt ${a.attempt} (${a.kind}, ${a.code}): ${a.message}`);
    super(
      `backup of "${target}" failed after ${attempts.length} attempt${attempts.length === 1 ? "" : "s"}` +
        `${last && last.kind === "permanent" ? " (not retried: the failure is permanent)" : ""}:\n${lines.join("\n")}`,
      // a configuration error (an unset secret variable, a missing CA bundle) is the user's to fix: exit code 2
      { exitCode: last && CONFIG_CODES.has(last.code) ? 2 : 1, ...(hint === undefined ? {} : { hint }) },
    );
    this.target = target;
    this.attempts = attempts;
  }
}

/** The downloaded dump does not match its manifest. Nothing was restored. */
export class ChecksumMismatchError extends LifeboatError {
  constructor(key: string, expected: string, actual: string, expectedSize: number, actualSize: number, outcome = "nothing was restored") {
    super(
      `checksum mismatch for ${key}: the manifest says sha256 ${expected} (${expectedSize} bytes) but the stored ` +
        `object has sha256 ${actual} (${actualSize} bytes). The object was corrupted or modified; ${outcome}.`,
      { hint: "restore an older backup with --backup <id> (see `lifeboat list`)" },
    );
  }
}

export function errorMessage(err: unknown): string {
  if (err instanceof Error) return err.message;
  return String(err);
}

/** The abort reason of a run that passed its maximum run time (targets.<name>.maxRunMinutes). */
export class DeadlineExceeded extends Error {
  constructor(readonly minutes: number) {
    super(`the run passed its maximum run time of ${minutes} minute${minutes === 1 ? "" : "s"} (maxRunMinutes) and was stopped`);
    this.name = "DeadlineExceeded";
  }
}

/** What an aborted attempt records: its own code for a deadline, "cancelled" for anything else (SIGTERM, Ctrl-C). */
export function abortedAttempt(reason: unknown): AttemptError {
  if (reason instanceof DeadlineExceeded) return new AttemptError("deadline_exceeded", "permanent", reason.message, { hint: "raise maxRunMinutes, or look for what holds the dump up (locks, a slow network)" });
  return new AttemptError("cancelled", "permanent", `backup cancelled (${String(reason ?? "aborted")})`);
}

/**
 * A store answered that it does not implement a call Lifeboat uses only for housekeeping (ListMultipartUploads on
 * plain s3rver and some S3-compatible providers). Callers that can do without it warn once and go on.
 */
export class UnsupportedStoreFeature extends LifeboatError {
  constructor(readonly feature: string, readonly store: string, detail: string) {
    super(`${store} does not support ${feature} (${detail})`, { hint: `pending uploads cannot be listed or cleaned up by Lifeboat here: set a lifecycle rule on the bucket that aborts incomplete multipart uploads` });
  }
}

/**
 * A conditional write the store refused: `exists` (If-None-Match: the key already holds an object, which Lifeboat
 * never replaces), `changed` (If-Match: someone wrote the object since it was read), or `conflict` (another
 * conditional write of the same key was in progress: S3's 409 ConditionalRequestConflict; worth one more try).
 */
export class ConditionalWriteFailed extends LifeboatError {
  constructor(readonly key: string, readonly reason: "exists" | "changed" | "conflict") {
    super(
      reason === "exists"
        ? `${key} already exists: Lifeboat never replaces a stored backup, manifest or drill result`
        : reason === "changed"
          ? `${key} was changed by someone else since it was read`
          : `another write of ${key} was in progress`,
      { hint: reason === "exists" ? "a key is never reused by Lifeboat itself: another writer (a copy, a second deployment on the same prefix) put it there" : "retry" },
    );
  }
}

/** Warns once per process, store and feature, that a housekeeping call is unsupported. */
const warnedUnsupported = new Set<string>();
export function warnUnsupportedOnce(err: UnsupportedStoreFeature, log: Logger): void {
  const key = `${err.store}\0${err.feature}`;
  if (warnedUnsupported.has(key)) return;
  warnedUnsupported.add(key);
  log.log("warn", `${err.message}: skipped (${err.hint})`, { store: err.store, feature: err.feature });
}
