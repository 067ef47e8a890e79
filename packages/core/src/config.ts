import { z } from "zod";
import { S3_PROVIDERS, providerOf } from "./providers.js";
import { compressionSchema } from "./compression.js";
import { ConfigError, type ConfigProblem } from "./errors.js";
import { TARGET_NAME } from "./naming.js";
import { isValidTimeZone, parseSchedule } from "./schedule.js";
import { nextRun } from "./schedule-eval.js";

/**
 * The backup plan: one config, validated here, drives the runner, the CLI and (later) the infrastructure.
 * Every problem is reported at load, by path, with a hint.
 */

const ENV_NAME = /^[A-Za-z_][A-Za-z0-9_]*$/;

/** A Secrets Manager secret's full ARN (as the console and `aws secretsmanager describe-secret` show it). */
const SECRET_ARN = /^arn:aws[a-z-]*:secretsmanager:[a-z0-9-]+:\d{12}:secret:[\w/+=.@!-]+-[A-Za-z0-9]{6}$/;

/**
 * A secret is never written in the config: it names where to read it from. { secretsManager: ARN, key? }: a Secrets
 * Manager secret (RDS keeps a managed master user's password there, as JSON: key "password").
 */
export const secretRefSchema = z
  .object({
    env: z.string().regex(ENV_NAME, "must be an environment variable name such as PGPASSWORD").optional(),
    ssm: z.string().startsWith("/", "must be an SSM parameter name starting with /").optional(),
    secretsManager: z.string().regex(SECRET_ARN, "must be a Secrets Manager secret's full ARN, arn:aws:secretsmanager:<region>:<account>:secret:<name>-<6 characters>").optional(),
    /** With secretsManager: the field of the secret's JSON to read (RDS-managed secrets: "password"). */
    key: z.string().min(1).optional(),
  })
  .strict()
  .refine((s) => [s.env, s.ssm, s.secretsManager].filter((x) => x !== undefined).length === 1, {
    message: 'give exactly one of { env: "VAR_NAME" }, { ssm: "/parameter/name" } or { secretsManager: "arn:aws:secretsmanager:...", key?: "password" }',
  })
  .refine((s) => s.key === undefined || s.secretsManager !== undefined, { message: "key is read from a Secrets Manager secret's JSON: give it with secretsManager only", path: ["key"] });
export type SecretRef = z.infer<typeof secretRefSchema>;

/**
 * An age recipient: a public key, `age1` and 58 bech32 characters (age-keygen, lifeboat keygen). Public keys are not
 * secrets; the identity (AGE-SECRET-KEY-1...) is, and is never a config value.
 */
export const AGE_RECIPIENT = /^age1[02-9ac-hj-np-z]{58}$/;

/** What is wrong with a recipient (config or --recipient), never quoting it: a private key must not be echoed. */
export function recipientProblem(r: string): string | undefined {
  if (/^AGE-SECRET-KEY-/i.test(r)) return "is a private key (an identity): put its public key here (age-keygen -y FILE), and the identity in a secret";
  if (!AGE_RECIPIENT.test(r)) return "is not an age public key (age1 and 58 more characters, from age-keygen or lifeboat keygen)";
  return undefined;
}

export const encryptionSchema = z
  .object({
    /** Backups are encrypted for each of these public keys: any one of their identities decrypts them. */
    recipients: z
      .array(
        z.string().superRefine((r, ctx) => {
          const problem = recipientProblem(r);
          if (problem) ctx.addIssue({ code: "custom", message: problem });
        }),
      )
      .min(1, "give at least one recipient (age1...)"),
    /** Where restore drills (verify) read the identity that decrypts: { ssm } on AWS, { env } elsewhere. */
    identity: secretRefSchema.optional(),
  })
  .strict();
export type EncryptionConfig = z.infer<typeof encryptionSchema>;

const sslmode = z.enum(["disable", "allow", "prefer", "require", "verify-ca", "verify-full"]);

/** A backup schedule fires at least once a year: one that never fires, or fires further out, is a mistake. */
export const SCHEDULE_MAX_INTERVAL_MS = 366 * 86_400_000;

