// The runner: one Fargate task definition (packages/runner/Dockerfile) in a new VPC, the databases' VPC (ids in the
// config), or the SST app's own sst.aws.Vpc; and a role per target.
import { LAST_RUN_FILE, LATEST_FILE, pascal, runnerRoleName, runnerRolePath } from "@lifeboat/core";
import { bucketKeyPermissions, maker, parameterArn, rdsInstanceArn, type Context } from "./context";
import type { Notify } from "./notify";
import { PLANNED_PARAMETER, PLANNED_SECRET, type AppDatabaseIam } from "./databases";

/** A database of the same SST app: the runner is let in on its port, through its security groups. */
export interface AppDatabaseAccess {
  target: string;
  port: $util.Input<number>;
  securityGroups: $util.Input<$util.Input<string>[]>;
}

/** A dump's keys (naming.ts: .dump and .part-NNN.dump, .sql, .sql.gz), never a manifest or a drill result. */
const dumpPatterns = ["*.dump", "*.sql", "*.sql.gz"];

export function runner(
  ctx: Context,
  { bucket, configKey, configSha256 }: { bucket: sst.aws.Bucket; configKey: string; configSha256: $util.Output<string> },
  { topic }: Notify,
  appVpc: sst.aws.Vpc | undefined,
  appDatabases: AppDatabaseAccess[],
  appSecrets: Array<{ target: string; arn: $util.Output<string> }> = [],
  appIam: AppDatabaseIam[] = [],
) {
  const { plan } = ctx;
  const make = maker(ctx);
  const existing = plan.aws.vpc;

  // The runner only connects out (to its databases, S3 and AWS APIs): no security group of its lets anything in.
  const ownSecurityGroup =
    appVpc || (existing && !existing.securityGroups)
      ? make(aws.ec2.SecurityGroup, "RunnerSecurityGroup", {
          vpcId: appVpc ? appVpc.id : existing!.id,
          description: "Lifeboat runner: no ingress; egress to its databases, S3 and AWS APIs",
          egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] }],
        })
      : undefined;
  const runnerSecurityGroups: $util.Input<string>[] = existing?.securityGroups ?? (ownSecurityGroup ? [ownSecurityGroup.id] : []);
  // In the app's own sst.aws.Vpc the runner takes its public subnets with a public IP (the VPC may have no NAT
  // gateway, and then private subnets reach neither S3 nor ECR), behind a security group that lets nothing in.
  const vpc = appVpc
    ? { id: appVpc.id, containerSubnets: appVpc.publicSubnets, securityGroups: runnerSecurityGroups, loadBalancerSubnets: appVpc.publicSubnets }
    : existing
      ? { id: existing.id, containerSubnets: existing.containerSubnets, securityGroups: runnerSecurityGroups, loadBalancerSubnets: existing.containerSubnets }
      : make(sst.aws.Vpc, "Vpc", { transform: { securityGroup: (args: aws.ec2.SecurityGroupArgs) => void (args.ingress = []) } });
  const publicIp = appVpc ? true : Boolean(existing?.publicIp);

  // In Lifeboat's own VPC the runner has public IPs in public subnets (S3, ECR, Logs, SSM, SNS over the internet
  // gateway); a gateway endpoint (free) keeps its S3 traffic, the bulk of it, inside AWS's network. The app's own VPC
  // and a configured one are left as they are (their route tables are not Lifeboat's to change).
  if (!existing && !appVpc) {
    const own = vpc as sst.aws.Vpc;
    make(aws.ec2.VpcEndpoint, "S3GatewayEndpoint", {
      vpcId: own.id,
      serviceName: $interpolate`com.amazonaws.${ctx.region}.s3`,
      vpcEndpointType: "Gateway",
      routeTableIds: $util
        .all([own.nodes.publicRouteTables, own.nodes.privateRouteTables])
        .apply(([pub, priv]) => $util.all([...pub, ...priv].map((t) => t.id))),
    });
  }

  const cluster = make(sst.aws.Cluster, "Cluster", { vpc });

  /**
   * What rds-db:connect names: an instance's resource id (db-...), or, for an instance of an Aurora cluster, the
   * cluster's (cluster-...): IAM authentication to Aurora is authorized on the cluster.
   */
  const iamResourceId = (instance: string) =>
    aws.rds.getInstanceOutput({ dbInstanceIdentifier: instance }, { parent: ctx.parent }).apply((i) =>
      i.dbClusterIdentifier ? aws.rds.getClusterOutput({ clusterIdentifier: i.dbClusterIdentifier }, { parent: ctx.parent }).clusterResourceId : $output(i.resourceId),
    );
  const dbUser = (resourceId: $util.Input<string>, user: $util.Input<string>) => $interpolate`arn:${ctx.partition}:rds-db:${ctx.region}:${ctx.account}:dbuser:${resourceId}/${user}`;

  /**
   * What one target's runner may do, and nothing of another target: write and abort uploads under its own prefix;
   * read its manifests, run record and newest-backup pointer (and its dumps, if it schedules restore drills); list
   * its prefix, and the bucket's pending uploads (AWS has no prefix condition for that listing: keys and upload ids,
   * no data); delete its own dumps (a failed run removes the dump whose manifest could not be written), and anything
   * under its prefix only if the runner prunes it; read the deployed config, its own secrets (SSM parameters, Secrets
   * Manager secrets; and the heartbeat's URL); describe its RDS instance; connect as its database user where it uses
   * IAM authentication; publish to the topic; use the bucket's KMS key through S3. A delete in this versioned bucket
   * leaves the previous version, which no Lifeboat role may delete.
   */
  function targetStatements(t: (typeof plan.runnerTargets)[number]) {
    const mine = (pattern: string) => $interpolate`${bucket.arn}/${t.prefix}${pattern}`;
    // the planning placeholders of app databases are never granted: their real secrets and users come from the component
    const parameters = t.parameters.filter((p) => p !== PLANNED_PARAMETER);
    const secrets: $util.Input<string>[] = [...t.secrets.filter((s) => s !== PLANNED_SECRET), ...appSecrets.filter((s) => s.target === t.target).map((s) => s.arn)];
    const dbUsers = [
      ...(t.iamAuth ? [dbUser(iamResourceId(t.iamAuth.instance), t.iamAuth.user)] : []),
      ...appIam.filter((a) => a.target === t.target).map((a) => dbUser(a.resourceId, a.user)),
    ];
    return [
      { actions: ["s3:PutObject", "s3:AbortMultipartUpload"], resources: [mine("*")] },
      {
        actions: ["s3:GetObject"],
        // dumps too for drills, and for copies (a copy that failed in the run is copied again from the primary)
        resources: [...(t.drills || t.copies ? [mine("*")] : [mine("*.manifest.json"), mine(LAST_RUN_FILE), mine(LATEST_FILE)]), $interpolate`${bucket.arn}/${configKey}`],
      },
      { actions: ["s3:ListBucket"], resources: [bucket.arn], conditions: [{ test: "StringLike", variable: "s3:prefix", values: [`${t.prefix}*`] }] },
      { actions: ["s3:ListBucketMultipartUploads"], resources: [bucket.arn] },
      { actions: ["s3:DeleteObject"], resources: t.pruned ? [mine("*")] : dumpPatterns.map(mine) },
      ...(parameters.length ? [{ actions: ["ssm:GetParameter"], resources: parameters.map((p) => parameterArn(ctx, p)) }] : []),
      // Secrets Manager secrets it names (a secret with a key of its own also needs kms:Decrypt: the key's policy)
      ...(secrets.length ? [{ actions: ["secretsmanager:GetSecretValue"], resources: secrets }] : []),
      ...(t.rds ? [{ actions: ["rds:DescribeDBInstances"], resources: [rdsInstanceArn(ctx, t.rds)] }] : []),
      // IAM database authentication: as its user, on its instance or cluster only (by resource id)
      ...(dbUsers.length ? [{ actions: ["rds-db:connect"], resources: dbUsers }] : []),
      { actions: ["sns:Publish"], resources: [topic.arn] },
      ...bucketKeyPermissions(ctx),
      ...t.copyBuckets.flatMap(copyStatements),
    ];
  }

  /**
   * A copy in an AWS bucket (its own account's, or another's whose bucket policy allows this role): create and abort
   * uploads under the target's keys there, list them (is a backup there already; what to prune) and the bucket's
   * pending uploads (a failed upload's leftovers), and delete there only
   * what a failed run left (its dumps) or, if the runner prunes that copy, old backups (deciding from its manifests,
   * the one read there). A copy left to its store is never read: it is written, and checked by listing. A copy with
   * objectLock sets each object's retention as it writes it (s3:PutObjectRetention; never BypassGovernanceRetention).
   */
  function copyStatements(c: (typeof plan.runnerTargets)[number]["copyBuckets"][number]) {
    const arn = $interpolate`arn:${ctx.partition}:s3:::${c.bucket}`;
    const theirs = (pattern: string) => $interpolate`${arn}/${c.prefix}${pattern}`;
    return [
      { actions: ["s3:PutObject", "s3:AbortMultipartUpload", ...(c.objectLock ? ["s3:PutObjectRetention"] : [])], resources: [theirs("*")] },
      { actions: ["s3:ListBucket"], resources: [arn], conditions: [{ test: "StringLike", variable: "s3:prefix", values: [`${c.prefix}*`] }] },
      // a failed upload's leftovers are looked for (AWS has no prefix condition for this listing)
      { actions: ["s3:ListBucketMultipartUploads"], resources: [arn] },
      { actions: ["s3:DeleteObject"], resources: c.pruned ? [theirs("*")] : dumpPatterns.map(theirs) },
      // pruning decides from the copy's manifests: read those, and only for a copy the runner prunes
      ...(c.pruned ? [{ actions: ["s3:GetObject"], resources: [theirs("*.manifest.json")] }] : []),
    ];
  }

  /**
   * A role per target (chosen over session tags: ECS task credentials carry no session tags, so ABAC could not tell
   * one target's task from another's). The launcher and the watcher pass it as the task's role override; only ECS
   * tasks of this account may assume it.
   */
  const targetRoles = plan.runnerTargets.map((t) =>
    make(aws.iam.Role, `Runner${pascal(t.target)}Role`, {
      name: runnerRoleName(ctx.scope, t.target),
      path: runnerRolePath(ctx.scope),
      description: `Lifeboat runner of target ${t.target}`,
      assumeRolePolicy: $jsonStringify({
        Version: "2012-10-17",
        Statement: [
          {
            Effect: "Allow",
            Principal: { Service: "ecs-tasks.amazonaws.com" },
            Action: "sts:AssumeRole",
            Condition: { StringEquals: { "aws:SourceAccount": ctx.account } },
          },
        ],
      }),
      // SST's permission shape is the provider's policy-document statement shape (actions, resources, conditions)
      inlinePolicies: [{ name: "runner", policy: aws.iam.getPolicyDocumentOutput({ statements: targetStatements(t) }, { parent: ctx.parent }).json }],
    }),
  );

  const task = make(sst.aws.Task, "Runner", {
    cluster,
    architecture: plan.aws.runner.architecture,
    cpu: plan.aws.runner.cpu,
    memory: plan.aws.runner.memory as `${number} GB`,
    storage: plan.aws.runner.storage as `${number} GB`,
    image: plan.aws.runner.image ?? ctx.code.image,
    // a public IP in the given subnets, without the security group open to the world that `public: true` adds
    ...(publicIp ? { publicIp: true } : {}),
    // names, never secrets: database passwords are read by the runner at start, from where the config says
    environment: {
      LIFEBOAT_BUCKET: bucket.name,
      LIFEBOAT_TOPIC_ARN: topic.arn,
      LIFEBOAT_STAGE: $app.stage,
      LIFEBOAT_CONFIG_KEY: configKey,
      LIFEBOAT_CONFIG_SHA256: configSha256,
    },
    logging: { retention: plan.aws.runner.logRetention },
    // the task definition's own role may do nothing: every launch passes its target's role (targetRoles)
    permissions: [],
    transform: {
      // SST always adds the ECS Exec channels (ssmmessages:*): nothing here uses ECS Exec
      taskRole: (args: aws.iam.RoleArgs) => {
        args.inlinePolicies = $output(args.inlinePolicies).apply((policies) =>
          (policies ?? []).map((p) => {
            const doc = JSON.parse(p.policy as string) as { Statement: Array<{ Action: string | string[] }> };
            doc.Statement = doc.Statement.filter((s) => ![s.Action].flat().some((a) => a.startsWith("ssmmessages:")));
            return { ...p, policy: JSON.stringify(doc) };
          }),
        );
      },
      // the task definition names no secrets (the runner reads them itself), so the execution role reads none: it
      // keeps only AWS's managed policy for pulling the image and writing logs
      executionRole: (args: aws.iam.RoleArgs) => void (args.inlinePolicies = []),
    },
    dev: false,
  });

  // Each database's security group lets the runner in on the database's port, and nothing else.
  const ingress = (name: string, securityGroupId: $util.Input<string>, from: $util.Input<string>, port: $util.Input<number>) =>
    make(aws.vpc.SecurityGroupIngressRule, name, {
      securityGroupId,
      referencedSecurityGroupId: from,
      ipProtocol: "tcp",
      fromPort: port,
      toPort: port,
      description: $interpolate`Lifeboat runner to PostgreSQL on ${port}`,
    });
  plan.databaseIngress.forEach((rule, i) =>
    runnerSecurityGroups.forEach((from, j) =>
      ingress(`DatabaseIngress${i + 1}${runnerSecurityGroups.length > 1 ? `From${j + 1}` : ""}`, rule.securityGroup, from, rule.port),
    ),
  );
  // The app's databases, once their security groups are known. sst.aws.Postgres and Aurora sit in the sst.aws.Vpc's
  // default group, which admits the whole VPC (the runner included) through rules SST manages inline: a rule added
  // beside inline rules would be removed by the next deploy, so those groups get none. Any other group (a database
  // given its own) lets the runner in on the database's port, and nothing else.
  for (const db of appDatabases) {
    // (the Vpc's securityGroups is an array of outputs inside an output: all() resolves them)
    $util.all([db.securityGroups, appVpc!.securityGroups.apply((g) => $util.all(g))]).apply(([groups, vpcGroups]) =>
      groups.filter((g) => !vpcGroups.includes(g)).forEach((g, i) => ingress(`${pascal(db.target)}DatabaseIngress${i + 1}`, g, ownSecurityGroup!.id, db.port)),
    );
  }

  /** The ARN of this deployment's target roles, up to the name (the launcher adds runnerRoleName). */
  const targetRolesArnPrefix = $interpolate`arn:${ctx.partition}:iam::${ctx.account}:role${runnerRolePath(ctx.scope)}`;

  /** What the launcher and the watcher need to start runner tasks, and to read the config (names and ids, no secrets). */
  const runnerEnvironment = {
    LIFEBOAT_CLUSTER: task.cluster,
    LIFEBOAT_TASK_DEFINITION: task.nodes.taskDefinition.arn,
    LIFEBOAT_CONTAINER: task.containers.apply((c) => c[0]!),
    LIFEBOAT_SUBNETS: $jsonStringify(task.subnets),
    LIFEBOAT_SECURITY_GROUPS: $jsonStringify(task.securityGroups),
    LIFEBOAT_ASSIGN_PUBLIC_IP: task.assignPublicIp.apply((v) => String(v)),
    LIFEBOAT_TOPIC_ARN: topic.arn,
    LIFEBOAT_STAGE: $app.stage,
    LIFEBOAT_ROLE_SCOPE: ctx.scope,
    LIFEBOAT_RUNNER_ROLES: targetRolesArnPrefix,
    LIFEBOAT_BUCKET: bucket.name,
    LIFEBOAT_CONFIG_KEY: configKey,
    LIFEBOAT_CONFIG_SHA256: configSha256,
  };

  /** The ARNs of this cluster's tasks. */
  const runnerTasks = $interpolate`arn:${ctx.partition}:ecs:${ctx.region}:${ctx.account}:task/${cluster.nodes.cluster.name}/*`;

  /**
   * Permissions to start runner tasks: RunTask on this task family in this cluster only, PassRole on its roles and
   * only to ECS tasks, tags on this cluster's tasks at launch, the topic for launch failures, the deployed config.
   */
  const startRunnerPermissions = [
    {
      actions: ["ecs:RunTask"],
      resources: [task.nodes.taskDefinition.arn.apply((arn) => arn.replace(/:\d+$/, ":*"))],
      // in this cluster only; no task larger than the config's largest (a RunTask that asks for more CPU or memory is
      // denied), and never with ECS Exec (a shell into the runner, with its role); the keys AWS documents for RunTask
      conditions: [
        { test: "ArnEquals", variable: "ecs:cluster", values: [task.cluster] },
        { test: "NumericLessThanEqualsIfExists", variable: "ecs:task-cpu", values: [String(plan.runTaskLimits.cpuUnits)] },
        { test: "NumericLessThanEqualsIfExists", variable: "ecs:task-memory", values: [String(plan.runTaskLimits.memoryMiB)] },
        { test: "BoolIfExists", variable: "ecs:enable-execute-command", values: ["false"] },
      ],
    },
    {
      actions: ["iam:PassRole"],
      // the task definition's two roles, and the targets' roles (by their path: this deployment's runner roles only)
      resources: [task.nodes.taskRole.arn, task.nodes.executionRole.arn, targetRolesArnPrefix.apply((p) => `${p}*`)],
      conditions: [{ test: "StringEquals", variable: "iam:PassedToService", values: ["ecs-tasks.amazonaws.com"] }],
    },
    {
      actions: ["ecs:TagResource"],
      resources: [runnerTasks],
      conditions: [{ test: "StringEquals", variable: "ecs:CreateAction", values: ["RunTask"] }],
    },
    { actions: ["sns:Publish"], resources: [topic.arn] },
    ...readConfigPermissions(ctx, bucket, configKey),
  ];

  return { cluster, task, targetRoles, runnerEnvironment, runnerTasks, startRunnerPermissions };
}
export type Runner = ReturnType<typeof runner>;

/** Reading the deployed config (and, with a KMS key on the bucket, decrypting it through S3: reading needs no more). */
export function readConfigPermissions(ctx: Context, bucket: sst.aws.Bucket, configKey: string, opts: { key?: boolean } = {}) {
  return [{ actions: ["s3:GetObject"], resources: [$interpolate`${bucket.arn}/${configKey}`] }, ...(opts.key === false ? [] : bucketKeyPermissions(ctx, ["kms:Decrypt"]))];
}
