import type { Manifest } from "@lifeboat/core";
import type { RowMismatch, VerifyCheck } from "./engine.js";

/** The manifest's row counts against the counts found (a table absent from `actual` is missing), for any engine. */
export function compareRowCounts(manifest: Manifest, actual: Map<string, number>): { check: VerifyCheck; mismatches: RowMismatch[] } {
  const mismatches: RowMismatch[] = [];
  if (!manifest.tables) {
    return { check: { check: "tables", ok: true, detail: "the manifest records no row counts (plain format, or dump.rowCounts: false): only the restore was checked" }, mismatches };
  }
  for (const { name, rows } of manifest.tables) {
    const n = actual.get(name);
    if (n !== rows) mismatches.push({ table: name, expected: rows, actual: n ?? null });
  }
  return {
    check: {
      check: "tables",
      ok: mismatches.length === 0,
      detail: mismatches.length
        ? mismatches.map((m) => (m.actual === null ? `${m.table} is missing (manifest: ${m.expected} rows)` : `${m.table} has ${m.actual} rows, the manifest says ${m.expected}`)).join("; ")
        : `${manifest.tables.length} tables, every row count as recorded`,
    },
    mismatches,
  };
}
