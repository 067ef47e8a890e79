import type { AttemptRecord, FailureKind } from "./errors.js";

/**
 * Versioned result events. The same JSON goes on the local bus, and (in the cloud) on SNS with message attributes
 * { type, target, status } so subscribers can filter. A Slack message is one rendering of these, not the contract.
 */
export const EVENT_VERSION = 1;

/** One database's outcome in a run of a target with several databases (or globals). */
export interface DatabaseOutcome {
  database: string;
  status: "succeeded" | "failed";
  backupId?: string;
  location?: string;
  size?: number;
  error?: string;
}

export interface BackupSucceededEvent {
  version: typeof EVENT_VERSION;
  type: "backup.succeeded";
  status: "succeeded";
  time: string;
  target: string;
  runId: string;
  trigger: string;
  attempt: number;
  backup: {
    id: string;
    location: string; // store URL of the dump, e.g. s3://bucket/prefix/prod/2026/11/21/....dump
    key: string;
    size: number;
    sha256: string;
    durationMs: number;
    format: "custom" | "plain" | "sqlite";
  };
  restoreCommand: string;
  /** Targets with several databases: one event per run, every database's outcome (`backup` is the first one). */
  databases?: DatabaseOutcome[];
}

export interface BackupFailedEvent {
  version: typeof EVENT_VERSION;
  type: "backup.failed";
  status: "failed";
  time: string;
  target: string;
  runId: string;
  trigger: string;
  attempt: number;
  error: { message: string; code: string; kind: FailureKind; attempts: AttemptRecord[] };
  databases?: DatabaseOutcome[];
}

/** The outcome of a restore drill (`lifeboat verify`). status is "succeeded" or "failed" so that filters on status
 * catch failed drills along with failed backups; `type` tells them apart. */
export interface BackupVerifyEvent {
  version: typeof EVENT_VERSION;
  type: "backup.verified" | "backup.verify_failed";
  status: "succeeded" | "failed";
  time: string;
  target: string;
  runId: string;
  trigger: string;
  attempt: number;
  verification: {
    backupId: string;
    location: string;
    durationMs: number;
    restoreMs: number;
    tables: number;
    failures: string[];
  };
}

/** A failure reported by something other than the runner's own attempts (the launcher, the watcher): one attempt. */
export function reportedFailure(f: { target: string; runId: string; trigger: string; attempt: number; code: string; kind: FailureKind; message: string }): BackupFailedEvent {
  const now = new Date().toISOString();
  return {
    version: EVENT_VERSION,
    type: "backup.failed",
    status: "failed",
    time: now,
    target: f.target,
    runId: f.runId,
    trigger: f.trigger,
    attempt: f.attempt,
    error: { message: f.message, code: f.code, kind: f.kind, attempts: [{ attempt: f.attempt, code: f.code, kind: f.kind, message: f.message, startedAt: now, finishedAt: now }] },
  };
}

/**
 * A scheduled fire time that produced no backup (the scheduler was down, the launch failed, EventBridge never fired,
 * the run never finished): raised by the freshness check once per missed fire time, after the target's grace period.
 * status is "failed", so that filters on failures catch it.
 */
export interface BackupMissedEvent {
  version: typeof EVENT_VERSION;
  type: "backup.missed";
  status: "failed";
  time: string;
  target: string;
  /** Derived from the target and the fire time: the same missed fire time always has the same id. */
  runId: string;
  trigger: "freshness";
  attempt: 0;
  missed: {
    fireTime: string;
    schedule: string;
    timezone: string;
    graceMinutes: number;
    /** The newest backup that exists (none: never backed up since the check started watching). */
    newestBackup: { id: string; startedAt: string; ageMs: number } | null;
    /** What should have run it: EventBridge Scheduler (the AWS deployment) or a `lifeboat schedule` daemon. */
    scheduler?: "eventbridge" | "lifeboat schedule";
  };
}

/**
 * A copy (storage.copies) that does not hold a backup the primary holds: its write failed in the run and again when
 * copied from the primary. The backup itself succeeded (backup.succeeded was published); status is "failed" so that
 * filters on failures catch it. `lifeboat copy <target> --backup <id>` repairs it later.
 */
export interface BackupCopyFailedEvent extends Omit<BackupFailedEvent, "type" | "error" | "databases"> {
  type: "backup.copy_failed";
  copy: {
    name: string;
    backupId: string;
    /** Where the backup is whole (the primary). */
    location: string;
    error: string;
    /** The command that copies it again. */
    repair: string;
  };
}

