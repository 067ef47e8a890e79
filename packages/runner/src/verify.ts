import { mkdtemp, rm } from "node:fs/promises";
import { randomUUID } from "node:crypto";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { ChecksumMismatchError, abortedAttempt, VERIFY_SUFFIX, backupSize, besideDump, silentLogger, type BackupVerifyEvent, type DataCheck, type LocalEventBus, type Logger, type Manifest, type ObjectStore } from "@lifeboat/core";
import type { ConnectionInfo } from "./pg/connection.js";
import { DecryptionError } from "./encryption.js";
import { verifiedDump } from "./fetch.js";
import { engineOf, type RowMismatch, type VerifyCheck } from "./engines/index.js";
import { listBackups, storeOnce } from "./catalog.js";

export type { VerifyCheck } from "./engines/index.js";

/**
 * A restore drill. Fetches the dump and checks its SHA-256; compares the archive's table of contents with the
 * manifest; restores it into a throwaway PostgreSQL that Lifeboat starts (initdb) or into a new database on a
 * scratch server; checks that pg_restore reported no error and that every table of the manifest exists with its
 * recorded row count. The result is stored beside the manifest (<id>.verify.json) and emitted on the bus.
 */
export interface VerifyOptions {
  store: ObjectStore;
  manifest: Manifest;
  /** Identities that decrypt an encrypted backup (the drill restores its plaintext). */
  identities?: string[] | undefined;
  /** Why the identity could not be read (a secret that is missing): told in the failed decrypt check. */
  identityUnavailable?: string;
  /** A server to restore into (a new database is created there and dropped afterwards); default: a throwaway cluster. */
  scratch?: ConnectionInfo;
  jobs?: number;
  runId?: string;
  trigger?: string;
  log?: Logger;
  bus?: LocalEventBus;
  signal?: AbortSignal;
  onProgress?: (p: { phase: "download" | "restore"; done: number; total: number }) => void;
  /** The target's data checks (verify.checks), run in the restored database. */
  checks?: DataCheck[] | undefined;
}

export interface VerifyResult {
  verifyVersion: 1;
  backupId: string;
  target: string;
  verifiedAt: string;
  outcome: "passed" | "failed";
  durationMs: number;
  restoreMs: number;
  server: { where: "throwaway" | "scratch"; version: string };
  checks: VerifyCheck[];
  /** Tables whose row count differs from the manifest, or that are missing. */
  mismatches: RowMismatch[];
}

/**
 * Where a drill's result is stored: beside the backup's dump, one object per drill (`<id>.<time>.verify.json`), written
 * once and never replaced, so that no later drill (or a compromised runner) can rewrite an earlier verdict. Results
 * of earlier versions (`<id>.verify.json`) are read alike.
 */
export function verifyKey(manifest: Manifest, verifiedAt: string): string {
  return besideDump(manifest, `.${verifiedAt.replace(/[-:.]/g, "")}${VERIFY_SUFFIX}`);
}

/** Every stored drill result of a backup (its keys). */
export async function verifyKeys(store: ObjectStore, manifest: Manifest): Promise<string[]> {
  const keys: string[] = [];
  for await (const o of store.list(besideDump(manifest, "."))) if (o.key.endsWith(VERIFY_SUFFIX)) keys.push(o.key);
  return keys;
}

