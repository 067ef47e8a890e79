import { availableParallelism } from "node:os";
import { Command, CommanderError, Option } from "commander";
import { LIFEBOAT_VERSION, LifeboatError, UsageError } from "@lifeboat/core";
import type { CommonOptions, Context } from "./context.js";
import type { pruneCommand } from "./commands/prune.js";
import type { restoreCommand } from "./commands/restore.js";
import type { refreshCommand } from "./commands/refresh.js";
import type { runCommand } from "./commands/run.js";
import type { scheduleCommand } from "./commands/schedule.js";
import type { verifyCommand } from "./commands/verify.js";
import type { InitOptions } from "./commands/init.js";
import type { DashboardCommandOptions } from "./commands/dashboard.js";
import type { ReportCommandOptions } from "./commands/report.js";
import type { CopyCommandOptions } from "./commands/copy.js";

// Commands, the runner and the AWS SDK load when a command runs: `lifeboat --version` and `--help` stay fast.
const commands = {
  run: () => import("./commands/run.js"),
  list: () => import("./commands/list.js"),
  status: () => import("./commands/status.js"),
  restore: () => import("./commands/restore.js"),
  verify: () => import("./commands/verify.js"),
  schedule: () => import("./commands/schedule.js"),
  prune: () => import("./commands/prune.js"),
  demo: () => import("./commands/demo.js"),
  keys: () => import("./commands/keys.js"),
  check: () => import("./commands/check.js"),
  init: () => import("./commands/init.js"),
  dashboard: () => import("./commands/dashboard.js"),
  report: () => import("./commands/report.js"),
  copy: () => import("./commands/copy.js"),
  refresh: () => import("./commands/refresh.js"),
};

/** Repeatable options (--recipient, --identity): every value, in order. */
const collect = (value: string, previous: string[] = []) => [...previous, value];

/** Environment variables, by what reads them; each command's --help lists the groups it uses. */
const ENV: Record<string, [string, string][]> = {
  config: [
    ["LIFEBOAT_CONFIG", "config file when --config is not given (default: ./lifeboat.config.ts, .mjs, .js or .json)"],
    ["CI", "when set (not \"false\"/\"0\"): logs as JSON lines, no progress bar"],
  ],
  aws: [
    ["AWS_PROFILE, AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY, AWS_SESSION_TOKEN", "credentials for s3:// stores (the AWS SDK's default chain)"],
    ["AWS_REGION, AWS_DEFAULT_REGION", "region of s3:// stores (default: the config's storage.s3.region, else the AWS profile's; us-east-1 with an endpoint)"],
    ["AWS_ENDPOINT_URL_S3, AWS_ENDPOINT_URL", "an S3-compatible endpoint for s3:// URLs (default: the config's storage.s3.endpoint, else AWS)"],
  ],
  pg: [
    ["PGHOST, PGPORT, PGUSER, PGDATABASE", "fill in what a database argument leaves out (defaults: local socket, 5432, the OS user, the user's name)"],
    ["PGPASSWORD, PGPASSFILE", "the password, when the database argument has none"],
    ["PGSSLMODE, PGSSLROOTCERT, PGSSLCERT, PGSSLKEY, PGAPPNAME, PGOPTIONS", "passed on as the matching libpq keywords"],
    ["PGCONNECT_TIMEOUT", "seconds to wait for a connection (default: 10)"],
  ],
  tools: [["LIFEBOAT_PG_BINDIR", "directory of pg_dump, pg_restore, psql (default: pg_config --bindir, the distribution's directories, then PATH)"]],
  cluster: [["LIFEBOAT_PG_USER", "as root: the unprivileged user who runs the throwaway PostgreSQL (default: postgres)"]],
  rds: [["LIFEBOAT_RDS_CA_BUNDLE", "CA bundle for rds targets' verify-full TLS (default: the config's database.sslrootcert)"]],
  remote: [["LIFEBOAT_LAUNCHER", "with --remote: the launcher function (default: .sst/outputs.json)"]],
};

