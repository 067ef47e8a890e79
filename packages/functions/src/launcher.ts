import { ECSClient } from "@aws-sdk/client-ecs";
import { RDSClient } from "@aws-sdk/client-rds";
import { SNSClient } from "@aws-sdk/client-sns";
import { Logger } from "@aws-lambda-powertools/logger";
import { parseLaunchEvent, reportedFailure, runIdFor, type BackupFailedEvent, type LifeboatConfig, type RunnerRunEnv } from "@lifeboat/core";
import { rdsEndpoint, runTaskInput, runnerSettingsFromEnv, runningRunnerTasks, snsPublisher, startRunnerTask, type LaunchRetry, type RunnerTaskSettings } from "@lifeboat/runner";
import { bundledConfig } from "./config.js";

/**
 * The launcher: EventBridge Scheduler (one schedule per target) and manual invocations call it; it checks RDS
 * targets, then starts one runner task per target. A launch that cannot happen is reported as backup.failed.
 */
export interface LauncherDeps {
  config: LifeboatConfig;
  ecs: ECSClient;
  rds: RDSClient;
  publish: (e: BackupFailedEvent) => Promise<void>;
  settings: RunnerTaskSettings;
  logger: Logger;
  launchRetry?: LaunchRetry;
}

export interface LaunchResult {
  launched: Array<{ target: string; runId: string; taskArn: string }>;
  failed: Array<{ target: string; runId: string; code: string; error: string }>;
}

export function createLauncher(deps: LauncherDeps) {
  return async (event: unknown): Promise<LaunchResult> => {
    const request = parseLaunchEvent(event, deps.config);
    const result: LaunchResult = { launched: [], failed: [] };
    for (const target of request.targets) {
      const t = deps.config.targets[target]!;
      const scheduledTime = request.kind === "schedule" ? request.scheduledTime : undefined;
      const verify = request.mode === "verify";
      const runId = runIdFor(verify ? `${target}\0verify` : target, scheduledTime);
      const trigger: RunnerRunEnv["LIFEBOAT_TRIGGER"] = request.kind === "schedule" ? "schedule" : "manual";
      const fail = async (code: string, message: string) => {
        deps.logger.error("launch failed", { target, runId, code, error: message });
        result.failed.push({ target, runId, code, error: message });
        await deps.publish(reportedFailure({ target, runId, trigger, attempt: 1, code, kind: "transient", message }));
      };
      if (t.database.rds && !verify) {
        try {
          // only the instance's status matters here: the runner reads the credentials, the launcher never does
          await rdsEndpoint(t.database.rds, deps.rds);
        } catch (err) {
          await fail((err as { code?: string }).code ?? "rds_lookup_failed", (err as Error).message);
          continue;
        }
      }
      try {
        // one run of a target at a time: a run still going means this one is skipped, and a person is told
        const going = await runningRunnerTasks(deps.ecs, deps.settings.cluster, deps.settings.container, target, verify ? "verify" : undefined);
        const own = going.find((g) => g.runId === runId);
        if (own) {
          // a duplicate delivery of this very schedule: its task is already going
          deps.logger.info("runner task already started for this run", { target, runId, taskArn: own.arn });
          result.launched.push({ target, runId, taskArn: own.arn });
          continue;
        }
        if (going.length) {
          await fail("previous_run_running", `the previous ${verify ? "drill" : "run"} of "${target}" is still going (${going.map((g) => g.arn).join(", ")}): this one was not started`);
          continue;
        }
        const input = runTaskInput(deps.settings, {
          LIFEBOAT_TARGET: target,
          LIFEBOAT_RUN_ID: runId,
          LIFEBOAT_TRIGGER: trigger,
          LIFEBOAT_ATTEMPT: "1",
          ...(verify ? { LIFEBOAT_MODE: "verify" as const } : {}),
          clientTokenSeed: verify ? `verify\0${scheduledTime ?? runId}` : (scheduledTime ?? runId),
          cpu: t.aws?.cpu,
          memory: t.aws?.memory,
        });
        const taskArn = await startRunnerTask(deps.ecs, input, deps.launchRetry);
        deps.logger.info("runner task started", { target, runId, taskArn, trigger, mode: request.mode, ...(request.kind === "manual" && request.reason ? { reason: request.reason } : {}) });
        result.launched.push({ target, runId, taskArn });
      } catch (err) {
        await fail("launch_failed", `could not start the runner task: ${(err as Error).message}`);
      }
    }
    return result;
  };
}

let launcher: ReturnType<typeof createLauncher> | undefined;
export const handler = async (event: unknown) => {
  launcher ??= createLauncher({
    config: bundledConfig(),
    ecs: new ECSClient({}),
    rds: new RDSClient({}),
    publish: snsPublisher(new SNSClient({}), process.env.LIFEBOAT_TOPIC_ARN!),
    settings: runnerSettingsFromEnv(),
    logger: new Logger({ serviceName: "lifeboat-launcher" }),
  });
  return launcher(event);
};
