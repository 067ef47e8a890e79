import { createHash } from "node:crypto";
import { DescribeTasksCommand, ListTasksCommand, RunTaskCommand, type ECSClient, type RunTaskCommandInput } from "@aws-sdk/client-ecs";
import pRetry from "p-retry";
import { fargateCpuUnits, fargateMemoryMiB, launchClientToken, runnerRoleName, type RunnerRunEnv } from "@lifeboat/core";

/** Where and how runner tasks start: the launcher and the watcher get it from their environment (set by infra). */
export interface RunnerTaskSettings {
  cluster: string;
  taskDefinition: string;
  container: string;
  subnets: string[];
  securityGroups: string[];
  assignPublicIp: boolean;
  /** Each target's runner role (infra/runner.ts): the ARN up to the name, and the stage its names are made for. */
  targetRoles?: { arnPrefix: string; scope: string } | undefined;
}

export function runnerSettingsFromEnv(env: NodeJS.ProcessEnv = process.env): RunnerTaskSettings {
  const need = (k: string) => {
    const v = env[k];
    if (!v) throw new Error(`${k} is not set (it comes from the deployment)`);
    return v;
  };
  return {
    cluster: need("LIFEBOAT_CLUSTER"),
    taskDefinition: need("LIFEBOAT_TASK_DEFINITION"),
    container: need("LIFEBOAT_CONTAINER"),
    subnets: JSON.parse(need("LIFEBOAT_SUBNETS")) as string[],
    securityGroups: JSON.parse(need("LIFEBOAT_SECURITY_GROUPS")) as string[],
    assignPublicIp: env.LIFEBOAT_ASSIGN_PUBLIC_IP === "true",
    ...(env.LIFEBOAT_RUNNER_ROLES && env.LIFEBOAT_STAGE ? { targetRoles: { arnPrefix: env.LIFEBOAT_RUNNER_ROLES, scope: env.LIFEBOAT_ROLE_SCOPE ?? env.LIFEBOAT_STAGE } } : {}),
  };
}

/**
 * ECS's startedBy for a target's runs (at most 36 characters): how the launcher finds a run of that target still
 * going (ListTasks filters on it). Backups and drills are told apart.
 */
export function runnerStartedBy(target: string, mode?: "verify"): string {
  const head = mode === "verify" ? "lbv-" : "lb-";
  return head.length + target.length <= 36 ? head + target : head + createHash("sha256").update(target).digest("hex").slice(0, 36 - head.length);
}

/**
 * An ECS read (ListTasks, DescribeTasks) with backoff: ECS throttles its API per account and region (a burst, then a
 * sustained rate), and a crowded minute of launches meets it. Throttling and server errors are tried again, up to
 * five times, with jittered exponential delays; anything else fails at once.
 */
export function withEcsBackoff<T>(call: () => Promise<T>, minDelayMs = 200): Promise<T> {
  return pRetry(call, { retries: 4, minTimeout: minDelayMs, factor: 2, randomize: true, shouldRetry: ({ error }) => RETRYABLE_ERROR.has((error as Error).name) });
}

/** Tasks of a target's runs that are still going (pending or running), with their run ids. */
export async function runningRunnerTasks(ecs: ECSClient, cluster: string, container: string, target: string, mode?: "verify", minDelayMs?: number): Promise<Array<{ arn: string; runId: string | undefined }>> {
  const list = await withEcsBackoff(() => ecs.send(new ListTasksCommand({ cluster, startedBy: runnerStartedBy(target, mode), desiredStatus: "RUNNING" })), minDelayMs);
  const arns = list.taskArns ?? [];
  if (!arns.length) return [];
  const described = await withEcsBackoff(() => ecs.send(new DescribeTasksCommand({ cluster, tasks: arns })), minDelayMs);
  return (described.tasks ?? []).map((t) => ({
    arn: t.taskArn ?? "",
    runId: t.overrides?.containerOverrides?.find((c) => c.name === container)?.environment?.find((e) => e.name === "LIFEBOAT_RUN_ID")?.value,
  }));
}

