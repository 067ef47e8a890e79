import type { ConnectionInfo } from "./connection.js";
import { query } from "./psql.js";

/**
 * Undoing a restore that could not run in one transaction (a backup set, `--jobs N`) into a database that was empty:
 * every object the restore created is dropped, so that a failed (or stopped) restore leaves the database as it found
 * it, and the same command can run again.
 *
 * What "created by the restore" means: PostgreSQL gives every new object an OID from one counter of the cluster, which
 * only grows (until it wraps around after 2^32 objects). Before the restore, a temporary table is created and its OID
 * kept: the mark. Afterwards, extensions, schemas, relations, routines, types and large objects of this database
 * with a higher OID are the restore's (other sessions may create objects meanwhile: in a database that was empty and
 * is being restored into, that is not expected). Each is dropped CASCADE (a schema takes all it holds); objects of
 * other kinds (operators, casts, collations) outside the dropped schemas are left: pg_dump places them in schemas.
 * Large objects are restored with the OIDs they had in the source, so those that existed before are listed in the
 * mark, and every other one is removed.
 */
export interface RestoreMark {
  oid: number;
  /** Large objects keep the OIDs they had in the source: those that existed before are listed instead. */
  largeObjects: number[];
}

export async function restoreMark(to: ConnectionInfo): Promise<RestoreMark> {
  const rows = await query(to, "create temporary table lifeboat_restore_mark(); select 'pg_temp.lifeboat_restore_mark'::regclass::oid; select oid from pg_largeobject_metadata order by 1;");
  return { oid: Number(rows[0]![0]), largeObjects: rows.slice(1).map((r) => Number(r[0])) };
}

/** Drops what the restore created; returns how many of its objects remain (0: the database is as it was). */
export async function undoRestore(to: ConnectionInfo, mark: RestoreMark): Promise<number> {
  const m = Math.trunc(mark.oid);
  const keptObjects = mark.largeObjects.length ? `and l.oid not in (${mark.largeObjects.map((o) => Math.trunc(o)).join(", ")})` : "";
  await query(
    to,
    `begin;
do $lifeboat$
declare
  names text[];
  n text;
begin
  select coalesce(array_agg(quote_ident(extname)), '{}') into names from pg_extension where oid > ${m};
  foreach n in array names loop execute 'drop extension if exists ' || n || ' cascade'; end loop;
  select coalesce(array_agg(quote_ident(nspname)), '{}') into names from pg_namespace where oid > ${m} and nspname not like 'pg_temp%' and nspname not like 'pg_toast_temp%';
  foreach n in array names loop execute 'drop schema if exists ' || n || ' cascade'; end loop;
  select coalesce(array_agg(case c.relkind when 'v' then 'view ' when 'm' then 'materialized view ' when 'f' then 'foreign table ' when 'S' then 'sequence ' else 'table ' end
         || quote_ident(s.nspname) || '.' || quote_ident(c.relname)), '{}') into names
    from pg_class c join pg_namespace s on s.oid = c.relnamespace
   where c.oid > ${m} and c.relkind in ('r', 'p', 'v', 'm', 'f', 'S') and c.relpersistence <> 't';
  foreach n in array names loop
    begin execute 'drop ' || regexp_replace(n, '^(materialized view|foreign table|view|sequence|table) ', '\\1 if exists ') || ' cascade'; exception when others then null; end;
  end loop;
  select coalesce(array_agg(case p.prokind when 'p' then 'procedure ' when 'a' then 'aggregate ' else 'function ' end || p.oid::regprocedure::text), '{}') into names
    from pg_proc p where p.oid > ${m};
  foreach n in array names loop
    begin execute 'drop ' || regexp_replace(n, '^(procedure|aggregate|function) ', '\\1 if exists ') || ' cascade'; exception when others then null; end;
  end loop;
  select coalesce(array_agg(case t.typtype when 'd' then 'domain ' else 'type ' end || t.oid::regtype::text), '{}') into names
    from pg_type t where t.oid > ${m} and t.typtype in ('e', 'd', 'r', 'm', 'c', 'b') and t.typelem = 0
     and not exists (select 1 from pg_class c where c.reltype = t.oid and c.relkind <> 'c');
  foreach n in array names loop
    begin execute 'drop ' || regexp_replace(n, '^(domain|type) ', '\\1 if exists ') || ' cascade'; exception when others then null; end;
  end loop;
  perform lo_unlink(l.oid) from pg_largeobject_metadata l where true ${keptObjects};
end
$lifeboat$;
commit;`,
  );
  const [[left]] = (await query(
    to,
    `select (select count(*) from pg_class where oid > ${m} and relpersistence <> 't' and relkind in ('r', 'p', 'v', 'm', 'f', 'S'))
          + (select count(*) from pg_proc where oid > ${m})
          + (select count(*) from pg_namespace where oid > ${m} and nspname not like 'pg_temp%' and nspname not like 'pg_toast_temp%')
          + (select count(*) from pg_extension where oid > ${m})
          + (select count(*) from pg_largeobject_metadata l where true ${keptObjects})
          + (select count(*) from pg_type t where oid > ${m} and typelem = 0 and typtype in ('e', 'd', 'r', 'c') and not exists (select 1 from pg_class c where c.reltype = t.oid));`,
  )) as [[string]];
  return Number(left);
}
