import { PublishCommand, type SNSClient } from "@aws-sdk/client-sns";
import { eventAttributes, renderSlackMessage, type LifeboatEvent } from "@lifeboat/core";

/**
 * The cloud side of the event bus: each event is published to the SNS topic as JSON (indented, its first field a
 * one-sentence `summary`, the subject that sentence: what an e-mail subscriber reads), with message attributes
 * (type, target, status) that subscription filter policies match on.
 */
export function snsInput(topicArn: string, event: LifeboatEvent) {
  // e-mail subscribers get the message as it is: the subject and the first field say what happened in words
  const summary = plainSummary(event);
  return {
    TopicArn: topicArn,
    Subject: `Lifeboat: ${summary}`.replace(/[^\x20-\x7e]/g, " ").slice(0, 99),
    Message: JSON.stringify({ summary, ...event }, null, 2),
    MessageAttributes: Object.fromEntries(Object.entries(eventAttributes(event)).map(([k, v]) => [k, { DataType: "String", StringValue: v }])),
  };
}

export function snsPublisher(sns: SNSClient, topicArn: string): (event: LifeboatEvent) => Promise<void> {
  return async (event) => {
    await sns.send(new PublishCommand(snsInput(topicArn, event)));
  };
}

/** The event in one sentence, without Slack's emoji and markup ("Backup of prod FAILED after 3 attempt(s): ..."). */
export function plainSummary(event: LifeboatEvent): string {
  return renderSlackMessage(event)
    .text.replace(/:[a-z_]+:\s*/g, "")
    .replace(/\*/g, "");
}
