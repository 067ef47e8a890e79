import { SNSClient } from "@aws-sdk/client-sns";
import { Logger } from "@aws-lambda-powertools/logger";
import type { BackupMissedEvent, LifeboatConfig, ObjectStore } from "@lifeboat/core";
import { S3Store, checkFreshness, emitBackupAge, snsPublisher, withMetrics } from "@lifeboat/runner";
import { deployedConfig } from "./config.js";

/**
 * The freshness check, on its own schedule (every 15 minutes): every scheduled target's newest manifest against its
 * schedule; each fire time that produced no backup is published as backup.missed, once (markers in the bucket). An
 * error here (bucket or topic unreachable) fails the invocation, which the freshness alarm reports.
 */
export interface FreshnessDeps {
  config: LifeboatConfig;
  store: ObjectStore;
  publish: (e: BackupMissedEvent) => Promise<void>;
  logger: Logger;
  now?: () => Date;
  /** Each checked target's newest backup age in seconds (undefined: it has none): the dashboard's age widget. */
  age?: (target: string, seconds: number | undefined) => void;
}

export function createFreshnessCheck(deps: FreshnessDeps) {
  return async (_event?: unknown): Promise<{ missed: Array<{ target: string; fireTime: string }> }> => {
    const now = deps.now ? deps.now() : new Date();
    const raised = await checkFreshness(deps.config, deps.store, {
      scheduler: "eventbridge",
      publish: deps.publish,
      now,
      ...(deps.age ? { newest: (target: string, startedAt: string | undefined) => deps.age!(target, startedAt ? Math.max(0, (now.getTime() - Date.parse(startedAt)) / 1000) : undefined) } : {}),
      log: { log: (level, msg, fields) => deps.logger[level](msg, fields ?? {}) },
    });
    return { missed: raised.map((e) => ({ target: e.target, fireTime: e.missed.fireTime })) };
  };
}

let check: ReturnType<typeof createFreshnessCheck> | undefined;
export const handler = async (event: unknown) => {
  const config = await deployedConfig();
  check ??= createFreshnessCheck({
    config,
    store: new S3Store({ ...config.storage.s3!, bucket: process.env.LIFEBOAT_BUCKET! }),
    // each event it publishes is a CloudWatch metric too (embedded metric format: the stack's dashboard shows them)
    publish: withMetrics(snsPublisher(new SNSClient({}), process.env.LIFEBOAT_TOPIC_ARN!)),
    logger: new Logger({ serviceName: "lifeboat-freshness" }),
    age: emitBackupAge,
  });
  return check(event);
};
