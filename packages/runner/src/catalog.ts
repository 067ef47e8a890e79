import { Readable } from "node:stream";
import { ConditionalWriteFailed, LifeboatError, MANIFEST_SUFFIX, besideDump, VERIFY_SUFFIX, manifestSchema, silentLogger, targetPrefix, type Logger, type Manifest, type ObjectStore, type PutOptions } from "@lifeboat/core";

/**
 * Writes a small JSON document (a manifest, a drill result, a record). `conditions`: ifNoneMatch for what must never
 * change, ifMatch for a compare-and-swap of a mutable record (see ObjectStore.put). Returns the ETag when known.
 */
export async function storeJson(store: ObjectStore, key: string, value: unknown, conditions: Pick<PutOptions, "ifNoneMatch" | "ifMatch"> = {}): Promise<string | undefined> {
  return (await store.put(key, Readable.from([Buffer.from(JSON.stringify(value, null, 2) + "\n")]), { contentType: "application/json", ...conditions })).etag;
}

/** Writes what must never change once stored (a manifest, a drill result, a freshness marker): refused if the key holds an object. */
export async function storeOnce(store: ObjectStore, key: string, value: unknown): Promise<void> {
  await storeJson(store, key, value, { ifNoneMatch: "*" });
}

/**
 * Updates a mutable record (the run record, the newest-backup pointer) by compare-and-swap: `update` gets the record
 * as just read (undefined when there is none or it cannot be read) and returns the new one, or undefined to leave it;
 * it is written only over the version read (If-Match, or If-None-Match when there is none), and read and updated again
 * when another writer came in between. The bucket's policy refuses unconditional writes of history; this keeps
 * records from ever being written blind too.
 */
export async function updateJson<T>(store: ObjectStore, key: string, update: (current: T | undefined) => T | undefined, attempts = 3): Promise<void> {
  for (let n = 1; ; n++) {
    const current = await readVersionedJson<T>(store, key);
    const next = update(current?.value);
    if (next === undefined) return;
    try {
      await storeJson(store, key, next, current ? { ifMatch: current.etag } : { ifNoneMatch: "*" });
      return;
    } catch (err) {
      if (!(err instanceof ConditionalWriteFailed) || n >= attempts) throw err;
    }
  }
}

/** A small JSON record and its ETag, if the key holds one (value undefined when it cannot be parsed). */
export async function readVersionedJson<T>(store: ObjectStore, key: string): Promise<{ value: T | undefined; etag: string } | undefined> {
  const found = await readIfExists(store, key);
  if (!found) return undefined;
  try {
    return { value: JSON.parse(found.body.toString("utf8")) as T, etag: found.etag };
  } catch {
    return { value: undefined, etag: found.etag };
  }
}

/** Replaces a mutable record whatever it holds, by compare-and-swap (updateJson). */
export function replaceJson(store: ObjectStore, key: string, value: unknown, attempts = 3): Promise<void> {
  return updateJson(store, key, () => value, attempts);
}

/**
 * A small object and its ETag, if the key holds one. Listed first: on S3, a GET of a missing key is a 403, not a 404,
 * for a role whose ListBucket is limited to a prefix (the deployed runner's).
 */
export async function readIfExists(store: ObjectStore, key: string): Promise<{ body: Buffer; etag: string } | undefined> {
  for await (const o of store.list(key)) if (o.key === key) return store.read(key);
  return undefined;
}

/** An object's whole content (manifests, drill results: small JSON documents). */
export async function readObject(store: ObjectStore, key: string): Promise<Buffer> {
  const chunks: Buffer[] = [];
  for await (const c of await store.get(key)) chunks.push(Buffer.isBuffer(c) ? c : Buffer.from(c as string));
  return Buffer.concat(chunks);
}

/** A small JSON document if it exists (Lifeboat's bookkeeping: the lease, the last run, since.json), else undefined. */
export async function readJsonIfExists<T>(store: ObjectStore, key: string): Promise<T | undefined> {
  for await (const o of store.list(key)) {
    if (o.key !== key) continue;
    try {
      return JSON.parse((await readObject(store, key)).toString("utf8")) as T;
    } catch {
      return undefined; // removed or being replaced between list and read
    }
  }
  return undefined;
}

/**
 * A manifest found at `key` names its dump relative to the store it was written to. Read from a parent prefix (the
 * bucket's root while the backup was made at s3://bucket/adhoc), both sit one prefix deeper: the dump's key gets that
 * prefix, so that locations are true and a restore finds it. A manifest that is not where its own keys put it (read
 * from below the store it was written to, or copied elsewhere) cannot be restored from here: undefined.
 */
export function placeManifest(m: Manifest, key: string): Manifest | undefined {
  const own = besideDump(m, MANIFEST_SUFFIX);
  if (key === own) return m;
  if (!key.endsWith("/" + own)) return undefined;
  const prefix = key.slice(0, key.length - own.length);
  return { ...m, object: { ...m.object, key: prefix + m.object.key }, ...(m.parts ? { parts: m.parts.map((p) => ({ ...p, key: prefix + p.key })) } : {}) };
}

/**
 * Every backup in a store (or of one target), newest first. Only manifests are read: a dump without a manifest (an
 * interrupted run, a stray file) does not exist here. Unreadable manifests are skipped with a warning, and so are
 * manifests that do not lie where their backup's keys say (see placeManifest).
 */
