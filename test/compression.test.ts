import { symlinkSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { pathToFileURL } from "node:url";
import { beforeAll, describe, expect, it } from "vitest";
import { compressionText, defaultCompression, dumpSchema, parseCompression, parseConfig, pgDumpCompressArg, ConfigError } from "@lifeboat/core";
import { findTool, pgDumpArgs, query } from "@lifeboat/runner";
import { cli, conn, createDatabase, tempDir, unique, url } from "./support/helpers.js";

/** dump.compression / --compression: none, gzip[:1-9], zstd[:level], lz4[:level], integers as gzip levels. */
describe("compression settings", () => {
  it("parses every accepted form and refuses the rest with what is accepted", () => {
    expect(parseCompression(0)).toEqual({ method: "none" });
    expect(parseCompression(6)).toEqual({ method: "gzip", level: 6 });
    expect(parseCompression("9")).toEqual({ method: "gzip", level: 9 });
    expect(parseCompression("none")).toEqual({ method: "none" });
    expect(parseCompression("gzip")).toEqual({ method: "gzip" });
    expect(parseCompression("gzip:1")).toEqual({ method: "gzip", level: 1 });
    expect(parseCompression("ZSTD:19")).toEqual({ method: "zstd", level: 19 });
    expect(parseCompression("lz4:12")).toEqual({ method: "lz4", level: 12 });
    expect(() => parseCompression(10)).toThrow("compression 10 is not a gzip level 0-9 (expected none, gzip[:1-9], zstd[:1-22], lz4[:1-12], or a gzip level 0-9)");
    expect(() => parseCompression("gzip:10")).toThrow('compression "gzip:10": gzip levels are 1-9');
    expect(() => parseCompression("zstd:23")).toThrow("zstd levels are 1-22");
    expect(() => parseCompression("brotli")).toThrow('compression "brotli" is not one of');
    expect(() => parseCompression("none:3")).toThrow("none takes no level");
    expect(compressionText({ method: "zstd", level: 3 })).toBe("zstd:3");
  });

  it("defaults by the pg_dump that runs: gzip:1 before 16, zstd:3 from 16 on", () => {
    expect(defaultCompression(15)).toEqual({ method: "gzip", level: 1 });
    expect(defaultCompression(16)).toEqual({ method: "zstd", level: 3 });
    expect(defaultCompression(18)).toEqual({ method: "zstd", level: 3 });
  });

  it("spells --compress for each pg_dump: a level up to 15, method:level from 16; zstd and lz4 need 16", () => {
    const v15 = { major: 15, version: "15.18" };
    const v18 = { major: 18, version: "18.1" };
    expect(pgDumpCompressArg({ method: "gzip", level: 1 }, v15)).toBe("--compress=1");
    expect(pgDumpCompressArg({ method: "gzip" }, v15)).toBe("--compress=6");
    expect(pgDumpCompressArg({ method: "none" }, v15)).toBe("--compress=0");
    expect(pgDumpCompressArg({ method: "gzip", level: 1 }, v18)).toBe("--compress=gzip:1");
    expect(pgDumpCompressArg({ method: "zstd", level: 3 }, v18)).toBe("--compress=zstd:3");
    expect(pgDumpCompressArg({ method: "lz4" }, v18)).toBe("--compress=lz4");
    expect(pgDumpCompressArg({ method: "none" }, v18)).toBe("--compress=none");
    expect(() => pgDumpCompressArg({ method: "zstd", level: 3 }, v15)).toThrow("compression zstd:3 needs pg_dump 16 or later, and the pg_dump found is 15.18");
    expect(pgDumpArgs(dumpSchema.parse({}), v18)).toContain("--compress=zstd:3");
    expect(pgDumpArgs(dumpSchema.parse({}), v15)).toContain("--compress=1");
  });

  it("the config refuses a bad setting, and zstd or lz4 for plain dumps, at load", () => {
    const cfg = (dump: Record<string, unknown>) => parseConfig({ storage: { directory: "/x" }, targets: { a: { database: { url: "postgres://u@h/d" }, dump } } });
    expect(cfg({ compression: "zstd:5" }).targets.a!.dump.compression).toEqual({ method: "zstd", level: 5 });
    expect(() => cfg({ compression: "zip" })).toThrow(ConfigError);
    try {
      cfg({ format: "plain", compression: "zstd" });
      expect.unreachable();
    } catch (err) {
      expect((err as ConfigError).problems.map((p) => `${p.path}: ${p.message}`)).toEqual([
        "targets.a.dump.compression: plain dumps are compressed with gzip (or none): restore pipes them through gunzip into psql; use format custom for zstd or lz4",
      ]);
    }
  });
});

describe("compression in real runs (pg_dump of this machine)", () => {
  let db: string;
  beforeAll(async () => {
    db = unique("compress");
    await createDatabase(db, "create table t(id int, v text); insert into t select g, repeat(md5(g::text), 20) from generate_series(1, 2000) g;");
  });

  it("the default is recorded in the manifest and restores", async () => {
    const major = (await findTool("pg_dump")).major;
    const store = pathToFileURL(tempDir("lifeboat-compress-")).href;
    const res = await cli(["run", "--db", url(db), "--to", store, "--json"]);
    expect(res.code, res.stderr).toBe(0);
    // the documented defaults, written out (not computed by the code under test)
    expect(JSON.parse(res.stdout).manifest.compression).toBe(major >= 16 ? "zstd:3" : "gzip:1");
    const target = unique("compress_target");
    await createDatabase(target);
    const restored = await cli(["restore", "--from", store, "--to", url(target), "--json"]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(await query(conn(target), "select count(*) from t")).toEqual([["2000"]]);
  });

  it("a method the pg_dump in use lacks fails at once with exit 2, naming the version found", async () => {
    // a pg_dump 15 wherever the test runs (the runner image has 18): a bin directory whose pg_dump says it is 15.4
    // and otherwise is the real one, beside the real psql and pg_restore
    const real = await findTool("pg_dump");
    const bin = tempDir("lifeboat-pg15-");
    writeFileSync(join(bin, "pg_dump"), `#!/bin/sh\nif [ "$1" = "--version" ]; then echo "pg_dump (PostgreSQL) 15.4"; exit 0; fi\nexec "${real.path}" "$@"\n`, { mode: 0o755 });
    for (const t of ["psql", "pg_restore", "pg_dumpall"]) symlinkSync(join(dirname(real.path), t), join(bin, t));
    const store = pathToFileURL(tempDir("lifeboat-compress-")).href;
    const res = await cli(["run", "--db", url(db), "--to", store, "--compression", "zstd:3", "--json"], { env: { LIFEBOAT_PG_BINDIR: bin } });
    expect(res.code, res.stderr).toBe(2);
    const out = JSON.parse(res.stdout);
    expect(out.error).toContain("compression zstd:3 needs pg_dump 16 or later, and the pg_dump found is 15.4");
    expect(out.attempts).toHaveLength(1);
  });

  it("--compression refuses what it cannot read before connecting", async () => {
    const res = await cli(["run", "--db", url(db), "--to", "file:///unused", "--compression", "gzip:11", "--json"]);
    expect(res.code).toBe(2);
    expect(JSON.parse(res.stdout).error).toBe('--compression: compression "gzip:11": gzip levels are 1-9');
  });
});
