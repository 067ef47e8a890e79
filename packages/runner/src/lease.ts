import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { ConditionalWriteFailed, joinKey, silentLogger, type Logger, type ObjectStore } from "@lifeboat/core";
import { readJsonIfExists, readVersionedJson, storeJson } from "./catalog.js";

/**
 * One run per target across schedulers: a lease kept in the store itself (S3 or a directory), so two daemons, or a
 * daemon and a cron `schedule --once`, sharing a store never run one target at once. It expires if its holder dies.
 *
 * Taking, renewing and giving back the lease are compare-and-swap writes: the record is read with its ETag and
 * written only if it is still that one (S3's If-Match; If-None-Match when there is none yet). Of two schedulers that
 * read the same record, one write succeeds and the other is refused (412, or 409 while the first is in progress):
 * that one has lost. Giving it back writes it expired (again only if it is still ours), so that a scheduler that took
 * it meanwhile is never undone. An S3-compatible store that ignores these headers makes the lease last-writer-wins.
 */
export const LEASE_FILE = ".lifeboat-lease.json";

export interface LeaseRecord {
  holder: string;
  host: string;
  pid: number;
  target: string;
  acquiredAt: string;
  expiresAt: string;
}

export interface LeaseOptions {
  ttlMs?: number;
  log?: Logger;
  now?: () => Date;
}

export type LeaseResult = { taken: true; lease: HeldLease } | { taken: false; heldBy: LeaseRecord };

export function leaseKey(target: string): string {
  return joinKey(target, LEASE_FILE);
}

/** The lease of a target as stored, if any (expired or not). */
export function readLease(store: ObjectStore, target: string): Promise<LeaseRecord | undefined> {
  return readJsonIfExists<LeaseRecord>(store, leaseKey(target));
}

/** The record and its ETag; an unreadable record counts as expired. */
function readVersioned(store: ObjectStore, target: string): Promise<{ value: LeaseRecord | undefined; etag: string } | undefined> {
  return readVersionedJson<LeaseRecord>(store, leaseKey(target));
}

/**
 * Writes the lease record only over the version read (etag), or only where none exists; false if refused. A 409
 * (another write of the lease in progress) is tried again after a moment: its outcome decides.
 */
async function swap(store: ObjectStore, record: LeaseRecord, etag: string | undefined): Promise<{ etag: string | undefined } | false> {
  for (let attempt = 1; ; attempt++) {
    try {
      return { etag: await storeJson(store, leaseKey(record.target), record, etag ? { ifMatch: etag } : { ifNoneMatch: "*" }) };
    } catch (err) {
      if (!(err instanceof ConditionalWriteFailed)) throw err;
      if (err.reason !== "conflict" || attempt >= 5) return false;
      await sleep(100 * attempt);
    }
  }
}

export class HeldLease {
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly store: ObjectStore,
    readonly record: LeaseRecord,
    private etag: string | undefined,
    private readonly ttlMs: number,
    private readonly now: () => Date,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => void this.renew(), Math.max(1000, Math.floor(ttlMs / 3)));
    this.timer.unref();
  }

  /** The ETag of our record (read back when the store did not say it on write). */
  private async ours(): Promise<string | undefined> {
    if (this.etag) return this.etag;
    const current = await readVersioned(this.store, this.record.target);
    return current?.value?.holder === this.record.holder ? current.etag : undefined;
  }

  private async renew(): Promise<void> {
    try {
      const etag = await this.ours();
      const written = etag ? await swap(this.store, { ...this.record, expiresAt: new Date(this.now().getTime() + this.ttlMs).toISOString() }, etag) : false;
      if (written) this.etag = written.etag;
      else {
        const current = await readLease(this.store, this.record.target);
        this.log.log("error", "the run's lease was taken over by another scheduler", { target: this.record.target, holder: current?.host });
      }
    } catch (err) {
      this.log.log("warn", "could not renew the run's lease", { target: this.record.target, error: (err as Error).message });
    }
  }

  /** Stops renewing and gives the lease back (written expired), if it is still ours. */
  async release(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    try {
      const etag = await this.ours();
      if (etag) await swap(this.store, { ...this.record, expiresAt: new Date(0).toISOString() }, etag);
    } catch (err) {
      this.log.log("warn", "could not release the run's lease (it expires by itself)", { target: this.record.target, error: (err as Error).message });
    }
  }
}

export async function acquireLease(store: ObjectStore, target: string, opts: LeaseOptions = {}): Promise<LeaseResult> {
  const now = opts.now ?? (() => new Date());
  const ttlMs = opts.ttlMs ?? 10 * 60_000;
  const log = opts.log ?? silentLogger;
  const existing = await readVersioned(store, target);
  if (existing?.value && Date.parse(existing.value.expiresAt) > now().getTime()) return { taken: false, heldBy: existing.value };
  const record: LeaseRecord = {
    holder: randomUUID(),
    host: hostname(),
    pid: process.pid,
    target,
    acquiredAt: now().toISOString(),
    expiresAt: new Date(now().getTime() + ttlMs).toISOString(),
  };
  const written = await swap(store, record, existing?.etag);
  if (written) return { taken: true, lease: new HeldLease(store, record, written.etag, ttlMs, now, log) };
  // another scheduler wrote between our read and our write: it holds the lease
  return { taken: false, heldBy: (await readLease(store, target)) ?? record };
}
