import { existsSync } from "node:fs";
import { userInfo } from "node:os";
import { UsageError } from "@lifeboat/core";

/**
 * A PostgreSQL connection, resolved. The password is kept apart from everything that could be printed or put on a
 * command line: tools get it through PGPASSWORD in their environment, never through argv.
 */
export interface ConnectionInfo {
  host: string; // host name, IP, or a Unix socket directory (starts with /)
  port: number;
  database: string;
  user: string;
  password?: string | undefined;
  /** A password file libpq reads at each connection instead (IAM authentication: tokens replaced as they age). */
  passfile?: string | undefined;
  /** Other libpq keywords (sslmode, sslrootcert, application_name, options, ...). */
  params: Record<string, string>;
}

export function parsePostgresUrl(url: string): ConnectionInfo {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError("the database URL is not a valid URL", "expected postgres://user:password@host:5432/database");
  }
  if (u.protocol !== "postgres:" && u.protocol !== "postgresql:") {
    throw new UsageError(`the database URL must start with postgres:// or postgresql:// (got ${u.protocol}//)`);
  }
  const params: Record<string, string> = {};
  let password = u.password ? decodeURIComponent(u.password) : undefined;
  let host = decodeURIComponent(u.hostname);
  let port = u.port ? Number(u.port) : 5432;
  let user = decodeURIComponent(u.username);
  let database = decodeURIComponent(u.pathname.replace(/^\//, ""));
  for (const [k, v] of u.searchParams) {
    if (k === "password") password = v;
    else if (k === "host") host = v;
    else if (k === "port") port = Number(v);
    else if (k === "user") user = v;
    else if (k === "dbname") database = v;
    else params[k] = v;
  }
  if (!host) host = "localhost";
  if (!user) throw new UsageError("the database URL has no user", "expected postgres://user@host:5432/database");
  if (!database) throw new UsageError("the database URL names no database", "expected postgres://user@host:5432/database");
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`the database URL has an invalid port`);
  return { host, port, database, user, password, params };
}

const EXPECTED = "a postgres://user@host:5432/database URL, a libpq string like \"host=db.internal dbname=app user=app\", or PGHOST/PGUSER/PGDATABASE in the environment";

/** libpq keywords that map onto ConnectionInfo's own fields; the rest are kept as params. */
const FIELD_KEYS: Record<string, "host" | "port" | "user" | "database" | "password"> = { host: "host", port: "port", user: "user", dbname: "database", password: "password" };
/** Environment variables libpq reads for the same keywords (https://www.postgresql.org/docs/current/libpq-envars.html). */
const ENV_PARAMS: Record<string, string> = {
  PGSSLMODE: "sslmode",
  PGSSLROOTCERT: "sslrootcert",
  PGSSLCERT: "sslcert",
  PGSSLKEY: "sslkey",
  PGAPPNAME: "application_name",
  PGOPTIONS: "options",
  PGCONNECT_TIMEOUT: "connect_timeout",
};
/** The variables that name a server by themselves: with none of them set, there is no database to talk about. */
export const PG_CONNECTION_VARIABLES = ["PGHOST", "PGHOSTADDR", "PGPORT", "PGUSER", "PGDATABASE", "PGPASSWORD"] as const;

/** Parses libpq's keyword=value form: `host=db port=5432 dbname='my db'` (single quotes, backslash escapes). */
export function parseKeywordValue(text: string): Record<string, string> {
  const out: Record<string, string> = {};
  let i = 0;
  const ws = () => {
    while (i < text.length && /\s/.test(text[i]!)) i++;
  };
  while (true) {
    ws();
    if (i >= text.length) return out;
    const start = i;
    while (i < text.length && /[A-Za-z0-9_]/.test(text[i]!)) i++;
    const key = text.slice(start, i);
    ws();
    if (!key || text[i] !== "=") throw new UsageError(`the connection string is not keyword=value pairs (near "${text.slice(start, start + 12)}")`, `expected ${EXPECTED}`);
    i++;
    ws();
    let value = "";
    if (text[i] === "'") {
      i++;
      while (i < text.length && text[i] !== "'") {
        if (text[i] === "\\" && i + 1 < text.length) i++;
        value += text[i++];
      }
      if (text[i] !== "'") throw new UsageError(`the connection string has an unterminated quoted value for "${key}"`, `expected ${EXPECTED}`);
      i++;
    } else {
      while (i < text.length && !/\s/.test(text[i]!)) {
        if (text[i] === "\\" && i + 1 < text.length) i++;
        value += text[i++];
      }
    }
    out[key] = value;
  }
}

/** libpq's default host: the Unix socket directory where a server listens (Debian's, then upstream's /tmp), else localhost. */
function defaultHost(port: number): string {
  for (const dir of ["/var/run/postgresql", "/tmp"]) if (existsSync(`${dir}/.s.PGSQL.${port}`)) return dir;
  return "localhost";
}

/**
 * A database named on the command line, the way psql and pg_dump take it: a postgres:// URL, a libpq keyword=value
 * string, or (given undefined) nothing but the PG* environment variables. What the text leaves out comes from
 * PGHOST, PGPORT, PGUSER, PGDATABASE, PGPASSWORD, PGSSLMODE, ... and then libpq's defaults (the local socket, port
 * 5432, the OS user, a database named like the user).
 */
