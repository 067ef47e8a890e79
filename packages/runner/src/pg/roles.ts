import { spawn } from "node:child_process";
import { createInterface } from "node:readline";
import type { Readable } from "node:stream";
import { LifeboatError } from "@lifeboat/core";
import { query } from "./psql.js";
import type { ConnectionInfo } from "./connection.js";
import { findTool } from "./tools.js";

/**
 * The roles a dump needs on the server it is restored into: the owners of its objects (`ALTER ... OWNER TO`) and the
 * roles its privileges name (`GRANT ... TO`, `REVOKE ... FROM`, `ALTER DEFAULT PRIVILEGES FOR ROLE`). Read from the
 * SQL pg_dump writes: a plain dump's text, or a custom archive's schema as `pg_restore --schema-only` prints it (its
 * table of contents only: no table data is read, from a file or a pipe).
 */
export interface ReferencedRoles {
  owners: Set<string>;
  grantees: Set<string>;
}

/** One statement line as tokens: "quoted identifiers" (unquoted, "" undone), words, and single punctuation marks. */
function tokens(line: string): Array<{ text: string; quoted: boolean }> {
  const out: Array<{ text: string; quoted: boolean }> = [];
  for (let i = 0; i < line.length; ) {
    const c = line[i]!;
    if (c === '"') {
      let j = i + 1;
      let text = "";
      while (j < line.length) {
        if (line[j] === '"' && line[j + 1] === '"') {
          text += '"';
          j += 2;
        } else if (line[j] === '"') break;
        else text += line[j++];
      }
      out.push({ text, quoted: true });
      i = j + 1;
    } else if (c === "'") {
      // a string literal (a comment's text): skipped whole
      let j = i + 1;
      while (j < line.length && !(line[j] === "'" && line[j + 1] !== "'")) j += line[j] === "'" ? 2 : 1;
      i = j + 1;
    } else if (/\s/.test(c)) i++;
    else if (/[A-Za-z0-9_$.]/.test(c)) {
      let j = i;
      while (j < line.length && /[A-Za-z0-9_$]/.test(line[j]!)) j++;
      if (j === i) j++;
      out.push({ text: line.slice(i, j), quoted: false });
      i = j;
    } else {
      out.push({ text: c, quoted: false });
      i++;
    }
  }
  return out;
}

const kw = (t: { text: string; quoted: boolean } | undefined, word: string) => t !== undefined && !t.quoted && t.text.toUpperCase() === word;
/** A role name as PostgreSQL stores it: unquoted identifiers are folded to lower case. */
const roleName = (t: { text: string; quoted: boolean }) => (t.quoted ? t.text : t.text.toLowerCase());

/** The roles after `from` up to the end of the statement (a comma-separated list; PUBLIC and CURRENT_USER skipped). */
function roleList(ts: Array<{ text: string; quoted: boolean }>, from: number, into: Set<string>): void {
  for (let i = from; i < ts.length; i++) {
    const t = ts[i]!;
    if (!t.quoted && (t.text === ";" || ["WITH", "GRANTED", "CASCADE", "RESTRICT", "IN", "GRANT", "REVOKE"].includes(t.text.toUpperCase()))) return;
    if (!t.quoted && (t.text === "," || t.text.toUpperCase() === "GROUP")) continue;
    if (!t.quoted && ["PUBLIC", "CURRENT_USER", "SESSION_USER", "CURRENT_ROLE"].includes(t.text.toUpperCase())) continue;
    into.add(roleName(t));
  }
}

/** Adds the roles one SQL line names to `found`. */
export function scanRoles(line: string, found: ReferencedRoles): void {
  const head = line.slice(0, 24).toUpperCase();
  if (!(head.startsWith("ALTER ") || head.startsWith("GRANT ") || head.startsWith("REVOKE "))) return;
  const ts = tokens(line);
  if (kw(ts[0], "ALTER")) {
    const owner = ts.findIndex((t, i) => kw(t, "OWNER") && kw(ts[i + 1], "TO"));
    if (owner >= 0 && ts[owner + 2]) {
      const t = ts[owner + 2]!;
      if (t.quoted || !["CURRENT_USER", "SESSION_USER", "CURRENT_ROLE"].includes(t.text.toUpperCase())) found.owners.add(roleName(t));
      return;
    }
    if (kw(ts[1], "DEFAULT") && kw(ts[2], "PRIVILEGES")) {
      const forRole = ts.findIndex((t, i) => kw(t, "FOR") && (kw(ts[i + 1], "ROLE") || kw(ts[i + 1], "USER")));
      if (forRole >= 0) roleList(ts, forRole + 2, found.grantees);
      const grant = ts.findIndex((t) => kw(t, "GRANT") || kw(t, "REVOKE"));
      if (grant >= 0) {
        const to = lastIndex(ts, kw(ts[grant], "GRANT") ? "TO" : "FROM");
        if (to > grant) roleList(ts, to + 1, found.grantees);
      }
    }
    return;
  }
  const to = lastIndex(ts, kw(ts[0], "GRANT") ? "TO" : "FROM");
  if (to > 0) roleList(ts, to + 1, found.grantees);
}

