// Lifeboat as an SST component: `new Backups("Backups", { ...lifeboat.config, vpc, targets: { app: { database: db } } })`
// inside any SST app's run(). Everything lifeboat.config.ts can say, the component accepts (the same zod schema
// validates both); a target's database may also be an sst.aws.Postgres or sst.aws.Aurora of the same app.
import { sha256Hex, type LifeboatConfigInput } from "@lifeboat/core";
import { alarms } from "./alarms";
import { context, planDeployment, VisibleError, type Code } from "./context";
import { dashboard } from "./dashboard";
import { appDatabaseTargets, type AppDatabase, type AppDatabaseTarget } from "./databases";
import { notify } from "./notify";
import { runner } from "./runner";
import { schedule } from "./schedule";
import { storage } from "./storage";
import { watch } from "./watch";

type Targets = LifeboatConfigInput["targets"];
type Target = Targets[string];

/** The package ships these types as scripts/sst.d.ts (kept in step with this file; test/outside-app.test.ts type-checks an app against it). */
export interface BackupsArgs extends Omit<LifeboatConfigInput, "targets"> {
  /**
   * The targets, as in lifeboat.config.ts; a target's `database` may also be an `sst.aws.Postgres` or `sst.aws.Aurora`
   * of this app: its endpoint, port, database name and credentials are taken from it, and its security group lets
   * the runner in.
   */
  targets: Record<string, Omit<Target, "database"> & { database: Target["database"] | AppDatabase | AppDatabaseTarget }>;
  /**
   * The app's `sst.aws.Vpc`, for the runner (needed when a target's database is a component of this app). The runner
   * takes its public subnets, with a public IP and a security group that lets nothing in. Without it, Lifeboat
   * makes its own VPC, or uses the ids in `aws.vpc`.
   */
  vpc?: sst.aws.Vpc;
  /**
   * Edit a child resource's args before it is created, by the child's own name (`Backups`, `Events`, `Launcher`,
   * `Runner`, `Launches`, ...): a function that changes the args, or an object merged into them (SST's style).
   */
  transform?: Record<string, ((args: any) => void) | Record<string, unknown>>;
  /**
   * Keep the state of a Lifeboat app deployed before the component existed (this repository's sst.config.ts before
   * 0.5): its resources were named without the component's name, at the top of the stack. Pulumi aliases let them
   * be adopted instead of replaced.
   */
  adoptTopLevel?: boolean;
}

/** Where the functions' code and the runner's image come from: this repository's sources, or the installed package. */
let code: Code = {
  handler: (fn) => ({ handler: `packages/functions/src/${fn}.handler` }),
  image: { context: ".", dockerfile: "packages/runner/Dockerfile", args: { LIFEBOAT_SOURCE: "repository" } },
};
/** The installed package sets its own (sst/index.js), before any component is made. */
export function useCode(c: Code) {
  code = c;
}

let made = 0;

export class Backups extends $util.ComponentResource {
  /** The bucket every backup lands in. */
  readonly bucket: sst.aws.Bucket;
  /** The topic every result event (and alarm) is published to: subscribe your own consumers. */
  readonly topic: sst.aws.SnsTopic;
  /** The launcher function: invoke it with { "target": "name" } for a backup now. */
  readonly launcher: sst.aws.Function;
  /** The runner's cluster and task. */
  readonly cluster: sst.aws.Cluster;
  readonly runner: sst.aws.Task;
  /** The stack's CloudWatch dashboard (backups per target, failure queues, alarms). */
  readonly dashboardUrl: $util.Output<string>;
  /** Each target's runner role ARN: what a copy bucket in another account allows in its bucket policy. */
  readonly runnerRoles: $util.Output<Record<string, string>>;

  constructor(name: string, args: BackupsArgs, opts: $util.ComponentResourceOptions = {}) {
    super("lifeboat:aws:Backups", name, {}, opts);
    if (++made > 1)
      throw new VisibleError(
        "lifeboat: one Backups component per SST app (its alarms and runner roles are named after the app and stage); put every target in it",
      );
    const { vpc, transform, adoptTopLevel, ...raw } = args;
    if (vpc && raw.aws?.vpc) throw new VisibleError("lifeboat: give the Backups component either `vpc` (an sst.aws.Vpc of this app) or `aws.vpc` (the ids of an existing VPC), not both");

    // the app's databases become host targets whose password the runner reads itself (Aurora's secret, or an SSM copy
    // of Postgres's); the config is planned with their values still unknown, and deployed (JSON, in the bucket) with them
    const app = appDatabaseTargets(name, this, raw.targets, Boolean(vpc));
    const { config, plan } = planDeployment({ ...raw, targets: app.planned }, `the ${name} component's config`, { appVpc: Boolean(vpc) });
    for (const warning of plan.warnings) console.warn(`lifeboat: ${warning}`);
    const ctx = context(name, this, config, plan, code, Boolean(adoptTopLevel), transform);

    const configText = $jsonStringify({ ...raw, targets: app.deployed });
    const configSha256 = configText.apply(sha256Hex);
    const { bucket, configKey } = storage(ctx, configText);
    const notified = notify(ctx);
    const alarmed = alarms(ctx, notified);
    alarmed.alarmOnNotifications(notified.subscribers);
    const run = runner(ctx, { bucket, configKey, configSha256 }, notified, vpc, app.access, app.secrets, app.iam);
    const { launcher, launches } = schedule(ctx, run, alarmed);
    watch(ctx, { bucket, configKey }, notified, run, alarmed);
    // last: it shows every alarm made above
    const board = dashboard(ctx, alarmed, { launches, notificationFailures: notified.notificationFailures });

    this.bucket = bucket;
    this.topic = notified.topic;
    this.launcher = launcher;
    this.cluster = run.cluster;
    this.runner = run.task;
    this.dashboardUrl = board.url;
    this.runnerRoles = $util.all(run.targetRoles.map((r) => r.arn)).apply((arns) => Object.fromEntries(plan.runnerTargets.map((t, i) => [t.target, arns[i]!])));
    this.registerOutputs({ bucket: bucket.name, topic: notified.topic.arn, launcher: launcher.name, cluster: run.cluster.nodes.cluster.name, dashboard: board.url, runnerRoles: this.runnerRoles });
  }
}