function checkSchedule(expression: string, ctx: z.RefinementCtx): void {
  const r = parseSchedule(expression);
  if (!r.ok) return void ctx.addIssue({ code: "custom", message: r.error });
  if (r.schedule.type === "rate") {
    if (r.schedule.everyMs > SCHEDULE_MAX_INTERVAL_MS) ctx.addIssue({ code: "custom", message: `${expression} is longer than a year: use at most rate(365 days)` });
    return;
  }
  const now = new Date();
  const next = nextRun(r.schedule, "UTC", now, now);
  if (!next) ctx.addIssue({ code: "custom", message: `${expression} never fires (no such date from now on): check the day, month and year fields` });
  else if (next.getTime() - now.getTime() > SCHEDULE_MAX_INTERVAL_MS) {
    ctx.addIssue({ code: "custom", message: `${expression} fires next on ${next.toISOString().slice(0, 10)}, more than a year away: a backup schedule should fire at least once a year` });
  }
}

export const databaseSchema = z
  .object({
    url: z
      .union([z.string(), secretRefSchema], { error: 'must be a postgres:// URL string or a secret reference like { env: "DATABASE_URL" }' })
      .optional(),
    host: z.string().min(1).optional(),
    port: z.number().int().min(1).max(65535).optional(),
    rds: z
      .object({
        instance: z.string().regex(/^[a-zA-Z][a-zA-Z0-9-]{0,62}$/, "must be an RDS DB instance identifier"),
        region: z.string().optional(),
      })
      .strict()
      .optional(),
    database: z.string().min(1).optional(),
    /** SQLite targets (engine: "sqlite"): the database file. */
    path: z.string().min(1).optional(),
    user: z.string().min(1).optional(),
    password: secretRefSchema.optional(),
    sslmode: sslmode.optional(),
    /** CA certificates (PEM file) that verify the server (verify-ca, verify-full). RDS targets default to the RDS bundle. */
    sslrootcert: z.string().min(1).optional(),
    /**
     * RDS and Aurora IAM database authentication (rds targets): no stored password; a token from the runner's AWS
     * credentials for each connection (rds-db:connect on this database user only), over verified TLS.
     */
    iamAuth: z.boolean().optional(),
  })
  .strict()
  .superRefine((db, ctx) => {
    const kinds = (["url", "host", "rds", "path"] as const).filter((k) => db[k] !== undefined);
    if (kinds.length !== 1) {
      ctx.addIssue({
        code: "custom",
        message:
          kinds.length === 0
            ? "say where the database is: url, host (with database and user), rds (with database and user), or path (SQLite)"
            : `give only one of url, host, rds or path (found ${kinds.join(", ")})`,
      });
      return;
    }
    if (db.path !== undefined) return; // SQLite: nothing else applies
    if (typeof db.url === "string") {
      const url = db.url;
      const parsed = (() => {
        try {
          return new URL(url);
        } catch {
          ctx.addIssue({ code: "custom", path: ["url"], message: "is not a valid URL (expected postgres://user@host:5432/database)" });
          return undefined;
        }
      })();
      if (parsed && !/^postgres(ql)?:$/.test(parsed.protocol)) {
        ctx.addIssue({ code: "custom", path: ["url"], message: `must start with postgres:// or postgresql://, not ${parsed.protocol}//` });
      }
      if (parsed && parsed.password) {
        ctx.addIssue({
          code: "custom",
          path: ["url"],
          message: "contains a password; passwords never go in the config file",
          // the hint is rendered by the error formatter below
        });
      }
      for (const k of ["database", "user", "port"] as const) {
        if (db[k] !== undefined) ctx.addIssue({ code: "custom", path: [k], message: `is part of the url; remove ${k} or use host instead of url` });
      }
    }
    if (db.host !== undefined || db.rds !== undefined) {
      if (db.database === undefined) ctx.addIssue({ code: "custom", path: ["database"], message: "is required with host or rds" });
      if (db.user === undefined) ctx.addIssue({ code: "custom", path: ["user"], message: "is required with host or rds" });
    }
    if (db.rds !== undefined && db.port !== undefined) {
      ctx.addIssue({ code: "custom", path: ["port"], message: "comes from RDS for rds targets; remove it" });
    }
    if (db.iamAuth) {
      if (db.rds === undefined && db.host === undefined) ctx.addIssue({ code: "custom", path: ["iamAuth"], message: "is for RDS and Aurora: give rds: { instance } (or the host of an RDS or Aurora endpoint), with user" });
      if (db.password !== undefined) ctx.addIssue({ code: "custom", path: ["password"], message: "is not used with iamAuth (each connection authenticates with a token): remove it" });
      if (db.sslmode !== undefined && db.sslmode !== "verify-full" && db.sslmode !== "verify-ca") ctx.addIssue({ code: "custom", path: ["sslmode"], message: "must verify the server with iamAuth (RDS requires TLS for IAM authentication, and a token is a credential): remove it or use verify-full" });
    }
  });
export type DatabaseConfig = z.infer<typeof databaseSchema>;

