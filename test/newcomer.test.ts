import { spawn } from "node:child_process";
import { existsSync, rmSync } from "node:fs";
import { join } from "node:path";
import { fileURLToPath, pathToFileURL } from "node:url";
import { PassThrough } from "node:stream";
import { beforeAll, describe, expect, it } from "vitest";
import { parseConnectionArg, parseKeywordValue, query } from "@lifeboat/runner";
import { Output } from "../packages/cli/src/output.js";
import { BIN, REPO, cli, conn, createDatabase, pg, tempDir, unique, url } from "./support/helpers.js";

/**
 * A newcomer's first hour (issue 10): each thing that went wrong for a new user, run the way they ran it, from the
 * repository's root, where the example lifeboat.config.ts lies in wait.
 */
let db: string;
beforeAll(async () => {
  db = unique("first");
  await createDatabase(db, "create table notes(id int primary key, body text); insert into notes select g, md5(g::text) from generate_series(1, 300) g;");
});

async function adhocBackup(store: string, name: string, extra: string[] = []) {
  const res = await cli(["run", "--db", url(db), "--to", store, "--name", name, "--json", ...extra]);
  expect(res.code, res.stderr).toBe(0);
  return JSON.parse(res.stdout).manifest as { id: string; target: string; object: { key: string } };
}

describe("demo --keep", () => {
  it("prints commands that work: createdb with the throwaway password, a restore into it, psql", async () => {
    const child = spawn(process.execPath, [BIN, "demo", "--keep"], { cwd: REPO, env: { ...process.env, CI: "" }, stdio: ["ignore", "pipe", "pipe"] });
    let stdout = "";
    let stderr = "";
    child.stdout.on("data", (d: Buffer) => (stdout += d.toString()));
    const kept = new Promise<void>((resolve, reject) => {
      child.stderr.on("data", (d: Buffer) => {
        stderr += d.toString();
        if (stderr.includes("kept running")) resolve();
      });
      child.on("close", () => reject(new Error(`demo ended early: ${stderr}`)));
    });
    const closed = new Promise<number | null>((resolve) => child.on("close", resolve));
    try {
      await kept;
      const lines = stdout.split("\n").map((l) => l.trim());
      const env = lines.find((l) => l.startsWith("export AWS_ENDPOINT_URL_S3="))!;
      const createdb = lines.find((l) => / createdb /.test(l))!;
      const restore = lines.find((l) => l.startsWith("npx lifeboat restore shop"))!;
      expect(createdb).toMatch(/^PGPASSWORD=\S+ createdb -h 127\.0\.0\.1 -p \d+ -U \S+ shop_copy$/);
      expect(restore).toMatch(/--to postgres:\/\/[^:]+:[^@]+@127\.0\.0\.1:\d+\/shop_copy$/);
      // exactly as printed, in a shell, as a user would paste them
      const sh = (cmd: string) =>
        new Promise<{ code: number | null; out: string }>((resolve) => {
          const p = spawn("sh", ["-c", cmd], { cwd: REPO, env: { ...process.env, CI: "", AWS_PROFILE: "" }, stdio: ["ignore", "pipe", "pipe"] });
          let out = "";
          p.stdout.on("data", (d: Buffer) => (out += d.toString()));
          p.stderr.on("data", (d: Buffer) => (out += d.toString()));
          p.on("close", (code) => resolve({ code, out }));
        });
      const made = await sh(createdb);
      expect(made.code, made.out).toBe(0);
      const restored = await sh(`${env} && ${restore}`);
      expect(restored.code, restored.out).toBe(0);
      expect(restored.out).toMatch(/restored backup \S+ of "shop" into postgres:\/\/\S+@127\.0\.0\.1:\d+\/shop_copy/);
      expect(restored.out).not.toContain("fe_sendauth");
    } finally {
      child.kill("SIGINT");
    }
    expect(await closed).toBe(0);
    expect(stderr).toContain("cleaning up");
  });
});

