// The runner: one Fargate task definition (packages/runner/Dockerfile) in a new VPC, or in the databases' VPC.
import { LAST_RUN_FILE, LATEST_FILE, pascal, runnerRoleName, runnerRolePath } from "@lifeboat/core";
import { account, bucketKeyPermissions, parameterArn, partition, plan, rdsInstanceArn, region } from "./config";
import { topic } from "./notify";
import { bucket } from "./storage";

const existing = plan.aws.vpc;

// The runner only connects out (to its databases, S3 and AWS APIs): no security group of its lets anything in.
const ownSecurityGroup =
  existing && !existing.securityGroups
    ? new aws.ec2.SecurityGroup("RunnerSecurityGroup", {
        vpcId: existing.id,
        description: "Lifeboat runner: no ingress; egress to its databases, S3 and AWS APIs",
        egress: [{ protocol: "-1", fromPort: 0, toPort: 0, cidrBlocks: ["0.0.0.0/0"], ipv6CidrBlocks: ["::/0"] }],
      })
    : undefined;
const runnerSecurityGroups = existing?.securityGroups ?? (ownSecurityGroup ? [ownSecurityGroup.id] : []);
const vpc = existing
  ? {
      id: existing.id,
      containerSubnets: existing.containerSubnets,
      securityGroups: runnerSecurityGroups,
      loadBalancerSubnets: existing.containerSubnets,
    }
  : new sst.aws.Vpc("Vpc", { transform: { securityGroup: (args) => void (args.ingress = []) } });

// In Lifeboat's own VPC the runner has public IPs in public subnets (S3, ECR, Logs, SSM, SNS over the internet
// gateway); a gateway endpoint (free) keeps its S3 traffic, the bulk of it, inside AWS's network.
if (!existing) {
  const own = vpc as sst.aws.Vpc;
  new aws.ec2.VpcEndpoint("S3GatewayEndpoint", {
    vpcId: own.id,
    serviceName: $interpolate`com.amazonaws.${region}.s3`,
    vpcEndpointType: "Gateway",
    routeTableIds: $util.all([own.nodes.publicRouteTables, own.nodes.privateRouteTables]).apply(([pub, priv]) => $util.all([...pub, ...priv].map((t) => t.id))),
  });
}

export const cluster = new sst.aws.Cluster("Cluster", { vpc });

/** A dump's keys (naming.ts: .dump and .part-NNN.dump, .sql, .sql.gz), never a manifest or a drill result. */
const dumpPatterns = ["*.dump", "*.sql", "*.sql.gz"];

/**
 * What one target's runner may do, and nothing of another target: write and abort uploads under its own prefix; read
 * its manifests, run record and newest-backup pointer (and its dumps, if it schedules restore drills); list its prefix,
 * and the bucket's pending uploads (AWS has no prefix condition for that listing: keys and upload ids, no data);
 * delete its own dumps (a failed run removes the dump whose manifest could not be written), and anything under its
 * prefix only if the runner prunes it; read its own secrets (and the heartbeat's URL); describe its RDS instance;
 * publish to the topic; use the bucket's KMS key through S3. A delete in this versioned bucket leaves the previous
 * version, which no Lifeboat role may delete.
 */
function targetStatements(t: (typeof plan.runnerTargets)[number]) {
  const mine = (pattern: string) => $interpolate`${bucket.arn}/${t.prefix}${pattern}`;
  return [
    { actions: ["s3:PutObject", "s3:AbortMultipartUpload"], resources: [mine("*")] },
    { actions: ["s3:GetObject"], resources: t.drills ? [mine("*")] : [mine("*.manifest.json"), mine(LAST_RUN_FILE), mine(LATEST_FILE)] },
    { actions: ["s3:ListBucket"], resources: [bucket.arn], conditions: [{ test: "StringLike", variable: "s3:prefix", values: [`${t.prefix}*`] }] },
    { actions: ["s3:ListBucketMultipartUploads"], resources: [bucket.arn] },
    { actions: ["s3:DeleteObject"], resources: t.pruned ? [mine("*")] : dumpPatterns.map(mine) },
    ...(t.parameters.length ? [{ actions: ["ssm:GetParameter"], resources: t.parameters.map(parameterArn) }] : []),
    ...(t.rds ? [{ actions: ["rds:DescribeDBInstances"], resources: [rdsInstanceArn(t.rds)] }] : []),
    { actions: ["sns:Publish"], resources: [topic.arn] },
    ...bucketKeyPermissions(),
  ];
}

/**
 * A role per target (chosen over session tags: ECS task credentials carry no session tags, so ABAC could not tell one
 * target's task from another's). The launcher and the watcher pass it as the task's role override; only ECS tasks of
 * this account may assume it.
 */
