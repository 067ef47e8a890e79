import { readFile } from "node:fs/promises";
import { Readable } from "node:stream";
import type { ReadableStream as WebReadableStream } from "node:stream/web";
import { AGE_RECIPIENT, LifeboatError, errorMessage, redact, type Manifest, type SecretRef, type SecretResolver } from "@lifeboat/core";

/**
 * Client-side encryption with age (https://age-encryption.org/v1), through the maintained TypeScript implementation
 * (age-encryption, by age's author: streaming, X25519 recipients, files the `age` tool reads). Backups are encrypted
 * for public keys (recipients); only an identity (AGE-SECRET-KEY-1...) decrypts them. Identities are secrets: they
 * never reach a log, an event, a manifest or an error message here, and are never read from a plain config value.
 */

/** An encrypted backup that cannot be read: no identity, an identity of none of its recipients, a failed decryption. */
export class DecryptionError extends LifeboatError {}

/** The first line of every age file. */
export const AGE_HEADER = "age-encryption.org/v1";

const age = () => import("age-encryption");

/** The stream encrypted for `recipients`, as an age file. Errors of the source fail the result; destroying it stops the source. */
export async function encryptStream(source: Readable, recipients: string[]): Promise<Readable> {
  const { Encrypter } = await age();
  const e = new Encrypter();
  for (const r of recipients) e.addRecipient(r);
  const encrypted = await e.encrypt(Readable.toWeb(source) as unknown as ReadableStream<Uint8Array>);
  return Readable.fromWeb(encrypted as unknown as WebReadableStream<Uint8Array>);
}

/** The plaintext of an age file. A file for none of the identities fails at its header, before any plaintext. */
export async function decryptStream(source: Readable, identities: string[]): Promise<Readable> {
  const { Decrypter } = await age();
  const d = new Decrypter();
  for (const i of identities) d.addIdentity(i);
  try {
    const plain = await d.decrypt(Readable.toWeb(source) as unknown as ReadableStream<Uint8Array>);
    return Readable.fromWeb(plain as unknown as WebReadableStream<Uint8Array>);
  } catch (err) {
    source.destroy();
    throw new DecryptionError(`decryption failed: ${safeAgeMessage(err)}`, { hint: "pass the identity of one of the backup's recipients (--identity FILE)" });
  }
}

/** age's own message, which names no key; anything that looks like one is cut out all the same. */
function safeAgeMessage(err: unknown): string {
  return String((err as Error)?.message ?? err).replace(/AGE-SECRET-KEY-[0-9A-Z-]+/gi, "[identity]");
}

/** A new X25519 identity and its recipient (the kind the `age` tool of every version reads). */
export async function generateIdentity(): Promise<{ identity: string; recipient: string }> {
  const { generateX25519Identity, identityToRecipient } = await age();
  const identity = await generateX25519Identity();
  return { identity, recipient: await identityToRecipient(identity) };
}

/**
 * The identities in the text of an age identity file (age-keygen's format: one AGE-SECRET-KEY-1... per line, `#`
 * comments, blank lines). `where` names the source in errors; the content is never quoted.
 */
export function parseIdentities(text: string, where: string): string[] {
  const ids: string[] = [];
  for (const [n, raw] of text.split(/\r?\n/).entries()) {
    const line = raw.trim();
    if (!line || line.startsWith("#")) continue;
    if (!/^AGE-SECRET-KEY-(PQ-)?1[0-9A-Z]+$/.test(line)) {
      throw new LifeboatError(`${where}: line ${n + 1} is not an age identity (AGE-SECRET-KEY-1...)`, {
        exitCode: 2,
        hint: AGE_RECIPIENT.test(line) ? "that is a public key (a recipient): decrypting needs the identity file that age-keygen or lifeboat keygen wrote" : "give the identity file that age-keygen or lifeboat keygen wrote",
      });
    }
    ids.push(line);
  }
  if (ids.length === 0) throw new LifeboatError(`${where} holds no age identity`, { exitCode: 2, hint: "give the identity file that age-keygen or lifeboat keygen wrote" });
  return ids;
}

/** The identities of an identity file (--identity FILE). */
export async function readIdentityFile(file: string): Promise<string[]> {
  let text: string;
  try {
    text = await readFile(file, "utf8");
  } catch (err) {
    throw new LifeboatError(`cannot read the identity file ${file}: ${(err as NodeJS.ErrnoException).code ?? (err as Error).message}`, { exitCode: 2, hint: "give the path of an age identity file (age-keygen -o FILE, or lifeboat keygen)" });
  }
  return parseIdentities(text, `the identity file ${file}`);
}

/**
 * Before anything is touched: an encrypted backup needs an identity of one of its recipients. Fails (exit 2) naming
 * the recipients the backup was made for when no identity is given or none is theirs. Unencrypted backups need none.
 */
export async function checkIdentities(manifest: Pick<Manifest, "id" | "encryption">, identities: string[] | undefined): Promise<void> {
  const enc = manifest.encryption;
  if (!enc) return;
  const forWhom = `backup ${manifest.id} is encrypted (age) for ${enc.recipients.join(", ")}`;
  if (!identities?.length) throw new DecryptionError(`${forWhom}: an identity is needed to read it`, { exitCode: 2, hint: "pass --identity FILE (an identity of one of those recipients), or set encryption.identity in the config" });
  const { identityToRecipient } = await age();
  const mine = await Promise.all(identities.map((i) => identityToRecipient(i).catch(() => undefined)));
  if (!mine.some((r) => r !== undefined && enc.recipients.includes(r))) {
    throw new DecryptionError(`${forWhom}, and the identity given is none of them (its public key: ${mine.filter(Boolean).join(", ") || "unreadable"})`, {
      exitCode: 2,
      hint: "use the identity of one of those recipients: keys rotated since keep decrypting the backups made for them",
    });
  }
}

/**
 * What a drill of `manifest` decrypts with: the target's identity secret read if the backup is encrypted; a secret
 * that cannot be read is `unavailable` (the drill's decrypt check then fails with it, reported like any failed drill).
 */
export async function drillIdentities(manifest: Manifest, ref: SecretRef | undefined, resolver: SecretResolver, what: string): Promise<{ identities?: string[]; identityUnavailable?: string }> {
  if (!manifest.encryption || !ref) return {};
  try {
    return { identities: await identitiesFromSecret(ref, resolver, what) };
  } catch (err) {
    return { identityUnavailable: redact(errorMessage(err)) };
  }
}

/** The identities held by a secret (encryption.identity: { env }, { ssm } or { secretsManager }): an identity file's text. */
export async function identitiesFromSecret(ref: SecretRef, resolver: SecretResolver, what: string): Promise<string[]> {
  const where = `${what} (${ref.env ? `environment variable ${ref.env}` : ref.ssm ? `SSM parameter ${ref.ssm}` : `Secrets Manager secret ${ref.secretsManager}${ref.key ? ` (${ref.key})` : ""}`})`;
  return parseIdentities(await resolver.resolve(ref, what), where);
}