export function parseConnectionArg(text: string | undefined, env: NodeJS.ProcessEnv = process.env, what = "--db"): ConnectionInfo {
  const given: Record<string, string> = {};
  if (text !== undefined) {
    const t = text.trim();
    if (/^postgres(ql)?:\/\//i.test(t)) {
      const c = parseUrlLoose(t);
      Object.assign(given, c.params);
      if (c.host) given.host = c.host;
      if (c.port) given.port = c.port;
      if (c.user) given.user = c.user;
      if (c.database) given.dbname = c.database;
      if (c.password !== undefined) given.password = c.password;
    } else if (t.includes("=")) {
      Object.assign(given, parseKeywordValue(t));
    } else {
      throw new UsageError(`${what} "${t.length > 40 ? t.slice(0, 40) + "..." : t}" is neither a postgres:// URL nor a keyword=value string`, `expected ${EXPECTED}`);
    }
  } else if (!PG_CONNECTION_VARIABLES.some((v) => env[v])) {
    throw new UsageError(`no database: ${what} is not given and none of ${PG_CONNECTION_VARIABLES.join(", ")} is set`, `pass ${what} with ${EXPECTED}`);
  }
  const pick = (key: string, envName: string): string | undefined => given[key] ?? (env[envName] || undefined);
  const portText = pick("port", "PGPORT") ?? "5432";
  const port = Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535) throw new UsageError(`${what} has an invalid port "${portText}"`, "a port is a number from 1 to 65535");
  const user = pick("user", "PGUSER") ?? safeOsUser();
  if (!user) throw new UsageError(`${what} names no user and the OS user is unknown`, "add user=... (or postgres://user@...) or set PGUSER");
  const database = pick("dbname", "PGDATABASE") ?? user;
  const host = pick("host", "PGHOST") ?? pick("hostaddr", "PGHOSTADDR") ?? defaultHost(port);
  const password = given.password ?? (env.PGPASSWORD || undefined);
  const params: Record<string, string> = {};
  for (const [envName, key] of Object.entries(ENV_PARAMS)) if (env[envName]) params[key] = env[envName]!;
  for (const [k, v] of Object.entries(given)) if (!(k in FIELD_KEYS) && k !== "hostaddr") params[k] = v;
  return { host, port, database, user, password, params };
}

function safeOsUser(): string | undefined {
  try {
    return userInfo().username;
  } catch {
    return undefined;
  }
}

/** A postgres:// URL's parts, each optional (libpq fills the gaps). */
function parseUrlLoose(url: string): { host?: string; port?: string; user?: string; database?: string; password?: string; params: Record<string, string> } {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new UsageError("the database URL is not a valid URL", `expected ${EXPECTED} (percent-encode special characters in the password)`);
  }
  const params: Record<string, string> = {};
  const out: { host?: string; port?: string; user?: string; database?: string; password?: string; params: Record<string, string> } = { params };
  if (u.hostname) out.host = decodeURIComponent(u.hostname).replace(/^\[(.*)\]$/, "$1");
  if (u.port) out.port = u.port;
  if (u.username) out.user = decodeURIComponent(u.username);
  if (u.password) out.password = decodeURIComponent(u.password);
  const db = decodeURIComponent(u.pathname.replace(/^\//, ""));
  if (db) out.database = db;
  for (const [k, v] of u.searchParams) {
    if (k === "dbname") out.database = v;
    else if (k === "host" || k === "port" || k === "user" || k === "password") out[k] = v;
    else params[k] = v;
  }
  return out;
}

function quote(v: string): string {
  return `'${v.replace(/\\/g, "\\\\").replace(/'/g, "\\'")}'`;
}

/** libpq keyword/value connection string, without the password: safe for argv (--dbname=...). */
export function conninfo(c: ConnectionInfo, database = c.database): string {
  const parts = [`host=${quote(c.host)}`, `port=${c.port}`, `dbname=${quote(database)}`, `user=${quote(c.user)}`];
  for (const [k, v] of Object.entries(c.params)) parts.push(`${k}=${quote(v)}`);
  return parts.join(" ");
}

/** A URL for humans and for restore commands, without the password. */
export function displayUrl(c: ConnectionInfo, database = c.database): string {
  const host = c.host.startsWith("/") ? encodeURIComponent(c.host) : c.host.includes(":") ? `[${c.host}]` : c.host;
  const q = new URLSearchParams(c.params).toString();
  return `postgres://${encodeURIComponent(c.user)}@${host}:${c.port}/${encodeURIComponent(database)}${q ? `?${q}` : ""}`;
}

/** Environment for libpq tools: PG* variables of the caller are removed so that only this connection applies. */
export function toolEnv(c: ConnectionInfo, base: NodeJS.ProcessEnv = process.env): NodeJS.ProcessEnv {
  const env: NodeJS.ProcessEnv = {};
  for (const [k, v] of Object.entries(base)) if (!k.startsWith("PG")) env[k] = v;
  env.PGAPPNAME = "lifeboat";
  env.PGCONNECT_TIMEOUT = base.PGCONNECT_TIMEOUT ?? "10";
  if (base.PGPASSFILE) env.PGPASSFILE = base.PGPASSFILE;
  if (c.passfile !== undefined) env.PGPASSFILE = c.passfile;
  else if (c.password !== undefined) env.PGPASSWORD = c.password;
  return env;
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1"]);

/** host:port/database normalized so that localhost, 127.0.0.1 and ::1 compare equal. */
export function sameEndpoint(a: { host: string; port: number; database: string }, b: { host: string; port: number; database: string }): boolean {
  const norm = (h: string) => (LOOPBACK.has(h.toLowerCase()) || h.startsWith("/") ? "local" : h.toLowerCase());
  return norm(a.host) === norm(b.host) && a.port === b.port && a.database === b.database;
}
