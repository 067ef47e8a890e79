import { dirname, resolve } from "node:path";
import { LAST_REFRESH_FILE, LifeboatError, UsageError, errorMessage, formatDuration, joinKey, redact, type LifeboatConfig, type Logger, type Manifest, type ObjectStore, type SecretResolver } from "@lifeboat/core";
import {
  DefaultSecretResolver,
  createRestoreDatabase,
  displayUrl,
  engineOf,
  findBackup,
  ident,
  query,
  readJsonIfExists,
  resolveDatabase,
  runSqlFile,
  sameEndpoint,
  storeJson,
  swapRestore,
  type ConnectionInfo,
  type SwapResult,
} from "@lifeboat/runner";
import { heapForThroughput } from "@lifeboat/runner/heap";
import type { Context } from "../context.js";
import { identitiesFor } from "./keys.js";
import { parseWhen, readableFiles } from "../options.js";

export interface RefreshCliOptions {
  backup: string;
  at?: string;
  identity?: string[];
}

/** What `lifeboat refresh` records of its last run (`<target>/.lifeboat-last-refresh.json`): the daemon's schedule reads it. */
export interface LastRefresh {
  outcome: "succeeded" | "failed";
  finishedAt: string;
  backup?: string;
  error?: string;
}

export async function lastRefreshAt(store: ObjectStore, target: string): Promise<Date | undefined> {
  const last = await readJsonIfExists<LastRefresh>(store, joinKey(target, LAST_REFRESH_FILE));
  const at = last ? new Date(last.finishedAt) : undefined;
  return at && !Number.isNaN(at.getTime()) ? at : undefined;
}

export interface RefreshOutcome {
  how: "swapped" | "created";
  manifest: Manifest;
  to: ConnectionInfo;
  then: string[];
  swap?: SwapResult;
  /** Databases earlier refreshes replaced, dropped beyond refresh.keepPrevious. */
  dropped?: string[];
}

/**
 * After a swap: the databases earlier swaps replaced (`<name>_before_<YYYYMMDD_HHMMSS>`, as swap.ts names them), the
 * newest `keep` kept, older ones dropped. A failure to drop is a warning (the refresh itself succeeded).
 */
async function dropOlderPrevious(admin: ConnectionInfo, name: string, keep: number, log: Logger): Promise<string[]> {
  const prefix = `${name}_before_`;
  const rows = await query(admin, `select datname from pg_database where left(datname, ${[...prefix].length}) = '${prefix.replace(/'/g, "''")}';`);
  const previous = rows.map((r) => r[0]!).filter((d) => /^\d{8}_\d{6}$/.test(d.slice(prefix.length))).sort().reverse();
  const dropped: string[] = [];
  for (const db of previous.slice(keep)) {
    try {
      await query(admin, `drop database ${ident(db)} with (force);`);
      dropped.push(db);
    } catch (err) {
      log.log("warn", `could not drop "${db}", a database an earlier refresh replaced: drop it yourself`, { error: redact(errorMessage(err)) });
    }
  }
  if (dropped.length) log.log("info", "dropped databases earlier refreshes replaced", { dropped, kept: previous.slice(0, keep) });
  return dropped;
}

/**
 * The target's backup into its `refresh.to` database (staging), masked by `refresh.then` before it is handed over. An
 * existing database is replaced blue-green (restore --swap: the scripts run in the shadow, so the name never holds
 * un-masked data; the previous database is kept); a missing one is created under a temporary name, masked, then
 * named (dropped again if anything fails). Never into the target's own database. Its end is recorded in the store.
 */
