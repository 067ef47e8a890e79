import { UsageError, backupSize, errorMessage, formatBytes, parseStoreUrl, redact, type Manifest, type ObjectStore } from "@lifeboat/core";
import { DefaultSecretResolver, copiesOf, copyBackup, findBackup, listBackups, openCopies, openStore, type CopyStore } from "@lifeboat/runner";
import type { Context } from "../context.js";

export interface CopyCommandOptions {
  backup?: string;
  to?: string;
  from?: string;
}

/**
 * `lifeboat copy [target] --backup <id>|latest|missing [--to <copy>|<store-url>]`: copies backups from the primary
 * store (or --from any store holding them) into the config's copies, or into any store by its URL (no config needed),
 * each object hashed on its way and checked against its manifest before the copy gets the manifest. Exit 1 when a
 * copy failed.
 */
export async function copyCommand(ctx: Context, target: string | undefined, opts: CopyCommandOptions): Promise<number> {
  // --to a store URL: one store, no config needed (the repair of an ad hoc run's --copy)
  if (opts.to !== undefined && opts.to.includes("://")) return copyToUrl(ctx, target, opts.to, opts);
  const { config } = await ctx.requireConfig("lifeboat copy");
  if (target !== undefined && !config.targets[target]) throw new UsageError(`unknown target "${target}"`, `known targets: ${Object.keys(config.targets).join(", ")}`);
  const targets = target ? [target] : Object.keys(config.targets);
  const names = new Set(targets.flatMap((t) => copiesOf(config.storage, config.targets[t]).map((c) => c.name)));
  if (!names.size) throw new UsageError(`the config names no copies${target ? ` for target "${target}"` : ""} (storage.copies, or the target's copies)`, 'add one: storage: { ..., copies: [{ name: "offsite", s3: { bucket: "...", endpoint: "..." } }] } (docs/stores.md), or copy into a store by its URL: --to s3://bucket/prefix');
  if (opts.to !== undefined && !names.has(opts.to)) throw new UsageError(`no copy named "${opts.to}"`, `copies: ${[...names].join(", ")} (or a store URL: --to s3://bucket/prefix)`);
  const from = await ctx.store(opts.from, "--from");
  const secrets = new DefaultSecretResolver();
  return copyInto(ctx, from, target, async (name) => (await openCopies(config.storage, secrets, config.targets[name])).filter((c) => opts.to === undefined || c.name === opts.to), targets, opts.backup);
}

async function copyToUrl(ctx: Context, target: string | undefined, url: string, opts: CopyCommandOptions): Promise<number> {
  if (!target) throw new UsageError("lifeboat copy --to <store-url> needs the target whose backups to copy", `lifeboat copy <target> --to ${url}${opts.from ? ` --from ${opts.from}` : " --from s3://bucket/prefix"}`);
  const from = await ctx.store(opts.from, "--from");
  const to = openStore(parseStoreUrl(url));
  if (to.url === from.url) throw new UsageError(`--to ${url} is the store copied from`, "give --from the store holding the backups");
  return copyInto(ctx, from, target, async () => [{ name: to.url, store: to }], [target], opts.backup);
}

async function copyInto(ctx: Context, from: ObjectStore, target: string | undefined, copiesFor: (target: string) => Promise<CopyStore[]>, targets: string[], backup: string | undefined): Promise<number> {
  const which = backup ?? "missing";
  const signal = ctx.interruptible("the copy (the object being written is not kept)");
  const rows: Array<{ target: string; copy: string; url: string; backup: string; bytes: number; outcome: "copied" | "present" | "failed"; error?: string }> = [];
  let wantedCount = 0;
  for (const name of targets) {
    const copies = await copiesFor(name);
    if (!copies.length) continue;
    // the backups to copy: one (an id, or the newest), or every one the source holds
    const wanted: Manifest[] = which === "missing" ? await listBackups(from, name, ctx.out) : [await findBackup(from, name, which, ctx.out)];
    wantedCount += wanted.length;
    for (const c of copies) {
      for (const m of wanted) {
        try {
          const outcome = await copyBackup(from, c.store, m, { signal });
          rows.push({ target: name, copy: c.name, url: c.store.url, backup: m.id, bytes: backupSize(m), outcome });
          if (outcome === "copied") ctx.out.log("info", `copied ${m.target} ${m.id} to ${c.name}`, { bytes: backupSize(m), location: c.store.location(m.object.key) });
        } catch (err) {
          if (signal.aborted) throw err;
          const error = redact(errorMessage(err));
          rows.push({ target: name, copy: c.name, url: c.store.url, backup: m.id, bytes: backupSize(m), outcome: "failed", error });
          ctx.out.log("error", `copying ${m.target} ${m.id} to ${c.name} failed`, { error });
        }
      }
    }
  }
  const failed = rows.filter((r) => r.outcome === "failed");
  const summary = [...new Set(rows.map((r) => r.copy))].map((copy) => {
    const mine = rows.filter((r) => r.copy === copy);
    const count = (o: string) => mine.filter((r) => r.outcome === o).length;
    const bytes = mine.filter((r) => r.outcome === "copied").reduce((n, r) => n + r.bytes, 0);
    return `${copy.padEnd(16)} ${count("copied")} copied (${formatBytes(bytes)}), ${count("present")} already there, ${count("failed")} failed  ${[...new Set(mine.map((r) => r.url))].join(", ")}`;
  });
  ctx.out.result([`from ${from.url}${target ? `, target ${target}` : ""}: ${wantedCount} backup${wantedCount === 1 ? "" : "s"}`, ...summary, ...failed.map((f) => `  FAILED ${f.copy} ${f.target} ${f.backup}: ${f.error}`)].join("\n"), { from: from.url, copies: rows, failed: failed.length });
  return failed.length ? 1 : 0;
}
