import { mkdir, writeFile } from "node:fs/promises";
import { dirname, join } from "node:path";
import { PutObjectCommand, S3Client } from "@aws-sdk/client-s3";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseConfig } from "@lifeboat/core";
import { startEmbeddedS3, type EmbeddedS3 } from "@lifeboat/cli";
import { S3Store, checkFreshness, listBackups, s3ClientConfig } from "@lifeboat/runner";

/**
 * The freshness check at the scale of a large deployment: 200 scheduled targets with their daily backups in the local
 * S3 server. It reads each target's pointer to its newest backup, never a manifest: its work grows with the number of
 * targets, not with the history, which the requests counted here show. Laying down a year of history (73,000 objects)
 * costs this machine's filesystem over a minute with the cleanup, so the suite keeps 10 days per target and the full
 * year is measured by `npm run bench:freshness` (bench/freshness.ts). The figures are printed.
 */
const TARGETS = 200;
const DAYS = Number(process.env.LIFEBOAT_FRESHNESS_DAYS ?? 10);
let s3: EmbeddedS3;
let client: S3Client;
const requests: string[] = [];
const now = new Date("2026-12-03T12:00:00Z");

beforeAll(async () => {
  s3 = await startEmbeddedS3({ bucket: "fresh" });
  client = new S3Client({ ...s3ClientConfig({ bucket: s3.bucket, endpoint: s3.endpoint, region: s3.region }), credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey } });
  client.middlewareStack.add(
    (next, context) => async (args) => {
      requests.push(`${context.commandName} ${(args.input as { Key?: string; Prefix?: string }).Key ?? (args.input as { Prefix?: string }).Prefix ?? ""}`);
      return next(args);
    },
    { step: "initialize", name: "countRequests" },
  );
  const t0 = Date.now();
  // a year of manifests per target, laid down as the server stores objects (<key>._S3rver_object): the check must not
  // need them, and 73,000 uploads would take minutes
  for (let t = 0; t < TARGETS; t++) {
    await Promise.all(
      Array.from({ length: DAYS }, async (_, d) => {
        const day = new Date(now.getTime() - (d + 1) * 86_400_000);
        const stamp = day.toISOString().slice(0, 10).replace(/-/g, "");
        const key = `lb/t${t}/${stamp.slice(0, 4)}/${stamp.slice(4, 6)}/${stamp.slice(6, 8)}/${stamp}T020000Z-abcd.manifest.json`;
        const file = join(s3.directory, s3.bucket, `${key}._S3rver_object`);
        await mkdir(dirname(file), { recursive: true });
        await writeFile(file, JSON.stringify({ id: `${stamp}T020000Z-abcd`, target: `t${t}` }));
      }),
    );
    // each target's pointer to its newest backup (today, 02:00), as the runner writes it after a run
    const newest = now.toISOString().slice(0, 10).replace(/-/g, "");
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: `lb/t${t}/.lifeboat-latest.json`, Body: JSON.stringify({ id: `${newest}T020000Z-abcd`, startedAt: `${newest.slice(0, 4)}-${newest.slice(4, 6)}-${newest.slice(6, 8)}T02:00:00.000Z`, manifest: "x" }) }));
  }
  console.log(`freshness at scale: ${TARGETS} targets x ${DAYS} daily manifests laid down in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
}, 300_000);
afterAll(async () => {
  const t0 = Date.now();
  await s3?.stop();
  console.log(`freshness at scale: the server and its ${TARGETS * DAYS} objects removed in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
});

describe("the freshness check with 200 targets and a year of daily backups each", () => {
  it("reads no manifest, a handful of requests per target, and reports the one target whose pointer is old", async () => {
    const config = parseConfig({
      storage: { s3: { bucket: "fresh", prefix: "lb" } },
      targets: Object.fromEntries(Array.from({ length: TARGETS }, (_, t) => [`t${t}`, { database: { url: "postgres://u@h/d" }, schedule: "cron(0 2 * * ? *)" }])),
    });
    // one target last backed up three days ago: its three missed fire times are reported
    const stale = new Date(now.getTime() - 3 * 86_400_000).toISOString().slice(0, 10);
    await client.send(new PutObjectCommand({ Bucket: s3.bucket, Key: "lb/t7/.lifeboat-latest.json", Body: JSON.stringify({ id: "old", startedAt: `${stale}T02:00:00.000Z`, manifest: "x" }) }));
    requests.length = 0;
    const store = new S3Store({ bucket: s3.bucket, prefix: "lb" }, client);
    const published: string[] = [];
    const t0 = performance.now();
    const missed = await checkFreshness(config, store, { now, publish: async (e) => void published.push(`${e.target} ${e.missed.fireTime}`) });
    const ms = performance.now() - t0;
    console.log(`freshness at scale: one check of ${TARGETS} targets took ${(ms / 1000).toFixed(2)} s, ${requests.length} requests (the deployed check may run 300 s)`);
    expect(missed.map((m) => m.target)).toEqual(["t7", "t7", "t7"]);
    expect(published).toEqual(["t7 2026-12-01T02:00:00.000Z", "t7 2026-12-02T02:00:00.000Z", "t7 2026-12-03T02:00:00.000Z"]);
    expect(requests.filter((r) => r.includes(".manifest.json"))).toEqual([]);
    expect(requests.length).toBeLessThanOrEqual(TARGETS * 6);
    // what the check did before pointers: every manifest of every target read (one target's, timed, times 200)
    const t1 = performance.now();
    await listBackups(store, "t0");
    const one = performance.now() - t1;
    console.log(`freshness at scale: reading one target's ${DAYS} manifests took ${(one / 1000).toFixed(2)} s; the old check read all ${TARGETS} targets' (about ${((one * TARGETS) / 1000).toFixed(0)} s)`);
  }, 300_000);
});
