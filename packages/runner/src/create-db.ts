// `lifeboat restore --create`: the database to restore into, made on the target server as the backed-up one was made
// (encoding, collation, character classification, owner: the manifest's database.settings), each overridable.
import { randomBytes } from "node:crypto";
import { LifeboatError, silentLogger, type Logger, type Manifest } from "@lifeboat/core";
import { displayUrl, type ConnectionInfo } from "./pg/connection.js";
import { query } from "./pg/psql.js";
import { ident, literal } from "./pg/session.js";
import { derivedName } from "./swap.js";

export interface CreateDatabaseOptions {
  /** Overrides of the manifest's settings. */
  encoding?: string | undefined;
  /** LC_COLLATE and LC_CTYPE both. */
  locale?: string | undefined;
  owner?: string | undefined;
  /** Database to run CREATE DATABASE from (default: postgres). */
  maintenanceDb?: string | undefined;
  log?: Logger | undefined;
  /**
   * Create it under a temporary name (`<name>_lifeboat_new_<hex>`), which `handOver()` renames to the name asked for:
   * what is restored there (and changed by --then scripts) never exists under that name before it is finished.
   */
  underTemporaryName?: boolean | undefined;
}

export interface CreatedDatabase {
  name: string;
  /** ICU or builtin default collation, when the backed-up database had one and this server can set it. */
  localeProvider?: { name: "icu" | "builtin"; locale: string | undefined } | undefined;
  encoding: string | undefined;
  collate: string | undefined;
  ctype: string | undefined;
  owner: string | undefined;
  warnings: string[];
  /** Where to restore: the database asked for, or its temporary name (underTemporaryName). */
  working: ConnectionInfo;
  /** Gives it the name asked for (a no-op unless underTemporaryName); fails if that name was taken meanwhile. */
  handOver(): Promise<void>;
  /** Drops it again (a restore into it that failed: it did not exist before). */
  drop(): Promise<void>;
}

/**
 * Creates `to.database` from template0, refusing if it exists. A setting the manifest does not have (backups made
 * before Lifeboat recorded them) is left to the server's default, and said so; an owner that does not exist on this
 * server is left out (the restoring user owns the database), with a warning, unless it was asked for by name.
 */
export async function createRestoreDatabase(to: ConnectionInfo, manifest: Manifest, opts: CreateDatabaseOptions = {}): Promise<CreatedDatabase> {
  const log = opts.log ?? silentLogger;
  const name = to.database;
  const admin: ConnectionInfo = { ...to, database: opts.maintenanceDb ?? "postgres" };
  const warnings: string[] = [];
  const [[exists] = []] = await query(admin, `select count(*) from pg_database where datname = ${literal(name)};`);
  if (exists !== "0") {
    throw new LifeboatError(`database "${name}" already exists on ${displayUrl(admin)}: --create makes a new one and never restores over an existing database`, {
      exitCode: 2,
      hint: `restore into it without --create (it must be empty), choose another name for --to, or replace it with --swap`,
    });
  }
  const recorded = manifest.kind === "globals" ? undefined : manifest.database.settings;
  if (!recorded && !(opts.encoding && opts.locale)) warnings.push(`backup ${manifest.id} does not record how its database was created (made before Lifeboat recorded it): the server's defaults are used where --encoding / --locale are not given`);
  const encoding = opts.encoding ?? recorded?.encoding;
  const collate = opts.locale ?? recorded?.collate;
  const ctype = opts.locale ?? recorded?.ctype;
  // an ICU (15+) or builtin (17+) default collation, as recorded, unless --locale names a libc locale instead
  let provider = opts.locale === undefined && recorded?.localeProvider && recorded.localeProvider !== "libc" ? { name: recorded.localeProvider, locale: recorded.locale } : undefined;
  if (provider) {
    const [[num] = []] = await query(admin, "show server_version_num;");
    const needs = provider.name === "icu" ? 150000 : 170000;
    if (Number(num) < needs) {
      warnings.push(`the backed-up database's default collation is ${provider.name === "icu" ? "ICU's" : "the builtin provider's"} (${provider.locale ?? "default"}), which this server (version ${num}) cannot set on a database: it gets the libc locale ${collate ?? "default"} instead`);
      provider = undefined;
    }
  }
  let owner = opts.owner ?? recorded?.owner;
  if (owner) {
    const [[role] = []] = await query(admin, `select count(*) from pg_roles where rolname = ${literal(owner)};`);
    if (role === "0") {
      if (opts.owner) throw new LifeboatError(`role "${owner}" (--db-owner) does not exist on ${displayUrl(admin)}`, { exitCode: 2, hint: `create it first (CREATE ROLE ${ident(owner)}), or leave --db-owner out` });
      warnings.push(`the backed-up database's owner "${owner}" does not exist on this server: the new database belongs to the restoring user (--db-owner <role> names another)`);
      owner = undefined;
    }
  }
  const workingName = opts.underTemporaryName ? derivedName(name, `_lifeboat_new_${randomBytes(3).toString("hex")}`) : name;
  let current = workingName;
  const sql =
    `create database ${ident(workingName)} template template0` +
    (encoding ? ` encoding ${literal(encoding)}` : "") +
    (collate ? ` lc_collate ${literal(collate)}` : "") +
    (ctype ? ` lc_ctype ${literal(ctype)}` : "") +
    (provider ? ` locale_provider ${provider.name}` + (provider.locale ? ` ${provider.name === "icu" ? "icu_locale" : "builtin_locale"} ${literal(provider.locale)}` : "") : "") +
    (owner ? ` owner ${ident(owner)}` : "") +
    ";";
  try {
    await query(admin, sql);
  } catch (err) {
    const message = err instanceof Error ? err.message : String(err);
    throw new LifeboatError(`could not create database "${name}" on ${displayUrl(admin)}: ${message}`, {
      exitCode: 2,
      hint: /locale|collation|encoding/i.test(message)
        ? `this server lacks the backed-up database's locale or encoding (${[encoding, collate].filter(Boolean).join(", ")}): give one it has, e.g. --locale C.UTF-8 --encoding UTF8 (see: locale -a on the server)`
        : "check that the user of --to may create databases (CREATEDB)",
    });
  }
  log.log("info", `created database "${workingName}"${workingName === name ? "" : ` (named "${name}" once it is restored)`}`, { encoding: encoding ?? "server default", collate: collate ?? "server default", ctype: ctype ?? "server default", ...(provider ? { localeProvider: provider.name, locale: provider.locale ?? "default" } : {}), owner: owner ?? "the restoring user" });
  return {
    name,
    localeProvider: provider,
    encoding,
    collate,
    ctype,
    owner,
    warnings,
    working: { ...to, database: workingName },
    handOver: async () => {
      if (current === name) return;
      await query(admin, `alter database ${ident(workingName)} rename to ${ident(name)};`).catch((err: Error) => {
        throw new LifeboatError(`the restored database "${workingName}" could not take the name "${name}": ${err.message}`, { hint: `a database "${name}" was made meanwhile? rename or drop "${workingName}" yourself` });
      });
      current = name;
    },
    drop: async () => {
      await query(admin, `drop database if exists ${ident(current)} with (force);`);
    },
  };
}
