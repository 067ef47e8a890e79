import { UsageError, recipientProblem, compressionText, manifestCompression, parseCompression, restoreCommandFor, dumpSchema, type Compression, formatBytes, formatDuration, parseStoreUrl, retriesSchema, type DumpOptions, type RetryPolicy, backupSize } from "@lifeboat/core";
import { DefaultSecretResolver, type CopyStore, heartbeatStarted, isMultiDatabase, openCopiesForRun, openStore, resolveDatabase, runBackup, runTargetBackups, type ConnectionInfo } from "@lifeboat/runner";
import { connectionArg, type Context } from "../context.js";
import { wholeNumber } from "../options.js";
import { runRemote } from "./remote.js";

export interface RunOptions {
  remote?: boolean;
  launcher?: string;
  reason?: string;
  db?: string;
  to?: string;
  name?: string;
  format?: string;
  compression?: string;
  attempts?: string;
  jobs?: string;
  recipient?: string[];
  copy?: string[];
}

function compressionOption(v: string | undefined): Compression | undefined {
  if (v === undefined) return undefined;
  try {
    return parseCompression(v);
  } catch (err) {
    throw new UsageError(`--compression: ${(err as Error).message}`);
  }
}

export async function runCommand(ctx: Context, target: string | undefined, opts: RunOptions): Promise<number> {
  const { out } = ctx;
  if (opts.remote) {
    if (!target || opts.db || opts.to) throw new UsageError("--remote runs a target of the deployment: lifeboat run <target> --remote");
    return runRemote(ctx, target, opts);
  }
  let name: string;
  let resolveSource: () => Promise<ConnectionInfo>;
  let dump: DumpOptions;
  let retries: RetryPolicy;
  const storeUrl = opts.to;
  let restoreHint: string;
  const attempts = wholeNumber(opts.attempts, "--attempts", 1, 10);
  const jobs = wholeNumber(opts.jobs, "--jobs", 1, 16);
  const compression = compressionOption(opts.compression);
  for (const [i, r] of (opts.recipient ?? []).entries()) {
    // never quoted back: a private key given by mistake must not reach the logs as well
    const problem = recipientProblem(r);
    if (problem) throw new UsageError(`--recipient${opts.recipient!.length > 1 ? ` #${i + 1}` : ""} ${problem}`, "lifeboat keygen --output FILE (or age-keygen) prints a key pair's public key");
  }
  const encryption = opts.recipient?.length ? { recipients: [...new Set(opts.recipient)] } : undefined;
  if (opts.format !== undefined && opts.format !== "custom" && opts.format !== "plain") {
    throw new UsageError(`--format must be custom or plain, not "${opts.format}"`);
  }

  if (target) {
    if (opts.db) throw new UsageError("give either a target from the config or --db, not both");
    const { config } = await ctx.requireConfig(`lifeboat run ${target}`);
    const t = config.targets[target];
    if (!t) throw new UsageError(`unknown target "${target}"`, `known targets: ${Object.keys(config.targets).join(", ")}`);
    name = target;
    const secrets = new DefaultSecretResolver();
    resolveSource = () => resolveDatabase(t.database, secrets, `targets.${target}.database`);
    const merged = dumpSchema.safeParse({ ...t.dump, ...(jobs !== undefined ? { jobs } : {}), ...(opts.format ? { format: opts.format } : {}), ...(compression !== undefined ? { compression: opts.compression } : t.dump.compression ? { compression: compressionText(t.dump.compression) } : {}) });
    if (!merged.success) throw new UsageError(merged.error.issues.map((i) => i.message).join("; "));
    dump = merged.data;
    retries = { ...t.retries, ...(attempts !== undefined ? { attempts } : {}) };
    restoreHint = `lifeboat restore ${target}${storeUrl ? ` --from ${storeUrl}` : ""}`;
  } else {
    if (!opts.to) {
      throw new UsageError("lifeboat run needs a target from the config, or --to <store-url> with --db <database> (or PG* variables)", "lifeboat run --help");
    }
    const conn = connectionArg(opts.db, "--db");
    name = opts.name ?? conn.database.toLowerCase().replace(/[^a-z0-9_-]/g, "-").replace(/^[^a-z0-9]+/, "");
    if (!/^[a-z0-9][a-z0-9_-]{0,62}$/.test(name)) throw new UsageError(`--name "${name}" is not a valid target name`, "lowercase letters, digits, - and _");
    resolveSource = async () => conn;
    const parsed = dumpSchema.safeParse({ ...(jobs !== undefined ? { jobs } : {}), ...(opts.format ? { format: opts.format } : {}), ...(opts.compression !== undefined ? { compression: opts.compression } : {}) });
    if (!parsed.success) throw new UsageError(parsed.error.issues.map((i) => i.message).join("; "));
    dump = parsed.data;
    retries = retriesSchema.parse({ attempts: attempts ?? 3, delaySeconds: 5, maxDelaySeconds: 60 });
    restoreHint = `lifeboat restore ${name} --from ${opts.to}`;
  }
  // an ad hoc run (--db/PG* and --to) reads no config: nothing in the working directory changes what it does
  const config = target ? (await ctx.config())?.config : undefined;
  const store = storeUrl ? openStore(parseStoreUrl(storeUrl)) : openStore(config!.storage);
  // --copy: these stores instead of the target's copies (written at the same time, as copies are); a target's own
  // copies otherwise, and none for an ad hoc run
  const copies: CopyStore[] | undefined = opts.copy?.length
    ? opts.copy.map((url, i) => {
        const c = openStore(parseStoreUrl(url));
        if (c.url === store.url) throw new UsageError(`--copy ${url} is the store itself (--to)`, "a copy is another store: another bucket, provider or disk");
        return { name: `copy-${i + 1}`, store: c };
      })
    : target && !storeUrl && config
      ? await openCopiesForRun(config.storage, new DefaultSecretResolver(), config.targets[target], out)
      : undefined;
  const bus = await ctx.bus(target ? config : undefined);

  // SIGINT/SIGTERM: pg_dump is stopped, the upload aborted, nothing published as a success; exit 130 / 143 (main.ts)
  const signal = ctx.interruptible(`the backup of "${name}" (pg_dump, and the upload: nothing is stored)`);
  out.log("info", `backing up "${name}" to ${store.url}`, { target: name });
  const job = {
    target: name,
    resolveSource,
    store,
    trigger: "manual" as const,
    signal,
    log: out,
    bus,
    restoreHint,
    onProgress: (p: { bytes: number; elapsedMs: number }) => out.progress("dumping", p.bytes, p.elapsedMs),
    ...(encryption ? { encryption } : {}),
    ...(copies ? { copies } : {}),
  };
  // config targets go through the target run (engine, several databases); ad hoc runs are one backup
  const t = target ? config!.targets[target]! : undefined;
  if (t) await heartbeatStarted(config!, new DefaultSecretResolver(), name, { log: out, signal });
  const results = t ? (await runTargetBackups({ ...t, dump, retries }, job)).results : [{ database: "", result: await runBackup({ ...job, dump, retries }) }];
  if (t && isMultiDatabase(t)) {
    out.result(
      [`backups of "${name}" stored`, ...results.map((r) => `  ${r.database.padEnd(20)} ${r.result!.manifest.id}  ${formatBytes(backupSize(r.result!.manifest))}  ${r.result!.location}`)].join("\n"),
      { status: "succeeded", databases: results.map((r) => ({ database: r.database, location: r.result!.location, manifest: r.result!.manifest })) },
    );
    return 0;
  }
  const result = results[0]!.result!;
  const m = result.manifest;
  // an ad hoc copy (--copy) is repaired by its URL, a config's copy by its name
  const repairTo = (c: { name: string }) => (opts.copy?.length ? `${opts.copy[Number(c.name.slice("copy-".length)) - 1]} --from ${store.url}` : c.name);
  const copyLines = result.copies.map((c) => `  copy      ${c.name}: ${c.ok ? c.location : `FAILED (${c.error}); repair: lifeboat copy ${name} --backup ${m.id} --to ${repairTo(c)}`}`);
  out.result(
    [
      `backup of "${name}" stored`,
      `  id        ${m.id}`,
      `  location  ${result.location}`,
      `  size      ${formatBytes(backupSize(m))} (${backupSize(m)} bytes${m.parts ? ` in ${m.parts.length + 1} archives` : ""}, ${m.format}, compression ${typeof m.compression === "number" ? compressionText(manifestCompression(m.compression)) : m.compression})`,
      `  sha256    ${m.object.sha256}`,
      ...(m.encryption ? [`  encrypted age, for ${m.encryption.recipients.join(", ")}`] : []),
      `  duration  ${formatDuration(m.durationMs)} (attempt ${m.attempt})`,
      `  restore   ${restoreCommandFor(restoreHint, m)}`,
      ...copyLines,
    ].join("\n"),
    { status: "succeeded", location: result.location, manifestLocation: result.manifestLocation, manifest: m, attempts: result.attempts, ...(result.copies.length ? { copies: result.copies } : {}) },
  );
  return 0;
}

