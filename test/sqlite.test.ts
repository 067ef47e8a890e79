import { spawn, spawnSync } from "node:child_process";
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { LocalEventBus, dumpSchema, retriesSchema, type BackupSucceededEvent, type LifeboatEvent } from "@lifeboat/core";
import { DirectoryStore, runBackup } from "@lifeboat/runner";
import { cli, tempDir } from "./support/helpers.js";

/** SQLite snapshots (VACUUM INTO) while an application keeps writing, in both journal modes. */
const sql = (db: string, q: string) => spawnSync("sqlite3", ["-bail", db], { input: q, encoding: "utf8" });

describe("SQLite targets", () => {
  it.each(["delete", "wal"])("snapshot under concurrent writes (journal_mode=%s) restores to a file that passes integrity_check and holds every row committed before it", async (journal) => {
    const dir = tempDir("lifeboat-sqlite-");
    const live = join(dir, "blog.db");
    expect(sql(live, `pragma journal_mode=${journal}; create table posts(id integer primary key, body text not null); create index posts_body on posts(body);`).status).toBe(0);
    const config = join(dir, "lifeboat.config.ts");
    writeFileSync(
      config,
      `export default { storage: { directory: ${JSON.stringify(join(dir, "store"))} },
        targets: { blog: { engine: "sqlite", database: { path: ${JSON.stringify(live)} }, retries: { attempts: 3, delaySeconds: 0.2 } } } };`,
    );

    // the application: one sqlite3 process inserting rows 1, 2, 3, ... each in its own transaction
    const writer = spawn("sqlite3", [live], { stdio: ["pipe", "ignore", "pipe"] });
    writer.stdin.write(".timeout 10000\n");
    let next = 1;
    let writing = true;
    const pump = async () => {
      while (writing) {
        let batch = "";
        for (let i = 0; i < 200; i++, next++) batch += `insert into posts(id, body) values (${next}, '${"x".repeat(200)} ${next}');\n`;
        if (!writer.stdin.write(batch)) await new Promise((r) => writer.stdin.once("drain", r));
        await new Promise((r) => setTimeout(r, 5));
      }
    };
    const pumping = pump();
    await new Promise((r) => setTimeout(r, 500));
    const committedBefore = Number(spawnSync("sqlite3", ["-readonly", "-cmd", ".timeout 10000", live, "select max(id) from posts;"], { encoding: "utf8" }).stdout.trim());
    expect(committedBefore).toBeGreaterThan(0);

    const run = await cli(["run", "blog", "--config", config, "--json"]);
    writing = false;
    await pumping;
    writer.stdin.end(".quit\n");
    await new Promise((r) => writer.on("close", r));
    expect(run.code, run.stderr).toBe(0);
    const manifest = JSON.parse(run.stdout).manifest;
    expect(manifest).toMatchObject({ format: "sqlite", database: { name: "blog.db" } });
    expect(manifest.object.key).toMatch(/^blog\/\d{4}\/\d{2}\/\d{2}\/\d{8}T\d{6}Z-[0-9a-f]{4}\.sqlite$/);
    const rowsInSnapshot = manifest.tables.find((t: { name: string }) => t.name === "posts").rows;
    expect(rowsInSnapshot).toBeGreaterThanOrEqual(committedBefore);

    // restore writes a new file...
    const restored = join(dir, "restored.db");
    const res = await cli(["restore", "blog", "--config", config, "--to-file", restored]);
    expect(res.code, res.stderr).toBe(0);
    expect(sql(restored, "PRAGMA integrity_check;").stdout.trim()).toBe("ok");
    const [count, min, max] = sql(restored, "select count(*), min(id), max(id) from posts;").stdout.trim().split("|").map(Number);
    expect(count).toBe(rowsInSnapshot);
    expect([min, max]).toEqual([1, rowsInSnapshot]); // a consistent prefix of the writes: no torn or missing rows
    expect(max).toBeGreaterThanOrEqual(committedBefore);

    // ...and never replaces the live one without --force
    const refused = await cli(["restore", "blog", "--config", config, "--to-file", live]);
    expect(refused.code).toBe(2);
    expect(refused.stderr).toContain(`refusing to replace ${live}: it exists`);
    expect(Number(sql(live, "select count(*) from posts;").stdout.trim())).toBeGreaterThan(rowsInSnapshot - 1);

    // a SQLite backup has no PostgreSQL destination, plain or swapped: refused before --to is used (exit 2)
    for (const extra of [[], ["--swap"]]) {
      const wrong = await cli(["restore", "blog", "--config", config, "--to", "postgres://nobody@127.0.0.1:1/nothing", ...extra]);
      expect(wrong.code).toBe(2);
      expect(wrong.stderr).toMatch(/backup \d{8}T\d{6}Z-[0-9a-f]{4} is a SQLite database: restore it with --to-file <path>/);
      expect(wrong.stderr).not.toContain("restoring blog backup");
    }

    // list, and a drill
    const list = JSON.parse((await cli(["list", "blog", "--config", config, "--json"])).stdout);
    expect(list.backups.map((b: { format: string }) => b.format)).toEqual(["sqlite"]);
    const drill = await cli(["verify", "blog", "--config", config, "--json"]);
    expect(drill.code, drill.stderr).toBe(0);
    expect(JSON.parse(drill.stdout).checks.map((c: { check: string; ok: boolean }) => [c.check, c.ok])).toEqual([
      ["sha256", true],
      ["restore", true],
      ["tables", true],
    ]);
  });

  it("the restore command in the event and the summary restores to a file, not to a PostgreSQL URL", async () => {
    const dir = tempDir("lifeboat-sqlite-");
    const live = join(dir, "notes.db");
    expect(sql(live, "create table notes(id integer primary key); insert into notes values (1);").status).toBe(0);
    const events: LifeboatEvent[] = [];
    const bus = new LocalEventBus();
    bus.subscribe((e) => void events.push(e));
    const result = await runBackup({
      target: "notes",
      resolveSource: async () => {
        throw new Error("a SQLite target has no PostgreSQL source");
      },
      store: new DirectoryStore(join(dir, "store")),
      dump: dumpSchema.parse({}),
      retries: retriesSchema.parse({ attempts: 1 }),
      sqlite: { path: live },
      bus,
    });
    expect(events).toHaveLength(1);
    expect((events[0] as BackupSucceededEvent).restoreCommand).toBe(`lifeboat restore notes --backup ${result.manifest.id} --to-file <path>`);

    const config = join(dir, "lifeboat.config.ts");
    writeFileSync(config, `export default { storage: { directory: ${JSON.stringify(join(dir, "store"))} }, targets: { notes: { engine: "sqlite", database: { path: ${JSON.stringify(live)} } } } };`);
    const run = await cli(["run", "notes", "--config", config]);
    expect(run.code, run.stderr).toBe(0);
    expect(run.stdout).toMatch(/restore {3}lifeboat restore notes --backup \d{8}T\d{6}Z-[0-9a-f]{4} --to-file <path>/);
  });

  it("a config that mixes engines is refused", async () => {
    const dir = tempDir("lifeboat-sqlite-");
    const config = join(dir, "lifeboat.config.ts");
    writeFileSync(config, `export default { storage: { directory: "/tmp/x" }, targets: { a: { engine: "sqlite", database: { url: "postgres://u@h/d" } }, b: { database: { path: "/x.db" } } } };`);
    const res = await cli(["list", "--config", config]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain('targets.a.database.path: is required for engine: "sqlite"');
    expect(res.stderr).toContain('targets.b.engine: database.path is a SQLite file: set engine: "sqlite"');
  });
});
