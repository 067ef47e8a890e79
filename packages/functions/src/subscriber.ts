import { GetParameterCommand, type SSMClient } from "@aws-sdk/client-ssm";
import type { Logger } from "@aws-lambda-powertools/logger";
import { SnsSchema } from "@aws-lambda-powertools/parser/schemas/sns";
import { isAlarmNotification, type AlarmNotification, type LifeboatEvent, type Outcome } from "@lifeboat/core";
import type { DeliveryOptions } from "@lifeboat/runner";

/**
 * An SNS subscriber that delivers Lifeboat events to a URL kept in SSM (SecureString, decrypted, cached for the
 * container's life, never logged): the Slack and the generic webhook Lambdas. Only the configured outcomes are sent.
 */
export interface SubscriberDeps {
  ssm: SSMClient;
  parameter: string;
  on: Outcome[];
  logger: Logger;
  /** First retry delay of the HTTP delivery (tests shorten it). */
  baseDelayMs?: number;
}

/** A Lifeboat event, or a CloudWatch alarm of the deployment (the topic carries both). */
export type TopicMessage = { kind: "event"; event: LifeboatEvent } | { kind: "alarm"; alarm: AlarmNotification };

export function createSubscriber(what: string, deps: SubscriberDeps, deliver: (message: TopicMessage, url: string, delivery: DeliveryOptions) => Promise<void>) {
  const delivery: DeliveryOptions = deps.baseDelayMs !== undefined ? { baseDelayMs: deps.baseDelayMs } : {};
  let url: Promise<string> | undefined;
  const secretUrl = () =>
    (url ??= deps.ssm
      .send(new GetParameterCommand({ Name: deps.parameter, WithDecryption: true }))
      .then((r) => {
        if (!r.Parameter?.Value) throw new Error(`the SSM parameter ${deps.parameter} is empty`);
        return r.Parameter.Value;
      })
      .catch((err: unknown) => {
        // not cached: once the parameter exists, the next delivery (Lambda's retry) reads it, without a cold start.
        // The failure is thrown: Lambda retries, then the failure destination keeps the message and its alarm fires
        url = undefined;
        throw new Error(`${what}: cannot read the SSM parameter ${deps.parameter} (${(err as Error).name}): create it with aws ssm put-parameter --type SecureString --name ${deps.parameter}`, { cause: err });
      }));
  return async (raw: unknown): Promise<{ posted: number; skipped: number }> => {
    const event = SnsSchema.parse(raw);
    let posted = 0;
    let skipped = 0;
    for (const record of event.Records) {
      const body = JSON.parse(record.Sns.Message) as unknown;
      // an alarm in ALARM is a failure; back to OK, good news
      const message: TopicMessage = isAlarmNotification(body) ? { kind: "alarm", alarm: body } : { kind: "event", event: body as LifeboatEvent };
      const status: Outcome = message.kind === "alarm" ? (message.alarm.NewStateValue === "ALARM" ? "failed" : "succeeded") : message.event.status;
      if (!deps.on.includes(status)) {
        skipped++;
        continue;
      }
      await deliver(message, await secretUrl(), delivery);
      deps.logger.info(`posted to ${what}`, message.kind === "alarm" ? { alarm: message.alarm.AlarmName, state: message.alarm.NewStateValue } : { type: message.event.type, target: message.event.target, runId: message.event.runId });
      posted++;
    }
    return { posted, skipped };
  };
}