/**
 * Retention could not be applied after a backup that succeeded (backup.succeeded was published): old backups stay in
 * the primary store or in a copy until a later prune works. status is "failed" so that filters on failures catch it;
 * `lifeboat prune <target>` applies it by hand.
 */
export interface BackupPruneFailedEvent extends Omit<BackupFailedEvent, "type" | "error" | "databases"> {
  type: "backup.prune_failed";
  prune: {
    /** "primary", or the copy's name. */
    store: string;
    error: string;
    /** The command that applies the retention by hand. */
    repair: string;
  };
}

/**
 * A refresh (`lifeboat refresh`, scheduled by `lifeboat schedule`) that failed: the staging database was not replaced
 * (nothing swapped) or not created. status "failed"; `lifeboat refresh <target>` runs it again.
 */
export interface BackupRefreshFailedEvent extends Omit<BackupFailedEvent, "type" | "error" | "databases"> {
  type: "backup.refresh_failed";
  refresh: {
    /** The database refreshed, without credentials. */
    to: string;
    backupId?: string;
    error: string;
    repair: string;
  };
}

/**
 * Where a deployed run happened, added by the runner to what it publishes: the stage, the region, the ECS task and a
 * link to its log stream in the CloudWatch console. Absent for local runs.
 */
export interface EventOrigin {
  stage?: string;
  region?: string;
  task?: string;
  logs?: string;
}

export type LifeboatEvent = (BackupSucceededEvent | BackupFailedEvent | BackupVerifyEvent | BackupMissedEvent | BackupCopyFailedEvent | BackupPruneFailedEvent | BackupRefreshFailedEvent) & { origin?: EventOrigin };

/** The fields every event of something that failed beside a run carries (copy_failed, prune_failed, refresh_failed). */
export function failedAlongside(target: string, runId: string, trigger: string, attempt = 1): Omit<BackupFailedEvent, "type" | "error" | "databases"> {
  return { version: EVENT_VERSION, status: "failed", time: new Date().toISOString(), target, runId, trigger, attempt };
}

/** backup.refresh_failed: the refresh of `to` (a description without credentials) from the target's backup. */
export function refreshFailedEvent(target: string, runId: string, trigger: string, to: string, error: string, backupId?: string): BackupRefreshFailedEvent {
  return { ...failedAlongside(target, runId, trigger), type: "backup.refresh_failed", refresh: { to, ...(backupId ? { backupId } : {}), error, repair: `lifeboat refresh ${target}` } };
}

/** backup.prune_failed for `store` ("primary" or a copy's name), after a run that succeeded. */
export function pruneFailedEvent(target: string, runId: string, trigger: string, store: string, error: string): BackupPruneFailedEvent {
  return { ...failedAlongside(target, runId, trigger), type: "backup.prune_failed", prune: { store, error, repair: `lifeboat prune ${target}` } };
}

/** How a person restores one backup: `prefix` is the command up to its options (e.g. `lifeboat restore prod`). */
export function restoreCommandFor(prefix: string, backup: { id: string; format: string; encryption?: unknown }): string {
  return `${prefix} --backup ${backup.id} ${backup.format === "sqlite" ? "--to-file <path>" : "--to <postgres-url>"}${backup.encryption ? " --identity <age-identity-file>" : ""}`;
}

export function eventAttributes(e: LifeboatEvent): Record<string, string> {
  return { type: e.type, target: e.target, status: e.status };
}

export type EventHandler = (event: LifeboatEvent) => void | Promise<void>;

/**
 * In-process fan-out: the local twin of the SNS topic. A failing subscriber is reported to `onError` and never
 * hides the event from the others or fails the backup.
 */
export class LocalEventBus {
  private readonly handlers: EventHandler[] = [];
  constructor(private readonly onError: (err: unknown, event: LifeboatEvent) => void = () => {}) {}
  subscribe(handler: EventHandler): () => void {
    this.handlers.push(handler);
    return () => {
      const i = this.handlers.indexOf(handler);
      if (i >= 0) this.handlers.splice(i, 1);
    };
  }
  async publish(event: LifeboatEvent): Promise<void> {
    await Promise.all(
      this.handlers.map(async (h) => {
        try {
          await h(event);
        } catch (err) {
          this.onError(err, event);
        }
      }),
    );
  }
}