describe("ad hoc commands ignore a config they were not pointed at", () => {
  it("prune --from works on the targets found in that store, not the example config's", async () => {
    const store = pathToFileURL(tempDir("lifeboat-adhoc-prune-")).href;
    await adhocBackup(store, "alpha");
    const second = await adhocBackup(store, "alpha");
    await adhocBackup(store, "beta");
    const res = await cli(["prune", "--from", store, "--keep-last", "1", "--dry-run", "--json"]);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { results: { target: string; decisions: { id: string; keep: boolean }[] }[] };
    expect(out.results.map((r) => r.target)).toEqual(["alpha", "beta"]); // not prod/staging/analytics of lifeboat.config.ts
    const alpha = out.results.find((r) => r.target === "alpha")!;
    expect(alpha.decisions.filter((d) => d.keep).map((d) => d.id)).toEqual([second.id]);
    expect(alpha.decisions.filter((d) => !d.keep)).toHaveLength(1);
  });

  it("prune --from without overrides says that the store's targets have no policy, and deletes nothing", async () => {
    const dir = tempDir("lifeboat-adhoc-nopolicy-");
    const m = await adhocBackup(pathToFileURL(dir).href, "gamma");
    const res = await cli(["prune", "--from", pathToFileURL(dir).href]);
    expect(res.code, res.stderr).toBe(0);
    expect(res.stdout).toContain("gamma: no retention policy, nothing pruned");
    expect(existsSync(join(dir, m.object.key))).toBe(true);
  });

  it("run --db with --to reads no config: a broken lifeboat.config.ts in the working directory changes nothing", async () => {
    const cwd = tempDir("lifeboat-adhoc-cwd-");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(cwd, "lifeboat.config.ts"), "this is not TypeScript {");
    const store = pathToFileURL(tempDir("lifeboat-adhoc-run-")).href;
    const res = await cli(["run", "--db", url(db), "--to", store, "--name", "delta", "--json"], { cwd });
    expect(res.code, res.stderr).toBe(0);
    const listed = await cli(["list", "--from", store, "--json"], { cwd });
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).backups.map((b: { target: string }) => b.target)).toEqual(["delta"]);
  });
});

describe("a config outside the repository", () => {
  for (const type of ["module", "commonjs"]) {
    it(`imports defineConfig from "lifeboat" with no Lifeboat beside it (${type} package)`, async () => {
      const cwd = tempDir("lifeboat-outside-");
      const { writeFileSync } = await import("node:fs");
      writeFileSync(join(cwd, "package.json"), JSON.stringify({ type }));
      writeFileSync(join(cwd, "lifeboat.config.ts"), `import { defineConfig } from "lifeboat";\nexport default defineConfig({ storage: { directory: "${cwd}/b" }, targets: { app: { database: { url: "postgres://a@localhost/a" } } } });\n`);
      const res = await cli(["status", "--json"], { cwd });
      expect(res.code, res.stderr).toBe(0);
      expect(JSON.parse(res.stdout).targets.map((t: { target: string }) => t.target)).toEqual(["app"]);
    });
  }

  it("that imports a package which is not installed gets a hint to install it, not to fix a syntax error", async () => {
    const cwd = tempDir("lifeboat-outside-");
    const { writeFileSync } = await import("node:fs");
    writeFileSync(join(cwd, "lifeboat.config.ts"), `import { something } from "no-such-package-here";\nexport default { storage: { directory: "/tmp" }, targets: {}, something };\n`);
    const res = await cli(["list", "--json"], { cwd });
    expect(res.code).toBe(2);
    const out = JSON.parse(res.stdout);
    expect(out.problems[0].message).toContain("no-such-package-here");
    expect(out.problems[0].hint).toContain("npm install no-such-package-here");
    expect(out.problems[0].hint).not.toContain("syntax");
  });
});

describe("--db takes what pg_dump takes", () => {
  it("a libpq keyword=value string", async () => {
    const p = pg();
    const store = pathToFileURL(tempDir("lifeboat-kv-")).href;
    const res = await cli(["run", "--db", `host=${p.host} port=${p.port} user='${p.user}' dbname=${db} sslmode=require`, "--to", store, "--json"], { env: { PGPASSWORD: p.password } });
    expect(res.code, res.stderr).toBe(0);
    expect(JSON.parse(res.stdout).manifest.database.name).toBe(db);
  });

  it("nothing but PG* variables", async () => {
    const p = pg();
    const store = pathToFileURL(tempDir("lifeboat-pgenv-")).href;
    const res = await cli(["run", "--to", store, "--json"], { env: { PGHOST: p.host, PGPORT: String(p.port), PGUSER: p.user, PGPASSWORD: p.password, PGDATABASE: db } });
    expect(res.code, res.stderr).toBe(0);
    const m = JSON.parse(res.stdout).manifest;
    expect(m.target).toBe(db);
    expect(m.database.name).toBe(db);
  });

  it("a URL without a user takes PGUSER, as libpq does", async () => {
    const p = pg();
    const c = parseConnectionArg(`postgres://${p.host}:${p.port}/${db}`, { PGUSER: p.user, PGPASSWORD: "pw" }, "--db");
    expect(c).toMatchObject({ host: p.host, port: p.port, user: p.user, database: db, password: "pw" });
    await expect(query({ ...c, password: p.password }, "select current_database()")).resolves.toEqual([[db]]);
  });

  it("parses libpq's quoting, fills gaps from the environment, and refuses what it cannot read", () => {
    expect(parseKeywordValue(`host=db.internal dbname='my \\'odd\\' db' user = app password=se\\ cret`)).toEqual({ host: "db.internal", dbname: "my 'odd' db", user: "app", password: "se cret" });
    expect(parseConnectionArg("dbname=app", { PGHOST: "h", PGPORT: "6543", PGUSER: "u", PGSSLMODE: "verify-full" }, "--db")).toEqual({
      host: "h",
      port: 6543,
      user: "u",
      database: "app",
      password: undefined,
      params: { sslmode: "verify-full" },
    });
    expect(() => parseConnectionArg("app", {}, "--db")).toThrow(/neither a postgres:\/\/ URL nor a keyword=value string/);
    expect(() => parseConnectionArg("host='unterminated", {}, "--db")).toThrow(/unterminated quoted value for "host"/);
    expect(() => parseConnectionArg(undefined, {}, "--db")).toThrow(/--db is not given and none of PGHOST/);
    expect(() => parseConnectionArg("port=99999 dbname=x user=y", {}, "--db")).toThrow(/invalid port "99999"/);
  });

  it("run without --db and without PG* variables names both ways", async () => {
    const res = await cli(["run", "--to", "file:///nonexistent", "--json"], { env: { PGHOST: "", PGPORT: "", PGUSER: "", PGDATABASE: "", PGPASSWORD: "", PGHOSTADDR: "" } });
    expect(res.code).toBe(2);
    const out = JSON.parse(res.stdout);
    expect(out.error).toContain("--db is not given and none of PGHOST");
    expect(out.hint).toContain("host=db.internal dbname=app user=app");
  });
});

