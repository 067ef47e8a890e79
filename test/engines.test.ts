import { readFileSync, readdirSync } from "node:fs";
import { dirname, join, relative, resolve } from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import type { Manifest, ObjectStore } from "@lifeboat/core";
import { engineFor, engineOf } from "@lifeboat/runner";

/**
 * The engine boundary: the backup pipeline (backup.ts) and the restore drill (verify.ts) reach PostgreSQL and SQLite
 * only through engines/, and the runner's modules import each other without a cycle.
 */
const src = fileURLToPath(new URL("../packages/runner/src/", import.meta.url));

function modules(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? modules(join(dir, e.name)) : e.name.endsWith(".ts") ? [join(dir, e.name)] : []));
}

/** The runner's own modules a module imports at run time (`import type` left out: it is erased). */
function imports(file: string): string[] {
  const text = readFileSync(file, "utf8");
  const out: string[] = [];
  for (const m of text.matchAll(/^(?:import|export)\s+(?!type\b)[^;]*?from\s+"(\.[^"]+)"/gms)) out.push(resolve(dirname(file), m[1]!.replace(/\.js$/, ".ts")));
  return out;
}

describe("the engine boundary", () => {
  const graph = new Map(modules(src).map((f) => [f, imports(f)]));

  it("the runner's modules import each other without a cycle", () => {
    const cycles: string[] = [];
    const state = new Map<string, "open" | "done">();
    const visit = (f: string, path: string[]) => {
      if (state.get(f) === "done") return;
      if (state.get(f) === "open") {
        cycles.push([...path.slice(path.indexOf(f)), f].map((p) => relative(src, p)).join(" -> "));
        return;
      }
      state.set(f, "open");
      for (const g of graph.get(f) ?? []) visit(g, [...path, f]);
      state.set(f, "done");
    };
    for (const f of graph.keys()) visit(f, []);
    expect(graph.size).toBeGreaterThan(20);
    expect(cycles).toEqual([]);
  });

  it("the pipeline knows no engine: backup.ts imports no PostgreSQL or SQLite module but the engines' one entry", () => {
    const pipeline = (graph.get(join(src, "backup.ts")) ?? []).map((f) => relative(src, f)).sort();
    expect(pipeline).toContain("engines/index.ts");
    expect(pipeline.filter((f) => f.startsWith("engines/") && f !== "engines/index.ts")).toEqual([]);
    // the one pg/ module it uses turns any error into a retry decision (transient or permanent), for every engine
    expect(pipeline.filter((f) => f.startsWith("pg/"))).toEqual(["pg/classify.ts"]);
    const text = readFileSync(join(src, "backup.ts"), "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
    expect(text).not.toMatch(/pg_dump|spawn\(|sqlite3|psql/i);
  });

  it("the drill knows no engine: verify.ts checks the stored bytes, and leaves the restore and the counts to the engine", () => {
    const drill = (graph.get(join(src, "verify.ts")) ?? []).map((f) => relative(src, f)).sort();
    expect(drill).toContain("engines/index.ts");
    expect(drill.filter((f) => (f.startsWith("engines/") && f !== "engines/index.ts") || f.startsWith("pg/"))).toEqual([]);
    const text = readFileSync(join(src, "verify.ts"), "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
    expect(text).not.toMatch(/pg_restore|psql|sqlite|ephemeral|manifest\.format/i);
  });

  it("reading a backup knows no engine, and no engine imports the restore pipeline (issue 23, item 7)", () => {
    const rel = (f: string) => (graph.get(join(src, f)) ?? []).map((g) => relative(src, g)).sort();
    // fetch.ts: fetch, check, decrypt, from any store: nothing of PostgreSQL, SQLite or the engines
    expect(rel("fetch.ts").filter((f) => f.startsWith("engines/") || f.startsWith("pg/") || f.startsWith("stores/"))).toEqual([]);
    const text = readFileSync(join(src, "fetch.ts"), "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
    expect(text).not.toMatch(/pg_restore|psql|sqlite|spawn\(/i);
    // the engines read backups through fetch.ts, and none imports restore.ts (the entry point that dispatches to them)
    const engines = [...graph.keys()].filter((f) => relative(src, f).startsWith("engines/"));
    expect(engines.length).toBeGreaterThan(3);
    for (const e of engines) expect((graph.get(e) ?? []).map((g) => relative(src, g)), relative(src, e)).not.toContain("restore.ts");
    expect(rel("engines/pg-restore.ts")).toContain("fetch.ts");
    expect(rel("restore.ts")).toEqual(["engines/index.ts"]);
  });

  it("the restore command reaches the engines only through engineOf: no restore function of an engine is named", () => {
    const cli = readFileSync(fileURLToPath(new URL("../packages/cli/src/commands/restore.ts", import.meta.url)), "utf8").replace(/\/\*[\s\S]*?\*\/|\/\/.*$/gm, "");
    expect(cli).toContain("engineOf(manifest)");
    expect(cli).not.toMatch(/restoreBackup|restoreSqlite|manifest\.format/);
  });

  it("each engine refuses the other kind of destination (exit 2), naming the option to use", async () => {
    const manifest = (format: "custom" | "sqlite") => ({ id: "20261130T000000Z-abcd", format }) as unknown as Manifest;
    const store = {} as ObjectStore;
    await expect(engineOf({ format: "sqlite" }).restore({ store, manifest: manifest("sqlite"), to: { database: { host: "h", port: 5432, user: "u", database: "d", params: {} } } })).rejects.toMatchObject({
      exitCode: 2,
      message: "backup 20261130T000000Z-abcd is a SQLite database: restore it with --to-file <path>",
    });
    await expect(engineOf({ format: "custom" }).restore({ store, manifest: manifest("custom"), to: { file: "/tmp/x.db" } })).rejects.toMatchObject({
      exitCode: 2,
      message: "backup 20261130T000000Z-abcd is a PostgreSQL dump: restore it with --to <postgres-url>",
    });
  });

  it("engines are picked in one place: a SQLite file, else PostgreSQL; a backup by its format", () => {
    expect(engineFor({ sqlite: { path: "/srv/app.db" } }).name).toBe("sqlite");
    expect(engineFor({}).name).toBe("postgresql");
    expect(engineOf({ format: "sqlite" }).name).toBe("sqlite");
    for (const format of ["custom", "plain"] as const) expect(engineOf({ format }).name).toBe("postgresql");
  });
});
