import { UsageError, backupSize, errorMessage, formatBytes, redact, type Manifest } from "@lifeboat/core";
import { DefaultSecretResolver, copyBackup, findBackup, listBackups, openCopies } from "@lifeboat/runner";
import type { Context } from "../context.js";

export interface CopyCommandOptions {
  backup?: string;
  to?: string;
  from?: string;
}

/**
 * `lifeboat copy [target] --backup <id>|latest|missing [--to <copy>]`: copies backups from the primary store (or
 * --from any store holding them) into the config's copies, each object hashed on its way and checked against its
 * manifest before the copy gets the manifest. Exit 1 when a copy failed.
 */
export async function copyCommand(ctx: Context, target: string | undefined, opts: CopyCommandOptions): Promise<number> {
  const { config } = await ctx.requireConfig("lifeboat copy");
  if (!config.storage.copies?.length) throw new UsageError("the config names no copies (storage.copies)", 'add one: storage: { ..., copies: [{ name: "offsite", s3: { bucket: "...", endpoint: "..." } }] } (docs/stores.md)');
  if (target !== undefined && !config.targets[target]) throw new UsageError(`unknown target "${target}"`, `known targets: ${Object.keys(config.targets).join(", ")}`);
  const names = config.storage.copies.map((c) => c.name);
  if (opts.to !== undefined && !names.includes(opts.to)) throw new UsageError(`no copy named "${opts.to}"`, `copies: ${names.join(", ")}`);
  const from = await ctx.store(opts.from, "--from");
  const copies = (await openCopies(config.storage, new DefaultSecretResolver())).filter((c) => opts.to === undefined || c.name === opts.to);
  const which = opts.backup ?? "missing";
  const signal = ctx.interruptible("the copy (the object being written is not kept)");
  // the backups to copy: one (an id, or the newest), or every one the source holds
  const wanted: Manifest[] = which === "missing" ? await listBackups(from, target, ctx.out) : [await findBackup(from, target, which, ctx.out)];
  const rows: Array<{ copy: string; backup: string; outcome: "copied" | "present" | "failed"; error?: string }> = [];
  for (const c of copies) {
    for (const m of wanted) {
      try {
        const outcome = await copyBackup(from, c.store, m, { signal });
        rows.push({ copy: c.name, backup: m.id, outcome });
        if (outcome === "copied") ctx.out.log("info", `copied ${m.target} ${m.id} to ${c.name}`, { bytes: backupSize(m), location: c.store.location(m.object.key) });
      } catch (err) {
        if (signal.aborted) throw err;
        const error = redact(errorMessage(err));
        rows.push({ copy: c.name, backup: m.id, outcome: "failed", error });
        ctx.out.log("error", `copying ${m.target} ${m.id} to ${c.name} failed`, { error });
      }
    }
  }
  const failed = rows.filter((r) => r.outcome === "failed");
  const summary = copies.map((c) => {
    const mine = rows.filter((r) => r.copy === c.name);
    const count = (o: string) => mine.filter((r) => r.outcome === o).length;
    const bytes = wanted.filter((m) => mine.some((r) => r.backup === m.id && r.outcome === "copied")).reduce((n, m) => n + backupSize(m), 0);
    return `${c.name.padEnd(16)} ${count("copied")} copied (${formatBytes(bytes)}), ${count("present")} already there, ${count("failed")} failed  ${c.store.url}`;
  });
  ctx.out.result([`from ${from.url}${target ? `, target ${target}` : ""}: ${wanted.length} backup${wanted.length === 1 ? "" : "s"}`, ...summary, ...failed.map((f) => `  FAILED ${f.copy} ${f.backup}: ${f.error}`)].join("\n"), { from: from.url, copies: rows, failed: failed.length });
  return failed.length ? 1 : 0;
}
