import { ECSClient } from "@aws-sdk/client-ecs";
import { RDSClient } from "@aws-sdk/client-rds";
import { SNSClient } from "@aws-sdk/client-sns";
import { Logger } from "@aws-lambda-powertools/logger";
import { LAUNCH_DELIVERIES, parseLaunchEvent, reportedFailure, runIdFor, type BackupFailedEvent, type LifeboatConfig, type RunnerRunEnv } from "@lifeboat/core";
import { rdsEndpoint, runTaskInput, runnerSettingsFromEnv, runningRunnerTasks, snsPublisher, startRunnerTask, withMetrics, type LaunchRetry, type RunnerTaskSettings } from "@lifeboat/runner";
import { deployedConfig } from "./config.js";

/**
 * The launcher: EventBridge Scheduler (one schedule per target) sends each fire time to the launch queue, which
 * delivers it here a few at a time (infra/schedule.ts: capped concurrency, redelivery, dead-letter queue); people and
 * scripts may invoke it directly. It checks RDS targets, then starts one runner task per target. A launch that cannot
 * happen is reported as backup.failed: from the queue, on its last delivery, if the failure was one another try may
 * not meet.
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
  /** Launches from the queue to try again later (SQS redelivers them): not reported yet. */
  retried?: Array<{ target: string; runId: string; code: string; error: string }>;
  /** SQS partial batch response: the messages to deliver again. */
  batchItemFailures?: Array<{ itemIdentifier: string }>;
}

/**
 * Failures another delivery may not meet (ECS throttling or capacity after the in-call retries, an RDS lookup error):
 * from the queue, left there for a later delivery, and reported only on the last one (LAUNCH_DELIVERIES).
 */
const TRY_AGAIN = new Set(["launch_failed", "rds_lookup_failed"]);

interface SqsRecord {
  messageId: string;
  body: string;
  attributes?: { ApproximateReceiveCount?: string };
  eventSource?: string;
}
const isSqsEvent = (e: unknown): e is { Records: SqsRecord[] } =>
  Array.isArray((e as { Records?: unknown[] })?.Records) && (e as { Records: Array<{ eventSource?: string }> }).Records.every((r) => r.eventSource === "aws:sqs");

export function createLauncher(deps: LauncherDeps) {
  /** One target's launch; `final`: the last delivery (or a direct invocation), when a failure is reported. */
  async function launch(request: ReturnType<typeof parseLaunchEvent>, target: string, final: boolean, result: LaunchResult): Promise<void> {
    const t = deps.config.targets[target]!;
    const scheduledTime = request.kind === "schedule" ? request.scheduledTime : undefined;
    const verify = request.mode === "verify";
    const runId = runIdFor(verify ? `${target}\0verify` : target, scheduledTime);
    const trigger: RunnerRunEnv["LIFEBOAT_TRIGGER"] = request.kind === "schedule" ? "schedule" : "manual";
    const fail = async (code: string, message: string) => {
      if (!final && TRY_AGAIN.has(code)) {
        deps.logger.warn("launch failed; the queue delivers it again", { target, runId, code, error: message });
        (result.retried ??= []).push({ target, runId, code, error: message });
        return;
      }
      deps.logger.error("launch failed", { target, runId, code, error: message });
      result.failed.push({ target, runId, code, error: message });
      await deps.publish(reportedFailure({ target, runId, trigger, attempt: 1, code, kind: "transient", message }));
    };
    if (t.database.rds && !verify) {
      try {
        // only the instance's status matters here: the runner reads the credentials, the launcher never does
        await rdsEndpoint(t.database.rds, deps.rds);
      } catch (err) {
        return fail((err as { code?: string }).code ?? "rds_lookup_failed", (err as Error).message);
      }
    }
    try {
      // one run of a target at a time: a run still going means this one is skipped, and a person is told
      const going = await runningRunnerTasks(deps.ecs, deps.settings.cluster, deps.settings.container, target, verify ? "verify" : undefined, deps.launchRetry?.minDelayMs);
      const own = going.find((g) => g.runId === runId);
      if (own) {
        // a duplicate delivery of this very schedule: its task is already going
        deps.logger.info("runner task already started for this run", { target, runId, taskArn: own.arn });
        result.launched.push({ target, runId, taskArn: own.arn });
        return;
      }
      if (going.length) {
        return fail("previous_run_running", `the previous ${verify ? "drill" : "run"} of "${target}" is still going (${going.map((g) => g.arn).join(", ")}): this one was not started`);
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

  return async (event: unknown): Promise<LaunchResult> => {
    const result: LaunchResult = { launched: [], failed: [] };
    if (!isSqsEvent(event)) {
      // a direct invocation (a person, a script): every failure is reported at once
      const request = parseLaunchEvent(event, deps.config);
      for (const target of request.targets) await launch(request, target, true, result);
      return result;
    }
    // the launch queue (the schedules send to it): each message one launch request
    result.batchItemFailures = [];
    for (const record of event.Records) {
      const deliveries = Number(record.attributes?.ApproximateReceiveCount ?? "1");
      let request: ReturnType<typeof parseLaunchEvent>;
      try {
        request = parseLaunchEvent(JSON.parse(record.body), deps.config);
      } catch (err) {
        // nothing to launch from it: left to the dead-letter queue (alarmed), where a person sees it
        deps.logger.error("a launch message that cannot be read", { messageId: record.messageId, error: (err as Error).message });
        result.batchItemFailures.push({ itemIdentifier: record.messageId });
        continue;
      }
      const before = result.retried?.length ?? 0;
      for (const target of request.targets) await launch(request, target, deliveries >= LAUNCH_DELIVERIES, result);
      if ((result.retried?.length ?? 0) > before) result.batchItemFailures.push({ itemIdentifier: record.messageId });
    }
    return result;
  };
}

let launcher: ReturnType<typeof createLauncher> | undefined;
export const handler = async (event: unknown) => {
  launcher ??= createLauncher({
    config: await deployedConfig(),
    // the SDK's own retries too, adaptive: they slow down under throttling (the calls also back off in ecs.ts)
    ecs: new ECSClient({ maxAttempts: 5, retryMode: "adaptive" }),
    rds: new RDSClient({}),
    // its launch failures are CloudWatch metrics too (the stack's dashboard shows them)
    publish: withMetrics(snsPublisher(new SNSClient({}), process.env.LIFEBOAT_TOPIC_ARN!)),
    settings: runnerSettingsFromEnv(),
    logger: new Logger({ serviceName: "lifeboat-launcher" }),
  });
  return launcher(event);
};
