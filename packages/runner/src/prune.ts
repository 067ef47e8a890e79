import { MANIFEST_SUFFIX, besideDump, planRetention, silentLogger, type Logger, type Manifest, type ObjectStore, type RetentionDecision, type RetentionPolicy } from "@lifeboat/core";
import { listBackups } from "./catalog.js";
import { verifyKey } from "./verify.js";

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
export async function pruneTarget(store: ObjectStore, target: string, policy: RetentionPolicy, opts: { dryRun?: boolean; now?: Date; log?: Logger } = {}): Promise<PruneResult> {
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
    const m = byId.get(d.id)!;
    await store.delete([besideDump(m, MANIFEST_SUFFIX)]);
    await store.delete([m.object.key, verifyKey(m)]);
    deleted.push(d.id);
    log.log("info", "pruned", { target, backup: d.id, startedAt: d.startedAt });
  }
  return { target, decisions, deleted, dryRun: Boolean(opts.dryRun) };
}
