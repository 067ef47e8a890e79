import { RUNS_FOLDER, compactTime, joinKey, UnsupportedStoreFeature, warnUnsupportedOnce, MANIFEST_SUFFIX, VERIFY_SUFFIX, backupObjects, besideDump, planRetention, silentLogger, targetPrefix, type Logger, type Manifest, type ObjectStore, type RetentionDecision, type RetentionPolicy } from "@lifeboat/core";
import { listBackups } from "./catalog.js";
import { DirectoryStore } from "./stores/directory.js";
import type { CopyStore } from "./stores/index.js";
import { verifyKeys } from "./verify.js";

export interface PruneResult {
  target: string;
  decisions: RetentionDecision[];
  deleted: string[];
  dryRun: boolean;
}

/**
 * Applies a retention policy to one target's backups in a store. Each deleted backup loses its manifest first (so
 * it stops existing for list and restore at once), then its dump and its drill result.
 */
export async function pruneTarget(store: ObjectStore, target: string, policy: RetentionPolicy, opts: { dryRun?: boolean; now?: Date; log?: Logger; signal?: AbortSignal } = {}): Promise<PruneResult> {
  const log = opts.log ?? silentLogger;
  const backups = await listBackups(store, target, log);
  const byId = new Map<string, Manifest>(backups.map((m) => [m.id, m]));
  // each database of a target (and its globals) has its own history: the newest of each is kept
  const groups = new Map<string, Manifest[]>();
  for (const m of backups) {
    const g = m.kind === "globals" ? "\0globals" : m.database.name;
    groups.set(g, [...(groups.get(g) ?? []), m]);
  }
  const decisions = [...groups.values()]
    .flatMap((group) => planRetention(group, policy, opts.now ?? new Date()))
    .sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : 0));
  const deleted: string[] = [];
  for (const d of decisions) {
    if (d.keep || opts.dryRun) continue;
    // stopped (SIGINT, SIGTERM): between two backups, never half way through one
    opts.signal?.throwIfAborted();
    const m = byId.get(d.id)!;
    await store.delete([besideDump(m, MANIFEST_SUFFIX)]);
    await store.delete([...backupObjects(m).map((o) => o.key), ...(await verifyKeys(store, m))]);
    deleted.push(d.id);
    log.log("info", "pruned", { target, backup: d.id, startedAt: d.startedAt });
  }
  // the run history goes with the backups: runs that started before the oldest backup kept
  const kept = decisions.filter((d) => d.keep).map((d) => d.startedAt).sort()[0];
  if (kept && deleted.length && !opts.dryRun) {
    const before = compactTime(new Date(kept));
    const old: string[] = [];
    for await (const o of store.list(joinKey(target, RUNS_FOLDER) + "/")) if (o.key.slice(o.key.lastIndexOf("/") + 1) < before) old.push(o.key);
    if (old.length) await store.delete(old);
  }
  return { target, decisions, deleted, dryRun: Boolean(opts.dryRun) };
}

/**
 * Retention in a target's copies: each with its own policy, else the target's (`policy`); a copy whose retention is
 * "store" is left to the store's own rules (Lifeboat never deletes there), and one without any policy is not pruned.
 */
export async function pruneCopies(copies: CopyStore[], target: string, policy: RetentionPolicy | undefined, opts: { dryRun?: boolean; now?: Date; log?: Logger; signal?: AbortSignal } = {}): Promise<Array<{ copy: string; result?: PruneResult; skipped?: "store" | "no policy" }>> {
  const out: Array<{ copy: string; result?: PruneResult; skipped?: "store" | "no policy" }> = [];
  for (const c of copies) {
    if (c.retention === "store") {
      out.push({ copy: c.name, skipped: "store" });
      continue;
    }
    const own = c.retention ?? policy;
    if (!own) {
      out.push({ copy: c.name, skipped: "no policy" });
      continue;
    }
    out.push({ copy: c.name, result: await pruneTarget(c.store, target, own, opts) });
  }
  return out;
}

/** What a run can leave behind: pending multipart uploads, `.partial` files, dumps whose manifest was never written. */
export interface Leftover {
  kind: "pending upload" | "partial file" | "dump without manifest";
  key: string;
  startedAt?: string;
  size?: number;
}

const DAY_MS = 86_400_000;

/** A directory store leaves partial files, an S3 store pending multipart uploads. */
const incompleteKind = (store: ObjectStore): Leftover["kind"] => (store instanceof DirectoryStore ? "partial file" : "pending upload");

/** Every leftover under a target's prefix (or the whole store): what `list --all` shows. */
export async function findLeftovers(store: ObjectStore, target?: string, log: Logger = silentLogger): Promise<Leftover[]> {
  const prefix = target ? targetPrefix(target) : "";
  const out: Leftover[] = [];
  await optional(log, async () => {
    for await (const u of store.incomplete(prefix)) {
      out.push({ kind: incompleteKind(store), key: u.key, startedAt: u.startedAt.toISOString() });
    }
  });
  const dumps = new Map<string, number>();
  for await (const o of store.list(prefix)) {
    // manifests, drill results, and Lifeboat's own bookkeeping (the lease, missed-backup markers: ".lifeboat-*")
    if (o.key.endsWith(MANIFEST_SUFFIX) || o.key.endsWith(VERIFY_SUFFIX) || o.key.split("/").some((seg) => seg.startsWith(".lifeboat-"))) continue;
    dumps.set(o.key, o.size);
  }
  for (const m of await listBackups(store, target)) for (const o of backupObjects(m)) dumps.delete(o.key);
  for (const [key, size] of dumps) out.push({ kind: "dump without manifest", key, size });
  return out;
}

/**
 * Aborts pending multipart uploads and removes `.partial` files older than a day (younger ones may belong to a run in
 * progress); dumps without a manifest are only reported (`list --all`).
 */
export async function cleanLeftovers(store: ObjectStore, target: string | undefined, opts: { dryRun?: boolean; now?: Date; log?: Logger } = {}): Promise<Leftover[]> {
  const log = opts.log ?? silentLogger;
  const before = (opts.now ?? new Date()).getTime() - DAY_MS;
  const removed: Leftover[] = [];
  await optional(log, async () => {
    for await (const u of store.incomplete(target ? targetPrefix(target) : "")) {
      if (u.startedAt.getTime() > before) continue;
      if (!opts.dryRun) await store.removeIncomplete(u);
      const leftover: Leftover = { kind: incompleteKind(store), key: u.key, startedAt: u.startedAt.toISOString() };
      removed.push(leftover);
      log.log("info", opts.dryRun ? "would remove a leftover" : "removed a leftover", { ...leftover });
    }
  });
  return removed;
}

/** Housekeeping a store may not support (ListMultipartUploads): warned about once, then skipped. */
async function optional(log: Logger, work: () => Promise<void>): Promise<void> {
  try {
    await work();
  } catch (err) {
    if (!(err instanceof UnsupportedStoreFeature)) throw err;
    warnUnsupportedOnce(err, log);
  }
}
