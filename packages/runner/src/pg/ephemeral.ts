import { execFileSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { chmodSync, chownSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { LifeboatError } from "@lifeboat/core";
import type { ConnectionInfo } from "./connection.js";
import { findTool, runTool } from "./tools.js";

/**
 * A throwaway PostgreSQL cluster (initdb + pg_ctl) on a free loopback port, for the demo, the tests and restore
 * drills. PostgreSQL refuses to run as root: as root, the cluster runs as an unprivileged user (`postgres` by
 * default, or $LIFEBOAT_PG_USER). TCP connections need the superuser's password (scram-sha-256).
 */
export interface EphemeralPostgres {
  host: string;
  port: number;
  user: string;
  password: string;
  version: string;
  dataDir: string;
  connection(database?: string): ConnectionInfo;
  url(database?: string): string;
  stop(): Promise<void>;
}

function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const srv = createServer();
    srv.unref();
    srv.on("error", reject);
    srv.listen(0, "127.0.0.1", () => {
      const addr = srv.address();
      srv.close(() => (typeof addr === "object" && addr ? resolve(addr.port) : reject(new Error("no port"))));
    });
  });
}

function runAs(): { uid?: number; gid?: number; name?: string } {
  if (typeof process.getuid !== "function" || process.getuid() !== 0) return {};
  const name = process.env.LIFEBOAT_PG_USER ?? "postgres";
  try {
    const uid = Number(execFileSync("id", ["-u", name]).toString().trim());
    const gid = Number(execFileSync("id", ["-g", name]).toString().trim());
    return { uid, gid, name };
  } catch {
    throw new LifeboatError(`PostgreSQL cannot run as root, and the user "${name}" to run it as does not exist`, {
      exitCode: 2,
      hint: `create it (useradd --system ${name}) or set LIFEBOAT_PG_USER to an unprivileged user`,
    });
  }
}

/** tls: a server certificate and key (PEM); the cluster then also accepts TLS connections. */
/**
 * `signal`: stops a cluster still starting (initdb and pg_ctl are killed, its directory removed; the promise rejects).
 * Once started, its directory is removed and the server stopped by stop(), or at the latest when the process exits.
 */
export async function startEphemeralPostgres(opts: { settings?: Record<string, string>; tls?: { cert: string; key: string }; signal?: AbortSignal } = {}): Promise<EphemeralPostgres> {
  const initdb = await findTool("initdb");
  const pgCtl = await findTool("pg_ctl", { minMajor: initdb.major });
  const as = runAs();
  if (opts.signal?.aborted) throw new LifeboatError(`not started: ${String(opts.signal.reason)}`);
  const base = mkdtempSync(join(tmpdir(), "lifeboat-pg-"));
  const dataDir = join(base, "data");
  // from here on, whatever happens (an error, a signal, process.exit), the directory and any server in it go
  let stopped = false;
  const stopSync = () => {
    if (stopped) return;
    stopped = true;
    try {
      execFileSync(pgCtl.path, ["stop", "-m", "immediate", "-w", "-D", dataDir], { stdio: "ignore", cwd: tmpdir(), ...(as.uid !== undefined ? { uid: as.uid, gid: as.gid! } : {}) });
    } catch {
      /* not started, or already down */
    }
    rmSync(base, { recursive: true, force: true });
  };
  process.once("exit", stopSync);
  const abandon = (why: string): never => {
    stopSync();
    process.removeListener("exit", stopSync);
    throw new LifeboatError(why);
  };
  const signal = opts.signal ? { signal: opts.signal } : {};
  const password = randomBytes(18).toString("base64url");
  const user = "postgres";
  const spawnAs = { ...(as.uid !== undefined ? { uid: as.uid, gid: as.gid! } : {}), cwd: base };
  if (as.uid !== undefined) chownSync(base, as.uid, as.gid!);
  chmodSync(base, 0o700);
  const pwfile = join(base, "pw");
  writeFileSync(pwfile, password + "\n", { mode: 0o600 });
  if (as.uid !== undefined) chownSync(pwfile, as.uid, as.gid!);

  const env = { ...process.env, LC_ALL: "C", LANG: "C" };
  const init = await runTool(
    initdb.path,
    ["-D", dataDir, "-U", user, `--pwfile=${pwfile}`, "--auth-local=trust", "--auth-host=scram-sha-256", "-E", "UTF8", "--no-locale", "--no-sync"],
    { env, ...spawnAs, ...signal },
  ).catch((err: Error) => abandon(opts.signal?.aborted ? `stopped while initdb ran: ${String(opts.signal.reason)}` : `initdb failed: ${err.message}`));
  rmSync(pwfile, { force: true });
  if (init.code !== 0) abandon(`initdb failed: ${init.stderr.trim() || init.stdout.trim()}`);

  const tls: Record<string, string> = {};
  if (opts.tls) {
    for (const [file, pem] of [["server.crt", opts.tls.cert], ["server.key", opts.tls.key]] as const) {
      writeFileSync(join(base, file), pem, { mode: 0o600 });
      if (as.uid !== undefined) chownSync(join(base, file), as.uid, as.gid!);
    }
    Object.assign(tls, { ssl: "on", ssl_cert_file: join(base, "server.crt"), ssl_key_file: join(base, "server.key") });
  }
  const settings: Record<string, string> = {
    ...tls,
    listen_addresses: "127.0.0.1",
    unix_socket_directories: base,
    fsync: "off",
    full_page_writes: "off",
    synchronous_commit: "off",
    max_connections: "50",
    ...opts.settings,
  };
  let port = 0;
  let lastError = "";
  for (let tries = 0; tries < 5; tries++) {
    port = await freePort();
    const conf = Object.entries({ ...settings, port: String(port) }).map(([k, v]) => `${k} = '${v}'`).join("\n");
    writeFileSync(join(dataDir, "postgresql.auto.conf"), conf + "\n");
    const started = await runTool(pgCtl.path, ["start", "-w", "-t", "60", "-D", dataDir, "-l", join(base, "server.log")], { env, ...spawnAs, ...signal }).catch((err: Error) =>
      abandon(opts.signal?.aborted ? `stopped while the server started: ${String(opts.signal.reason)}` : `pg_ctl start failed: ${err.message}`),
    );
    if (started.code === 0) {
      lastError = "";
      break;
    }
    let serverLog = "";
    try {
      serverLog = readFileSync(join(base, "server.log"), "utf8").slice(-2000);
    } catch {
      /* none */
    }
    lastError = `${started.stderr.trim()} ${serverLog}`.trim();
    if (!/could not bind|Address already in use/i.test(lastError)) break;
  }
  if (lastError) abandon(`could not start a throwaway PostgreSQL: ${lastError}`);

  const connection = (database = "postgres"): ConnectionInfo => ({ host: "127.0.0.1", port, user, password, database, params: {} });
  return {
    host: "127.0.0.1",
    port,
    user,
    password,
    version: initdb.version,
    dataDir,
    connection,
    url: (database = "postgres") => `postgres://${user}:${encodeURIComponent(password)}@127.0.0.1:${port}/${encodeURIComponent(database)}`,
    async stop() {
      if (stopped) return;
      await runTool(pgCtl.path, ["stop", "-m", "fast", "-w", "-D", dataDir], { env, ...spawnAs });
      stopped = true;
      process.removeListener("exit", stopSync);
      rmSync(base, { recursive: true, force: true });
    },
  };
}