export async function listBackups(store: ObjectStore, target?: string, log: Logger = silentLogger): Promise<Manifest[]> {
  const keys: string[] = [];
  for await (const o of store.list(target ? targetPrefix(target) : "")) {
    if (o.key.endsWith(MANIFEST_SUFFIX)) keys.push(o.key);
  }
  const manifests: Manifest[] = [];
  const CONCURRENCY = 8;
  for (let i = 0; i < keys.length; i += CONCURRENCY) {
    const batch = await Promise.all(
      keys.slice(i, i + CONCURRENCY).map(async (key) => {
        try {
          const parsed = manifestSchema.safeParse(JSON.parse((await readObject(store, key)).toString("utf8")));
          if (parsed.success) {
            const placed = placeManifest(parsed.data, key);
            if (!placed) log.log("warn", "skipping a manifest that is not where its backup was stored", { key, dump: parsed.data.object.key, hint: "list from the store the backup was written to (a parent prefix)" });
            return placed;
          }
          log.log("warn", "skipping an invalid manifest", { key, problems: parsed.error.issues.length });
        } catch (err) {
          log.log("warn", "skipping an unreadable manifest", { key, error: (err as Error).message });
        }
        return undefined;
      }),
    );
    for (const m of batch) if (m) manifests.push(m);
  }
  return manifests.sort((a, b) => (a.startedAt < b.startedAt ? 1 : a.startedAt > b.startedAt ? -1 : b.id.localeCompare(a.id)));
}

/** One backup by id, or the newest one ("latest"). */
export async function findBackup(store: ObjectStore, target: string | undefined, backup: string, log?: Logger, database?: string, at?: Date): Promise<Manifest> {
  const everything = await listBackups(store, target, log);
  const ofDatabase = database === undefined ? everything : everything.filter((m) => (m.kind === "globals" ? "globals" : m.database.name) === database);
  const where = `${store.url}${target ? ` for target "${target}"` : ""}`;
  if (at && backup !== "latest" && backup !== "latest-verified") {
    throw new LifeboatError(`--at chooses the backup by time: it cannot be combined with --backup ${backup}`, { exitCode: 2, hint: "give --at alone (the newest backup before it), or with --backup latest-verified" });
  }
  if (ofDatabase.length === 0) throw new LifeboatError(`no backups in ${where}`, { hint: "run `lifeboat list` to see what the store holds" });
  // as of a time: the backups that started before it (what the database held then is in the newest of them)
  const all = at ? ofDatabase.filter((m) => Date.parse(m.startedAt) < at.getTime()) : ofDatabase;
  if (all.length === 0) {
    throw new LifeboatError(`no backup in ${where} started before ${at!.toISOString()}`, { hint: `the oldest there started at ${ofDatabase.at(-1)!.startedAt}; see \`lifeboat list\`` });
  }
  if (backup === "latest" || backup === "latest-verified") {
    if (!target) {
      const targets = new Set(all.map((m) => m.target));
      if (targets.size > 1) {
        throw new LifeboatError(`${store.url} holds backups of several targets (${[...targets].join(", ")}); name one`, {
          exitCode: 2,
          hint: "lifeboat restore <target> ...",
        });
      }
    }
    const names = new Set(all.map((m) => (m.kind === "globals" ? "globals" : m.database.name)));
    if (database === undefined && names.size > 1) {
      throw new LifeboatError(`the latest backups of ${where} are of several databases (${[...names].sort().join(", ")}); name one`, { exitCode: 2, hint: "--database <name> (or --backup <id>)" });
    }
    if (backup === "latest") return all[0]!;
    // the newest whose newest restore drill passed (a backup drilled again and failed does not count)
    const drills = await drillResults(store, target);
    const verified = all.find((m) => drills.get(m.id)?.outcome === "passed");
    if (!verified) {
      throw new LifeboatError(`no backup in ${where}${at ? ` started before ${at.toISOString()}` : ""} has passed a restore drill`, {
        hint: `drill one first (lifeboat verify ${target ?? "<target>"} --backup <id>), or choose without the drill: --backup latest`,
      });
    }
    return verified;
  }
  const found = all.find((m) => m.id === backup);
  if (!found) {
    throw new LifeboatError(`no backup "${backup}" in ${where}`, { hint: `newest: ${all.slice(0, 3).map((m) => m.id).join(", ")}; see \`lifeboat list\`` });
  }
  return found;
}

/** The newest drill result of each backup that has one: backup id -> outcome and time. */
export async function drillResults(store: ObjectStore, target?: string): Promise<Map<string, { outcome: "passed" | "failed"; verifiedAt: string }>> {
  const out = new Map<string, { outcome: "passed" | "failed"; verifiedAt: string }>();
  for await (const o of store.list(target ? targetPrefix(target) : "")) {
    if (!o.key.endsWith(VERIFY_SUFFIX)) continue;
    try {
      const r = JSON.parse((await readObject(store, o.key)).toString("utf8")) as { backupId: string; outcome: "passed" | "failed"; verifiedAt: string };
      const known = out.get(r.backupId);
      // each drill is its own object: the newest verdict of a backup counts
      if (r.backupId && (r.outcome === "passed" || r.outcome === "failed") && (!known || known.verifiedAt < r.verifiedAt)) out.set(r.backupId, { outcome: r.outcome, verifiedAt: r.verifiedAt });
    } catch {
      /* an unreadable result is no result */
    }
  }
  return out;
}

/** When the target's last restore drill ran: the newest verifiedAt among its stored <id>.verify.json results. */
export async function lastVerifiedAt(store: ObjectStore, target: string): Promise<Date | undefined> {
  let newest: Date | undefined;
  for await (const o of store.list(targetPrefix(target))) {
    if (!o.key.endsWith(VERIFY_SUFFIX)) continue;
    try {
      const at = new Date((JSON.parse((await readObject(store, o.key)).toString("utf8")) as { verifiedAt: string }).verifiedAt);
      if (!Number.isNaN(at.getTime()) && (!newest || at > newest)) newest = at;
    } catch {
      /* an unreadable result does not count */
    }
  }
  return newest;
}
