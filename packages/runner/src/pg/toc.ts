/**
 * The table of contents of a custom-format archive, as `pg_restore --list` prints it:
 *   3354; 0 16392 TABLE DATA public p1 postgres
 * A summary (entries by type) is recorded in the manifest at backup time and compared at verify time; TABLE DATA
 * entries carry the table's OID, which maps them to the tables whose rows were counted.
 */
export interface TocSummary {
  entries: number;
  byType: Record<string, number>;
}

export interface TocEntry {
  dumpId: number;
  oid: number;
  type: string;
}

// Longest first, so that "MATERIALIZED VIEW DATA" wins over "MATERIALIZED VIEW".
const TYPES = [
  "MATERIALIZED VIEW DATA", "TEXT SEARCH CONFIGURATION", "TEXT SEARCH DICTIONARY", "TEXT SEARCH PARSER", "TEXT SEARCH TEMPLATE",
  "DATABASE PROPERTIES", "PUBLICATION TABLE", "PUBLICATION TABLES IN SCHEMA", "SEQUENCE OWNED BY", "PROCEDURAL LANGUAGE",
  "MATERIALIZED VIEW", "FOREIGN DATA WRAPPER", "FOREIGN TABLE", "USER MAPPING", "EVENT TRIGGER", "OPERATOR CLASS", "OPERATOR FAMILY",
  "ACCESS METHOD", "DEFAULT ACL", "FK CONSTRAINT", "CHECK CONSTRAINT", "ROW SECURITY", "SEQUENCE SET", "TABLE ATTACH", "INDEX ATTACH",
  "TABLE DATA", "LARGE OBJECT", "SHELL TYPE", "BLOBS", "BLOB", "COLLATION", "COMMENT", "CONSTRAINT", "CONVERSION", "DEFAULT", "DOMAIN",
  "EXTENSION", "FUNCTION", "AGGREGATE", "PROCEDURE", "INDEX", "OPERATOR", "POLICY", "PUBLICATION", "RULE", "SCHEMA", "SEQUENCE", "SERVER",
  "STATISTICS", "SUBSCRIPTION", "TABLE", "TRANSFORM", "TRIGGER", "TYPE", "VIEW", "ACL", "CAST", "ENCODING", "STDSTRINGS", "SEARCHPATH",
  "DATABASE",
].sort((a, b) => b.length - a.length);

export function parseToc(listing: string): TocEntry[] {
  const out: TocEntry[] = [];
  for (const line of listing.split("\n")) {
    const m = /^(\d+); (\d+) (\d+) (.*)$/.exec(line);
    if (!m) continue;
    const rest = m[4]!;
    const type = TYPES.find((t) => rest === t || rest.startsWith(`${t} `)) ?? rest.split(" ")[0]!;
    out.push({ dumpId: Number(m[1]), oid: Number(m[3]), type });
  }
  return out;
}

export function summarizeToc(entries: TocEntry[]): TocSummary {
  const byType: Record<string, number> = {};
  for (const e of entries) byType[e.type] = (byType[e.type] ?? 0) + 1;
  return { entries: entries.length, byType: Object.fromEntries(Object.entries(byType).sort(([a], [b]) => a.localeCompare(b))) };
}

/** Differences between two summaries, as readable lines (empty when they match). */
export function diffToc(expected: TocSummary, actual: TocSummary): string[] {
  const types = new Set([...Object.keys(expected.byType), ...Object.keys(actual.byType)]);
  const out: string[] = [];
  for (const t of [...types].sort()) {
    const e = expected.byType[t] ?? 0;
    const a = actual.byType[t] ?? 0;
    if (e !== a) out.push(`${t}: manifest ${e}, archive ${a}`);
  }
  return out;
}