/** pg_dump patterns (-n/-N/-t/-T). Passed as --flag=value argv items, never through a shell. */
const pattern = z
  .string()
  .min(1)
  .refine((s) => !s.startsWith("-"), "must not start with '-'")
  .refine((s) => !/[\0\n\r]/.test(s), "must not contain control characters");

export const dumpSchema = z
  .object({
    format: z.enum(["custom", "plain"]).default("custom"),
    /** none | gzip[:1-9] | zstd[:1-22] | lz4[:1-12] | a gzip level 0-9; unset: zstd:3 where pg_dump has it (16+), else gzip:1. */
    compression: compressionSchema.optional(),
    schemas: z.array(pattern).default([]),
    excludeSchemas: z.array(pattern).default([]),
    tables: z.array(pattern).default([]),
    excludeTables: z.array(pattern).default([]),
    /**
     * Count every dumped table's rows in the dump's own snapshot and record them (with the archive's table of
     * contents) in the manifest, for `lifeboat verify`. Custom format only. Costs one extra scan of each table.
     */
    rowCounts: z.boolean().default(true),
    /**
     * Parallel streamed dumps (custom format): up to this many pg_dump processes share one exported snapshot; the
     * largest tables' data each stream as an archive of their own, the rest as a base archive, all at once into the
     * store. 1: one archive. Unset: the CPUs available to the runner, at most 4.
     */
    jobs: z.number().int().min(1).max(16).optional(),
    /** With jobs > 1: a table gets a stream of its own from this size (MB of table data, pg_table_size). */
    parallelMinTableMB: z.number().min(0).max(1_000_000).default(64),
    /**
     * pg_dump --lock-wait-timeout: how long pg_dump may wait for each table's share lock (a migration holding an
     * exclusive lock) before the attempt fails and is retried, instead of waiting without limit.
     */
    lockWaitTimeoutSeconds: z.number().int().min(1).max(86_400).default(600),
  })
  .strict()
  .refine((d) => d.format !== "plain" || !d.compression || d.compression.method === "gzip" || d.compression.method === "none", {
    message: "plain dumps are compressed with gzip (or none): restore pipes them through gunzip into psql; use format custom for zstd or lz4",
    path: ["compression"],
  });
export type DumpOptions = z.infer<typeof dumpSchema>;

export const retriesSchema = z
  .object({
    attempts: z.number().int().min(1).max(10).default(3),
    delaySeconds: z.number().min(0).max(3600).default(30),
    maxDelaySeconds: z.number().min(0).max(3600).default(300),
  })
  .strict()
  .refine((r) => r.maxDelaySeconds >= r.delaySeconds, { message: "maxDelaySeconds must be >= delaySeconds", path: ["maxDelaySeconds"] });
export type RetryPolicy = z.infer<typeof retriesSchema>;

/**
 * Retention: a backup is kept while any rule keeps it; the newest backup is always kept. On AWS, `days` becomes the
 * bucket's lifecycle rule; elsewhere `lifeboat prune` (and the scheduler, after each backup) applies every rule.
 */
export const retentionSchema = z
  .object({
    days: z.number().int().min(1).max(36500).optional(),
    keepLast: z.number().int().min(1).max(10000).optional(),
    daily: z.number().int().min(1).max(3650).optional(),
    weekly: z.number().int().min(1).max(520).optional(),
    monthly: z.number().int().min(1).max(1200).optional(),
  })
  .strict()
  .refine((r) => Object.values(r).some((v) => v !== undefined), { message: "give at least one of days, keepLast, daily, weekly, monthly" });
export type RetentionPolicy = z.infer<typeof retentionSchema>;

