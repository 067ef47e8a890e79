import { randomUUID } from "node:crypto";
import { hostname } from "node:os";
import { setTimeout as sleep } from "node:timers/promises";
import { joinKey, silentLogger, type Logger, type ObjectStore } from "@lifeboat/core";
import { readJsonIfExists, storeJson } from "./catalog.js";

/**
 * One run per target across schedulers: a lease kept in the store itself (S3 or a directory), so two daemons, or a
 * daemon and a cron `schedule --once`, sharing a store never run one target at once. It expires if its holder dies.
 *
 * Stores here have no compare-and-swap that every S3-compatible server honours, so taking a lease is
 * write-then-confirm: read it (a live lease of someone else: lost); write ours; wait `settleMs`; read it back (ours:
 * taken; another's: that writer came later and won). Two schedulers that read an empty lease at the same moment both
 * write, and the later write wins for both readers, provided each read-back comes after the other's write: the wait
 * (2 s by default) covers a PUT's latency, not a scheduler frozen between its read and its write for longer.
 * While held, the lease is renewed every third of its time to live.
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
  settleMs?: number;
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

export class HeldLease {
  private timer: NodeJS.Timeout | undefined;
  constructor(
    private readonly store: ObjectStore,
    readonly record: LeaseRecord,
    private readonly ttlMs: number,
    private readonly now: () => Date,
    private readonly log: Logger,
  ) {
    this.timer = setInterval(() => void this.renew(), Math.max(1000, Math.floor(ttlMs / 3)));
    this.timer.unref();
  }

  private async renew(): Promise<void> {
    try {
      const current = await readLease(this.store, this.record.target);
      if (current && current.holder !== this.record.holder) {
        this.log.log("error", "the run's lease was taken over by another scheduler", { target: this.record.target, holder: current.host });
        return;
      }
      await storeJson(this.store, leaseKey(this.record.target), { ...this.record, expiresAt: new Date(this.now().getTime() + this.ttlMs).toISOString() });
    } catch (err) {
      this.log.log("warn", "could not renew the run's lease", { target: this.record.target, error: (err as Error).message });
    }
  }

  /** Stops renewing and removes the lease if it is still ours. */
  async release(): Promise<void> {
    clearInterval(this.timer);
    this.timer = undefined;
    try {
      const current = await readLease(this.store, this.record.target);
      if (current?.holder === this.record.holder) await this.store.delete([leaseKey(this.record.target)]);
    } catch (err) {
      this.log.log("warn", "could not release the run's lease (it expires by itself)", { target: this.record.target, error: (err as Error).message });
    }
  }
}

export async function acquireLease(store: ObjectStore, target: string, opts: LeaseOptions = {}): Promise<LeaseResult> {
  const now = opts.now ?? (() => new Date());
  const ttlMs = opts.ttlMs ?? 10 * 60_000;
  const log = opts.log ?? silentLogger;
  const live = (l: LeaseRecord | undefined): l is LeaseRecord => l !== undefined && Date.parse(l.expiresAt) > now().getTime();
  const existing = await readLease(store, target);
  if (live(existing)) return { taken: false, heldBy: existing };
  const record: LeaseRecord = {
    holder: randomUUID(),
    host: hostname(),
    pid: process.pid,
    target,
    acquiredAt: now().toISOString(),
    expiresAt: new Date(now().getTime() + ttlMs).toISOString(),
  };
  await storeJson(store, leaseKey(target), record);
  await sleep(opts.settleMs ?? 2000);
  const confirmed = await readLease(store, target);
  if (confirmed?.holder === record.holder) return { taken: true, lease: new HeldLease(store, record, ttlMs, now, log) };
  return { taken: false, heldBy: confirmed ?? record };
}
