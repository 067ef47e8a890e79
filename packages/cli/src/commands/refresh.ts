import { accessSync, constants } from "node:fs";
import { dirname, resolve } from "node:path";
import { LifeboatError, UsageError, formatDuration } from "@lifeboat/core";
import { DefaultSecretResolver, createRestoreDatabase, displayUrl, engineOf, findBackup, query, resolveDatabase, runSqlFile, sameEndpoint, swapRestore, type ConnectionInfo } from "@lifeboat/runner";
import { heapForThroughput } from "@lifeboat/runner/heap";
import type { Context } from "../context.js";
import { identitiesFor } from "./keys.js";
import { parseWhen } from "../options.js";

export interface RefreshCliOptions {
  backup: string;
  at?: string;
  identity?: string[];
}

/**
 * `lifeboat refresh <target>`: the target's backup into its `refresh.to` database (staging), masked by `refresh.then`
 * before it is handed over. An existing database is replaced blue-green (restore --swap: the scripts run in the shadow,
 * so the name never holds un-masked data; the previous database is kept); a missing one is created (restore --create,
 * dropped again if anything fails). Never into the target's own database.
 */
export async function refreshCommand(ctx: Context, target: string, opts: RefreshCliOptions): Promise<number> {
  const { file, config } = await ctx.requireConfig(`lifeboat refresh ${target}`);
  const t = config.targets[target];
  if (!t) throw new UsageError(`unknown target "${target}"`, `known targets: ${Object.keys(config.targets).join(", ")}`);
  if (!t.refresh) {
    throw new UsageError(`target "${target}" has no refresh: nothing says which database to refresh`, `add to it: refresh: { to: { url: { env: "STAGING_DATABASE_URL" } }, then: ["mask.sql"] }`);
  }
  // the scripts, relative to the config file, each readable before anything is fetched
  const then = t.refresh.then.map((f) => resolve(dirname(file), f));
  for (const f of then) {
    try {
      accessSync(f, constants.R_OK);
    } catch {
      throw new UsageError(`targets.${target}.refresh.then: ${f}: no such readable file`, "paths are relative to the config file");
    }
  }
  heapForThroughput();
  const secrets = new DefaultSecretResolver();
  const to = await resolveDatabase(t.refresh.to, secrets, `targets.${target}.refresh.to`);
  // never the production database: by its address as configured, and by the cluster the backup was taken from
  const source = t.database.url !== undefined || t.database.host !== undefined ? await resolveDatabase(t.database, secrets, `targets.${target}.database`).catch(() => undefined) : undefined;
  if (source && sameEndpoint(source, to)) throw ownDatabase(target, to);
  const store = await ctx.store(undefined, "--from");
  const at = opts.at === undefined ? undefined : parseWhen(opts.at, "--at", new Date());
  const manifest = await findBackup(store, target, opts.backup, ctx.out, undefined, at);
  if (engineOf(manifest).name !== "postgresql") throw new UsageError(`backup ${manifest.id} of "${target}" is not a PostgreSQL backup: refresh restores PostgreSQL databases`);
  const admin: ConnectionInfo = { ...to, database: "postgres" };
  const [[identifier, exists] = []] = await query(
    admin,
    `select case when has_function_privilege('pg_control_system()', 'execute') then (select system_identifier::text from pg_control_system()) end,
       (select count(*) from pg_database where datname = '${to.database.replace(/'/g, "''")}');`,
  );
  if (manifest.database.systemIdentifier && identifier === manifest.database.systemIdentifier && to.database === manifest.database.name) throw ownDatabase(target, to);
  const identities = await identitiesFor(ctx, opts.identity, manifest, false);
  const signal = ctx.interruptible(`the refresh of ${displayUrl(to)} from backup ${manifest.id}`);
  ctx.out.log("info", `refreshing ${displayUrl(to)} from "${target}" backup ${manifest.id} (started ${manifest.startedAt})`, { then: then.length });
  const t0 = Date.now();
  const onProgress = (p: { phase: "download" | "restore"; done: number; total: number }) => {
    if (p.phase === "download") ctx.out.progress("fetching", p.done, Date.now() - t0, p.total);
    else ctx.out.progressItems("restoring", p.done, p.total, "tables");
  };
  if (exists !== "0") {
    const res = await swapRestore({ store, manifest, live: to, identities, then, log: ctx.out, onProgress, signal });
    ctx.out.result(
      [
        `refreshed ${displayUrl(to)} from "${target}" backup ${manifest.id}`,
        ...then.map((f) => `  then      ${f} (in the shadow, before the swap)`),
        `  swap      dark window ${formatDuration(res.darkWindowMs)}; previous kept as "${res.previous}"`,
        ...res.warnings.map((w) => `  warning   ${w}`),
        `  when you no longer need the previous database: ${res.dropPrevious}`,
      ].join("\n"),
      { status: "refreshed", how: "swapped", backup: manifest.id, target, to: displayUrl(to), then, previous: res.previous, darkWindowMs: res.darkWindowMs },
    );
    return 0;
  }
  // made under a temporary name, masked, then named: the staging name never holds un-masked data
  const created = await createRestoreDatabase(to, manifest, { log: ctx.out, underTemporaryName: then.length > 0 });
  for (const w of created.warnings) ctx.out.log("warn", w);
  try {
    await engineOf(manifest).restore({ store, manifest, to: { database: created.working }, identities, force: false, noOwner: false, noAcl: false, signal, log: ctx.out, onProgress });
    for (const f of then) await runSqlFile(created.working, f, { signal });
    await created.handOver();
  } catch (err) {
    await created.drop().catch(() => ctx.out.log("warn", `could not drop database "${created.name}" that this refresh made: drop it yourself`));
    throw err;
  }
  ctx.out.result(
    [`refreshed ${displayUrl(to)} from "${target}" backup ${manifest.id} (created)`, ...then.map((f) => `  then      ${f}`)].join("\n"),
    { status: "refreshed", how: "created", backup: manifest.id, target, to: displayUrl(to), then },
  );
  return 0;
}

function ownDatabase(target: string, to: ConnectionInfo): LifeboatError {
  return new LifeboatError(`targets.${target}.refresh.to is ${displayUrl(to)}, the database "${target}" backs up: a refresh replaces its database, and never the production one`, {
    exitCode: 2,
    hint: "point refresh.to at the staging database",
  });
}
