import { existsSync } from "node:fs";
import Module, { register } from "node:module";
import { dirname, isAbsolute, resolve } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { ConfigError, UsageError, parseConfig, type LifeboatConfig } from "@lifeboat/core";

export const DEFAULT_CONFIG_FILES = ["lifeboat.config.ts", "lifeboat.config.mjs", "lifeboat.config.js", "lifeboat.config.json"];

/** Finds the config: --config, else $LIFEBOAT_CONFIG, else lifeboat.config.{ts,mjs,js,json} in the working directory. */
export function findConfigFile(explicit: string | undefined, cwd = process.cwd(), env = process.env): string | undefined {
  const given = explicit ?? env.LIFEBOAT_CONFIG;
  if (given) {
    const p = resolve(cwd, given);
    if (!existsSync(p)) throw new UsageError(`config file ${p} does not exist`, "check --config / LIFEBOAT_CONFIG");
    return p;
  }
  for (const name of DEFAULT_CONFIG_FILES) {
    const p = resolve(cwd, name);
    if (existsSync(p)) return p;
  }
  return undefined;
}

/** Loads and validates a config file (TypeScript through tsx's tsImport, as ESM wherever the file lives). */
export async function loadConfig(file: string): Promise<LifeboatConfig> {
  let raw: unknown;
  try {
    const mod = file.endsWith(".json")
      ? { default: JSON.parse(await import("node:fs/promises").then((fs) => fs.readFile(file, "utf8"))) }
      : await (async () => {
          lifeboatResolvesToItself();
          return (await import("tsx/esm/api")).tsImport(pathToFileURL(file).href, import.meta.url); // tsx loads for .ts configs only
        })();
    const named = Object.keys(mod as object).filter((k) => k !== "default" && k !== "module.exports");
    const dflt = (mod as { default?: unknown }).default;
    // an ES module without `export default` (a .ts file comes back CommonJS-wrapped: its default is then an object of
    // its named exports, not { default })
    const noDefault = dflt === undefined || (/\.(ts|mts|mjs)$/.test(file) && named.length > 0 && typeof dflt === "object" && dflt !== null && !("default" in dflt) && Object.keys(dflt).sort().join() === [...named].sort().join());
    if (!file.endsWith(".json") && noDefault) {
      throw new ConfigError(file, [{ path: "", message: `has no default export${named.length ? ` (it exports ${named.join(", ")})` : ""}`, hint: "end the file with `export default defineConfig({ ... })` (or `export default { ... }`)" }]);
    }
    raw = dflt;
    // a file without "type": "module" around it comes back CommonJS-wrapped: { default: { default: config } }
    if (raw && typeof raw === "object" && Object.keys(raw).length === 1 && "default" in raw) raw = (raw as { default: unknown }).default;
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(file, [{ path: "", message: `cannot be loaded: ${(err as Error).message}`, hint: loadHint(err) }]);
  }
  return relativeToFile(parseConfig(raw, file), file);
}

/**
 * Relative paths in a config (a directory store, a SQLite file) are relative to the config file's folder,
 * not to the working directory: systemd and a shell in another folder must see the same store and database.
 */
function relativeToFile(config: LifeboatConfig, file: string): LifeboatConfig {
  const base = dirname(file);
  const fix = (p: string | undefined) => (p === undefined || isAbsolute(p) ? p : resolve(base, p));
  if (config.storage.directory !== undefined) config.storage.directory = fix(config.storage.directory)!;
  for (const copy of config.storage.copies ?? []) if (copy.directory !== undefined) copy.directory = fix(copy.directory)!;
  for (const t of Object.values(config.targets)) {
    if (t.database.path !== undefined) t.database.path = fix(t.database.path)!;
    for (const copy of t.copies ?? []) if (copy.directory !== undefined) copy.directory = fix(copy.directory)!;
  }
  return config;
}

/** What to do about a config that does not load: a missing package is not a syntax error. */
function loadHint(err: unknown): string {
  const e = err as { code?: string; message?: string };
  const missing = /Cannot find (?:package|module) '([^']+)'/.exec(e.message ?? "")?.[1];
  if (e.code === "ERR_MODULE_NOT_FOUND" || missing) {
    const pkg = missing && !missing.startsWith(".") && !missing.startsWith("/") ? missing.split("/").slice(0, missing.startsWith("@") ? 2 : 1).join("/") : undefined;
    return pkg === "lifeboat"
      ? "install Lifeboat where the config lies (npm install lifeboat, or the tarball), or import nothing: a plain object literal works too"
      : pkg
        ? `install ${pkg} next to the config (npm install ${pkg}), or remove the import`
        : "a file the config imports does not exist: check the import's path";
  }
  return "fix the syntax error; the file must `export default defineConfig({...})` (or an object literal)";
}

/**
 * `import { defineConfig } from "lifeboat"` in a config that lies where no node_modules holds Lifeboat (installed with
 * `npm install -g`, config in /etc/lifeboat): Node looks for packages beside the importing file only, never among the
 * global ones. When that lookup fails, "lifeboat" resolves to the Lifeboat that is running, for ESM configs (a
 * module.register resolve hook) and CommonJS ones (the resolver's fallback). A Lifeboat installed beside the config
 * still wins.
 */
let selfResolution = false;
function lifeboatResolvesToItself(): void {
  if (selfResolution) return;
  selfResolution = true;
  // compiled: <package>/lib/<chunk>.js -> <package>/index.js; in the repository: packages/core/src/public.ts
  const candidates = [new URL("../index.js", import.meta.url), new URL("../../core/src/public.ts", import.meta.url)];
  const own = candidates.find((u) => u.protocol === "file:" && existsSync(fileURLToPath(u)));
  if (!own) return;
  const hook = `export async function resolve(specifier, context, next) {
    try { return await next(specifier, context); }
    catch (err) { if (specifier === "lifeboat") return { url: ${JSON.stringify(own.href)}, shortCircuit: true }; throw err; }
  }`;
  register(`data:text/javascript,${encodeURIComponent(hook)}`);
  const M = Module as unknown as { _resolveFilename: (request: string, ...rest: unknown[]) => string };
  const original = M._resolveFilename;
  M._resolveFilename = function (request: string, ...rest: unknown[]) {
    try {
      return original.call(this, request, ...rest);
    } catch (err) {
      if (request === "lifeboat") return fileURLToPath(own);
      throw err;
    }
  };
}
