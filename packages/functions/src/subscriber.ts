import { GetParameterCommand, type SSMClient } from "@aws-sdk/client-ssm";
import type { Logger } from "@aws-lambda-powertools/logger";
import { SnsSchema } from "@aws-lambda-powertools/parser/schemas/sns";
import type { LifeboatEvent, Outcome } from "@lifeboat/core";

/**
 * An SNS subscriber that delivers Lifeboat events to a URL kept in SSM (SecureString, decrypted, cached for the
 * container's life, never logged): the Slack and the generic webhook Lambdas. Only the configured outcomes are sent.
 */
export interface SubscriberDeps {
  ssm: SSMClient;
  parameter: string;
  on: Outcome[];
  logger: Logger;
}

export function createSubscriber(what: string, deps: SubscriberDeps, deliver: (event: LifeboatEvent, url: string) => Promise<void>) {
  let url: Promise<string> | undefined;
  const secretUrl = () =>
    (url ??= deps.ssm.send(new GetParameterCommand({ Name: deps.parameter, WithDecryption: true })).then((r) => {
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
      await deliver(e, await secretUrl());
      deps.logger.info(`posted to ${what}`, { type: e.type, target: e.target, runId: e.runId });
      posted++;
    }
    return { posted, skipped };
  };
}