/** The page of docs/ that documents each command. */
const DOCS: Record<string, string> = {
  run: "docs/cli.md#lifeboat-run",
  list: "docs/cli.md#lifeboat-list",
  check: "docs/cli.md#lifeboat-check-validate-a-config",
  init: "docs/deploy.md",
  status: "docs/cli.md#lifeboat-status-a-monitoring-check",
  restore: "docs/cli.md#lifeboat-restore",
  verify: "docs/cli.md#lifeboat-verify-restore-drills",
  refresh: "docs/cli.md#lifeboat-refresh-a-masked-staging-copy",
  schedule: "docs/operations.md#lifeboat-schedule",
  prune: "docs/operations.md#lifeboat-prune-retention-where-the-store-has-no-lifecycle-rules",
  keygen: "docs/encryption.md",
  demo: "README.md",
  dashboard: "docs/operations.md#seeing-every-backup-lifeboat-dashboard-and-lifeboat-report",
  report: "docs/operations.md#seeing-every-backup-lifeboat-dashboard-and-lifeboat-report",
  copy: "docs/stores.md#copies-storagecopies",
};

function envHelp(...groups: string[]): string {
  const rows = groups.flatMap((g) => ENV[g] ?? []);
  return `\nEnvironment:\n${rows.map(([k, v]) => `  ${k}\n      ${v}`).join("\n")}`;
}

/**
 * The `lifeboat` command. Exit codes: 0 done, 1 the run failed, 2 usage or config error.
 * commander is the CLI framework: it gives --help on every command, option parsing and usage errors for free.
 */
