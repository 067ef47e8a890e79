// The config a deployment was made from, as the deployed runner and functions read it: one JSON object in the bucket,
// written by the deployment (the SST component), and its SHA-256 in their environment. Nothing there is a secret (a
// config names where secrets are read from, never a secret itself); a copy that does not match the hash the
// deployment recorded (changed in the bucket by anyone but a deploy) is refused.
import { createHash } from "node:crypto";
import { ConfigError } from "./errors.js";
import { parseConfig, type LifeboatConfig } from "./config.js";

/** Where the deployed config lies: outside every target's prefix (a target's runner may write only under its own). */
export const DEPLOYED_CONFIG_FILE = ".lifeboat/config.json";

export function deployedConfigKey(prefix: string | undefined): string {
  return prefix ? `${prefix}/${DEPLOYED_CONFIG_FILE}` : DEPLOYED_CONFIG_FILE;
}

export function sha256Hex(text: string | Buffer): string {
  return createHash("sha256").update(text).digest("hex");
}

/**
 * Reads the deployed config: `body` as fetched from `where`, checked against the hash the deployment put in the
 * environment. A missing object, a changed one, or one that no longer validates is a configuration error.
 */
export function parseDeployedConfig(body: Buffer | undefined, expectedSha256: string | undefined, where: string): LifeboatConfig {
  if (!body) throw new ConfigError(where, [{ path: "", message: "does not exist", hint: "deploy again (`npx sst deploy`): the deployment writes it" }], "cannot be used");
  if (expectedSha256 && sha256Hex(body) !== expectedSha256) {
    throw new ConfigError(where, [
      { path: "", message: "does not match the config this deployment was made from (its SHA-256 differs): it was changed outside a deploy", hint: "deploy again (`npx sst deploy`) to restore it, and find out who could write it" },
    ], "cannot be used");
  }
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString("utf8"));
  } catch (err) {
    throw new ConfigError(where, [{ path: "", message: `is not JSON: ${(err as Error).message}`, hint: "deploy again (`npx sst deploy`)" }], "cannot be used");
  }
  return parseConfig(raw, where);
}

/**
 * Fetches and checks the deployed config. S3 answers a GET of a missing object with Access Denied when the caller may
 * not list the bucket (the deployed roles may not): that, like any read error, is told as what it likely means.
 */
export async function readDeployedConfig(read: (key: string) => Promise<{ body: Buffer } | undefined>, key: string, expectedSha256: string | undefined, where: string): Promise<LifeboatConfig> {
  let found: { body: Buffer } | undefined;
  try {
    found = await read(key);
  } catch (err) {
    const e = err as { name?: string; message?: string };
    const denied = e.name === "AccessDenied" || /access denied/i.test(e.message ?? "");
    throw new ConfigError(where, [
      {
        path: "",
        message: `cannot be read: ${e.name && e.name !== "Error" ? `${e.name}: ` : ""}${e.message ?? String(err)}`,
        hint: denied ? "deploy again (`npx sst deploy`): a missing object reads as Access Denied to a role that may not list the bucket" : "check the bucket and the role's access to it, then run again",
      },
    ], "cannot be used");
  }
  return parseDeployedConfig(found?.body, expectedSha256, where);
}
