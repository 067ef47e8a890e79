// What the dashboard and `lifeboat report` show, read from a store alone: each target's backups (manifests), drill
// results, run history and missed fire times, its verdict (the same as `lifeboat status`), and its fire times with
// what came of each. Manifests, drill results and run records are written once and never change: a StoreView keeps
// them between refreshes, so a refresh lists each target's keys and reads only what is new (and the few mutable
// records the verdict needs).
import {
  MANIFEST_SUFFIX,
  MISSED_FOLDER,
  RUNS_FOLDER,
  VERIFY_SUFFIX,
  defaultGraceMinutes,
  errorMessage,
  redact,
  silentLogger,
  manifestSchema,
  nextRun,
  parseSchedule,
  targetPrefix,
  type LifeboatConfig,
  type Manifest,
  type ObjectStore,
  type Schedule,
  type TargetConfig,
} from "@lifeboat/core";
import { DefaultSecretResolver, openCopiesForRun, placeManifest, readJsonIfExists, readObject, sinceKey, targetStatus, type CopyStore, type RunRecord, type StatusConfig, type TargetStatus, type VerifyResult } from "@lifeboat/runner";

/** What became of one scheduled fire time (or, for a target without a schedule, of one run). */
export type FireOutcome = "drilled" | "drill-failed" | "backed-up" | "failed" | "missed" | "due" | "before";

export interface FireCell {
  /** The fire time (a run's start, for a target without a schedule). */
  at: string;
  outcome: FireOutcome;
  /** The backup it produced, if any. */
  backupId?: string;
  /** What failed, for a failed run (redacted when it was stored). */
  detail?: string;
}

export interface TargetView {
  name: string;
  /** The config's target (schedule, retention, encryption...) when the dashboard was given one. */
  config: TargetConfig | undefined;
  status: TargetStatus;
  /** Newest first. */
  backups: Manifest[];
  /** Each backup's drills, newest first. */
  drills: Map<string, VerifyResult[]>;
  /** Newest first. */
  runs: RunRecord[];
  /** Fire times the freshness check reported missed (its markers), newest first. */
  reportedMissed: string[];
  /** Fire times, oldest first: the last `STRIP` (dashboard) or every one in a period (report). */
  fires: FireCell[];
  /** True when `fires` are runs (no schedule known), not fire times. */
  firesAreRuns: boolean;
  /** The target's copies (with a config): how many of its backups each holds, and whether the newest. */
  copies: CopyView[];
}

export interface CopyView {
  name: string;
  url: string;
  /** Backups of the primary the copy holds (their manifests). */
  held: number;
  holdsNewest: boolean;
  /** The copy cannot be read (redacted). */
  error?: string;
}

export const STRIP = 30;

export class StoreView {
  private readonly cache = new Map<string, unknown>();
  private readonly copyStores = new Map<string, Promise<CopyStore[]>>();
  constructor(
    readonly store: ObjectStore,
    readonly config: LifeboatConfig | undefined,
  ) {}

  /** The targets: the config's, else every target the store holds a backup or a run of. */
  async targetNames(): Promise<string[]> {
    if (this.config) return Object.keys(this.config.targets);
    const names = new Set<string>();
    for await (const o of this.store.list("")) {
      const first = o.key.split("/")[0]!;
      if (o.key.endsWith(MANIFEST_SUFFIX) || o.key.includes(`/${RUNS_FOLDER}/`)) names.add(first);
    }
    return [...names].sort();
  }