export async function main(argv: string[]): Promise<number> {
  let exitCode = 0;
  let ctx: Context | undefined;
  const common = (cmd: Command) =>
    cmd
      .option("-c, --config <file>", "config file (default: $LIFEBOAT_CONFIG, else ./lifeboat.config.ts)")
      .option("--json", "machine output: the result as one JSON document on stdout (also on failure), logs as JSON lines on stderr");
  const action =
    <A extends unknown[]>(fn: (ctx: Context, ...args: A) => Promise<number>) =>
    async (...args: unknown[]) => {
      const cmd = args[args.length - 1] as Command;
      const { Context } = await import("./context.js");
      ctx = new Context(cmd.opts() as CommonOptions);
      exitCode = await fn(ctx, ...(args.slice(0, -1) as A));
    };

  const program = new Command("lifeboat")
    .description("PostgreSQL backups to S3 (or any S3-compatible store, or a directory) that are proven whole and come back with one command.")
    .version(LIFEBOAT_VERSION)
    .showHelpAfterError("(run with --help for usage)")
    .exitOverride();
  // --json promises one JSON document on stdout on every exit path: commander's own text (help, version, usage
  // errors) is held back and reported as JSON below
  const wantsJson = argv.includes("--json");
  let held = "";
  if (wantsJson) program.configureOutput({ writeOut: (s) => void (held += s), writeErr: (s) => void (held += s) });

  common(
    program
      .command("run")
      .description("back up one target from the config, or any database ad hoc with --db and --to")
      .argument("[target]", "target name from lifeboat.config.ts")
      .option("--db <database>", "ad hoc: database to back up: postgres://user[:password]@host:port/db, or \"host=... dbname=... user=...\" (default: PG* variables)")
      .option("--to <store-url>", "where to store it: s3://bucket/prefix or file:///path (default: the config's storage; required ad hoc)")
      .option("--name <name>", "ad hoc: target name used in keys and events (default: the database name)")
      .addOption(new Option("--format <format>", "dump format (default: the target's dump.format, else custom)").choices(["custom", "plain"]))
      .option("--compression <method>", "none, gzip[:1-9], zstd[:1-22], lz4[:1-12] (zstd, lz4: pg_dump 16+) or a gzip level 0-9 (default: the target's dump.compression, else zstd:3 with pg_dump 16+, gzip:1 before)")
      .option("--attempts <n>", "attempts before giving up, transient failures only (default: the target's retries.attempts, else 3)")
      .option("--jobs <n>", "parallel pg_dump processes for custom-format dumps, 1 to 16 (default: the target's dump.jobs, else the CPUs available, at most 4)")
      .option("--recipient <age1...>", "encrypt the backup (age) for this public key; repeat for several (default: the target's encryption.recipients, else none)", collect)
      .option("--copy <store-url>", "also write the backup to this store, at the same time (one dump stream); repeat for several (default: the target's copies, else none)", collect)
      .option("--remote", "run the target in the AWS deployment (invokes the launcher, follows the Fargate task)")
      .option("--launcher <name>", "with --remote: the launcher function (default: $LIFEBOAT_LAUNCHER or .sst/outputs.json)")
      .option("--reason <text>", "with --remote: why, for the logs")
      .addHelpText(
        "after",
        "\nExamples:\n  lifeboat run prod\n  lifeboat run prod --remote\n  lifeboat run --db postgres://app@db.internal:5432/app --to s3://my-backups/adhoc\n  lifeboat run --db \"host=localhost dbname=app user=app\" --to file:///var/backups/lifeboat\n  PGHOST=localhost PGUSER=app PGDATABASE=app lifeboat run --to file:///var/backups/lifeboat\n" +
          "\nAd hoc runs (--db or PG* variables, with --to) read no config and notify nobody.\n" +
          envHelp("config", "pg", "aws", "tools", "rds", "remote"),
      ),
  ).action(action(async (c, target: string | undefined, opts: Parameters<typeof runCommand>[2]) => (await commands.run()).runCommand(c, target, opts)));

  common(
    program
      .command("list")
      .description("list backups, newest first (only backups with a manifest)")
      .argument("[target]", "only this target")
      .option("--from <store-url>", "store to read: s3://bucket/prefix or file:///path (default: the config's storage)")
      .option("--all", "also list leftovers of runs that never finished: pending uploads, partial files, dumps without a manifest")
      .addHelpText("after", "\nWith --from, no config is read (unless given with --config). Backups stored under a deeper prefix are listed too, with their true location.\n" + envHelp("config", "aws")),
  ).action(action(async (c, target: string | undefined, opts: { from?: string; all?: boolean }) => (await commands.list()).listCommand(c, target, opts)));

  common(
    program
      .command("check")
      .description("validate the config without running anything: every problem listed (exit 2); --cloud: also what the AWS deployment would refuse or warn about")
      .option("--cloud", "also check the AWS deployment's rules (what `sst deploy` refuses, and its warnings)")
      .option("--stage <stage>", "with --cloud: the stage to check for (its bucket name and rules)", "production")
      .addHelpText("after", "\nExamples:\n  lifeboat check\n  lifeboat check --config ./lifeboat.config.ts --cloud --stage dev\n\nNo database, store or AWS account is touched.\n" + envHelp("config")),
  ).action(action(async (c, opts: { cloud?: boolean; stage?: string }) => (await commands.check()).checkCommand(c, opts)));

  common(
    program
      .command("init")
      .description("write a new SST app that deploys Lifeboat to AWS from the installed package: package.json, sst.config.ts, lifeboat.config.ts, .gitignore")
      .argument("[dir]", "folder to write it in (default: this one); created if missing")
      .option("--name <app>", "the SST app's name (default: the folder's name)")
      .option("--bucket <name>", "the bucket for the backups (default: <app>-db-backups-<random>; non-production stages add -<stage>)")
      .option("--region <region>", "AWS region of the bucket and the stack (default: $AWS_REGION, else us-east-1)")
      .option("--target <name>", "the target's name", "app")
      .option("--url-ssm <parameter>", "the database URL, kept in this SSM parameter (the default: /lifeboat/<target>/database-url)")
      .option("--host <host>", "or the database host (with --database, --user, --password-ssm)")
      .option("--rds <instance>", "or an RDS instance (its endpoint is looked up; with --database, --user, --password-ssm)")
      .option("--port <port>", "with --host: the port (default 5432)")
      .option("--database <name>", "with --host or --rds: the database (default postgres)")
      .option("--user <user>", "with --host or --rds: the user (default postgres)")
      .option("--password-ssm <parameter>", "with --host or --rds: the SSM parameter holding the password (default /lifeboat/<target>/db-password)")
      .option("--schedule <expression>", "EventBridge schedule", "cron(0 3 * * ? *)")
      .option("--timezone <zone>", "the schedule's time zone", "UTC")
      .option("--retention-days <n>", "days each backup is kept", "30")
      .option("--email <address>", "e-mail told of failed (and missed) backups")
      .option("--vpc <id>", "the databases' VPC (else Lifeboat makes its own, which reaches only databases on the internet)")
      .option("--subnets <ids>", "with --vpc: the runner's subnets, comma-separated")
      .option("--database-security-group <ids>", "with --vpc: the databases' security groups, comma-separated (the runner is let in)")
      .option("--lifeboat <spec>", "the lifeboat dependency in package.json (default: ^<this version>; a tarball: file:../lifeboat-x.y.z.tgz)")
      .option("--force", "replace those four files if they exist (nothing else is touched)")
      .addHelpText(
        "after",
        "\nExamples:\n  lifeboat init my-backups --region eu-west-1 --email ops@example.com\n  lifeboat init --rds prod-db --database app --user backup --vpc vpc-0abc --subnets subnet-1,subnet-2 --database-security-group sg-0def\n\nThen: npm install, put the secrets in SSM, npx lifeboat check --cloud, npx sst deploy --stage production.\nAlready deploy with SST? Add the Backups component to your own sst.config.ts instead (docs/deploy.md).\n",
      ),
  ).action(action(async (c, dir: string | undefined, opts: InitOptions) => (await commands.init()).initCommand(c, dir, opts)));

  common(
    program
      .command("status")
      .description("each target's newest backup and age, verdict (ok, running, late, missed, failing), latest drill and next run; exit 1 when any is missed or failing")
      .argument("[target]", "only this target")
      .option("--from <store-url>", "read another store than the config's (a copy, or the bucket from a laptop): the config's targets as that store holds them")
      .option("--format <format>", "openmetrics: Prometheus metrics (OpenMetrics text) on stdout, for node_exporter's textfile collector")
      .addHelpText(
        "after",
        "\nA monitoring check: `lifeboat status --json` prints every target's state; the exit code is 1 when one is missed or failing,\nor (on one server) when the `lifeboat schedule` daemon stopped renewing its sign of life in the store.\n" +
          "Prometheus: `lifeboat status --format openmetrics > /var/lib/node_exporter/textfile/lifeboat.prom` (from cron or a systemd timer).\n" +
          envHelp("config", "aws"),
      ),
  ).action(action(async (c, target: string | undefined, opts: { from?: string; format?: string }) => (await commands.status()).statusCommand(c, target, opts)));

  common(
    program
      .command("dashboard")
      .description("a read-only web page of every target: verdicts, fire times, sizes and durations, backups, drills, restore commands")
      .option("--from <store-url>", "show another store than the config's (a copy, the production bucket from a laptop with read-only credentials)")
      .option("--host <address>", "address to listen on; any other than loopback needs a token", "127.0.0.1")
      .option("--port <port>", "port to listen on (0: a free one)", "8080")
      .option("--token <token>", "beyond loopback: the token to ask for (default: $LIFEBOAT_DASHBOARD_TOKEN, else one is made up and printed in the URL)")
      .option("--refresh <seconds>", "how often pages reload (0: never)", "30")
      .addHelpText(
        "after",
        "\nExamples:\n  lifeboat dashboard                       # http://127.0.0.1:8080/, until Ctrl-C\n  lifeboat dashboard --from s3://my-backups --port 0\n  lifeboat dashboard --host 0.0.0.0        # prints a URL with a token to open\n\nIt only reads the store (list and get): read-only credentials are enough. No secret or environment value is shown.\n" +
          "Pages: / (all targets), /t/<target>, /t/<target>/b/<backup>. " +
          envHelp("config", "aws") +
          "\n  LIFEBOAT_DASHBOARD_TOKEN\n      the token, when --token is not given",
      ),
  ).action(action(async (c, opts: DashboardCommandOptions) => (await commands.dashboard()).dashboardCommand(c, opts)));

  common(
    program
      .command("report")
      .description("the evidence of a period as one self-contained HTML file: every fire time and its outcome, every drill with its row counts, retention, Object Lock, encryption")
      .argument("[target]", "only this target (default: every target)")
      .option("--out <file.html>", "the file to write (required)")
      .option("--from <store-url>", "read another store than the config's")
      .option("--since <when>", "start of the period: a date or time (2026-10-01), or a span back from now (90d)", "30d")
      .option("--until <when>", "end of the period (default: now)")
      .addHelpText(
        "after",
        "\nExamples:\n  lifeboat report --out evidence.html --since 90d\n  lifeboat report prod --out q3.html --since 2026-07-01 --until 2026-10-01\n\nThe file opens in any browser with no network; it holds no secret (public keys only). " + envHelp("config", "aws"),
      ),
  ).action(action(async (c, target: string | undefined, opts: ReportCommandOptions) => (await commands.report()).reportCommand(c, target, opts)));

  common(
    program
      .command("copy")
      .description("copy backups into the config's copies (storage.copies), or into any store: the ones a copy lacks, or one; each object checked against its SHA-256 on the way")
      .argument("[target]", "only this target's backups (default: every target's; required with --to <store-url>)")
      .option("--backup <id>", "a backup id, latest, or missing (every backup the copy lacks)", "missing")
      .option("--to <copy>", "only this copy of the config, or a store by its URL (s3://bucket/prefix, file:///path: no config needed) (default: every copy)")
      .option("--from <store-url>", "copy from this store (another copy) instead of the config's storage")
      .addHelpText(
        "after",
        "\nExamples:\n  lifeboat copy                                  # every copy gets every backup it lacks\n  lifeboat copy app --backup 20261203T101500Z-1a2b --to offsite\n  lifeboat copy --from s3://offsite-bucket/lifeboat --to local   # repair one copy from another\n  lifeboat copy app --from s3://my-backups/app --to file:///mnt/offline/lifeboat   # no config\n\nExit 0 when every copy holds the backups, 1 when one failed.\n" +
          envHelp("config", "aws"),
      ),
  ).action(action(async (c, target: string | undefined, opts: CopyCommandOptions) => (await commands.copy()).copyCommand(c, target, opts)));

  common(
    program
      .command("restore")
      .description("fetch a backup, verify its SHA-256, and restore it into a database (in one transaction)")
      .argument("[target]", "target name (required when the store holds several targets)")
      .option("--from <store-url>", "store to read (default: the config's storage)")
      .option("--backup <id>", "backup id from `lifeboat list`, latest, or latest-verified (the newest whose restore drill passed)", "latest")
      .option("--at <time>", "the newest backup that started before this time: ISO 8601 (2026-12-06T14:00:00Z; without a zone, this machine's local time) or a span back from now (2h, \"2h ago\", 3d)")
      .option("--database <name>", "for targets with several databases: whose latest backup (or globals)")
      .option("--to <database>", "database to restore into, as a URL or \"host=... dbname=...\" (PG* variables fill the gaps); an empty one (createdb it), or a new one with --create")
      .option("--create", "create the --to database first (refused if it exists), with the backed-up database's encoding, collation and owner; dropped again if the restore fails")
      .option("--encoding <name>", "with --create: this encoding instead of the backup's (UTF8)")
      .option("--locale <name>", "with --create: this LC_COLLATE and LC_CTYPE instead of the backup's (C.UTF-8)")
      .option("--db-owner <role>", "with --create: this owner instead of the backup's")
      .option("--table <name>", "restore only this table (exact name, any schema unless --schema; with its indexes, constraints, triggers, sequences; not its foreign keys); repeatable", collect)
      .option("--schema <name>", "with --table: only tables of this schema; alone: every table of it; repeatable", collect)
      .option("--into-schema <name>", "with --table / --schema: restore the tables into this new schema, beside the live ones")
      .option("--then <file.sql>", "run this SQL file in the restored database before it is handed over (with --swap: in the shadow, before the swap), in one transaction; repeatable, in order (masking, anonymizing)", collect)
      .option("--to-file <path>", "SQLite backups: the file to write (an existing file is replaced only with --force)")
      .option("--force", "allow restoring into the database the backup was taken from")
      .option("--no-owner", "do not restore object ownership (for servers without the original roles)")
      .option("--no-acl", "do not restore privileges (GRANT/REVOKE: for servers without the roles they name)")
      .option("--jobs <n>", `parallel pg_restore jobs for custom archives into an empty database (default: a parallel backup set, the CPUs available, ${availableParallelism()} here; a single archive, 1: one transaction, so that a failed restore changes nothing)`)
      .option("--swap", "blue-green: restore into a shadow database beside --to, check it, then swap it in under the live name (the old one is kept)")
      .option("--identity <file>", "encrypted backups: an age identity file (age-keygen, lifeboat keygen); repeatable (default: the config's encryption.identity of the backup's target)", collect)
      .addHelpText(
        "after",
        "\nThe target database is checked (reachable, not the backup's source) before anything is downloaded, and the roles the backup\nnames (owners, grantees) before anything is written: every missing one is named, with the fix.\n\nExamples:\n  createdb -h localhost app_restored\n  lifeboat restore prod --backup latest --to postgres://postgres@localhost/app_restored\n  lifeboat restore prod --to postgres://postgres@localhost/app --swap     # replace the live database, keep the old one\n" +
          envHelp("config", "pg", "aws", "tools"),
      ),
  ).action(action(async (c, target: string | undefined, opts: Parameters<typeof restoreCommand>[2]) => (await commands.restore()).restoreCommand(c, target, opts)));

  common(
    program
      .command("verify")
      .description("restore drill: check SHA-256 and table of contents, restore into a throwaway PostgreSQL, check every table's row count")
      .argument("[target]", "target name (required when the store holds several targets)")
      .option("--from <store-url>", "store to read (default: the config's storage)")
      .option("--backup <id>", "backup id from `lifeboat list`, or latest", "latest")
      .option("--database <name>", "for targets with several databases: whose latest backup")
      .option("--scratch <database>", "restore into a new database on this server instead of a throwaway cluster (it is dropped afterwards; default: a throwaway cluster)")
      .option("--jobs <n>", `parallel pg_restore jobs (default: the CPUs available, ${availableParallelism()} here)`)
      .option("--identity <file>", "encrypted backups: an age identity file; repeatable (default: the config's encryption.identity of the backup's target; without one only the checksum is checked and the drill fails)", collect)
      .addHelpText("after", "\nExit code 0 when every check passed, 1 when one failed. The result is stored beside the manifest (<id>.verify.json).\n" + envHelp("config", "aws", "pg", "tools", "cluster")),
  ).action(action(async (c, target: string | undefined, opts: Parameters<typeof verifyCommand>[2]) => (await commands.verify()).verifyCommand(c, target, opts)));

  common(
    program
      .command("refresh")
      .description("refresh a staging database from the target's backup (its refresh.to): replaced blue-green, masked by refresh.then before it takes the name")
      .argument("<target>", "the config's target whose refresh to run")
      .option("--backup <id>", "backup id, latest, or latest-verified", "latest")
      .option("--at <time>", "the newest backup that started before this time (ISO 8601 or a span back from now: 2h, \"2h ago\")")
      .option("--identity <file>", "encrypted backups: an age identity file; repeatable (default: the config's encryption.identity)", collect)
      .addHelpText(
        "after",
        "\nThe target's config says where and how:\n  refresh: { to: { url: { env: \"STAGING_DATABASE_URL\" } }, then: [\"mask.sql\"] }\nAn existing database is replaced as restore --swap does (the scripts run in the shadow, before the swap; the previous\ndatabase is kept); a missing one is created. Never the target's own database (exit 2). Exit 1 when the refresh failed\n(nothing swapped): run it from cron or a systemd timer, which tell a person of a non-zero exit.\n" +
          envHelp("config", "aws", "pg", "tools"),
      ),
  ).action(action(async (c, target: string, opts: Parameters<typeof refreshCommand>[2]) => (await commands.refresh()).refreshCommand(c, target, opts)));

  common(
    program
      .command("schedule")
      .description("run the config's targets on their schedules (EventBridge cron/rate + time zones), until SIGTERM")
      .option("--once", "run what is due now, then exit (for a system cron or a Kubernetes CronJob)")
      .option("--only <targets>", "only these targets (comma-separated)")
      .option("--metrics <[host:]port>", "serve Prometheus metrics on http://host:port/metrics while the daemon runs (host 127.0.0.1 unless given)")
      .addHelpText(
        "after",
        "\nA target is due when its next fire time after its newest backup has passed (a target never backed up is due at once;\nmissed fire times give one catch-up run). Logs are JSON lines. docs/operations.md has a systemd unit.\n" +
          "Secrets named in the config ({ env: NAME }) are read from the environment when a run starts.\n" +
          envHelp("config", "aws", "pg", "tools", "rds", "cluster"),
      ),
  ).action(action(async (c, opts: Parameters<typeof scheduleCommand>[1]) => (await commands.schedule()).scheduleCommand(c, { ...opts })));

  common(
    program
      .command("prune")
      .description("apply the retention policy (days, keep-last, daily/weekly/monthly) to a store; the newest backup is always kept")
      .argument("[target]", "only this target (default: every target)")
      .option("--from <store-url>", "store to prune (default: the config's storage)")
      .option("--dry-run", "show what would be deleted, delete nothing")
      .option("--days <n>", "override: keep backups younger than n days (default: the target's retention)")
      .option("--keep-last <n>", "override: keep the n newest (default: the target's retention)")
      .option("--daily <n>", "override: keep the newest of each of the last n days (default: the target's retention)")
      .option("--weekly <n>", "override: keep the newest of each of the last n ISO weeks (default: the target's retention)")
      .option("--monthly <n>", "override: keep the newest of each of the last n months (default: the target's retention)")
      .addHelpText(
        "after",
        "\nWith --from, prune works on the targets found in that store, with the overrides given (or the retention of a config given with --config).\n" + envHelp("config", "aws"),
      ),
  ).action(action(async (c, target: string | undefined, opts: Parameters<typeof pruneCommand>[2]) => (await commands.prune()).pruneCommand(c, target, opts)));

  common(
    program
      .command("keygen")
      .description("create an age identity for encrypted backups: the identity into --output (mode 0600), its public key (a recipient) on stdout")
      .option("-o, --output <file>", "where to write the identity (never overwritten; no default: it is a secret)")
      .addHelpText("after", "\nThe file is the `age` tool's format: `age -d -i FILE` decrypts any backup made for its public key.\nKeep it away from the backups (a password manager, a secrets store): without it, encrypted backups cannot be restored.\n"),
  ).action(action(async (c, opts: { output?: string }) => (await commands.keys()).keygenCommand(c, opts)));

  common(
    program
      .command("demo")
      .description("the whole job on embedded defaults: throwaway PostgreSQL + embedded S3, backup, restore, compare")
      .option("--keep", "keep the servers running after the demo (until Ctrl-C) and print the commands to restore the backup yourself")
      .option("--scale <n>", "sample data size multiplier, 1 to 1000", "1")
      .addHelpText("after", "\nNeeds no AWS account and no database: the PostgreSQL binaries only.\n" + envHelp("tools", "cluster")),
  ).action(action(async (c, opts: { keep?: boolean; scale?: string }) => (await commands.demo()).demoCommand(c, opts)));

  // each command's --help ends with the page that documents it (docs/ in the repository and in the installed package)
  for (const cmd of program.commands) {
    const page = DOCS[cmd.name()];
    if (page) cmd.addHelpText("after", `\nDocs: ${page} (the docs/ folder of the repository, and of the installed package)`);
  }

  // a command stopped by SIGINT/SIGTERM (Context.interruptible) says what it stopped and exits 130 / 143
  const stopped = async (err?: unknown): Promise<number | undefined> => {
    const by = ctx?.interrupted;
    if (!by) return undefined;
    const { SIGNAL_EXIT } = await import("./context.js");
    const report = new LifeboatError(`interrupted by ${by.by}: stopped ${by.what}; its child processes were stopped and its temporary files removed`, { exitCode: SIGNAL_EXIT[by.by] });
    // a backup's attempts stay in the JSON result (the last one "cancelled")
    if (err && typeof err === "object" && "attempts" in err) Object.assign(report, { attempts: (err as { attempts: unknown }).attempts });
    ctx!.out.fail(report);
    return SIGNAL_EXIT[by.by];
  };
  try {
    await program.parseAsync(argv);
    return (await stopped()) ?? exitCode;
  } catch (err) {
    const code = await stopped(err);
    if (code !== undefined) return code;
    if (err instanceof CommanderError) {
      const shown = err.code === "commander.helpDisplayed" || err.code === "commander.version" || (err.code === "commander.help" && err.exitCode === 0);
      if (wantsJson) {
        const { Output } = await import("./output.js");
        const out = new Output("json", true);
        if (shown) out.result("", err.code === "commander.version" ? { status: "ok", version: LIFEBOAT_VERSION } : { status: "ok", help: held });
        else return out.fail(new UsageError(err.message.replace(/^error: /, ""), "run with --help for usage"));
      }
      return shown ? 0 : 2;
    }
    if (!ctx) {
      const { Context } = await import("./context.js");
      ctx = new Context({});
    }
    // errors from the AWS SDK or the system get a classification and a hint like any other
    const { toAttemptError } = await import("@lifeboat/runner");
    return ctx.out.fail(err instanceof LifeboatError ? err : toAttemptError(err, []));
  }
}
