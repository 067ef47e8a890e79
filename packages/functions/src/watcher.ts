import { ECSClient } from "@aws-sdk/client-ecs";
import { SNSClient } from "@aws-sdk/client-sns";
import { Logger } from "@aws-lambda-powertools/logger";
import { EventBridgeSchema } from "@aws-lambda-powertools/parser/schemas/eventbridge";
import { z } from "zod";
import { reportedFailure, type BackupFailedEvent, type LifeboatConfig, type RunnerRunEnv } from "@lifeboat/core";
import { UNREPORTED, runTaskInput, runnerSettingsFromEnv, snsPublisher, startRunnerTask, withMetrics, type LaunchRetry, type RunnerTaskSettings } from "@lifeboat/runner";
import { deployedConfig } from "./config.js";

/**
 * The watcher: ECS "Task State Change" events for STOPPED runner tasks. The runner reports its own outcome and exits
 * 0 (succeeded) or 1 (failed). Any other ending (killed, out of memory, image pull error, never started, exit 2 for a
 * configuration error, exit 3 when its own report could not be published) could not report: the watcher reports it as backup.failed with ECS's reason, and relaunches the
 * run while the target has attempts left (not for a configuration error, which another attempt cannot fix).
 */
const taskStateChange = EventBridgeSchema.extend({
  "detail-type": z.literal("ECS Task State Change"),
  detail: z.object({
    taskArn: z.string(),
    lastStatus: z.string(),
    stopCode: z.string().optional(),
    stoppedReason: z.string().optional(),
    containers: z.array(z.object({ name: z.string(), exitCode: z.number().optional(), reason: z.string().optional(), lastStatus: z.string().optional() })).default([]),
    overrides: z
      .object({ containerOverrides: z.array(z.object({ name: z.string(), environment: z.array(z.object({ name: z.string(), value: z.string() })).optional() })).default([]) })
      .optional(),
  }),
});

export interface WatcherDeps {
  config: LifeboatConfig;
  ecs: ECSClient;
  publish: (e: BackupFailedEvent) => Promise<void>;
  settings: RunnerTaskSettings;
  logger: Logger;
  launchRetry?: LaunchRetry;
}

export type WatchResult = { action: "ignored"; why: string } | { action: "reported"; target: string; relaunched?: string };

export function createWatcher(deps: WatcherDeps) {
  return async (raw: unknown): Promise<WatchResult> => {
    const { detail } = taskStateChange.parse(raw);
    if (detail.lastStatus !== "STOPPED") return { action: "ignored", why: `status ${detail.lastStatus}` };
    const env = Object.fromEntries(
      (detail.overrides?.containerOverrides.find((c) => c.name === deps.settings.container)?.environment ?? []).map((e) => [e.name, e.value]),
    ) as Partial<RunnerRunEnv>;
    const target = env.LIFEBOAT_TARGET;
    if (!target) return { action: "ignored", why: "not a Lifeboat run" };
    const container = detail.containers.find((c) => c.name === deps.settings.container);
    const exitCode = container?.exitCode;
    if (exitCode === 0 || exitCode === 1) return { action: "ignored", why: `the runner reported its own result (exit ${exitCode})` };

    const attempt = Number(env.LIFEBOAT_ATTEMPT ?? "1");
    const runId = env.LIFEBOAT_RUN_ID ?? "unknown";
    const trigger = env.LIFEBOAT_TRIGGER ?? "schedule";
    const t = deps.config.targets[target];
    const why = [container?.reason, detail.stoppedReason, detail.stopCode].filter(Boolean).join("; ") || "no reason given";
    const code =
      exitCode === 2 ? "runner_config_error" : exitCode === UNREPORTED ? "runner_unreported" : exitCode === undefined ? "task_not_started" : exitCode === 137 ? "task_killed" : "task_stopped";
    let relaunched: string | undefined;
    // a configuration error is not fixed by another attempt; a run that ended but could not publish its result is
    // not repeated (its outcome is in the bucket: lifeboat status)
    const canRetry = t !== undefined && exitCode !== 2 && exitCode !== UNREPORTED && attempt < t.retries.attempts;
    let relaunchError = "";
    if (canRetry) {
      try {
        relaunched = await startRunnerTask(
          deps.ecs,
          runTaskInput(deps.settings, {
            LIFEBOAT_TARGET: target,
            LIFEBOAT_RUN_ID: runId,
            LIFEBOAT_TRIGGER: "retry",
            LIFEBOAT_ATTEMPT: String(attempt + 1),
            ...(env.LIFEBOAT_MODE === "verify" ? { LIFEBOAT_MODE: "verify" as const } : {}),
            clientTokenSeed: env.LIFEBOAT_MODE === "verify" ? `verify\0${runId}` : runId,
            cpu: t.aws?.cpu,
            memory: t.aws?.memory,
          }),
          deps.launchRetry,
        );
      } catch (err) {
        relaunchError = ` Relaunch failed: ${(err as Error).message}`;
      }
    }
    const message =
      (exitCode === UNREPORTED
        ? `the runner finished but could not publish its result (exit code ${UNREPORTED}); \`lifeboat status ${target}\` shows how the run ended.`
        : `the runner task stopped without reporting (${exitCode === undefined ? "no exit code" : `exit code ${exitCode}`}): ${why}.`) +
      (relaunched ? ` Relaunched as attempt ${attempt + 1}: ${relaunched}.` : canRetry ? relaunchError : " No attempts left.");
    await deps.publish(reportedFailure({ target, runId, trigger, attempt, code, kind: exitCode === 2 ? "permanent" : "transient", message }));
    deps.logger.warn("runner task stopped without reporting", { target, runId, attempt, exitCode, why, taskArn: detail.taskArn, relaunched });
    return relaunched ? { action: "reported", target, relaunched } : { action: "reported", target };
  };
}

let watcher: ReturnType<typeof createWatcher> | undefined;
export const handler = async (event: unknown) => {
  watcher ??= createWatcher({
    config: await deployedConfig(),
    ecs: new ECSClient({ maxAttempts: 5, retryMode: "adaptive" }),
    // each event it publishes is a CloudWatch metric too (embedded metric format: the stack's dashboard shows them)
    publish: withMetrics(snsPublisher(new SNSClient({}), process.env.LIFEBOAT_TOPIC_ARN!)),
    settings: runnerSettingsFromEnv(),
    logger: new Logger({ serviceName: "lifeboat-watcher" }),
  });
  return watcher(event);
};
