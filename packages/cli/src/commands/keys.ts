import { existsSync } from "node:fs";
import { mkdir, writeFile } from "node:fs/promises";
import { dirname } from "node:path";
import { LifeboatError, UsageError, type Manifest } from "@lifeboat/core";
import { DefaultSecretResolver, generateIdentity, identitiesFromSecret, readIdentityFile } from "@lifeboat/runner";
import type { Context } from "../context.js";

/**
 * The identities that decrypt `manifest`: --identity files, else the config's encryption.identity of the backup's
 * target (only from a config the command may read). Unencrypted backups need none.
 */
export async function identitiesFor(ctx: Context, files: string[] | undefined, manifest: Manifest, adhoc: boolean): Promise<string[] | undefined> {
  if (files?.length) return (await Promise.all(files.map((f) => readIdentityFile(f)))).flat();
  if (!manifest.encryption) return undefined;
  const ref = (await ctx.config(adhoc))?.config.targets[manifest.target]?.encryption?.identity;
  if (!ref) return undefined;
  return identitiesFromSecret(ref, new DefaultSecretResolver(), `targets.${manifest.target}.encryption.identity`);
}

/** lifeboat keygen: a new age identity into a file only its owner may read; the public key on stdout. */
export async function keygenCommand(ctx: Context, opts: { output?: string }): Promise<number> {
  if (ctx.opts.config) throw new UsageError("lifeboat keygen reads no config: --config is not used here", "put the public key it prints into the config yourself (encryption.recipients)");
  if (!opts.output) throw new UsageError("lifeboat keygen needs --output <file>: the identity is a secret and is never printed", "lifeboat keygen --output ~/.config/lifeboat/identity.txt");
  if (existsSync(opts.output)) throw new LifeboatError(`refusing to overwrite ${opts.output}: it exists (it may be the only key to older backups)`, { exitCode: 2, hint: "choose a new file name" });
  const { identity, recipient } = await generateIdentity();
  await mkdir(dirname(opts.output), { recursive: true, mode: 0o700 });
  await writeFile(opts.output, `# created: ${new Date().toISOString()} by lifeboat keygen\n# public key: ${recipient}\n${identity}\n`, { mode: 0o600, flag: "wx" });
  ctx.out.result(
    [
      `identity written to ${opts.output} (mode 0600): keep it safe and apart from the backups; without it they cannot be restored`,
      `public key (a recipient; not a secret): ${recipient}`,
      `  config:  encryption: { recipients: ["${recipient}"] }`,
      `  ad hoc:  lifeboat run --db ... --to ... --recipient ${recipient}`,
    ].join("\n"),
    { status: "created", identityFile: opts.output, recipient },
  );
  return 0;
}
