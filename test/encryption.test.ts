import { execFileSync, spawn } from "node:child_process";
import { readFileSync, readdirSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { GetObjectCommand, PutObjectCommand } from "@aws-sdk/client-s3";
import { LocalEventBus, dumpSchema, parseConfig, retriesSchema, type LifeboatEvent, type Manifest } from "@lifeboat/core";
import { AGE_HEADER, DirectoryStore, S3Store, fingerprint, findTool, query, runBackup } from "@lifeboat/runner";
import { cli, conn, createDatabase, pg, s3, s3Client, tempDir, unique, url } from "./support/helpers.js";

/**
 * Client-side encryption (age): what reaches the store is an age file for the recipients; restore and verify decrypt
 * with an identity; the wrong identity, or none, is refused before the target is touched; the identity is never
 * printed. Debian's `age` tool reads what Lifeboat writes.
 */
let db: string;
let dir: string;
const keys: { file: string; identity: string; recipient: string }[] = [];
const MARKER = "lifeboat_secret_marker_table";

beforeAll(async () => {
  db = unique("enc");
  await createDatabase(
    db,
    `create table ${MARKER}(id int primary key, note text);
     insert into ${MARKER} select g, 'customer row ' || g from generate_series(1, 5000) g;
     create table big(id int, payload text);
     insert into big select g, md5(g::text) || md5((g * 3)::text) from generate_series(1, 40000) g;`,
  );
  dir = tempDir("lifeboat-enc-");
  for (const n of [1, 2, 3]) {
    const file = join(dir, `identity-${n}.txt`);
    const res = await cli(["keygen", "--output", file, "--json"]);
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout) as { recipient: string };
    // the public key is printed; the secret key only ever goes into the file
    expect(res.stdout + res.stderr).not.toContain("AGE-SECRET-KEY");
    const identity = readFileSync(file, "utf8").split("\n").find((l) => l.startsWith("AGE-SECRET-KEY-1"))!;
    keys.push({ file, identity, recipient: out.recipient });
  }
});

const stored = (bytes: Buffer) => ({ header: bytes.subarray(0, AGE_HEADER.length).toString("latin1"), text: bytes.toString("latin1") });

function expectNoPlaintext(bytes: Buffer) {
  const { header, text } = stored(bytes);
  expect(header).toBe(AGE_HEADER);
  expect(text).not.toContain("PGDMP");
  expect(text).not.toContain(MARKER);
  expect(text).not.toContain("customer row");
}

function expectNoIdentity(...texts: string[]) {
  for (const t of texts) {
    expect(t).not.toContain("AGE-SECRET-KEY");
    for (const k of keys) expect(t).not.toContain(k.identity.slice(16));
  }
}