/** Fargate sizes (https://docs.aws.amazon.com/AmazonECS/latest/developerguide/fargate-tasks-services.html). */
export const FARGATE_CPUS = ["0.25 vCPU", "0.5 vCPU", "1 vCPU", "2 vCPU", "4 vCPU", "8 vCPU", "16 vCPU"] as const;
export type FargateCpu = (typeof FARGATE_CPUS)[number];
const FARGATE_MEMORY: Record<FargateCpu, { min: number; max: number; step: number; extra?: number[] }> = {
  "0.25 vCPU": { min: 1, max: 2, step: 1, extra: [0.5] },
  "0.5 vCPU": { min: 1, max: 4, step: 1 },
  "1 vCPU": { min: 2, max: 8, step: 1 },
  "2 vCPU": { min: 4, max: 16, step: 1 },
  "4 vCPU": { min: 8, max: 30, step: 1 },
  "8 vCPU": { min: 16, max: 60, step: 4 },
  "16 vCPU": { min: 32, max: 120, step: 8 },
};
export function fargateMemoryFits(cpu: FargateCpu, memory: string): boolean {
  const gb = Number(memory.replace(/ GB$/, ""));
  const r = FARGATE_MEMORY[cpu];
  return (r.extra ?? []).includes(gb) || (gb >= r.min && gb <= r.max && (gb - r.min) % r.step === 0);
}
export function fargateMemoryRange(cpu: FargateCpu): string {
  const r = FARGATE_MEMORY[cpu];
  return `${r.extra ? `${r.extra.join(", ")} GB or ` : ""}${r.min}-${r.max} GB in steps of ${r.step} GB`;
}
/** ECS's units for a Fargate size: CPU in 1/1024 vCPU, memory in MiB (what RunTask overrides and its condition keys take). */
export function fargateCpuUnits(cpu: string): number {
  return Math.round(Number(cpu.replace(/ vCPU$/, "")) * 1024);
}
export function fargateMemoryMiB(memory: string): number {
  return Math.round(Number(memory.replace(/ GB$/, "")) * 1024);
}
const fargateCpu = z.enum(FARGATE_CPUS);
const fargateMemory = z.string().regex(/^\d+(\.\d+)? GB$/, 'must look like "2 GB"');

export const targetAwsSchema = z
  .object({ cpu: fargateCpu.optional(), memory: fargateMemory.optional() })
  .strict();

const s3StoreSchema = z
  .object({
    bucket: z.string().regex(/^[a-z0-9][a-z0-9.-]{1,61}[a-z0-9]$/, "must be a valid S3 bucket name"),
    prefix: z.string().default(""),
    region: z.string().optional(),
    endpoint: z.url({ message: "must be a URL such as http://127.0.0.1:9000" }).optional(),
    forcePathStyle: z.boolean().optional(),
    /**
     * Which provider's rules the uploads follow (part count, checksum headers, addressing): aws, r2, b2, scaleway,
     * minio, generic. Default: aws without an endpoint, generic with one.
     */
    provider: z.enum(S3_PROVIDERS, { message: `is not a provider Lifeboat knows: ${S3_PROVIDERS.join(", ")}` }).optional(),
  })
  .strict();

/**
 * A further store every backup is written to at the same time as the primary (3-2-1: another account, another
 * provider, a local disk): one dump stream, hashed once, goes to all. Each copy holds the backup's manifest too, so
 * that list, restore, verify and status work from it alone. `credentials`: its own access key (secret references);
 * default: the same credentials as the primary (the SDK's chain).
 */
export const copySchema = z
  .object({
    name: z.string().regex(/^[a-z0-9][a-z0-9_-]{0,62}$/, "copy names are lowercase letters, digits, - and _ (max 63)"),
    s3: s3StoreSchema
      .extend({ credentials: z.object({ accessKeyId: secretRefSchema, secretAccessKey: secretRefSchema }).strict().optional() })
      .strict()
      .optional(),
    directory: z.string().min(1).optional(),
    /**
     * How long the copy keeps backups: a retention policy of its own, or "store" (the store's own lifecycle rules or
     * Object Lock decide, and Lifeboat never deletes there: for write-only credentials). Default: the target's.
     */
    retention: z.union([z.literal("store"), retentionSchema]).optional(),
    /**
     * S3 Object Lock on every object Lifeboat writes to this copy: its mode and how many days from the write nobody
     * may delete that version (the bucket must have Object Lock on). AWS S3 only: elsewhere set the bucket's own rules.
     */
    objectLock: z.object({ mode: z.enum(["GOVERNANCE", "COMPLIANCE"]).default("GOVERNANCE"), days: z.number().int().min(1).max(36_500) }).strict().optional(),
  })
  .strict()
  .refine((c) => (c.s3 === undefined) !== (c.directory === undefined), { message: 'give exactly one of s3: { bucket, prefix } or directory: "/path"' })
  .superRefine((c, ctx) => {
    if (!c.objectLock) return;
    if (c.directory !== undefined) ctx.addIssue({ code: "custom", path: ["objectLock"], message: "is S3 Object Lock: a directory copy has none (make the disk's files immutable with the file system's own means)" });
    else if (c.s3 && providerOf(c.s3.provider, c.s3.endpoint) !== "aws") {
      ctx.addIssue({ code: "custom", path: ["objectLock"], message: `is set by Lifeboat on AWS S3 only, not on ${providerOf(c.s3.provider, c.s3.endpoint)}: set the bucket's own default retention (lock rules) at the provider instead, and give this copy retention: "store"` });
    }
  });
