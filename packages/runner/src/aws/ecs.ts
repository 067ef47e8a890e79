import { RunTaskCommand, type ECSClient, type RunTaskCommandInput } from "@aws-sdk/client-ecs";
import { launchClientToken, type RunnerRunEnv } from "@lifeboat/core";

/** Where and how runner tasks start: the launcher and the watcher get it from their environment (set by infra). */
export interface RunnerTaskSettings {
  cluster: string;
  taskDefinition: string;
  container: string;
  subnets: string[];
  securityGroups: string[];
  assignPublicIp: boolean;
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
  };
}

const CPU_UNITS: Record<string, number> = { "0.25 vCPU": 256, "0.5 vCPU": 512, "1 vCPU": 1024, "2 vCPU": 2048, "4 vCPU": 4096, "8 vCPU": 8192, "16 vCPU": 16384 };

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
      ...(run.cpu ? { cpu: String(CPU_UNITS[run.cpu]) } : {}),
      ...(run.memory ? { memory: String(Math.round(Number(run.memory.replace(" GB", "")) * 1024)) } : {}),
      containerOverrides: [{ name: s.container, environment: env }],
    },
    startedBy: `lifeboat-${run.LIFEBOAT_MODE ? `${run.LIFEBOAT_MODE}-` : ""}${run.LIFEBOAT_TRIGGER}`.slice(0, 36),
    tags: [
      { key: "lifeboat:target", value: run.LIFEBOAT_TARGET },
      { key: "lifeboat:run-id", value: run.LIFEBOAT_RUN_ID },
      { key: "lifeboat:attempt", value: run.LIFEBOAT_ATTEMPT },
    ],
    propagateTags: "TASK_DEFINITION",
  };
}

/** Starts a runner task; resolves to its ARN, or throws with ECS's reason. */
export async function startRunnerTask(ecs: ECSClient, input: RunTaskCommandInput): Promise<string> {
  const res = await ecs.send(new RunTaskCommand(input));
  const arn = res.tasks?.[0]?.taskArn;
  if (!arn) {
    const f = res.failures?.[0];
    throw new Error(`ECS did not start the task: ${f ? `${f.reason ?? "unknown"}${f.detail ? ` (${f.detail})` : ""}` : "no task and no failure reported"}`);
  }
  return arn;
}
