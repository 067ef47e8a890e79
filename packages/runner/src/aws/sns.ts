import { PublishCommand, type SNSClient } from "@aws-sdk/client-sns";
import { eventAttributes, type LifeboatEvent } from "@lifeboat/core";

/**
 * The cloud side of the event bus: each event is published to the SNS topic as JSON, with message attributes
 * (type, target, status) that subscription filter policies match on.
 */
export function snsInput(topicArn: string, event: LifeboatEvent) {
  return {
    TopicArn: topicArn,
    Subject: `Lifeboat ${event.type} ${event.target}`.slice(0, 99),
    Message: JSON.stringify(event),
    MessageAttributes: Object.fromEntries(Object.entries(eventAttributes(event)).map(([k, v]) => [k, { DataType: "String", StringValue: v }])),
  };
}

export function snsPublisher(sns: SNSClient, topicArn: string): (event: LifeboatEvent) => Promise<void> {
  return async (event) => {
    await sns.send(new PublishCommand(snsInput(topicArn, event)));
  };
}
