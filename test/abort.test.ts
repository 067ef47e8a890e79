import { readdirSync } from "node:fs";
import { join } from "node:path";
import { beforeAll, describe, expect, it } from "vitest";
import { BackupFailedError, LocalEventBus, dumpSchema, retriesSchema, type LifeboatEvent, type ObjectStore } from "@lifeboat/core";
import { DirectoryStore, S3Store, runBackup } from "@lifeboat/runner";
import { cli, conn, createDatabase, s3, s3Client, s3Keys, s3PendingUploads, unique, url, tempDir } from "./support/helpers.js";

/**
 * A dump that stops half way must leave nothing: no object, no manifest, no pending multipart upload, no partial file.
 * The database is large enough (~100 MB uncompressed) that several 8 MiB parts are in flight when pg_dump dies.
 */
let db: string;
const MiB = 1024 * 1024;

beforeAll(async () => {
  db = unique("big");
  await createDatabase(
    db,
    "create table big as select g as id, md5(g::text) || md5((g * 7)::text) || md5((g * 13)::text) as payload from generate_series(1, 1000000) g;",
  );
});

/** Every file below a directory, by name. */
const walk = (d: string): string[] => readdirSync(d, { withFileTypes: true }).flatMap((e) => (e.isDirectory() ? walk(join(d, e.name)) : [e.name]));

/** Runs a backup and, once `afterBytes` have streamed, freezes pg_dump (SIGSTOP), looks, then kills it (SIGKILL). */
async function killMidStream(store: ObjectStore, look: () => Promise<void>, jobs = 1) {
  let pid: number | undefined;
  let killing: Promise<void> | undefined;
  const events: LifeboatEvent[] = [];
  const bus = new LocalEventBus();
  bus.subscribe((e) => void events.push(e));
  const backup = runBackup({
    target: "big",
    resolveSource: async () => conn(db),
    store,
    dump: dumpSchema.parse({ compression: 0, jobs }),
    retries: retriesSchema.parse({ attempts: 1 }),
    bus,
    // one stream: its pg_dump; a set: the part's (the base, schema only here, may have ended already)
    log: { log: (_l, msg, f) => (msg === "pg_dump started" && (jobs === 1 || f?.part) ? (pid = f?.pid as number) : undefined) },
    onProgress: (p) => {
      if (p.bytes > 20 * MiB && !killing && pid) {
        const victim = pid;
        process.kill(victim, "SIGSTOP");
        killing = look().finally(() => process.kill(victim, "SIGKILL"));
      }
    },
  });
  const err = await backup.catch((e: unknown) => e);
  await killing;
  expect(err).toBeInstanceOf(BackupFailedError);
  const failed = err as BackupFailedError;
  expect(failed.attempts).toHaveLength(1);
  expect(failed.attempts[0]!.message).toMatch(/pg_dump was killed by SIGKILL/);
  expect(events.map((e) => e.type)).toEqual(["backup.failed"]);
  return failed;
}

describe("pg_dump killed mid-stream", () => {
  it("S3: the multipart upload is aborted, no object and no manifest remain", async () => {
    const prefix = unique("kill");
    const s = s3();
    const store = new S3Store({ bucket: s.bucket, prefix, endpoint: s.endpoint, region: s.region }, s3Client());
    let pendingWhileFrozen: string[] = [];
    await killMidStream(store, async () => {
      pendingWhileFrozen = await s3PendingUploads(prefix + "/");
    });
    expect(pendingWhileFrozen).toHaveLength(1); // the upload really was in flight
    expect(await s3PendingUploads(prefix + "/")).toEqual([]);
    expect(await s3Keys(prefix + "/")).toEqual([]);
  });

  it("directory: the temporary file is removed, nothing is left", async () => {
    const dir = tempDir("lifeboat-kill-");
    const partials: string[] = [];
    await killMidStream(new DirectoryStore(dir), async () => {
      partials.push(...walk(dir));
    });
    expect(partials).toHaveLength(1);
    expect(partials[0]).toMatch(/\.dump\.partial-[0-9a-f]+$/);
    expect(walk(dir)).toEqual([]);
  });

  it("directory, parallel dump: the part being written and the base archive already stored are both removed", async () => {
    const dir = tempDir("lifeboat-kill-set-");
    const seen: string[] = [];
    await killMidStream(new DirectoryStore(dir), async () => {
      seen.push(...walk(dir));
    }, 2);
    // the part was being written; the base (schema only: "big"'s data is a part of its own) was stored, or nearly
    expect(seen.filter((f) => /\.part-001\.dump\.partial-[0-9a-f]+$/.test(f))).toHaveLength(1);
    expect(seen.filter((f) => /^\d{8}T\d{6}Z-[0-9a-f]{4}\.dump(\.partial-[0-9a-f]+)?$/.test(f))).toHaveLength(1);
    expect(seen).toHaveLength(2);
    expect(walk(dir)).toEqual([]);
  });

  it("SIGTERM to `lifeboat run` while a multipart upload is in flight aborts it, stops pg_dump and exits 143", async () => {
    const prefix = unique("term");
    let pid: number | undefined;
    let inFlight: string[] = [];
    let watching = false;
    const res = await cli(["run", "--db", url(db), "--to", `s3://${s3().bucket}/${prefix}`, "--compression", "0", "--json"], {
      onStderr: (chunk, child) => {
        for (const line of chunk.split("\n")) {
          if (!line.startsWith("{")) continue;
          const entry = JSON.parse(line);
          if (entry.msg !== "pg_dump started" || watching) continue;
          pid = entry.pid;
          watching = true;
          // the signal goes once the store holds a pending multipart upload of this backup: parts are in flight
          const poll = async () => {
            inFlight = await s3PendingUploads(prefix + "/");
            if (inFlight.length) child.kill("SIGTERM");
            else setTimeout(() => void poll(), 20);
          };
          void poll();
        }
      },
    });
    expect(inFlight.length, "the signal was sent while an upload was in flight").toBeGreaterThan(0);
    expect(res.code, res.stderr).toBe(143);
    const out = JSON.parse(res.stdout);
    expect(out.status).toBe("error");
    expect(out.error).toMatch(/^interrupted by SIGTERM: stopped the backup of/);
    expect(out.attempts).toHaveLength(1);
    expect(out.attempts[0].code).toBe("cancelled");
    expect(res.stderr).toContain("SIGTERM: stopping the backup");
    expect(pid).toBeGreaterThan(0);
    expect(() => process.kill(pid!, 0)).toThrow(/ESRCH/); // pg_dump is gone
    expect(await s3PendingUploads(prefix + "/")).toEqual([]);
    expect(await s3Keys(prefix + "/")).toEqual([]);
  });
});