function lastIndex(ts: Array<{ text: string; quoted: boolean }>, word: string): number {
  for (let i = ts.length - 1; i >= 0; i--) if (kw(ts[i], word)) return i;
  return -1;
}

/** The roles named by SQL text, line by line; the data of COPY blocks is skipped. */
export async function rolesInSql(source: Readable): Promise<ReferencedRoles> {
  const found: ReferencedRoles = { owners: new Set(), grantees: new Set() };
  let copying = false;
  for await (const line of createInterface({ input: source, crlfDelay: Infinity })) {
    if (copying) {
      if (line === "\\.") copying = false;
      continue;
    }
    if (line.startsWith("COPY ") && line.endsWith("FROM stdin;")) copying = true;
    else scanRoles(line, found);
  }
  return found;
}

/**
 * The roles a custom archive names: `pg_restore --schema-only -f -` on the file, or on `input` (a stream: it reads
 * only the archive's table of contents, then the stream is left unread).
 */
export async function rolesInArchive(archive: string | Readable, writtenBy: { major: number; version: string }): Promise<ReferencedRoles> {
  // the pg_restore the restore itself needs (one older than the archive's pg_dump is refused here with the same words)
  const tool = await findTool("pg_restore", { minMajor: writtenBy.major, for: `the archive (written by pg_dump ${writtenBy.version})` });
  const child = spawn(tool.path, ["--schema-only", "-f", "-", ...(typeof archive === "string" ? [archive] : [])], { stdio: [typeof archive === "string" ? "ignore" : "pipe", "pipe", "pipe"] });
  let stderr = "";
  child.stderr!.on("data", (d: Buffer) => void ((stderr += d.toString()).length > 8192 && (stderr = stderr.slice(-8192))));
  if (typeof archive !== "string") {
    child.stdin!.on("error", () => {}); // pg_restore stops reading after the table of contents (EPIPE)
    archive.on("error", () => child.kill());
    archive.pipe(child.stdin!);
  }
  const exited = new Promise<number | null>((resolve, reject) => {
    child.on("error", reject);
    child.on("close", resolve);
  });
  const found = await rolesInSql(child.stdout!);
  const code = await exited;
  if (typeof archive !== "string") archive.unpipe(child.stdin!);
  if (code !== 0) throw new LifeboatError(`pg_restore could not read the archive's table of contents: ${stderr.trim()}`);
  return found;
}

/** The referenced roles that `conn`'s server does not have, owners and grantees apart, each sorted. */
export async function missingRoles(conn: ConnectionInfo, roles: ReferencedRoles, opts: { noOwner?: boolean | undefined; noAcl?: boolean | undefined } = {}): Promise<{ owners: string[]; grantees: string[] }> {
  const existing = new Set((await query(conn, "select rolname from pg_roles;")).map((r) => r[0]!));
  const missing = (s: Set<string>) => [...s].filter((r) => !existing.has(r)).sort();
  return { owners: opts.noOwner ? [] : missing(roles.owners), grantees: opts.noAcl ? [] : missing(roles.grantees) };
}

/** A role name as SQL (always quoted). */
export function quoteRole(name: string): string {
  return `"${name.replace(/"/g, '""')}"`;
}

/** The error that names every missing role and the ways out, before anything is written. */
export function missingRolesError(missing: { owners: string[]; grantees: string[] }, where: string, target: string): LifeboatError {
  const all = [...new Set([...missing.owners, ...missing.grantees])];
  const parts = [
    ...(missing.owners.length ? [`owning objects: ${missing.owners.join(", ")}`] : []),
    ...(missing.grantees.length ? [`granted privileges: ${missing.grantees.join(", ")}`] : []),
  ];
  const ways = [
    `create ${all.length === 1 ? "it" : "them"} first (${all.map((r) => `CREATE ROLE ${quoteRole(r)};`).join(" ")})`,
    `restore the target's globals backup first (lifeboat restore ${target} --database globals --to <postgres-url>)`,
    ...(missing.owners.length ? ["or pass --no-owner (the restoring user then owns everything)"] : []),
    ...(missing.grantees.length ? ["or pass --no-acl (no GRANT/REVOKE is restored)"] : []),
  ];
  return new LifeboatError(`${where} lacks ${all.length === 1 ? "a role" : `${all.length} roles`} this backup needs (${parts.join("; ")}); nothing was restored`, { exitCode: 2, hint: ways.join(", ") });
}
