import { chmodSync, readFileSync, readdirSync, statSync } from "node:fs";
import { createServer, type Server } from "node:http";
import { join } from "node:path";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { S3Store, query, toAttemptError } from "@lifeboat/runner";
import { startEmbeddedS3 } from "@lifeboat/cli";
import { cli, conn, createDatabase, pg, tempDir, unique, url } from "./support/helpers.js";

/**
 * README guarantees that no test could break before (issue "On one server too..."): S3 5xx and throttling are
 * transient, a missing bucket, permission denied and an unknown host are permanent, a restore into the source is
 * refused by the cluster's system identifier whatever the host is called, a failing plain restore changes nothing,
 * and no plaintext reaches the local disk while an encrypted backup is made. Real processes and servers throughout.
 */

let s3Fault: Server;
let faultEndpoint = "";
let answer = { status: 503, code: "SlowDown" };
const MARKER = "PLAINTEXT-MARKER-7f3a9c";
let db = "";

beforeAll(async () => {
  // an S3 endpoint that answers every request with the error S3 itself sends (XML body, the status S3 uses)
  s3Fault = createServer((req, res) => {
    req.resume();
    res.writeHead(answer.status, { "content-type": "application/xml" }).end(`<?xml version="1.0" encoding="UTF-8"?>\n<Error><Code>${answer.code}</Code><Message>injected</Message><RequestId>1</RequestId></Error>`);
  });
  await new Promise<void>((r) => s3Fault.listen(0, "127.0.0.1", r));
  faultEndpoint = `http://127.0.0.1:${(s3Fault.address() as { port: number }).port}`;
  db = unique("guar");
  await createDatabase(db, `create table t(id int primary key, secret text); insert into t select g, '${MARKER}-' || g from generate_series(1, 2000) g;`);
});
afterAll(() => new Promise<void>((r) => s3Fault.close(() => r())));

async function putError(store: S3Store): Promise<unknown> {
  return store.put("k/x.dump", Readable.from([Buffer.from("data")])).then(
    () => new Error("the put succeeded"),
    (e: unknown) => e,
  );
}

describe("the store's failures are classified as the README says", () => {
  for (const [status, code] of [
    [503, "SlowDown"],
    [500, "InternalError"],
    [503, "ServiceUnavailable"],
  ] as const) {
    it(`HTTP ${status} ${code} is transient (retried)`, async () => {
      answer = { status, code };
      // the SDK retries these itself first (standard mode: 3 attempts); then Lifeboat's attempt fails as transient
      const e = toAttemptError(await putError(new S3Store({ bucket: "b", endpoint: faultEndpoint, region: "us-east-1" })), []);
      expect(e.code).toBe(`s3_${code}`);
      expect(e.kind).toBe("transient");
    });
  }

  it("a missing bucket is permanent (not retried), with a hint to create it", async () => {
    const s3 = await startEmbeddedS3();
    try {
      const store = new S3Store({ bucket: "no-such-bucket-here", endpoint: s3.endpoint, region: s3.region });
      const e = toAttemptError(await putError(store), []);
      expect(e.code).toBe("s3_NoSuchBucket");
      expect(e.kind).toBe("permanent");
      expect(e.hint).toMatch(/create the bucket/);
    } finally {
      await s3.stop();
    }
  });

  it("access denied by the store is permanent", async () => {
    answer = { status: 403, code: "AccessDenied" };
    const e = toAttemptError(await putError(new S3Store({ bucket: "b", endpoint: faultEndpoint, region: "us-east-1" })), []);
    expect(e.code).toBe("s3_AccessDenied");
    expect(e.kind).toBe("permanent");
  });
});

describe("the database's permanent failures are not retried", () => {
  it("an unknown host: one attempt, unknown_host", async () => {
    const r = await cli(["run", "--db", "postgres://app@no-such-host.invalid:5432/app", "--to", `file://${tempDir("lifeboat-g-")}`, "--json"]);
    expect(r.code).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.attempts).toHaveLength(1);
    expect(out.attempts[0]).toMatchObject({ code: "unknown_host", kind: "permanent" });
  });

  it("permission denied on a table: one attempt, permission_denied, with the GRANT to give", async () => {
    const user = unique("noread");
    await query(conn(), `create role ${user} login password 'pw-${user}';`);
    try {
      const r = await cli(["run", "--db", `postgres://${user}:pw-${user}@${pg().host}:${pg().port}/${db}`, "--to", `file://${tempDir("lifeboat-g-")}`, "--json"]);
      expect(r.code).toBe(1);
      const out = JSON.parse(r.stdout);
      expect(out.attempts).toHaveLength(1);
      expect(out.attempts[0]).toMatchObject({ code: "permission_denied", kind: "permanent" });
      expect(out.hint).toMatch(/GRANT pg_read_all_data/);
      expect(r.stdout + r.stderr).not.toContain(`pw-${user}`);
    } finally {
      await query(conn(), `drop role ${user};`);
    }
  });
});