describe("encrypted backups (age)", () => {
  it("lifeboat keygen writes an identity only its owner may read and refuses to overwrite it", async () => {
    expect(execFileSync("stat", ["-c", "%a", keys[0]!.file]).toString().trim()).toBe("600");
    expect(keys[0]!.recipient).toMatch(/^age1[02-9ac-hj-np-z]{58}$/);
    // age-keygen -y derives the same public key: the file is the age tool's own format
    expect(execFileSync("age-keygen", ["-y", keys[0]!.file]).toString().trim()).toBe(keys[0]!.recipient);
    // a folder that does not exist yet is made, private
    const nested = join(dir, "new", "folder", "identity.txt");
    expect((await cli(["keygen", "--output", nested])).code).toBe(0);
    expect(execFileSync("stat", ["-c", "%a", dirname(nested)]).toString().trim()).toBe("700");
    const again = await cli(["keygen", "--output", keys[0]!.file]);
    expect(again.code).toBe(2);
    expect(again.stderr).toContain("refusing to overwrite");
    expectNoIdentity(again.stdout, again.stderr);
  });

  it("directory store: run --recipient stores an age file with no plaintext; restore --identity brings it back; age | pg_restore too", async () => {
    const store = join(dir, "store");
    const run = await cli(["run", "--db", url(db), "--to", `file://${store}`, "--name", "enc", "--recipient", keys[0]!.recipient, "--json"]);
    expect(run.code, run.stderr).toBe(0);
    const m = JSON.parse(run.stdout).manifest as Manifest;
    expect(m.encryption).toEqual({ format: "age", recipients: [keys[0]!.recipient] });
    const bytes = readFileSync(join(store, m.object.key));
    expect(bytes.length).toBe(m.object.size);
    expectNoPlaintext(bytes);
    const manifestText = readFileSync(join(store, m.object.key.replace(/\.dump$/, ".manifest.json")), "utf8");
    // list needs no key, and says the backup is encrypted
    const listed = await cli(["list", "--from", `file://${store}`, "--json"]);
    expect(listed.code, listed.stderr).toBe(0);
    expect(JSON.parse(listed.stdout).backups[0]).toMatchObject({ id: m.id, format: "custom", encryption: { format: "age", recipients: [keys[0]!.recipient] } });
    expect((await cli(["list", "--from", `file://${store}`])).stdout).toContain("custom+age");
    expectNoIdentity(run.stdout, run.stderr, manifestText);
    // nothing unencrypted was left anywhere in the store
    for (const f of readdirSync(store, { recursive: true }).map(String).filter((f) => f.endsWith(".dump"))) expectNoPlaintext(readFileSync(join(store, f)));

    const target = unique("enc_restored");
    await createDatabase(target);
    const res = await cli(["restore", "--from", `file://${store}`, "--to", url(target), "--identity", keys[0]!.file, "--json"]);
    expect(res.code, res.stderr).toBe(0);
    const [a, b] = await Promise.all([fingerprint(conn(db)), fingerprint(conn(target))]);
    expect(b.tables).toEqual(a.tables);
    expectNoIdentity(res.stdout, res.stderr);

    // the escape hatch: age's own command line decrypts, pg_restore restores
    const viaAge = unique("enc_age");
    await createDatabase(viaAge);
    const pgRestore = await findTool("pg_restore");
    await new Promise<void>((resolve, reject) => {
      const sh = spawn("bash", ["-o", "pipefail", "-c", `age -d -i "${keys[0]!.file}" "${join(store, m.object.key)}" | "${pgRestore.path}" --no-owner --dbname="${url(viaAge)}"`], { stdio: ["ignore", "ignore", "pipe"] });
      let err = "";
      sh.stderr.on("data", (d: Buffer) => (err += d.toString()));
      sh.on("close", (code) => (code === 0 ? resolve() : reject(new Error(`age | pg_restore exited ${code}: ${err}`))));
    });
    expect((await fingerprint(conn(viaAge))).tables).toEqual(a.tables);
  });

  it("S3, a parallel set for several recipients: every part encrypted, each recipient's identity restores it, verify drills it", async () => {
    const prefix = unique("enc");
    const storeUrl = `s3://${s3().bucket}/${prefix}`;
    const store = new S3Store({ bucket: s3().bucket, prefix, endpoint: s3().endpoint, region: s3().region }, s3Client());
    const events: LifeboatEvent[] = [];
    const bus = new LocalEventBus();
    bus.subscribe((e) => void events.push(e));
    const r = await runBackup({
      target: "encset",
      resolveSource: async () => conn(db),
      store,
      dump: dumpSchema.parse({ jobs: 2, parallelMinTableMB: 0.1 }),
      retries: retriesSchema.parse({ attempts: 1 }),
      encryption: { recipients: [keys[0]!.recipient, keys[1]!.recipient] },
      bus,
    });
    const m = r.manifest;
    expect(m.parts!.length).toBeGreaterThan(0);
    for (const o of [m.object, ...m.parts!]) {
      const body = await s3Client().send(new GetObjectCommand({ Bucket: s3().bucket, Key: `${prefix}/${o.key}` }));
      const bytes = Buffer.from(await body.Body!.transformToByteArray());
      expect(bytes.length).toBe(o.size);
      expectNoPlaintext(bytes);
    }
    expect((events[0] as { restoreCommand?: string }).restoreCommand).toContain("--identity");
    expectNoIdentity(JSON.stringify(events), JSON.stringify(m));

    const source = await fingerprint(conn(db));
    for (const k of keys.slice(0, 2)) {
      const target = unique("enc_set");
      await createDatabase(target);
      const res = await cli(["restore", "--from", storeUrl, "--to", url(target), "--identity", k.file, "--json"]);
      expect(res.code, res.stderr).toBe(0);
      expect((await fingerprint(conn(target))).tables).toEqual(source.tables);
    }
    const drill = await cli(["verify", "--from", storeUrl, "--identity", keys[1]!.file, "--json"]);
    expect(drill.code, drill.stderr).toBe(0);
    const result = JSON.parse(drill.stdout) as { outcome: string; checks: { check: string; ok: boolean }[] };
    expect(result.checks.map((c) => [c.check, c.ok])).toEqual([["sha256", true], ["decrypt", true], ["toc", true], ["restore", true], ["tables", true]]);

    // without an identity, the drill checks what needs no key (the SHA-256 of the stored bytes) and fails, saying why
    const blind = await cli(["verify", "--from", storeUrl, "--json"]);
    expect(blind.code).toBe(1);
    const failed = JSON.parse(blind.stdout) as { outcome: string; checks: { check: string; ok: boolean; detail: string }[] };
    expect(failed.checks.map((c) => [c.check, c.ok])).toEqual([["sha256", true], ["decrypt", false]]);
    expect(failed.checks[1]!.detail).toContain(keys[0]!.recipient);
  });

  it("a wrong or missing identity is refused before the target is touched, naming the backup's recipients; the identity is printed nowhere", async () => {
    const store = join(dir, "store-wrong");
    const run = await cli(["run", "--db", url(db), "--to", `file://${store}`, "--name", "encw", "--recipient", keys[0]!.recipient, "--json"]);
    expect(run.code, run.stderr).toBe(0);
    const target = unique("enc_untouched");
    await createDatabase(target, "create table keep(x int); insert into keep values (42);");
    const before = await fingerprint(conn(target));

    const wrong = await cli(["restore", "--from", `file://${store}`, "--to", url(target), "--identity", keys[2]!.file, "--json"]);
    expect(wrong.code).toBe(2);
    const error = JSON.parse(wrong.stdout).error as string;
    expect(error).toContain(keys[0]!.recipient);
    expect(error).toContain("none of them");
    expectNoIdentity(wrong.stdout, wrong.stderr);

    const none = await cli(["restore", "--from", `file://${store}`, "--to", url(target), "--json"]);
    expect(none.code).toBe(2);
    expect(JSON.parse(none.stdout).error).toContain(`encrypted (age) for ${keys[0]!.recipient}`);

    // a public key where the identity belongs, and a private key where a recipient belongs, are told apart
    const pub = join(dir, "public.txt");
    writeFileSync(pub, keys[0]!.recipient + "\n");
    const notIdentity = await cli(["restore", "--from", `file://${store}`, "--to", url(target), "--identity", pub, "--json"]);
    expect(notIdentity.code).toBe(2);
    expect(JSON.parse(notIdentity.stdout).error).toContain("is not an age identity");
    const leaked = await cli(["run", "--db", url(db), "--to", `file://${store}`, "--recipient", keys[2]!.identity, "--json"]);
    expect(leaked.code).toBe(2);
    expectNoIdentity(leaked.stdout, leaked.stderr);

    expect(await fingerprint(conn(target))).toEqual(before);
    expect(await query(conn(target), "select x from keep")).toEqual([["42"]]);
  });

  it("a flipped byte in the stored age file is refused by the checksum, and the target stays untouched", async () => {
    const prefix = unique("encflip");
    const storeUrl = `s3://${s3().bucket}/${prefix}`;
    const run = await cli(["run", "--db", url(db), "--to", storeUrl, "--name", "encf", "--recipient", keys[0]!.recipient, "--json"]);
    expect(run.code, run.stderr).toBe(0);
    const m = JSON.parse(run.stdout).manifest as Manifest;
    const key = `${prefix}/${m.object.key}`;
    const body = await s3Client().send(new GetObjectCommand({ Bucket: s3().bucket, Key: key }));
    const bytes = Buffer.from(await body.Body!.transformToByteArray());
    bytes[Math.floor(bytes.length / 2)]! ^= 0x01;
    await s3Client().send(new PutObjectCommand({ Bucket: s3().bucket, Key: key, Body: bytes }));
    const target = unique("enc_flip");
    await createDatabase(target);
    const res = await cli(["restore", "--from", storeUrl, "--to", url(target), "--identity", keys[0]!.file, "--json"]);
    expect(res.code).toBe(1);
    expect(JSON.parse(res.stdout).error).toMatch(/sha256|checksum/i);
    expect(await query(conn(target), "select count(*) from pg_class c join pg_namespace n on n.oid = c.relnamespace where n.nspname = 'public'")).toEqual([["0"]]);
  });

  it("pg_dump killed mid-stream under encryption: the attempt fails with pg_dump's error, and nothing is stored", async () => {
    const big = unique("encbig");
    await createDatabase(big, "create table t as select g, md5(g::text) || md5((g+1)::text) as p from generate_series(1, 400000) g;");
    const root = tempDir("lifeboat-enc-kill-");
    let pid: number | undefined;
    const err = await runBackup({
      target: "enckill",
      resolveSource: async () => conn(big),
      store: new DirectoryStore(root),
      dump: dumpSchema.parse({ compression: 0, jobs: 1 }),
      retries: retriesSchema.parse({ attempts: 1 }),
      encryption: { recipients: [keys[0]!.recipient] },
      log: { log: (_l, msg, f) => void (msg === "pg_dump started" ? (pid = f?.pid as number) : undefined) },
      onProgress: () => {
        if (pid) process.kill(pid, "SIGKILL");
        pid = undefined;
      },
    }).catch((e: Error) => e);
    expect((err as Error).message).toMatch(/pg_dump was killed by SIGKILL/);
    const files = readdirSync(root, { recursive: true, withFileTypes: true }).filter((e) => e.isFile() && !e.name.startsWith(".lifeboat-"));
    expect(files.map((e) => e.name)).toEqual([]);
  });

  it("the blue-green swap and SQLite restores work on encrypted backups", async () => {
    const store = join(dir, "store-swap");
    const live = unique("enc_live");
    await createDatabase(live, "create table t(x int); insert into t values (1);");
    const run = await cli(["run", "--db", url(db), "--to", `file://${store}`, "--name", "encs", "--recipient", keys[1]!.recipient, "--json"]);
    expect(run.code, run.stderr).toBe(0);
    const swap = await cli(["restore", "--from", `file://${store}`, "--to", url(live), "--swap", "--identity", keys[1]!.file, "--json"]);
    expect(swap.code, swap.stderr).toBe(0);
    expect((await fingerprint(conn(live))).tables).toEqual((await fingerprint(conn(db))).tables);

    const sqliteFile = join(dir, "app.db");
    execFileSync("sqlite3", [sqliteFile, `create table notes(id integer primary key, body text); insert into notes(body) values ('${MARKER}');`]);
    const sqliteStore = join(dir, "store-sqlite");
    const file = join(dir, "sqlite.config.ts");
    writeFileSync(file, `export default ${JSON.stringify({ storage: { directory: sqliteStore }, encryption: { recipients: [keys[0]!.recipient] }, targets: { notes: { engine: "sqlite", database: { path: sqliteFile } } } })};`);
    const backed = await cli(["run", "notes", "--config", file, "--json"]);
    expect(backed.code, backed.stderr).toBe(0);
    const m = JSON.parse(backed.stdout).manifest as Manifest;
    expect(m.encryption?.recipients).toEqual([keys[0]!.recipient]);
    const bytes = readFileSync(join(sqliteStore, m.object.key));
    expect(stored(bytes).header).toBe(AGE_HEADER);
    expect(stored(bytes).text).not.toContain("SQLite format 3");
    expect(stored(bytes).text).not.toContain(MARKER);
    const out = join(dir, "restored.db");
    const restored = await cli(["restore", "notes", "--config", file, "--to-file", out, "--identity", keys[0]!.file, "--json"]);
    expect(restored.code, restored.stderr).toBe(0);
    expect(execFileSync("sqlite3", [out, "select body from notes"]).toString().trim()).toBe(MARKER);
  });

  it("config: encryption at the top level applies to every target unless one sets its own; identities come from a secret, never a value", async () => {
    const base = { storage: { directory: "/srv/backups" }, encryption: { recipients: [keys[0]!.recipient] } };
    const c = parseConfig({
      ...base,
      targets: {
        a: { database: { url: { env: "A" } } },
        b: { database: { url: { env: "B" } }, encryption: { recipients: [keys[1]!.recipient], identity: { env: "B_AGE_IDENTITY" } } },
      },
    });
    expect(c.targets.a!.encryption).toEqual({ recipients: [keys[0]!.recipient] });
    expect(c.targets.b!.encryption).toEqual({ recipients: [keys[1]!.recipient], identity: { env: "B_AGE_IDENTITY" } });
    const bad = (encryption: unknown) => {
      try {
        parseConfig({ storage: { directory: "/srv" }, targets: { a: { database: { url: { env: "A" } }, encryption } } });
        return "";
      } catch (err) {
        return JSON.stringify((err as { problems?: unknown }).problems ?? (err as Error).message);
      }
    };
    const asValue = bad({ recipients: [keys[0]!.recipient], identity: keys[0]!.identity });
    expect(asValue).toContain("targets.a.encryption.identity");
    expect(asValue).toContain("never the key itself");
    expectNoIdentity(asValue);
    const swapped = bad({ recipients: [keys[0]!.identity] });
    expect(swapped).toContain("is a private key");
    expectNoIdentity(swapped);
    expect(bad({ recipients: ["age1nope"] })).toContain("is not an age public key");
    expect(bad({ recipients: [] })).toContain("at least one recipient");
  });

  it("a config target's identity from the environment: restore and verify need no --identity", async () => {
    const file = join(dir, "lifeboat.config.ts");
    const store = join(dir, "store-config");
    writeFileSync(
      file,
      `export default ${JSON.stringify({
        storage: { directory: store },
        targets: { app: { database: { host: pg().host, port: pg().port, database: db, user: "postgres", password: { env: "PW" } }, encryption: { recipients: [keys[2]!.recipient], identity: { env: "APP_AGE_IDENTITY" } } } },
      })};`,
    );
    const env = { env: { PW: pg().password, APP_AGE_IDENTITY: readFileSync(keys[2]!.file, "utf8") } };
    const run = await cli(["run", "app", "--config", file, "--json"], env);
    expect(run.code, run.stderr).toBe(0);
    expect((JSON.parse(run.stdout).manifest as Manifest).encryption?.recipients).toEqual([keys[2]!.recipient]);
    const drill = await cli(["verify", "app", "--config", file, "--json"], env);
    expect(drill.code, drill.stderr).toBe(0);
    expect(JSON.parse(drill.stdout).outcome).toBe("passed");
    const unset = await cli(["verify", "app", "--config", file, "--json"], { env: { PW: pg().password } });
    expect(unset.code).toBe(2);
    expect(JSON.parse(unset.stdout).error).toContain("APP_AGE_IDENTITY is not set");
    expectNoIdentity(run.stdout, run.stderr, drill.stdout, drill.stderr);
  });
});