export type CopyConfig = z.infer<typeof copySchema>;

/**
 * A data check of restore drills (verify.checks): one SQL query run in the drill's restored database; the first column
 * of its first row is the value checked (no row fails the check). `min` / `max`: the value as a number; `equals`: the
 * value as psql prints it (true and false as t and f); `maxAgeHours`: the value is a time (date or timestamp) no more
 * than this many hours before the backup started (data that stopped arriving, a replica that stopped replicating).
 */
export const dataCheckSchema = z
  .object({
    name: z.string().min(1),
    sql: z.string().min(1),
    min: z.number().optional(),
    max: z.number().optional(),
    equals: z.union([z.string(), z.number(), z.boolean()]).optional(),
    maxAgeHours: z.number().positive().optional(),
  })
  .strict()
  .refine((c) => c.min !== undefined || c.max !== undefined || c.equals !== undefined || c.maxAgeHours !== undefined, { message: "give what the value must be: min, max, equals or maxAgeHours" });
export type DataCheck = z.infer<typeof dataCheckSchema>;

export const targetSchema = z
  .object({
    description: z.string().optional(),
    /** postgres (default) or sqlite (database: { path }). */
    engine: z.enum(["postgres", "sqlite"]).default("postgres"),
    database: databaseSchema,
    schedule: z.string().superRefine(checkSchedule).optional(),
    timezone: z
      .string()
      .refine(isValidTimeZone, { message: "is not an IANA time zone (for example UTC, Europe/Paris, America/New_York)" })
      .default("UTC"),
    dump: dumpSchema.default(() => dumpSchema.parse({})),
    retries: retriesSchema.default(() => retriesSchema.parse({})),
    retention: retentionSchema.optional(),
    /** Several databases of one server: these names, or every non-template database (`all`). The database in
     * `database` is then only where Lifeboat connects to list them. Each database is a backup with its own manifest. */
    databases: z.array(z.string().min(1)).min(1).optional(),
    all: z.boolean().optional(),
    /** Roles and tablespaces (pg_dumpall --globals-only); password hashes only with { passwords: true }. */
    globals: z.union([z.boolean(), z.object({ passwords: z.boolean().default(false) }).strict()]).optional(),
    /** This target's copies, instead of storage.copies (`[]`: none for this target). */
    copies: z
      .array(copySchema)
      .refine((c) => new Set(c.map((x) => x.name)).size === c.length, { message: "copy names must be unique" })
      .optional(),
    /**
     * Restore drills: `schedule` runs them (`lifeboat verify` of the latest backup), in EventBridge syntax like
     * `schedule`; `checks` are data checks every drill of this target runs in its restored database.
     */
    verify: z
      .object({
        schedule: z.string().superRefine(checkSchedule).optional(),
        timezone: z.string().refine(isValidTimeZone, { message: "is not an IANA time zone" }).optional(),
        checks: z
          .array(dataCheckSchema)
          .min(1)
          .refine((c) => new Set(c.map((x) => x.name)).size === c.length, { message: "check names must be unique" })
          .optional(),
      })
      .strict()
      .refine((v) => v.schedule !== undefined || v.checks !== undefined, { message: "give schedule (scheduled drills), checks (data checks in every drill), or both" })
      .optional(),
    /**
     * `lifeboat refresh <target>`: the target's latest backup into another database (staging), replaced blue-green
     * when it exists (--swap), created when it does not, with `then` SQL files run in it before it takes the name
     * (masking). Paths are relative to the config file. Never the target's own database.
     */
    refresh: z
      .object({
        to: databaseSchema,
        then: z.array(z.string().min(1)).default([]),
        /**
         * How many databases a swap replaced (`<name>_before_<time>`) to keep: older ones are dropped after each
         * successful refresh (a daily refresh would otherwise keep one more copy of staging every day).
         */
        keepPrevious: z.number().int().min(0).max(100).default(1),
        /** When `lifeboat schedule` refreshes it (EventBridge syntax, like `schedule`); not on AWS. */
        schedule: z.string().superRefine(checkSchedule).optional(),
        timezone: z.string().refine(isValidTimeZone, { message: "is not an IANA time zone" }).optional(),
      })
      .strict()
      .optional(),
    /**
     * The longest a run may take, attempts and waits included: then it is stopped cleanly (no object, no manifest)
     * and reported as backup.failed with code deadline_exceeded, before it overlaps the next night's run.
     */
    maxRunMinutes: z.number().positive().max(7 * 24 * 60).default(360),
    /**
     * backup.missed: a fire time with no backup once this grace period has passed. Default: the shorter of
     * maxRunMinutes and the schedule's interval, plus 30 minutes.
     */
    freshness: z.object({ graceMinutes: z.number().positive().max(30 * 24 * 60) }).strict().optional(),
    /** AWS deployment only: the Fargate task size for this target (RunTask overrides). */
    aws: targetAwsSchema.optional(),
    /** Client-side encryption of this target's backups (age); replaces the top-level `encryption`. */
    encryption: encryptionSchema.optional(),
  })
  .strict()
  .refine((t) => !(t.databases && t.all), { message: "give databases: [...] or all: true, not both", path: ["all"] })
  .superRefine((t, ctx) => {
    if (t.engine === "sqlite" && t.database.path === undefined) {
      ctx.addIssue({ code: "custom", path: ["database", "path"], message: 'is required for engine: "sqlite" (the database file)' });
    }
    if (t.refresh && (t.engine === "sqlite" || t.refresh.to.path !== undefined)) {
      ctx.addIssue({ code: "custom", path: ["refresh"], message: "refreshes a PostgreSQL database from a PostgreSQL target: a SQLite backup restores to a file (lifeboat restore --to-file)" });
    }
    if (t.engine === "sqlite" && t.verify?.checks) {
      ctx.addIssue({ code: "custom", path: ["verify", "checks"], message: "run in PostgreSQL drills only: a SQLite drill checks the file's integrity and row counts" });
    }
    if (t.engine === "postgres" && t.database.path !== undefined) {
      ctx.addIssue({ code: "custom", path: ["engine"], message: 'database.path is a SQLite file: set engine: "sqlite"' });
    }
    if (t.engine === "sqlite" && (t.databases || t.all || t.globals)) {
      ctx.addIssue({ code: "custom", path: ["engine"], message: "databases, all and globals are PostgreSQL options" });
    }
  });
