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
  if (c.password !== undefined) env.PGPASSWORD = c.password;
  return env;
}

const LOOPBACK = new Set(["localhost", "127.0.0.1", "::1"]);

/** host:port/database normalized so that localhost, 127.0.0.1 and ::1 compare equal. */
export function sameEndpoint(a: { host: string; port: number; database: string }, b: { host: string; port: number; database: string }): boolean {
  const norm = (h: string) => (LOOPBACK.has(h.toLowerCase()) || h.startsWith("/") ? "local" : h.toLowerCase());
  return norm(a.host) === norm(b.host) && a.port === b.port && a.database === b.database;
}