export const targetRoles = plan.runnerTargets.map(
  (t) =>
    new aws.iam.Role(`Runner${pascal(t.target)}Role`, {
      name: runnerRoleName($app.stage, t.target),
      path: runnerRolePath($app.stage),
      description: `Lifeboat runner of target ${t.target}`,
      assumeRolePolicy: $jsonStringify({
        Version: "2012-10-17",
        Statement: [{ Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole", Condition: { StringEquals: { "aws:SourceAccount": account } } }],
      }),
      // SST's permission shape is the provider's policy-document statement shape (actions, resources, conditions)
      inlinePolicies: [{ name: "runner", policy: aws.iam.getPolicyDocumentOutput({ statements: targetStatements(t) }).json }],
    }),
);

export const runner = new sst.aws.Task("Runner", {
  cluster,
  architecture: plan.aws.runner.architecture,
  cpu: plan.aws.runner.cpu,
  memory: plan.aws.runner.memory as `${number} GB`,
  storage: plan.aws.runner.storage as `${number} GB`,
  image: { context: ".", dockerfile: "packages/runner/Dockerfile" },
  // a public IP in the given subnets, without the security group open to the world that `public: true` adds
  ...(existing?.publicIp ? { publicIp: true } : {}),
  // names, never secrets: database passwords are read from SSM by the runner at start
  environment: { LIFEBOAT_BUCKET: bucket.name, LIFEBOAT_TOPIC_ARN: topic.arn, LIFEBOAT_STAGE: $app.stage },
  logging: { retention: plan.aws.runner.logRetention },
  // the task definition's own role may do nothing: every launch passes its target's role (targetRoles)
  permissions: [],
  transform: {
    // SST always adds the ECS Exec channels (ssmmessages:*): nothing here uses ECS Exec
    taskRole: (args) => {
      args.inlinePolicies = $output(args.inlinePolicies).apply((policies) =>
        (policies ?? []).map((p) => {
          const doc = JSON.parse(p.policy as string) as { Statement: Array<{ Action: string | string[] }> };
          doc.Statement = doc.Statement.filter((s) => ![s.Action].flat().some((a) => a.startsWith("ssmmessages:")));
          return { ...p, policy: JSON.stringify(doc) };
        }),
      );
    },
    // the task definition names no secrets (the runner reads them itself), so the execution role reads none: it keeps
    // only AWS's managed policy for pulling the image and writing logs
    executionRole: (args) => void (args.inlinePolicies = []),
  },
  dev: false,
});

// Each database's security group lets the runner in on the database's port, and nothing else.
plan.databaseIngress.forEach((rule, i) =>
  runnerSecurityGroups.forEach((from, j) => {
    new aws.vpc.SecurityGroupIngressRule(`DatabaseIngress${i + 1}${runnerSecurityGroups.length > 1 ? `From${j + 1}` : ""}`, {
      securityGroupId: rule.securityGroup,
      referencedSecurityGroupId: from,
      ipProtocol: "tcp",
      fromPort: rule.port,
      toPort: rule.port,
      description: `Lifeboat runner to PostgreSQL on ${rule.port}`,
    });
  }),
);

/** The ARN of this stage's target roles, up to the name (the launcher adds runnerRoleName). */
const targetRolesArnPrefix = $interpolate`arn:${partition}:iam::${account}:role${runnerRolePath($app.stage)}`;

/** What the launcher and the watcher need to start runner tasks (names and ids, no secrets). */
export const runnerEnvironment = {
  LIFEBOAT_CLUSTER: runner.cluster,
  LIFEBOAT_TASK_DEFINITION: runner.nodes.taskDefinition.arn,
  LIFEBOAT_CONTAINER: runner.containers.apply((c) => c[0]!),
  LIFEBOAT_SUBNETS: $jsonStringify(runner.subnets),
  LIFEBOAT_SECURITY_GROUPS: $jsonStringify(runner.securityGroups),
  LIFEBOAT_ASSIGN_PUBLIC_IP: runner.assignPublicIp.apply((v) => String(v)),
  LIFEBOAT_TOPIC_ARN: topic.arn,
  LIFEBOAT_STAGE: $app.stage,
  LIFEBOAT_RUNNER_ROLES: targetRolesArnPrefix,
};

/** The ARNs of this cluster's tasks. */
export const runnerTasks = $interpolate`arn:${partition}:ecs:${region}:${account}:task/${cluster.nodes.cluster.name}/*`;

/**
 * Permissions to start runner tasks: RunTask on this task family in this cluster only, PassRole on its two roles
 * and only to ECS tasks, tags on this cluster's tasks at launch, and the topic for launch failures.
 */
export const startRunnerPermissions = [
  {
    actions: ["ecs:RunTask"],
    resources: [runner.nodes.taskDefinition.arn.apply((arn) => arn.replace(/:\d+$/, ":*"))],
    // in this cluster only; no task larger than the config's largest (a RunTask that asks for more CPU or memory is
    // denied), and never with ECS Exec (a shell into the runner, with its role); the keys AWS documents for RunTask
    conditions: [
      { test: "ArnEquals", variable: "ecs:cluster", values: [runner.cluster] },
      { test: "NumericLessThanEqualsIfExists", variable: "ecs:task-cpu", values: [String(plan.runTaskLimits.cpuUnits)] },
      { test: "NumericLessThanEqualsIfExists", variable: "ecs:task-memory", values: [String(plan.runTaskLimits.memoryMiB)] },
      { test: "BoolIfExists", variable: "ecs:enable-execute-command", values: ["false"] },
    ],
  },
  {
    actions: ["iam:PassRole"],
    // the task definition's two roles, and the targets' roles (by their path: this stage's runner roles only)
    resources: [runner.nodes.taskRole.arn, runner.nodes.executionRole.arn, targetRolesArnPrefix.apply((p) => `${p}*`)],
    conditions: [{ test: "StringEquals", variable: "iam:PassedToService", values: ["ecs-tasks.amazonaws.com"] }],
  },
  {
    actions: ["ecs:TagResource"],
    resources: [runnerTasks],
    conditions: [{ test: "StringEquals", variable: "ecs:CreateAction", values: ["RunTask"] }],
  },
  { actions: ["sns:Publish"], resources: [topic.arn] },
];