  /** One target as the store holds it now; `period`: every fire time in it instead of the last STRIP. */
  async target(name: string, now = new Date(), period?: { from: Date; to: Date }): Promise<TargetView> {
    const manifests: Manifest[] = [];
    const drills = new Map<string, VerifyResult[]>();
    const runs: RunRecord[] = [];
    const reportedMissed: string[] = [];
    const keys: string[] = [];
    for await (const o of this.store.list(targetPrefix(name))) keys.push(o.key);
    const immutable = keys.filter((k) => k.endsWith(MANIFEST_SUFFIX) || k.endsWith(VERIFY_SUFFIX) || k.includes(`/${RUNS_FOLDER}/`));
    await this.readNew(immutable);
    for (const key of immutable) {
      const value = this.cache.get(key);
      if (value === undefined || value === null) continue;
      if (key.endsWith(MANIFEST_SUFFIX)) manifests.push(value as Manifest);
      else if (key.endsWith(VERIFY_SUFFIX)) {
        const r = value as VerifyResult;
        drills.set(r.backupId, [...(drills.get(r.backupId) ?? []), r]);
      } else runs.push(value as RunRecord);
    }
    for (const key of keys) {
      const m = new RegExp(`/${MISSED_FOLDER}/(\\d{8}T\\d{6}Z)\\.json$`).exec(key);
      if (m) reportedMissed.push(fromCompact(m[1]!));
    }
    manifests.sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : b.id.localeCompare(a.id)));
    for (const list of drills.values()) list.sort((a, b) => (a.verifiedAt < b.verifiedAt ? 1 : -1));
    runs.sort((a, b) => (a.startedAt < b.startedAt ? 1 : -1));
    reportedMissed.sort().reverse();

    const config = this.config?.targets[name];
    const statusConfig: StatusConfig = { targets: { [name]: config ?? { maxRunMinutes: 360, timezone: "UTC" } } };
    const verdicts = new Map([...drills].map(([id, list]) => [id, { outcome: list[0]!.outcome, verifiedAt: list[0]!.verifiedAt }]));
    const status = await targetStatus(statusConfig, this.store, name, now, { backups: manifests, drills: verdicts });

    const parsed = config?.schedule ? parseSchedule(config.schedule) : undefined;
    let fires: FireCell[];
    if (parsed?.ok) {
      const watched = await readJsonIfExists<{ since: string }>(this.store, sinceKey(name));
      const firsts = [watched?.since, manifests.at(-1)?.startedAt, runs.at(-1)?.startedAt].filter((t): t is string => Boolean(t)).sort();
      const grace = (config!.freshness?.graceMinutes ?? defaultGraceMinutes(parsed.schedule, config!.timezone, config!.maxRunMinutes, now)) * 60_000;
      fires = fireTimes(parsed.schedule, config!.timezone, now, period).map((at, i, all) =>
        outcomeOf(at, all[i + 1], { backups: manifests, runs, drills, since: firsts[0], graceMs: grace, now }),
      );
    } else {
      fires = runCells(manifests, runs, drills, period);
    }
    return { name, config, status, backups: manifests, drills, runs, reportedMissed, fires, firesAreRuns: !parsed?.ok, copies: await this.copiesOf(name, manifests) };
  }

  /** What each copy of the target holds of its backups (listed: the copy's manifests, never read). */
  private async copiesOf(name: string, backups: Manifest[]): Promise<CopyView[]> {
    if (!this.config) return [];
    const config = this.config;
    // opened once per dashboard (credentials read once); a copy whose credentials cannot be read is left out, logged
    if (!this.copyStores.has(name)) this.copyStores.set(name, openCopiesForRun(config.storage, new DefaultSecretResolver(), config.targets[name], silentLogger));
    const out: CopyView[] = [];
    for (const c of await this.copyStores.get(name)!) {
      try {
        const ids = new Set<string>();
        for await (const o of c.store.list(targetPrefix(name))) if (o.key.endsWith(MANIFEST_SUFFIX)) ids.add(o.key.slice(o.key.lastIndexOf("/") + 1, -MANIFEST_SUFFIX.length));
        out.push({ name: c.name, url: c.store.url, held: backups.filter((m) => ids.has(m.id)).length, holdsNewest: backups.length === 0 || ids.has(backups[0]!.id) });
      } catch (err) {
        out.push({ name: c.name, url: c.store.url, held: 0, holdsNewest: false, error: redact(errorMessage(err)) });
      }
    }
    return out;
  }

  /** Reads the immutable records not read before (8 at a time); an unreadable one is remembered as nothing. */
  private async readNew(keys: string[]): Promise<void> {
    const missing = keys.filter((k) => !this.cache.has(k));
    for (let i = 0; i < missing.length; i += 8) {
      await Promise.all(
        missing.slice(i, i + 8).map(async (key) => {
          let value: unknown = null;
          try {
            const json = JSON.parse((await readObject(this.store, key)).toString("utf8")) as unknown;
            if (key.endsWith(MANIFEST_SUFFIX)) {
              const parsed = manifestSchema.safeParse(json);
              value = parsed.success ? (placeManifest(parsed.data, key) ?? null) : null;
            } else value = json;
          } catch {
            value = null;
          }
          this.cache.set(key, value);
        }),
      );
    }
  }
}

