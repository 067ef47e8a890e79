import { S3Client } from "@aws-sdk/client-s3";
import { LifeboatError, UsageError, dumpSchema, formatBytes, formatDuration, retriesSchema, backupSize } from "@lifeboat/core";
import { S3Store, fingerprint, findTool, query, restoreBackup, runBackup, s3ClientConfig, startEphemeralPostgres, type EphemeralPostgres, type PgTool } from "@lifeboat/runner";
import type { Context } from "../context.js";
import { wholeNumber } from "../options.js";
import { startEmbeddedS3, type EmbeddedS3 } from "../local/embedded-s3.js";
import { sampleDatabaseSql } from "../local/sample.js";

/**
 * The main job on embedded defaults: a throwaway PostgreSQL with a sample shop database, an S3-compatible server on
 * loopback, a backup with progress, a restore into a fresh database compared with the source, a summary, cleanup.
 */
export async function demoCommand(ctx: Context, opts: { keep?: boolean; scale?: string }): Promise<number> {
  const { out } = ctx;
  if (ctx.opts.config) throw new UsageError("lifeboat demo reads no config: --config is not used here", "the demo runs on embedded defaults; to back up a config's target: lifeboat run <target> --config <file>");
  const scale = wholeNumber(opts.scale, "--scale", 1, 1000) ?? 1;
  for (const tool of ["initdb", "pg_ctl", "pg_dump", "pg_restore", "psql"] as PgTool[]) await findTool(tool);

  let pg: EphemeralPostgres | undefined;
  let s3: EmbeddedS3 | undefined;
  let dashboard: { url: string; close(): Promise<void> } | undefined;
  // Ctrl-C or SIGTERM while the demo runs: every step is stopped (a cluster still starting too), the throwaway server
  // and the S3 directory go (the finally below), then exit 130 / 143 (main.ts)
  const signal = ctx.interruptible("the demo (its throwaway PostgreSQL and S3 server)");
  try {
    out.log("info", "starting a throwaway PostgreSQL");
    pg = await startEphemeralPostgres({ signal });
    out.log("info", `PostgreSQL ${pg.version} is up`, { port: pg.port });
    signal.throwIfAborted();
    await query(pg.connection(), "create database shop; create database shop_restored;");
    out.log("info", "loading the sample shop database (customers, products, orders, order_items)", { scale });
    await query(pg.connection("shop"), sampleDatabaseSql(scale));

    signal.throwIfAborted();
    s3 = await startEmbeddedS3({ bucket: "lifeboat-demo" });
    out.log("info", "S3-compatible server is up", { endpoint: s3.endpoint, bucket: s3.bucket });
    const client = new S3Client({
      ...s3ClientConfig({ bucket: s3.bucket, endpoint: s3.endpoint, region: s3.region }),
      credentials: { accessKeyId: s3.accessKeyId, secretAccessKey: s3.secretAccessKey },
    });
    const store = new S3Store({ bucket: s3.bucket, prefix: "demo", endpoint: s3.endpoint }, client);
    const source = pg.connection("shop");

    const backup = await runBackup({
      target: "shop",
      resolveSource: async () => source,
      store,
      dump: dumpSchema.parse({}),
      retries: retriesSchema.parse({ attempts: 1 }),
      signal,
      log: out,
      onProgress: (p) => out.progress("dumping", p.bytes, p.elapsedMs),
    });
    out.endProgress();
    const m = backup.manifest;

    const restored = await restoreBackup({ store, manifest: m, to: pg.connection("shop_restored"), log: out, signal });
    const [a, b] = await Promise.all([fingerprint(source), fingerprint(pg.connection("shop_restored"))]);
    const tablesEqual = JSON.stringify(a.tables) === JSON.stringify(b.tables);
    const schemaEqual = a.schema === b.schema;
    const rows = a.tables.reduce((n, t) => n + t.rows, 0);
    // the throwaway cluster's password and the embedded S3 keys are printed on purpose: both die with the demo
    const copy = "shop_copy";
    const tryIt = {
      env: `export AWS_ENDPOINT_URL_S3=${s3.endpoint} AWS_ACCESS_KEY_ID=${s3.accessKeyId} AWS_SECRET_ACCESS_KEY=${s3.secretAccessKey} AWS_REGION=${s3.region}`,
      createdb: `PGPASSWORD=${pg.password} createdb -h 127.0.0.1 -p ${pg.port} -U ${pg.user} ${copy}`,
      restore: `npx lifeboat restore shop --from ${store.url} --backup ${m.id} --to ${pg.url(copy)}`,
      psql: `psql ${pg.url(copy)} -c '\\dt+'`,
      dashboard: `npx lifeboat dashboard --from ${store.url}`,
    };
    // --keep: the dashboard of what the demo just did, served while the servers run
    dashboard = opts.keep ? await (await import("../dashboard/server.js")).startDashboard({ store, config: undefined, host: "127.0.0.1", port: 0, refresh: 30 }) : undefined;
    const summary = [
      "",
      `Lifeboat demo: ${schemaEqual && tablesEqual ? "backup and restore verified" : "RESTORE DIFFERS FROM SOURCE"}`,
      `  source      PostgreSQL ${m.database.serverVersion}, database "shop", ${a.tables.length} tables, ${rows} rows`,
      `  backup      ${m.id} (${m.format} format, pg_dump ${m.pgDump.version})`,
      `  size        ${formatBytes(backupSize(m))}`,
      `  duration    backup ${formatDuration(m.durationMs)}, download ${formatDuration(restored.downloadMs)}, restore ${formatDuration(restored.restoreMs)}`,
      `  sha256      ${m.object.sha256}`,
      `  stored at   ${backup.location}`,
      `  manifest    ${backup.manifestLocation}`,
      `  compared    schema ${schemaEqual ? "identical" : "DIFFERENT"}; rows and checksums of ${a.tables.length} tables ${tablesEqual ? "identical" : "DIFFERENT"}`,
      ...(opts.keep
        ? [
            "",
            "The servers keep running until Ctrl-C. Restore the backup yourself, in another terminal:",
            `  ${tryIt.env}`,
            `  ${tryIt.createdb}`,
            `  ${tryIt.restore}`,
            `  ${tryIt.psql}`,
            "",
            `Its dashboard (every backup, its fire times, sizes, drills, the restore command to copy): open ${dashboard!.url}`,
            `  or serve it yourself, with the env line above: ${tryIt.dashboard}`,
          ]
        : ["", "The demo's servers are stopped and removed now; `lifeboat demo --keep` keeps them, serves the dashboard of this backup (a URL to open) and prints the commands to restore it yourself."]),
    ].join("\n");
    out.result(summary, {
      status: schemaEqual && tablesEqual ? "verified" : "different",
      manifest: m,
      location: backup.location,
      tables: a.tables,
      restore: { downloadMs: restored.downloadMs, restoreMs: restored.restoreMs },
      schemaEqual,
      tablesEqual,
      ...(opts.keep ? { kept: { postgres: pg.url("shop"), s3: { endpoint: s3.endpoint, bucket: s3.bucket }, dashboard: dashboard!.url, tryIt } } : {}),
    });
    if (opts.keep) {
      // from here a signal ends the wait (exit 0: stopping is how --keep ends), and the cleanup below runs
      ctx.uninterruptible();
      out.log("info", "kept running: press Ctrl-C to stop and clean up", { postgres: pg.url("shop"), s3: s3.endpoint, dashboard: dashboard!.url });
      await new Promise<void>((resolve) => {
        process.once("SIGINT", () => resolve());
        process.once("SIGTERM", () => resolve());
      });
    }
    return schemaEqual && tablesEqual ? 0 : 1;
  } finally {
    out.log("info", "cleaning up");
    await dashboard?.close().catch(() => {});
    await s3?.stop().catch(() => {});
    await pg?.stop().catch(() => {});
  }
}
