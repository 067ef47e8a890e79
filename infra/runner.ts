// The runner: one Fargate task definition (packages/runner/Dockerfile) in a new VPC, or in yours.
import { parameterArn, plan } from "./config";
import { topic } from "./notify";
import { bucket } from "./storage";

const existing = plan.aws.vpc;
const vpc = existing
  ? {
      id: existing.id,
      containerSubnets: existing.containerSubnets,
      securityGroups: existing.securityGroups,
      loadBalancerSubnets: existing.containerSubnets,
      ...(existing.publicIp ? { publicSubnets: existing.containerSubnets } : {}),
    }
  : new sst.aws.Vpc("Vpc");

export const cluster = new sst.aws.Cluster("Cluster", { vpc });

const objects = plan.prefix ? $interpolate`${bucket.arn}/${plan.prefix}/*` : $interpolate`${bucket.arn}/*`;
const manifests = plan.prefix ? $interpolate`${bucket.arn}/${plan.prefix}/*.manifest.json` : $interpolate`${bucket.arn}/*.manifest.json`;

export const runner = new sst.aws.Task("Runner", {
  cluster,
  architecture: plan.aws.runner.architecture,
  cpu: plan.aws.runner.cpu,
  memory: plan.aws.runner.memory as `${number} GB`,
  storage: plan.aws.runner.storage as `${number} GB`,
  image: { context: ".", dockerfile: "packages/runner/Dockerfile" },
  ...(existing?.publicIp ? { public: true } : {}),
  // names, never secrets: database passwords are read from SSM by the runner at start
  environment: { LIFEBOAT_BUCKET: bucket.name, LIFEBOAT_TOPIC_ARN: topic.arn },
  logging: { retention: plan.aws.runner.logRetention },
  // least privilege: write and abort uploads under the prefix, read manifests (and dumps, when a target schedules
  // restore drills), list the prefix; no delete
  permissions: [
    { actions: ["s3:PutObject", "s3:AbortMultipartUpload"], resources: [objects] },
    { actions: ["s3:GetObject"], resources: [plan.drills ? objects : manifests] },
    {
      actions: ["s3:ListBucket", "s3:ListBucketMultipartUploads"],
      resources: [bucket.arn],
      ...(plan.prefix ? { conditions: [{ test: "StringLike", variable: "s3:prefix", values: [`${plan.prefix}/*`] }] } : {}),
    },
    ...(plan.runnerParameters.length ? [{ actions: ["ssm:GetParameter"], resources: plan.runnerParameters.map(parameterArn) }] : []),
    { actions: ["sns:Publish"], resources: [topic.arn] },
    ...(plan.aws.bucket.kmsKeyArn ? [{ actions: ["kms:GenerateDataKey", "kms:Decrypt"], resources: [plan.aws.bucket.kmsKeyArn] }] : []),
  ],
  dev: false,
});

/** What the launcher and the watcher need to start runner tasks (names and ids, no secrets). */
export const runnerEnvironment = {
  LIFEBOAT_CLUSTER: runner.cluster,
  LIFEBOAT_TASK_DEFINITION: runner.nodes.taskDefinition.arn,
  LIFEBOAT_CONTAINER: runner.containers.apply((c) => c[0]!),
  LIFEBOAT_SUBNETS: $jsonStringify(runner.subnets),
  LIFEBOAT_SECURITY_GROUPS: $jsonStringify(runner.securityGroups),
  LIFEBOAT_ASSIGN_PUBLIC_IP: runner.assignPublicIp.apply((v) => String(v)),
  LIFEBOAT_TOPIC_ARN: topic.arn,
};

/** Permissions to start runner tasks: RunTask on this task family, PassRole on its two roles, tags at launch. */
export const startRunnerPermissions = [
  { actions: ["ecs:RunTask"], resources: [runner.nodes.taskDefinition.arn.apply((arn) => arn.replace(/:\d+$/, ":*"))] },
  { actions: ["iam:PassRole"], resources: [runner.nodes.taskRole.arn, runner.nodes.executionRole.arn] },
  { actions: ["ecs:TagResource"], resources: ["*"], conditions: [{ test: "StringEquals", variable: "ecs:CreateAction", values: ["RunTask"] }] },
  { actions: ["sns:Publish"], resources: [topic.arn] },
];