export async function verifyBackup(opts: VerifyOptions): Promise<VerifyResult> {
  const log = opts.log ?? silentLogger;
  const { manifest } = opts;
  const started = Date.now();
  const checks: VerifyCheck[] = [];
  const mismatches: VerifyResult["mismatches"] = [];
  let restoreMs = 0;
  let serverVersion = "";
  const dir = await mkdtemp(join(tmpdir(), "lifeboat-verify-"));
  try {
    let files: string[];
    let unchanged = async () => {};
    try {
      const dump = await verifiedDump(opts.store, manifest, dir, { identities: opts.identities, signal: opts.signal, copy: !engineOf(manifest).readsFilesInPlace, onProgress: (d, t) => opts.onProgress?.({ phase: "download", done: d, total: t }) });
      files = dump.files;
      unchanged = dump.unchanged;
      checks.push({
        check: "sha256",
        ok: true,
        detail: manifest.parts?.length
          ? `sha256 and size of all ${files.length} archives of the set (${backupSize(manifest)} bytes) match the manifest`
          : `sha256 ${manifest.object.sha256} and size ${manifest.object.size} match the manifest`,
      });
      if (manifest.encryption) checks.push({ check: "decrypt", ok: true, detail: `decrypted (age, for ${manifest.encryption.recipients.join(", ")})` });
    } catch (err) {
      if (err instanceof DecryptionError) {
        // every archive's checksum passed (it is of the encrypted bytes); reading them needs the identity
        checks.push({ check: "sha256", ok: true, detail: `sha256 and size of the encrypted archive${manifest.parts?.length ? "s" : ""} match the manifest` });
        checks.push({ check: "decrypt", ok: false, detail: opts.identityUnavailable ? `${opts.identityUnavailable}; ${err.message}` : err.message });
        return await finish();
      }
      if (!(err instanceof ChecksumMismatchError)) throw err;
      checks.push({ check: "sha256", ok: false, detail: err.message });
      return await finish();
    }

    // the engine's part: its own checks of the archive, a restore somewhere thrown away, the row counts there
    const drilled = await engineOf(manifest).drill({
      manifest,
      files,
      unchanged,
      scratch: opts.scratch,
      jobs: opts.jobs,
      signal: opts.signal,
      checks: opts.checks,
      log,
      onProgress: (d, t) => opts.onProgress?.({ phase: "restore", done: d, total: t }),
    });
    checks.push(...drilled.checks);
    mismatches.push(...drilled.mismatches);
    restoreMs = drilled.restoreMs;
    serverVersion = drilled.serverVersion;
    return await finish();
  } finally {
    await rm(dir, { recursive: true, force: true });
  }

  async function finish(): Promise<VerifyResult> {
    // stopped half way: no verdict is stored or published (the drill neither passed nor failed)
    if (opts.signal?.aborted) throw abortedAttempt(opts.signal.reason);
    const result: VerifyResult = {
      verifyVersion: 1,
      backupId: manifest.id,
      target: manifest.target,
      verifiedAt: new Date().toISOString(),
      outcome: checks.every((c) => c.ok) ? "passed" : "failed",
      durationMs: Date.now() - started,
      restoreMs,
      server: { where: opts.scratch ? "scratch" : "throwaway", version: serverVersion },
      checks,
      mismatches,
    };
    await storeOnce(opts.store, verifyKey(manifest, result.verifiedAt), result);
    const event: BackupVerifyEvent = {
      version: 1,
      type: result.outcome === "passed" ? "backup.verified" : "backup.verify_failed",
      status: result.outcome === "passed" ? "succeeded" : "failed",
      time: result.verifiedAt,
      target: manifest.target,
      runId: opts.runId ?? randomUUID(),
      trigger: opts.trigger ?? "manual",
      attempt: 1,
      verification: {
        backupId: manifest.id,
        location: opts.store.location(manifest.object.key),
        durationMs: result.durationMs,
        restoreMs,
        tables: manifest.tables?.length ?? 0,
        failures: checks.filter((c) => !c.ok).map((c) => `${c.check}: ${c.detail}`),
      },
    };
    await opts.bus?.publish(event);
    log.log(result.outcome === "passed" ? "info" : "error", `restore drill ${result.outcome}`, { backup: manifest.id, durationMs: result.durationMs });
    return result;
  }
}

/** What a scheduled drill of a target drills: its newest backup (of any of its databases), if it has one. */
export async function latestToDrill(store: ObjectStore, target: string, log?: Logger): Promise<Manifest | undefined> {
  return (await listBackups(store, target, log))[0];
}