export async function runRefresh(
  config: LifeboatConfig,
  configFile: string,
  target: string,
  deps: {
    store: ObjectStore;
    log: Logger;
    secrets: SecretResolver;
    identities: (manifest: Manifest) => Promise<string[] | undefined>;
    signal?: AbortSignal | undefined;
    backup?: string;
    at?: Date | undefined;
    onProgress?: (p: { phase: "download" | "restore"; done: number; total: number }) => void;
    /** Said once the database and the backup are known, before anything is fetched. */
    onStart?: (to: ConnectionInfo, manifest: Manifest) => void;
  },
): Promise<RefreshOutcome> {
  const t = config.targets[target];
  if (!t) throw new UsageError(`unknown target "${target}"`, `known targets: ${Object.keys(config.targets).join(", ")}`);
  if (!t.refresh) {
    throw new UsageError(`target "${target}" has no refresh: nothing says which database to refresh`, `add to it: refresh: { to: { url: { env: "STAGING_DATABASE_URL" } }, then: ["mask.sql"] }`);
  }
  // the scripts, relative to the config file, each readable before anything is fetched
  const then = t.refresh.then.map((f) => resolve(dirname(configFile), f));
  readableFiles(then, `targets.${target}.refresh.then: `, "paths are relative to the config file");
  const to = await resolveDatabase(t.refresh.to, deps.secrets, `targets.${target}.refresh.to`);
  // never the production database: by its address as configured, and by the cluster the backup was taken from
  const source = t.database.url !== undefined || t.database.host !== undefined ? await resolveDatabase(t.database, deps.secrets, `targets.${target}.database`).catch(() => undefined) : undefined;
  if (source && sameEndpoint(source, to)) throw ownDatabase(target, to);
  const manifest = await findBackup(deps.store, target, deps.backup ?? "latest", deps.log, undefined, deps.at);
  if (engineOf(manifest).name !== "postgresql") throw new UsageError(`backup ${manifest.id} of "${target}" is not a PostgreSQL backup: refresh restores PostgreSQL databases`);
  const admin: ConnectionInfo = { ...to, database: "postgres" };
  const [[identifier, exists] = []] = await query(
    admin,
    `select case when has_function_privilege('pg_control_system()', 'execute') then (select system_identifier::text from pg_control_system()) end,
       (select count(*) from pg_database where datname = '${to.database.replace(/'/g, "''")}');`,
  );
  if (manifest.database.systemIdentifier && identifier === manifest.database.systemIdentifier && to.database === manifest.database.name) throw ownDatabase(target, to);
  const identities = await deps.identities(manifest);
  deps.onStart?.(to, manifest);
  const record = (r: Omit<LastRefresh, "finishedAt">) =>
    storeJson(deps.store, joinKey(target, LAST_REFRESH_FILE), { ...r, finishedAt: new Date().toISOString() } satisfies LastRefresh).catch((err: unknown) =>
      deps.log.log("warn", "the refresh's record could not be stored (the schedule may run it again early)", { target, error: redact(errorMessage(err)) }),
    );
  try {
    let outcome: RefreshOutcome;
    if (exists !== "0") {
      const swap = await swapRestore({ store: deps.store, manifest, live: to, identities, then, log: deps.log, signal: deps.signal, ...(deps.onProgress ? { onProgress: deps.onProgress } : {}) });
      const dropped = await dropOlderPrevious(admin, to.database, t.refresh.keepPrevious, deps.log);
      outcome = { how: "swapped", manifest, to, then, swap, dropped };
    } else {
      // made under a temporary name, masked, then named: the staging name never holds un-masked data
      const created = await createRestoreDatabase(to, manifest, { log: deps.log, underTemporaryName: then.length > 0 });
      for (const w of created.warnings) deps.log.log("warn", w);
      try {
        await engineOf(manifest).restore({ store: deps.store, manifest, to: { database: created.working }, identities, force: false, noOwner: false, noAcl: false, signal: deps.signal, log: deps.log, ...(deps.onProgress ? { onProgress: deps.onProgress } : {}) });
        for (const f of then) await runSqlFile(created.working, f, deps.signal ? { signal: deps.signal } : {});
        await created.handOver();
      } catch (err) {
        await created.drop().catch(() => deps.log.log("warn", `could not drop database "${created.name}" that this refresh made: drop it yourself`));
        throw err;
      }
      outcome = { how: "created", manifest, to, then };
    }
    await record({ outcome: "succeeded", backup: manifest.id });
    return outcome;
  } catch (err) {
    await record({ outcome: "failed", backup: manifest.id, error: redact(errorMessage(err)).slice(0, 1000) });
    throw err;
  }
}

/** `lifeboat refresh <target>`. */
export async function refreshCommand(ctx: Context, target: string, opts: RefreshCliOptions): Promise<number> {
  const { file, config } = await ctx.requireConfig(`lifeboat refresh ${target}`);
  heapForThroughput();
  const store = await ctx.store(undefined, "--from");
  const at = opts.at === undefined ? undefined : parseWhen(opts.at, "--at", new Date());
  const signal = ctx.interruptible(`the refresh of "${target}"`);
  const t0 = Date.now();
  const res = await runRefresh(config, file, target, {
    store,
    log: ctx.out,
    secrets: new DefaultSecretResolver(),
    identities: (manifest) => identitiesFor(ctx, opts.identity, manifest, false),
    signal,
    backup: opts.backup,
    at,
    onStart: (to, manifest) => ctx.out.log("info", `refreshing ${displayUrl(to)} from "${target}" backup ${manifest.id} (started ${manifest.startedAt})`),
    onProgress: (p) => {
      if (p.phase === "download") ctx.out.progress("fetching", p.done, Date.now() - t0, p.total);
      else ctx.out.progressItems("restoring", p.done, p.total, "tables");
    },
  });
  const { manifest, to, then, swap } = res;
  if (swap) {
    ctx.out.result(
      [
        `refreshed ${displayUrl(to)} from "${target}" backup ${manifest.id}`,
        ...then.map((f) => `  then      ${f} (in the shadow, before the swap)`),
        `  swap      dark window ${formatDuration(swap.darkWindowMs)}; previous kept as "${swap.previous}"`,
        ...(res.dropped?.length ? [`  dropped   ${res.dropped.join(", ")} (older than the ${config.targets[target]!.refresh!.keepPrevious} kept: refresh.keepPrevious)`] : []),
        ...swap.warnings.map((w) => `  warning   ${w}`),
        `  when you no longer need the previous database: ${swap.dropPrevious}`,
      ].join("\n"),
      { status: "refreshed", how: "swapped", backup: manifest.id, target, to: displayUrl(to), then, previous: swap.previous, dropped: res.dropped ?? [], darkWindowMs: swap.darkWindowMs },
    );
    return 0;
  }
  ctx.out.result([`refreshed ${displayUrl(to)} from "${target}" backup ${manifest.id} (created)`, ...then.map((f) => `  then      ${f}`)].join("\n"), {
    status: "refreshed",
    how: "created",
    backup: manifest.id,
    target,
    to: displayUrl(to),
    then,
  });
  return 0;
}

function ownDatabase(target: string, to: ConnectionInfo): LifeboatError {
  return new LifeboatError(`targets.${target}.refresh.to is ${displayUrl(to)}, the database "${target}" backs up: a refresh replaces its database, and never the production one`, {
    exitCode: 2,
    hint: "point refresh.to at the staging database",
  });
}