function fromCompact(c: string): string {
  return `${c.slice(0, 4)}-${c.slice(4, 6)}-${c.slice(6, 8)}T${c.slice(9, 11)}:${c.slice(11, 13)}:${c.slice(13, 15)}.000Z`;
}

/** A schedule's fire times up to now: the last STRIP, or every one in `period`. */
export function fireTimes(schedule: Schedule, timezone: string, now: Date, period?: { from: Date; to: Date }): Date[] {
  const end = period ? Math.min(period.to.getTime(), now.getTime()) : now.getTime();
  let start: Date;
  if (period) start = new Date(period.from.getTime() - 1);
  else {
    // far enough back for STRIP fire times of an irregular schedule (weekdays only, first of the month)
    const first = nextRun(schedule, timezone, now, now);
    const second = first ? nextRun(schedule, timezone, first, now) : undefined;
    const interval = first && second ? second.getTime() - first.getTime() : 86_400_000;
    start = new Date(now.getTime() - interval * STRIP * 3);
  }
  const out: Date[] = [];
  let t = nextRun(schedule, timezone, start, now);
  for (let steps = 0; t && t.getTime() <= end && steps < 200_000; steps++) {
    out.push(t);
    t = nextRun(schedule, timezone, t, now);
  }
  return period ? out : out.slice(-STRIP);
}

/**
 * What became of fire time `at`: the backup that started between it and the next fire time (drilled, or its drill
 * failed, or not drilled yet), else a failed run in that window, else missed once its grace period is over (due
 * until then); fire times before the target was first seen are "before".
 */
function outcomeOf(
  at: Date,
  next: Date | undefined,
  h: { backups: Manifest[]; runs: RunRecord[]; drills: Map<string, VerifyResult[]>; since: string | undefined; graceMs: number; now: Date },
): FireCell {
  const from = at.toISOString();
  const to = next?.toISOString() ?? "\uffff";
  const backup = [...h.backups].reverse().find((m) => m.startedAt >= from && m.startedAt < to);
  if (backup) return { at: from, ...backupCell(backup, h.drills) };
  const failed = h.runs.find((r) => r.outcome === "failed" && r.startedAt >= from && r.startedAt < to);
  if (failed) return { at: from, outcome: "failed", ...(failed.error ? { detail: failed.error } : {}) };
  if (!h.since || from < h.since.slice(0, 19)) return { at: from, outcome: "before" };
  return { at: from, outcome: at.getTime() + h.graceMs > h.now.getTime() ? "due" : "missed" };
}

function backupCell(m: Manifest, drills: Map<string, VerifyResult[]>): { outcome: FireOutcome; backupId: string } {
  const drill = drills.get(m.id)?.[0];
  return { outcome: drill ? (drill.outcome === "passed" ? "drilled" : "drill-failed") : "backed-up", backupId: m.id };
}

/** A target without a schedule: its runs (and backups made outside a recorded run), oldest first. */
function runCells(backups: Manifest[], runs: RunRecord[], drills: Map<string, VerifyResult[]>, period?: { from: Date; to: Date }): FireCell[] {
  const cells: FireCell[] = [
    ...backups.map((m) => ({ at: m.startedAt, ...backupCell(m, drills) })),
    ...runs.filter((r) => r.outcome === "failed").map((r) => ({ at: r.startedAt, outcome: "failed" as const, ...(r.error ? { detail: r.error } : {}) })),
  ].sort((a, b) => (a.at < b.at ? -1 : 1));
  if (!period) return cells.slice(-STRIP);
  const from = period.from.toISOString();
  const to = period.to.toISOString();
  return cells.filter((c) => c.at >= from && c.at <= to);
}

/** Every target's view (one after the other: a few list calls each). */
export async function allTargets(view: StoreView, now = new Date()): Promise<TargetView[]> {
  const out: TargetView[] = [];
  for (const name of await view.targetNames()) out.push(await view.target(name, now));
  return out;
}

/** The backup's own row in its target's view. */
export function findBackupIn(t: TargetView, id: string): Manifest | undefined {
  return t.backups.find((m) => m.id === id);
}
