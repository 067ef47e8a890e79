import { GetParameterCommand, SSMClient } from "@aws-sdk/client-ssm";
import { Logger } from "@aws-lambda-powertools/logger";
import { SnsSchema } from "@aws-lambda-powertools/parser/schemas/sns";
import type { LifeboatEvent, Outcome } from "@lifeboat/core";
import { postToSlack } from "@lifeboat/runner";

/**
 * The Slack subscriber: SNS delivers Lifeboat events; the webhook URL is read from SSM (SecureString, decrypted,
 * cached for the container's life) and never logged. Only the configured outcomes are posted.
 */
export interface SlackDeps {
  ssm: SSMClient;
  parameter: string;
  on: Outcome[];
  logger: Logger;
  baseDelayMs?: number;
}

export function createSlackHandler(deps: SlackDeps) {
  let webhook: Promise<string> | undefined;
  const webhookUrl = () =>
    (webhook ??= deps.ssm.send(new GetParameterCommand({ Name: deps.parameter, WithDecryption: true })).then((r) => {
      if (!r.Parameter?.Value) throw new Error(`the SSM parameter ${deps.parameter} is empty`);
      return r.Parameter.Value;
    }));
  return async (raw: unknown): Promise<{ posted: number; skipped: number }> => {
    const event = SnsSchema.parse(raw);
    let posted = 0;
    let skipped = 0;
    for (const record of event.Records) {
      const e = JSON.parse(record.Sns.Message) as LifeboatEvent;
      if (!deps.on.includes(e.status)) {
        skipped++;
        continue;
      }
      await postToSlack(e, { webhookUrl: await webhookUrl(), on: deps.on, ...(deps.baseDelayMs !== undefined ? { baseDelayMs: deps.baseDelayMs } : {}) });
      deps.logger.info("posted to Slack", { type: e.type, target: e.target, runId: e.runId });
      posted++;
    }
    return { posted, skipped };
  };
}

let slack: ReturnType<typeof createSlackHandler> | undefined;
export const handler = async (event: unknown) => {
  slack ??= createSlackHandler({
    ssm: new SSMClient({}),
    parameter: process.env.LIFEBOAT_SLACK_PARAMETER!,
    on: JSON.parse(process.env.LIFEBOAT_SLACK_ON ?? '["succeeded","failed"]') as Outcome[],
    logger: new Logger({ serviceName: "lifeboat-slack" }),
  });
  return slack(event);
};