describe("restores", () => {
  it("the source database is refused by its cluster's system identifier, however the host is spelled", async () => {
    const store = `file://${tempDir("lifeboat-g-src-")}`;
    const run = await cli(["run", "--db", url(db), "--to", store, "--name", "guar", "--json"]);
    expect(run.code, run.stderr).toBe(0);
    // backed up through 127.0.0.1; restored "to" localhost: another spelling of the same server and database
    expect(pg().host).toBe("127.0.0.1");
    const p = pg();
    const other = `postgres://${p.user}:${encodeURIComponent(p.password)}@localhost:${p.port}/${db}`;
    const r = await cli(["restore", "guar", "--from", store, "--to", other, "--json"]);
    expect(r.code).toBe(2);
    expect(JSON.parse(r.stdout).error).toMatch(/refusing to restore into .*: it is the database this backup was taken from/);
  });

  it("a failing plain restore changes nothing: the target is exactly as it was", async () => {
    const owner = unique("plain_owner");
    const src = unique("plain_src");
    await query(conn(), `create role ${owner};`);
    await createDatabase(src, `create table a(id int); insert into a values (1); create table b(id int); alter table b owner to ${owner};`);
    const store = `file://${tempDir("lifeboat-g-plain-")}`;
    const run = await cli(["run", "--db", url(src), "--to", store, "--name", "plain", "--format", "plain", "--json"]);
    expect(run.code, run.stderr).toBe(0);
    await query(conn(src), `alter table b owner to ${pg().user};`);
    await query(conn(), `drop role ${owner};`);
    const target = unique("plain_to");
    await createDatabase(target, "create table keep_me(id int); insert into keep_me values (42);");
    const before = await query(conn(target), "select string_agg(relname, ',' order by relname) from pg_class where relnamespace = 'public'::regnamespace;");
    const r = await cli(["restore", "plain", "--from", store, "--to", url(target), "--json"]);
    expect(r.code).toBe(1);
    expect(JSON.parse(r.stdout).error).toContain(`role "${owner}" does not exist`);
    // table a was created and filled before the failing ALTER ... OWNER: rolled back with everything else
    expect(await query(conn(target), "select string_agg(relname, ',' order by relname) from pg_class where relnamespace = 'public'::regnamespace;")).toEqual(before);
    expect(await query(conn(target), "select id from keep_me;")).toEqual([["42"]]);
  });
});

describe("encrypted backups", () => {
  it("no plaintext reaches the local disk while backing up: not the store, not the temporary directory", async () => {
    const keys = tempDir("lifeboat-g-keys-");
    const kg = await cli(["keygen", "--output", join(keys, "id.txt"), "--json"]);
    const recipient = JSON.parse(kg.stdout).recipient;
    const storeDir = tempDir("lifeboat-g-enc-");
    const tmp = tempDir("lifeboat-g-tmp-");
    chmodSync(tmp, 0o755);
    for (const jobs of ["1", "2"]) {
      const r = await cli(["run", "--db", url(db), "--to", `file://${storeDir}`, "--name", `enc${jobs}`, "--jobs", jobs, "--compression", "none", "--recipient", recipient, "--json"], { env: { TMPDIR: tmp } });
      expect(r.code, r.stderr).toBe(0);
    }
    const files = (dir: string): string[] => readdirSync(dir, { recursive: true }).map(String).map((f) => join(dir, f)).filter((f) => statSync(f).isFile());
    const written = [...files(storeDir), ...files(tmp).filter((f) => !f.includes("/tsx-"))];
    expect(written.length).toBeGreaterThan(0);
    for (const f of written) expect(readFileSync(f).includes(MARKER), f).toBe(false);
    // the same run without encryption does write the marker: the check can see it
    const plainDir = tempDir("lifeboat-g-plainrun-");
    expect((await cli(["run", "--db", url(db), "--to", `file://${plainDir}`, "--name", "clear", "--jobs", "1", "--compression", "none"])).code).toBe(0);
    expect(files(plainDir).some((f) => readFileSync(f).includes(MARKER))).toBe(true);
  }, 60_000);
});
