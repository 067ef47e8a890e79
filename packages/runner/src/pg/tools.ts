import { execFile, spawn } from "node:child_process";
import { existsSync, readdirSync } from "node:fs";
import { delimiter, join } from "node:path";
import { promisify } from "node:util";
import { AttemptError, LifeboatError } from "@lifeboat/core";

const execFileAsync = promisify(execFile);

/**
 * Finds PostgreSQL client and server programs of a usable major version. $LIFEBOAT_PG_BINDIR, when set, is the only
 * place searched. Otherwise, in order: `pg_config --bindir`, the distributions' versioned directories
 *   (/usr/lib/postgresql/N/bin, /usr/pgsql-N/bin, Homebrew postgresql@N, Postgres.app), then $PATH.
 */
export type PgTool = "pg_dump" | "pg_dumpall" | "pg_restore" | "psql" | "initdb" | "pg_ctl" | "postgres";

export interface FoundTool {
  tool: PgTool;
  path: string;
  version: string; // "15.18"
  major: number;
}

export const INSTALL_HINT =
  "install PostgreSQL: Debian/Ubuntu `sudo apt-get install -y postgresql`, macOS `brew install postgresql@17`, " +
  "RHEL/Fedora `sudo dnf install postgresql-server`; or point LIFEBOAT_PG_BINDIR at a directory holding pg_dump";

export class ToolNotFoundError extends LifeboatError {
  constructor(tool: PgTool, searched: string[]) {
    super(`${tool} was not found (searched ${searched.length ? searched.join(", ") : "nothing"})`, { exitCode: 2, hint: INSTALL_HINT });
  }
}

function versionedDirs(): string[] {
  const dirs: string[] = [];
  const scan = (root: string, pattern: RegExp, suffix: string) => {
    try {
      for (const name of readdirSync(root)) if (pattern.test(name)) dirs.push(join(root, name, suffix));
    } catch {
      /* not on this system */
    }
  };
  scan("/usr/lib/postgresql", /^\d+$/, "bin");
  scan("/usr", /^pgsql-\d+$/, "bin");
  scan("/opt/homebrew/opt", /^postgresql(@\d+)?$/, "bin");
  scan("/usr/local/opt", /^postgresql(@\d+)?$/, "bin");
  scan("/Applications/Postgres.app/Contents/Versions", /^\d+$/, "bin");
  return dirs;
}

async function candidateDirs(env: NodeJS.ProcessEnv): Promise<string[]> {
  // LIFEBOAT_PG_BINDIR means "exactly these binaries": nothing else is searched.
  if (env.LIFEBOAT_PG_BINDIR) return [env.LIFEBOAT_PG_BINDIR];
  const dirs: string[] = [];
  try {
    const { stdout } = await execFileAsync("pg_config", ["--bindir"], { env, timeout: 5000 });
    if (stdout.trim()) dirs.push(stdout.trim());
  } catch {
    /* no pg_config */
  }
  dirs.push(...versionedDirs());
  dirs.push(...(env.PATH ?? "").split(delimiter).filter(Boolean));
  return [...new Set(dirs)];
}

const cache = new Map<string, Promise<FoundTool[]>>();

/** Every copy of `tool` found, with its version. */
export function findAll(tool: PgTool, env: NodeJS.ProcessEnv = process.env): Promise<FoundTool[]> {
  const key = `${tool}\0${env.LIFEBOAT_PG_BINDIR ?? ""}\0${env.PATH ?? ""}`;
  let found = cache.get(key);
  if (!found) {
    found = (async () => {
      const out: FoundTool[] = [];
      const seen = new Set<string>();
      for (const dir of await candidateDirs(env)) {
        const path = join(dir, tool);
        if (seen.has(path) || !existsSync(path)) continue;
        seen.add(path);
        try {
          const { stdout } = await execFileAsync(path, ["--version"], { timeout: 5000 });
          const m = /(\d+)(?:\.(\d+))?/.exec(stdout.replace(/^[^)]*\)/, ""));
          if (m) out.push({ tool, path, version: m[2] ? `${m[1]}.${m[2]}` : m[1]!, major: Number(m[1]) });
        } catch {
          /* not runnable */
        }
      }
      return out;
    })();
    cache.set(key, found);
  }
  return found;
}

/**
 * Picks `tool` for a server (or an archive) of major `minMajor`: the same major when present, otherwise the oldest
 * newer one (a newer pg_dump reads older servers; its output restores best into servers close to it).
 */
export async function findTool(tool: PgTool, opts: { minMajor?: number; env?: NodeJS.ProcessEnv; for?: string } = {}): Promise<FoundTool> {
  const all = await findAll(tool, opts.env);
  if (all.length === 0) throw new ToolNotFoundError(tool, await candidateDirs(opts.env ?? process.env));
  const min = opts.minMajor ?? 0;
  const usable = all.filter((t) => t.major >= min).sort((a, b) => a.major - b.major);
  const exact = usable.find((t) => t.major === min);
  const chosen = exact ?? usable[0];
  if (!chosen) {
    const newest = [...all].sort((a, b) => b.major - a.major)[0]!;
    throw new AttemptError(
      `${tool}_too_old`,
      "permanent",
      `${opts.for ?? "the server"} is PostgreSQL ${min} but the newest ${tool} found is ${newest.version} (${newest.path}); ` +
        `${tool} must be of major version ${min} or newer`,
      { hint: `install the PostgreSQL ${min} client (apt-get install postgresql-client-${min}, brew install postgresql@${min}) or set LIFEBOAT_PG_BINDIR` },
    );
  }
  return chosen;
}

export interface ToolResult {
  code: number | null;
  signal: NodeJS.Signals | null;
  stdout: string;
  stderr: string;
}

/** Runs a tool to completion without a shell, collecting (bounded) output. */
export function runTool(
  path: string,
  args: string[],
  opts: { env?: NodeJS.ProcessEnv; input?: string; signal?: AbortSignal; uid?: number; gid?: number; cwd?: string } = {},
): Promise<ToolResult> {
  return new Promise((resolve, reject) => {
    const child = spawn(path, args, {
      env: opts.env ?? process.env,
      stdio: ["pipe", "pipe", "pipe"],
      ...(opts.signal ? { signal: opts.signal } : {}),
      ...(opts.uid !== undefined ? { uid: opts.uid } : {}),
      ...(opts.gid !== undefined ? { gid: opts.gid } : {}),
      ...(opts.cwd ? { cwd: opts.cwd } : {}),
    });
    let stdout = "";
    let stderr = "";
    const LIMIT = 1 << 20;
    child.stdout.on("data", (d: Buffer) => {
      if (stdout.length < LIMIT) stdout += d.toString("utf8");
    });
    child.stderr.on("data", (d: Buffer) => {
      if (stderr.length < LIMIT) stderr += d.toString("utf8");
    });
    child.on("error", reject);
    child.on("close", (code, signal) => resolve({ code, signal, stdout, stderr }));
    child.stdin.on("error", () => {});
    child.stdin.end(opts.input ?? "");
  });
}
