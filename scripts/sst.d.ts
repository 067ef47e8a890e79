// Types of `lifeboat/sst` (the package's sst/index.js, built from infra/package.ts). They name the SST app's own
// global types (sst, aws, $util: sst.config.ts's `/// <reference path="./.sst/platform/config.d.ts" />`), so they are
// written here by hand; test/outside-app.test.ts type-checks an SST app against them with the real platform types.
import type { LifeboatConfigInput } from "../types/public.js";

type Target = LifeboatConfigInput["targets"][string];

/** A database of the same SST app: sst.aws.Postgres or sst.aws.Aurora. */
export interface AppDatabase {
  host: $util.Output<string>;
  port: $util.Output<number>;
  database: $util.Output<string>;
  username: $util.Output<string>;
  password: $util.Output<string>;
  nodes: { instance?: unknown; cluster?: unknown };
}

/** An app database with a user of Lifeboat's own, or IAM authentication (no password at all). */
export interface AppDatabaseTarget {
  component: AppDatabase;
  /** The database to back up (default: the component's). */
  database?: string;
  /** The user (default: the component's master user); required with iamAuth (a user with the rds_iam role). */
  user?: string;
  /** IAM database authentication: rds-db:connect as `user` on this database only. */
  iamAuth?: boolean;
  /** With a user of Lifeboat's own (and no iamAuth): where its password is. */
  password?: { ssm: string } | { secretsManager: string; key?: string };
}

export interface BackupsArgs extends Omit<LifeboatConfigInput, "targets"> {
  /**
   * The targets, as in lifeboat.config.ts; a target's `database` may also be an `sst.aws.Postgres` or `sst.aws.Aurora`
   * of this app: its endpoint, port, database name and credentials are taken from it, and its security group lets
   * the runner in.
   */
  targets: Record<string, Omit<Target, "database"> & { database: Target["database"] | AppDatabase | AppDatabaseTarget }>;
  /** The app's `sst.aws.Vpc`, for the runner (needed when a target's database is a component of this app). */
  vpc?: sst.aws.Vpc;
  /**
   * Edit a child resource's args before it is created, by the child's own name (`Backups`, `Events`, `Launcher`,
   * `Runner`, `Launches`, ...): a function that changes the args, or an object merged into them.
   */
  transform?: Record<string, ((args: any) => void) | Record<string, unknown>>;
  /** Adopt the resources of a Lifeboat app deployed before the component existed (named without its prefix). */
  adoptTopLevel?: boolean;
}

/** Lifeboat's backups of PostgreSQL, in this SST app. One per app. */
export declare class Backups extends $util.ComponentResource {
  /** The bucket every backup lands in. */
  readonly bucket: sst.aws.Bucket;
  /** The topic every result event (and alarm) is published to. */
  readonly topic: sst.aws.SnsTopic;
  /** The launcher function: invoke it with { "target": "name" } for a backup now. */
  readonly launcher: sst.aws.Function;
  readonly cluster: sst.aws.Cluster;
  readonly runner: sst.aws.Task;
  /** The stack's CloudWatch dashboard (backups per target, failure queues, alarms). */
  readonly dashboardUrl: $util.Output<string>;
  /** Each target's runner role ARN: what a copy bucket in another account allows in its bucket policy. */
  readonly runnerRoles: $util.Output<Record<string, string>>;
  constructor(name: string, args: BackupsArgs, opts?: $util.ComponentResourceOptions);
}