export type TargetConfig = z.infer<typeof targetSchema>;

export const storageSchema = z
  .object({
    s3: s3StoreSchema.optional(),
    directory: z.string().min(1).optional(),
    /** Copies of every backup, in other stores (see copySchema). */
    copies: z
      .array(copySchema)
      .refine((c) => new Set(c.map((x) => x.name)).size === c.length, { message: "copy names must be unique" })
      .optional(),
  })
  .strict()
  .refine((s) => (s.s3 === undefined) !== (s.directory === undefined), {
    message: 'give exactly one of s3: { bucket, prefix } or directory: "/path"',
  });
export type StorageConfig = z.infer<typeof storageSchema>;

export const OUTCOMES = ["succeeded", "failed"] as const;
export type Outcome = (typeof OUTCOMES)[number];

/** How a heartbeat service wants its pings (notify/heartbeat.ts in the runner). */
export const HEARTBEAT_STYLES = ["healthchecks", "cronitor", "uptime-kuma"] as const;
export type HeartbeatStyle = (typeof HEARTBEAT_STYLES)[number];

export const notificationsSchema = z
  .object({
    slack: z
      .object({
        webhook: secretRefSchema,
        on: z.array(z.enum(OUTCOMES)).min(1).default(["succeeded", "failed"]),
      })
      .strict()
      .optional(),
    /**
     * Any HTTPS endpoint (healthchecks, PagerDuty's Events API bridge, a team's own): each event's JSON is POSTed as
     * is. The URL is a secret (it often carries a token).
     */
    webhook: z
      .object({
        url: secretRefSchema,
        on: z.array(z.enum(OUTCOMES)).min(1).default(["succeeded", "failed"]),
      })
      .strict()
      .optional(),
    /**
     * A dead man's switch (healthchecks.io, Cronitor, Uptime Kuma): pinged as every run starts and ends, so that an
     * outside service alarms when the pings stop - a scheduler that died is noticed by nothing else. The URL is a
     * secret (it carries the check's key).
     */
    heartbeat: z
      .object({
        url: secretRefSchema,
        style: z.enum(HEARTBEAT_STYLES).default("healthchecks"),
      })
      .strict()
      .optional(),
  })
  .strict();

const securityGroupId = z.string().regex(/^sg-[0-9a-f]+$/, "must be a security group id (sg-...)");

/**
 * S3 lifecycle transitions that S3 itself would refuse, or that Lifeboat could not read back, are refused at load
 * (https://docs.aws.amazon.com/AmazonS3/latest/userguide/lifecycle-transition-general-considerations.html).
 */
export const TRANSITION_MIN_DAYS: Record<string, number> = { STANDARD_IA: 30, ONEZONE_IA: 30, INTELLIGENT_TIERING: 0, GLACIER_IR: 0 };

