import { resolve } from "node:path";
import { LifeboatError, UsageError, formatBytes, formatDuration } from "@lifeboat/core";
import { createRestoreDatabase, displayUrl, engineOf, findBackup, restoresToFileOnly, runSqlFile, selectiveRestore, swapRestore } from "@lifeboat/runner";
import { heapForThroughput } from "@lifeboat/runner/heap";
import { connectionArg, type Context } from "../context.js";
import { identitiesFor } from "./keys.js";
import { jobsOption } from "./verify.js";
import { parseWhen, readableFiles } from "../options.js";

export interface RestoreCliOptions {
  toFile?: string;
  database?: string;
  from?: string;
  backup: string;
  at?: string;
  to?: string;
  force?: boolean;
  owner: boolean;
  acl: boolean;
  jobs?: string;
  swap?: boolean;
  identity?: string[];
  create?: boolean;
  encoding?: string;
  locale?: string;
  dbOwner?: string;
  then?: string[];
  table?: string[];
  schema?: string[];
  intoSchema?: string;
}

export async function restoreCommand(ctx: Context, target: string | undefined, opts: RestoreCliOptions): Promise<number> {
  if (!opts.to && !opts.toFile) throw new UsageError("lifeboat restore needs --to <postgres-url> (or --to-file <path> for SQLite backups)", "an empty database (createdb <name>), or a new one with --create");
  if (opts.create && opts.swap) throw new UsageError("--create makes a new database and --swap replaces an existing one: give one of them");
  if (opts.create && opts.toFile) throw new UsageError("--create is for PostgreSQL databases (--to), not --to-file");
  for (const [flag, v] of [["--encoding", opts.encoding], ["--locale", opts.locale], ["--db-owner", opts.dbOwner]] as const) {
    if (v !== undefined && !opts.create) throw new UsageError(`${flag} sets how --create makes the database: give --create too`);
  }
  // --table / --schema: a selective restore (custom archives), beside the live tables with --into-schema
  const selection = opts.table?.length || opts.schema?.length ? { tables: opts.table ?? [], schemas: opts.schema ?? [], intoSchema: opts.intoSchema } : undefined;
  if (opts.intoSchema !== undefined && !selection) throw new UsageError("--into-schema places the tables --table / --schema choose: give those too");
  if (selection && (opts.swap || opts.toFile)) throw new UsageError(`--table and --schema restore some tables into a database: not with ${opts.swap ? "--swap" : "--to-file"}`);
  if (selection && opts.jobs !== undefined) throw new UsageError("--jobs is for whole restores: a selective restore loads the chosen tables in one transaction");
  // --then scripts: each readable before anything is fetched
  const then = (opts.then ?? []).map((f) => resolve(f));
  if (then.length && opts.toFile) throw new UsageError("--then runs SQL in a restored PostgreSQL database, not in a --to-file restore");
  readableFiles(then, "--then ", "give the path of a SQL file to run in the restored database");
  if (target && !opts.from) {
    const { config } = await ctx.requireConfig(`lifeboat restore ${target}`);
    if (!config.targets[target]) throw new UsageError(`unknown target "${target}"`, `known targets: ${Object.keys(config.targets).join(", ")}`);
  }
  heapForThroughput(); // a restore's CPU before its memory (packages/runner/src/heap.ts)
  const store = await ctx.store(opts.from, "--from");
  // a directory store's files are checked where they lie: nothing is downloaded
  const fetching = store.localPath ? "checking" : "downloading";
  const at = opts.at === undefined ? undefined : parseWhen(opts.at, "--at", new Date());
  const manifest = await findBackup(store, target, opts.backup, ctx.out, opts.database, at);
  // chosen by time or by drill: say which backup before anything is done
  if (at || opts.backup === "latest-verified") {
    const why = [at ? `the newest that started before ${at.toISOString()}` : "the newest", opts.backup === "latest-verified" ? "whose restore drill passed" : ""].filter(Boolean).join(" ");
    ctx.out.log("info", `chose backup ${manifest.id} of "${manifest.target}" (started ${manifest.startedAt}): ${why}`, { backup: manifest.id, startedAt: manifest.startedAt });
  }
  const identities = await identitiesFor(ctx, opts.identity, manifest, opts.from !== undefined);
  // the backup's engine restores it: a PostgreSQL dump into --to, a SQLite database to --to-file (each refuses the other)
  const engine = engineOf(manifest);
  const signal = ctx.interruptible(`the restore of backup ${manifest.id} (pg_restore / psql, and the temporary copy)`);
  if (opts.toFile) {
    const res = await engine.restore({ store, manifest, to: { file: opts.toFile }, force: Boolean(opts.force), log: ctx.out, identities, signal });
    if (res.into === "file") ctx.out.result(`restored SQLite backup ${manifest.id} of "${manifest.target}" to ${res.path} (sha256 and integrity_check verified)`, { status: "restored", backup: manifest.id, path: res.path });
    return 0;
  }
  if (engine.name !== "postgresql") throw restoresToFileOnly(manifest); // before --to is read, and for --swap too
  const to = connectionArg(opts.to, "--to");
  ctx.out.log("info", `restoring ${manifest.target} backup ${manifest.id} into ${displayUrl(to)}`, { size: manifest.object.size });
  const t0 = Date.now();
  const onProgress = (p: { phase: "download" | "restore"; done: number; total: number }) => {
    if (p.phase === "download") ctx.out.progress(fetching, p.done, Date.now() - t0, p.total);
    else ctx.out.progressItems("restoring", p.done, p.total, "tables");
  };
  if (opts.swap) {
    const jobs = jobsOption(opts.jobs);
    const res = await swapRestore({ store, manifest, live: to, identities, ...(jobs ? { jobs } : {}), then, log: ctx.out, onProgress, signal });
    ctx.out.result(
      [
        `swapped in backup ${manifest.id} of "${manifest.target}" as "${res.live}"`,
        `  dark window  ${formatDuration(res.darkWindowMs)} (new connections refused; ${res.sessionsEnded} session${res.sessionsEnded === 1 ? "" : "s"} ended)`,
        `  restore      ${formatDuration(res.restoreMs)} into the shadow, ${res.tablesChecked} tables checked against the manifest`,
        ...then.map((f) => `  then         ${f} (in the shadow, before the swap)`),
        `  previous     kept as "${res.previous}" (never dropped by Lifeboat)`,
        ...res.warnings.map((w) => `  warning      ${w}`),
        `  switch back (psql on the postgres database):`,
        ...res.switchBack.map((l) => `    ${l}`),
        `  when you no longer need the previous database:`,
        `    ${res.dropPrevious}`,
      ].join("\n"),
      { status: "swapped", backup: manifest.id, target: manifest.target, ...res },
    );
    return 0;
  }
  // --create: the database, made as the backed-up one was; dropped again if the restore into it fails
  // with --then scripts it is made under a temporary name and takes its own once they ran: never un-masked under it
  const created = opts.create ? await createRestoreDatabase(to, manifest, { encoding: opts.encoding, locale: opts.locale, owner: opts.dbOwner, log: ctx.out, underTemporaryName: then.length > 0 }) : undefined;
  for (const w of created?.warnings ?? []) ctx.out.log("warn", w);
  const into = created?.working ?? to;
  const thenMs: Array<{ file: string; ms: number }> = [];
  const progress = (p: { phase: "download" | "restore"; done: number; total: number }) => {
    if (p.phase === "download") ctx.out.progress(fetching, p.done, Date.now() - t0, p.total);
    else {
      if (p.done === 1) ctx.out.endProgress();
      ctx.out.progressItems("restoring", p.done, p.total, "tables");
    }
  };
  const res = await (selection ? selectiveRestore({ store, manifest, to: into, selection, identities, signal, log: ctx.out, onProgress: progress }).then((r) => ({ into: "selection" as const, ...r })) : engine
    .restore({
      store,
      manifest,
      to: { database: into },
      identities,
      force: Boolean(opts.force),
      noOwner: !opts.owner,
      noAcl: !opts.acl,
      signal,
      ...(jobsOption(opts.jobs) ? { jobs: jobsOption(opts.jobs)! } : {}),
      log: ctx.out,
      onProgress: progress,
    }))
    .then(async (restored) => {
      // --then: in the restored database before it is handed over; each script in one transaction
      for (const file of then) {
        ctx.out.log("info", `running ${file} in ${displayUrl(into)}`);
        try {
          thenMs.push({ file, ms: (await runSqlFile(into, file, { signal })).ms });
        } catch (err) {
          if (!created && err instanceof LifeboatError) {
            throw new LifeboatError(`${err.message}. ${displayUrl(to)} holds the restored backup without this script's changes${thenMs.length ? ` (the scripts before it ran: ${thenMs.map((t) => t.file).join(", ")})` : ""}`, err.hint ? { hint: err.hint } : {});
          }
          throw err;
        }
      }
      await created?.handOver();
      return restored;
    })
    .catch(async (err: unknown) => {
      if (created) {
        await created.drop().then(
          () => ctx.out.log("info", `dropped database "${created.name}" again: --create made it for this restore, which failed`),
          (e: unknown) => ctx.out.log("warn", `could not drop database "${created.name}" that --create made for this failed restore: drop it yourself`, { error: e instanceof Error ? e.message : String(e) }),
        );
      }
      throw err;
    });
  const createdLine = created ? [`  created   ${created.name} (encoding ${created.encoding ?? "default"}, collation ${created.collate ?? "default"}, owner ${created.owner ?? "the restoring user"})`] : [];
  if (res.into === "selection") {
    const wrong = res.tables.filter((t) => t.recorded !== undefined && t.recorded !== t.rows);
    ctx.out.result(
      [
        `restored ${res.tables.length} table${res.tables.length === 1 ? "" : "s"} of backup ${manifest.id} of "${manifest.target}" into ${displayUrl(to)}`,
        ...createdLine,
        ...res.tables.map((t) => `  table     ${t.table}${t.table === t.from ? "" : ` (was ${t.from})`}: ${t.rows} rows${t.recorded === undefined ? "" : t.recorded === t.rows ? " (as recorded)" : ` (the manifest records ${t.recorded})`}`),
        ...(res.foreignKeysLeftOut.length ? [`  left out  foreign keys ${res.foreignKeysLeftOut.join(", ")} (they may point to tables not restored: add them back with ALTER TABLE ... ADD CONSTRAINT)`] : []),
        `  sha256    verified (${res.archives} archive${res.archives === 1 ? "" : "s"} fetched)`,
        `  download  ${formatDuration(res.downloadMs)}`,
        `  restore   ${formatDuration(res.restoreMs)} (one transaction into the target; owners and grants left out)`,
        ...thenMs.map((t) => `  then      ${t.file} (${formatDuration(t.ms)})`),
      ].join("\n"),
      { status: "restored", backup: manifest.id, target: manifest.target, to: displayUrl(to), tables: res.tables, foreignKeysLeftOut: res.foreignKeysLeftOut, archives: res.archives, downloadMs: res.downloadMs, restoreMs: res.restoreMs, ...(thenMs.length ? { then: thenMs } : {}) },
    );
    if (wrong.length) throw new LifeboatError(`restored tables do not hold the rows the backup recorded: ${wrong.map((t) => `${t.table} ${t.rows} (recorded ${t.recorded})`).join(", ")}`);
    return 0;
  }
  if (res.into !== "database") return 0; // a PostgreSQL engine restores into a database
  ctx.out.result(
    [
      `restored backup ${manifest.id} of "${manifest.target}" into ${displayUrl(to)}`,
      ...createdLine,
      `  sha256    ${manifest.object.sha256} (verified)`,
      `  size      ${formatBytes(res.bytes)}`,
      `  download  ${formatDuration(res.downloadMs)}`,
      `  restore   ${formatDuration(res.restoreMs)} (${res.singleTransaction ? "one transaction" : `${res.jobs} parallel jobs`})`,
      ...thenMs.map((t) => `  then      ${t.file} (${formatDuration(t.ms)})`),
    ].join("\n"),
    { status: "restored", backup: manifest.id, target: manifest.target, to: displayUrl(to), ...(created ? { created: { database: created.name, encoding: created.encoding, collate: created.collate, ctype: created.ctype, ...(created.localeProvider ? { localeProvider: created.localeProvider.name, locale: created.localeProvider.locale } : {}), owner: created.owner } } : {}), sha256: manifest.object.sha256, downloadMs: res.downloadMs, restoreMs: res.restoreMs, jobs: res.jobs, ...(thenMs.length ? { then: thenMs } : {}) },
  );
  return 0;
}