describe("list at any prefix", () => {
  it("a parent prefix lists backups of deeper stores with true locations, and restores them", async () => {
    const root = tempDir("lifeboat-parent-");
    const m = await adhocBackup(pathToFileURL(join(root, "adhoc")).href, "epsilon");
    const listed = await cli(["list", "--from", pathToFileURL(root).href, "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    const backups = JSON.parse(listed.stdout).backups as { id: string; key: string; location: string }[];
    expect(backups.map((b) => b.id)).toEqual([m.id]);
    expect(backups[0]!.key).toBe(`adhoc/${m.object.key}`);
    expect(existsSync(fileURLToPath(backups[0]!.location))).toBe(true);

    const target = unique("fromparent");
    await createDatabase(target);
    const restored = await cli(["restore", "--from", pathToFileURL(root).href, "--backup", m.id, "--to", url(target), "--json"]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(await query(conn(target), "select count(*) from notes")).toEqual([["300"]]);
  });

  it("a prefix below the store lists nothing it cannot restore, and says why", async () => {
    const root = tempDir("lifeboat-below-");
    await adhocBackup(pathToFileURL(root).href, "zeta");
    const below = pathToFileURL(join(root, "zeta")).href;
    const listed = await cli(["list", "--from", below, "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).backups).toEqual([]);
    expect(listed.stderr).toContain("skipping a manifest that is not where its backup was stored");
    const restored = await cli(["restore", "--from", below, "--to", url(db), "--json"]);
    expect(restored.code).toBe(1);
    expect(JSON.parse(restored.stdout).error).toBe(`no backups in ${below}`);
  });
});

describe("restore checks the target before it downloads", () => {
  it("a missing target database is reported as such even when the dump itself is gone", async () => {
    const dir = tempDir("lifeboat-precheck-");
    const m = await adhocBackup(pathToFileURL(dir).href, "eta");
    rmSync(join(dir, m.object.key)); // a download would fail with "not found"; the target check must come first
    const missing = unique("nosuchdb");
    const res = await cli(["restore", "--from", pathToFileURL(dir).href, "--to", url(missing), "--json"]);
    expect(res.code).toBe(1);
    const out = JSON.parse(res.stdout);
    expect(out.error).toContain(`cannot connect to the restore target`);
    expect(out.error).toContain(`"${missing}" does not exist`);
    expect(res.stderr).not.toMatch(/"msg":"(downloading|checking)"/);
  });

  it("the source database is refused before any download", async () => {
    const dir = tempDir("lifeboat-precheck-src-");
    const m = await adhocBackup(pathToFileURL(dir).href, "theta");
    rmSync(join(dir, m.object.key));
    const res = await cli(["restore", "--from", pathToFileURL(dir).href, "--to", url(db), "--json"]);
    expect(res.code).toBe(2);
    expect(JSON.parse(res.stdout).error).toContain("it is the database this backup was taken from");
  });
});

describe("--json: one JSON document on stdout for every exit path", () => {
  const cases: [string, string[], number][] = [
    ["an unknown option", ["run", "--bogus", "--json"], 2],
    ["a missing option argument", ["list", "--json", "--from"], 2],
    ["an unknown command", ["frobnicate", "--json"], 2],
    ["a bad choice", ["run", "--format", "zip", "--json"], 2],
    ["an excess argument", ["list", "a", "b", "--json"], 2],
    ["a usage error in the command", ["restore", "--json"], 2],
    ["--version", ["--version", "--json"], 0],
    ["--help", ["run", "--help", "--json"], 0],
  ];
  for (const [what, args, code] of cases) {
    it(what, async () => {
      const res = await cli(args);
      expect(res.code, res.stderr).toBe(code);
      const doc = JSON.parse(res.stdout) as { status: string; exitCode?: number; error?: string };
      expect(doc.status).toBe(code === 0 ? "ok" : "error");
      if (code) {
        expect(doc.exitCode).toBe(code);
        expect(doc.error).toBeTruthy();
      }
    });
  }
});

describe("--help", () => {
  it("every command lists the environment variables it reads and its defaults", async () => {
    const expected: Record<string, string[]> = {
      run: ["PGHOST", "PGPASSWORD", "AWS_ENDPOINT_URL_S3", "LIFEBOAT_PG_BINDIR", "LIFEBOAT_CONFIG", "default: the target's dump.format, else custom", "else zstd:3 with pg_dump 16+, gzip:1 before", "else 3"],
      list: ["AWS_REGION", "LIFEBOAT_CONFIG", "default: the config's storage"],
      status: ["AWS_PROFILE", "LIFEBOAT_CONFIG"],
      restore: ["PGUSER", "AWS_ACCESS_KEY_ID", "LIFEBOAT_PG_BINDIR", `default: "latest"`, "default: a parallel backup set, the CPUs available", "a single archive, 1: one transaction"],
      verify: ["LIFEBOAT_PG_USER", "PGSSLMODE", "default: a throwaway cluster", "default: the CPUs available"],
      schedule: ["LIFEBOAT_RDS_CA_BUNDLE", "AWS_REGION", "{ env: NAME }"],
      prune: ["AWS_ENDPOINT_URL_S3", "default: the target's retention"],
      demo: ["LIFEBOAT_PG_BINDIR", "LIFEBOAT_PG_USER", `default: "1"`],
    };
    for (const [command, needles] of Object.entries(expected)) {
      const res = await cli([command, "--help"]);
      expect(res.code).toBe(0);
      const text = res.stdout.replace(/\s+/g, " "); // commander wraps option descriptions
      expect(text).toContain("Environment:");
      for (const n of needles) expect(text, `${command} --help`).toContain(n);
    }
  });
});

describe("progress lines", () => {
  it("without a terminal: no line for the first bytes, a line every few seconds, and the final figures at the end", () => {
    const err = new PassThrough();
    let text = "";
    err.on("data", (d: Buffer) => (text += d.toString()));
    const out = new Output("plain", false, new PassThrough(), err);
    out.progress("dumping", 8192, 10);
    expect(text).toBe("");
    out.progress("dumping", 5_000_000, 1000);
    out.endProgress();
    expect(text.trim().split("\n")).toEqual([expect.stringMatching(/^dumping {2}bytes=5000000 human=4\.8 MiB rate=4\.8 MiB\/s$/)]);
  });

  it("with a known total (a download), the time left at the rate so far", () => {
    const err = new PassThrough();
    let text = "";
    err.on("data", (d: Buffer) => (text += d.toString()));
    const out = new Output("plain", false, new PassThrough(), err);
    out.progress("downloading", 25_000_000, 10_000, 100_000_000); // a quarter in 10 s: 30 s left
    out.endProgress();
    expect(text.trim()).toMatch(/^downloading {2}bytes=25000000 .* total=100000000 eta=30(\.0)? s$/);
  });

  it("a restore with parallel jobs counts each table once and ends at n/n", async () => {
    const many = unique("many");
    await createDatabase(many, Array.from({ length: 5 }, (_, i) => `create table t${i}(x int); insert into t${i} select generate_series(1, 50);`).join("\n"));
    const store = pathToFileURL(tempDir("lifeboat-progress-")).href;
    const run = await cli(["run", "--db", url(many), "--to", store, "--json"]);
    expect(run.code, run.stderr).toBe(0);
    const target = unique("progress_target");
    await createDatabase(target);
    const res = await cli(["restore", "--from", store, "--to", url(target), "--jobs", "2", "--json"]);
    expect(res.code, res.stderr).toBe(0);
    const lines = res.stderr
      .trim()
      .split("\n")
      .map((l) => JSON.parse(l) as { msg: string; done?: number; total?: number })
      .filter((l) => l.msg === "restoring");
    expect(lines.length).toBeGreaterThan(0);
    for (const l of lines) expect(l.done!).toBeLessThanOrEqual(l.total!);
    expect(lines.at(-1)).toMatchObject({ done: 5, total: 5 });
  });
});