const LOG_RETENTIONS = ["1 week", "2 weeks", "1 month", "2 months", "3 months", "6 months", "1 year", "2 years", "5 years", "10 years"] as const;

/** The AWS deployment (sst deploy). Every key has a default: `aws: {}` deploys a sensible setup. */
export const awsSchema = z
  .object({
    runner: z
      .object({
        architecture: z.enum(["arm64", "x86_64"]).default("arm64"),
        cpu: fargateCpu.default("1 vCPU"),
        memory: fargateMemory.default("2 GB"),
        storage: z.string().regex(/^\d+ GB$/).default("20 GB"),
        logRetention: z.enum(LOG_RETENTIONS).default("1 month"),
        /**
         * A published runner image (a registry reference, ideally by digest) instead of one built at deploy time from
         * the installed package's Dockerfile (which needs Docker on the deploying machine).
         */
        image: z
          .string()
          .regex(/^[a-z0-9][a-z0-9._\/-]*(:[0-9]+)?(\/[a-z0-9._-]+)*(:[\w][\w.-]{0,127})?(@sha256:[0-9a-f]{64})?$/, "must be an image reference such as 123456789012.dkr.ecr.eu-west-1.amazonaws.com/lifeboat-runner:0.5.0 or one @sha256:<digest>")
          .optional(),
      })
      .strict()
      .default(() => ({ architecture: "arm64" as const, cpu: "1 vCPU" as const, memory: "2 GB", storage: "20 GB", logRetention: "1 month" as const })),
    /**
     * An existing VPC (where the databases live). Without it, Lifeboat creates a VPC of its own with public subnets,
     * which reaches only databases that are reachable over the internet.
     */
    vpc: z
      .object({
        id: z.string().regex(/^vpc-[0-9a-f]+$/, "must be a VPC id (vpc-...)"),
        containerSubnets: z.array(z.string().regex(/^subnet-[0-9a-f]+$/, "must be a subnet id (subnet-...)")).min(1),
        /** The runner's security groups. Default: one created for it, with no ingress at all. */
        securityGroups: z.array(securityGroupId).min(1).optional(),
        /**
         * The databases' security groups: each gets an ingress rule from the runner's security groups on the database
         * port (5432 unless given, as { id: "sg-...", port: 6432 }).
         */
        databaseSecurityGroups: z
          .array(z.union([securityGroupId, z.object({ id: securityGroupId, port: z.number().int().min(1).max(65535) }).strict()]))
          .default([]),
        /** Give the task a public IP (subnets with an internet gateway and no NAT). */
        publicIp: z.boolean().default(false),
      })
      .strict()
      .optional(),
    bucket: z
      .object({
        /** SSE-KMS with this key instead of SSE-S3. */
        kmsKeyArn: z.string().regex(/^arn:aws[a-z-]*:kms:/, "must be a KMS key ARN").optional(),
        /** Move backups to a cheaper storage class after some days. */
        transition: z
          .object({
            days: z.number().int().min(1),
            storageClass: z.enum(["STANDARD_IA", "ONEZONE_IA", "INTELLIGENT_TIERING", "GLACIER_IR", "GLACIER", "DEEP_ARCHIVE"]),
          })
          .strict()
          .superRefine((t, ctx) => {
            if (t.storageClass === "GLACIER" || t.storageClass === "DEEP_ARCHIVE") {
              ctx.addIssue({
                code: "custom",
                path: ["storageClass"],
                message: `${t.storageClass} objects must be restored (hours) before they can be read, and lifeboat restore and verify read backups directly: use GLACIER_IR (instant access, about the same price)`,
              });
              return;
            }
            const min = TRANSITION_MIN_DAYS[t.storageClass]!;
            if (t.days < min) {
              ctx.addIssue({ code: "custom", path: ["days"], message: `S3 refuses a transition to ${t.storageClass} before ${min} days (got ${t.days}): use days: ${min} or more, or GLACIER_IR` });
            }
          })
          .optional(),
        /** Days a replaced or expired version is kept (the bucket is versioned). */
        noncurrentVersionDays: z.number().int().min(1).default(7),
        /** Write-once retention: nobody (COMPLIANCE) or only privileged users (GOVERNANCE) can delete a backup early. */
        objectLock: z.object({ mode: z.enum(["GOVERNANCE", "COMPLIANCE"]), days: z.number().int().min(1) }).strict().optional(),
      })
      .strict()
      .default(() => ({ noncurrentVersionDays: 7 })),
    /** E-mail subscriptions to the SNS topic, filtered by outcome. */
    email: z
      .array(z.object({ address: z.email(), on: z.array(z.enum(OUTCOMES)).min(1).default(["failed"]) }).strict())
      .default([]),
  })
  .strict();
