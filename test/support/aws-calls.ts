/**
 * Records every AWS API call that the code under test makes, by deployed component, for test/iam.test.ts: calls that
 * go over HTTP (the runner's S3 calls against the local S3 server) at the SDK's client base class, and calls answered
 * by aws-sdk-client-mock from the mocks' own history. Each call is one JSON line in
 * $LIFEBOAT_AWS_CALLS/<component>.jsonl; only the request fields IAM evaluation needs are kept (never a body).
 */
import { appendFileSync, mkdirSync } from "node:fs";
import { join } from "node:path";
import { S3Client } from "@aws-sdk/client-s3";
import { SNSClient } from "@aws-sdk/client-sns";
import type { AwsStub } from "aws-sdk-client-mock";
import { afterEach } from "vitest";

export type Component = "launcher" | "watcher" | "slack" | "webhook" | "freshness" | "runner";
export interface RecordedCall {
  component: Component;
  client: string;
  command: string;
  /** The client's region; empty when it is the environment's default (once deployed: the stack's region). */
  region: string;
  /**
   * The endpoint a client was given in the config (another provider's, for a copy with keys of its own): its calls go
   * there with those keys, never to AWS as the component's role. Empty for AWS's own (the environment's endpoint).
   */
  endpoint?: string;
  input: Record<string, unknown>;
}

/** Marks a client the test itself uses (helpers.ts s3Client()): its calls are never recorded as a component's. */
export const TEST_CLIENT = Symbol.for("lifeboat.test-client");

const KEEP = ["SecretId", "Bucket", "Key", "Prefix", "UploadId", "IfNoneMatch", "IfMatch", "ObjectLockMode", "ObjectLockRetainUntilDate", "TopicArn", "Name", "DBInstanceIdentifier", "cluster", "taskDefinition", "tags", "tasks", "overrides", "enableExecuteCommand"];

function dir(): string {
  const d = process.env.LIFEBOAT_AWS_CALLS;
  if (!d) throw new Error("LIFEBOAT_AWS_CALLS is not set (vitest.config.ts sets it)");
  mkdirSync(d, { recursive: true });
  return d;
}

async function write(component: Component, client: any, command: any): Promise<void> {
  const resolved = typeof client?.config?.region === "function" ? await client.config.region() : String(client?.config?.region ?? "");
  const region = resolved === process.env.AWS_REGION ? "" : resolved;
  const input = Object.fromEntries(Object.entries((command?.input ?? {}) as Record<string, unknown>).filter(([k]) => KEEP.includes(k)));
  // the tests' stand-in for AWS S3 is the environment's endpoint (AWS_ENDPOINT_URL_S3): any other is another provider's
  const given = client?.config?.isCustomEndpoint && typeof client.config.endpoint === "function" ? await client.config.endpoint() : undefined;
  const endpoint = given ? `${given.protocol}//${given.hostname}${given.port ? `:${given.port}` : ""}` : undefined;
  const aws = process.env.AWS_ENDPOINT_URL_S3 ? new URL(process.env.AWS_ENDPOINT_URL_S3).origin : undefined;
  const call: RecordedCall = { component, client: client.constructor.name, command: command.constructor.name, region, input, ...(endpoint && endpoint !== aws ? { endpoint } : {}) };
  appendFileSync(join(dir(), `${component}.jsonl`), JSON.stringify(call) + "\n");
}

/**
 * Starts recording for one test file. Set the component before each group of tests (`calls.as("launcher")`); pass
 * the aws-sdk-client-mock stubs so that the calls they answer are recorded too.
 */
export function recordAwsCalls(...mocks: Array<AwsStub<any, any, any>>) {
  let component: Component | undefined;
  const base = Object.getPrototypeOf(S3Client.prototype);
  if (base !== Object.getPrototypeOf(SNSClient.prototype)) throw new Error("the AWS SDK clients do not share one base class: calls cannot be recorded");
  const send = base.send;
  const pending: Array<Promise<void>> = [];
  base.send = function (this: unknown, command: unknown, ...rest: unknown[]) {
    // the test's own reads (what the runner stored, what is pending) are not the component's calls
    if (component && !(this as Record<symbol, unknown>)[TEST_CLIENT]) pending.push(write(component, this, command));
    return send.call(this, command, ...rest);
  };
  afterEach(async () => {
    for (const mock of mocks) {
      for (const call of mock.calls()) if (component) pending.push(write(component, call.thisValue, call.args[0]));
      mock.resetHistory();
    }
    await Promise.all(pending.splice(0));
  });
  return {
    as(name: Component) {
      component = name;
    },
  };
}