/**
 * The RunTask request for one run: target, run id, trigger and attempt as container environment overrides, the
 * target's size as task overrides, tags for the console, and an idempotency token.
 */
export function runTaskInput(
  s: RunnerTaskSettings,
  run: RunnerRunEnv & { clientTokenSeed: string; cpu?: string | undefined; memory?: string | undefined },
): RunTaskCommandInput {
  const env = (["LIFEBOAT_TARGET", "LIFEBOAT_RUN_ID", "LIFEBOAT_TRIGGER", "LIFEBOAT_ATTEMPT", "LIFEBOAT_MODE"] as const)
    .filter((name) => run[name] !== undefined)
    .map((name) => ({ name, value: run[name]! }));
  return {
    cluster: s.cluster,
    taskDefinition: s.taskDefinition,
    launchType: "FARGATE",
    count: 1,
    clientToken: launchClientToken(run.LIFEBOAT_TARGET, run.clientTokenSeed, Number(run.LIFEBOAT_ATTEMPT)),
    networkConfiguration: {
      awsvpcConfiguration: { subnets: s.subnets, securityGroups: s.securityGroups, assignPublicIp: s.assignPublicIp ? "ENABLED" : "DISABLED" },
    },
    overrides: {
      // the target's own role: its keys, its secrets, nothing of another target's
      ...(s.targetRoles ? { taskRoleArn: s.targetRoles.arnPrefix + runnerRoleName(s.targetRoles.scope, run.LIFEBOAT_TARGET) } : {}),
      ...(run.cpu ? { cpu: String(fargateCpuUnits(run.cpu)) } : {}),
      ...(run.memory ? { memory: String(fargateMemoryMiB(run.memory)) } : {}),
      containerOverrides: [{ name: s.container, environment: env }],
    },
    startedBy: runnerStartedBy(run.LIFEBOAT_TARGET, run.LIFEBOAT_MODE),
    tags: [
      { key: "lifeboat:target", value: run.LIFEBOAT_TARGET },
      { key: "lifeboat:run-id", value: run.LIFEBOAT_RUN_ID },
      { key: "lifeboat:attempt", value: run.LIFEBOAT_ATTEMPT },
    ],
    propagateTags: "TASK_DEFINITION",
  };
}

/** How RunTask is retried when ECS says it cannot start a task now (capacity, throttling, an ECS hiccup). */
export interface LaunchRetry {
  attempts: number;
  minDelayMs: number;
}
export const LAUNCH_RETRY: LaunchRetry = { attempts: 4, minDelayMs: 2000 };

/** RunTask failures that another try may not meet: no capacity now, throttling, ECS itself. */
const RETRYABLE_REASON = /capacity|RESOURCE:|throttl|rate exceeded|AGENT|timeout|ServiceUnavailable|InternalError/i;
const RETRYABLE_ERROR = new Set(["ThrottlingException", "ServerException", "ServiceUnavailableException", "LimitExceededException", "TimeoutError"]);

/**
 * Starts a runner task; resolves to its ARN, or throws with ECS's reason. Capacity and throttling failures are
 * retried with exponential backoff and jitter (p-retry) before they are reported; the idempotency token makes a
 * retry of a RunTask that did start a task return that task.
 */
export async function startRunnerTask(ecs: ECSClient, input: RunTaskCommandInput, retry: LaunchRetry = LAUNCH_RETRY): Promise<string> {
  return pRetry(
    async () => {
      const res = await ecs.send(new RunTaskCommand(input));
      const arn = res.tasks?.[0]?.taskArn;
      if (!arn) {
        const f = res.failures?.[0];
        const reason = f ? `${f.reason ?? "unknown"}${f.detail ? ` (${f.detail})` : ""}` : "no task and no failure reported";
        throw Object.assign(new Error(`ECS did not start the task: ${reason}`), { retryable: RETRYABLE_REASON.test(reason) });
      }
      return arn;
    },
    {
      retries: retry.attempts - 1,
      minTimeout: retry.minDelayMs,
      factor: 2,
      randomize: true,
      shouldRetry: ({ error }) => (error as { retryable?: boolean }).retryable === true || RETRYABLE_ERROR.has((error as Error).name),
    },
  );
}