export type AwsConfig = z.infer<typeof awsSchema>;

export const configSchema = z
  .object({
    storage: storageSchema,
    targets: z
      .record(z.string().regex(TARGET_NAME, "target names are lowercase letters, digits, - and _ (max 63)"), targetSchema)
      .refine((t) => Object.keys(t).length > 0, "define at least one target"),
    notifications: notificationsSchema.default({}),
    /** Client-side encryption (age) of every target's backups, unless a target sets its own. */
    encryption: encryptionSchema.optional(),
    aws: awsSchema.optional(),
  })
  .strict()
  .superRefine((c, ctx) => {
    const runner = c.aws?.runner;
    if (runner && !fargateMemoryFits(runner.cpu, runner.memory)) {
      ctx.addIssue({ code: "custom", path: ["aws", "runner", "memory"], message: `${runner.memory} does not fit ${runner.cpu}: use ${fargateMemoryRange(runner.cpu)}` });
    }
    for (const [name, t] of Object.entries(c.targets)) {
      if (!t.aws) continue;
      const cpu = t.aws.cpu ?? runner?.cpu ?? "1 vCPU";
      const memory = t.aws.memory ?? runner?.memory ?? "2 GB";
      if (!fargateMemoryFits(cpu, memory)) {
        ctx.addIssue({ code: "custom", path: ["targets", name, "aws", "memory"], message: `${memory} does not fit ${cpu}: use ${fargateMemoryRange(cpu)}` });
      }
    }
  });

export type LifeboatConfig = z.infer<typeof configSchema>;
export type LifeboatConfigInput = z.input<typeof configSchema>;

/** Typed helper for lifeboat.config.ts; validation happens when the config is loaded. */
export function defineConfig(config: LifeboatConfigInput): LifeboatConfigInput {
  return config;
}

const HINTS: Array<[RegExp, string]> = [
  [/encryption\.identity/, 'the identity is a secret: { env: "LIFEBOAT_AGE_IDENTITY" } or { ssm: "/lifeboat/age-identity" }, never the key itself'],
  [/contains a password/, 'use url: { env: "DATABASE_URL" }, or host/user/database with password: { env: "PGPASSWORD" }'],
  [/schedule/, "EventBridge syntax: cron(minutes hours day-of-month month day-of-week year) or rate(1 day)"],
];

function pathOf(path: ReadonlyArray<PropertyKey>): string {
  return path.map((p) => (typeof p === "number" ? `[${p}]` : String(p))).join(".").replace(/\.\[/g, "[");
}

export function formatIssues(error: z.ZodError): ConfigProblem[] {
  const problems: ConfigProblem[] = [];
  for (const issue of error.issues) {
    const path = pathOf(issue.path);
    let message = issue.message;
    let hint: string | undefined;
    if (issue.code === "unrecognized_keys") {
      message = `unknown key${issue.keys.length > 1 ? "s" : ""} ${issue.keys.map((k) => `"${k}"`).join(", ")}`;
      hint = "remove it or check its spelling";
    } else if (issue.code === "invalid_key") {
      message = `invalid name: ${issue.issues.map((i) => i.message).join("; ")}`;
    } else if (issue.code === "invalid_type" && /received undefined/.test(issue.message)) {
      message = `is required (${issue.expected})`;
    }
    for (const [re, h] of HINTS) if (hint === undefined && (re.test(message) || re.test(path))) hint = h;
    problems.push(hint === undefined ? { path, message } : { path, message, hint });
  }
  return problems;
}

/** Validates a raw config (from lifeboat.config.ts or JSON). Throws ConfigError listing every problem. */
export function parseConfig(raw: unknown, source = "the config"): LifeboatConfig {
  const result = configSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(source, formatIssues(result.error));
  // targets are looked up by name from the command line and from events: only the config's own names may answer
  // (a plain object would answer "constructor" or "toString" from its prototype)
  // a target without encryption of its own takes the top level's
  const targets = Object.fromEntries(Object.entries(result.data.targets).map(([name, t]) => [name, t.encryption || !result.data.encryption ? t : { ...t, encryption: result.data.encryption }]));
  return { ...result.data, targets: Object.assign(Object.create(null) as LifeboatConfig["targets"], targets) };
}

export function parseTarget(raw: unknown, source: string): TargetConfig {
  const result = targetSchema.safeParse(raw);
  if (!result.success) throw new ConfigError(source, formatIssues(result.error));
  return result.data;
}
