import type { EventOrigin } from "@lifeboat/core";

/**
 * Where this runner task runs, for the events it publishes: LIFEBOAT_STAGE (the task definition sets it), AWS_REGION
 * (Fargate sets it), and from the ECS task metadata endpoint v4 (ECS_CONTAINER_METADATA_URI_V4; see "Amazon ECS task
 * metadata endpoint version 4" in the ECS developer guide) the task's ARN and the container's awslogs group and stream,
 * made into a link to the CloudWatch console. Whatever cannot be read (not on ECS, the endpoint slow) is left out:
 * an event is never held back for it (one second at most).
 */
export async function runOrigin(env: NodeJS.ProcessEnv, fetchImpl: typeof fetch = fetch): Promise<EventOrigin | undefined> {
  const origin: EventOrigin = {};
  if (env.LIFEBOAT_STAGE) origin.stage = env.LIFEBOAT_STAGE;
  const region = env.AWS_REGION || env.AWS_DEFAULT_REGION;
  if (region) origin.region = region;
  const base = env.ECS_CONTAINER_METADATA_URI_V4;
  if (base) {
    const get = async (url: string) => {
      const res = await fetchImpl(url, { signal: AbortSignal.timeout(1000) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      return (await res.json()) as Record<string, any>;
    };
    const [container, task] = await Promise.allSettled([get(base), get(`${base}/task`)]);
    if (task.status === "fulfilled" && typeof task.value.TaskARN === "string") origin.task = task.value.TaskARN;
    const logs = container.status === "fulfilled" ? container.value.LogOptions : undefined;
    if (logs?.["awslogs-group"] && logs?.["awslogs-stream"]) origin.logs = logStreamUrl(logs["awslogs-region"] ?? region ?? "us-east-1", logs["awslogs-group"], logs["awslogs-stream"]);
  }
  return Object.keys(origin).length ? origin : undefined;
}

/** The CloudWatch console's page of one log stream (its URL fragment encodes names twice, with $ for %). */
export function logStreamUrl(region: string, group: string, stream: string): string {
  const enc = (s: string) => encodeURIComponent(encodeURIComponent(s)).replace(/%/g, "$");
  return `https://${region}.console.aws.amazon.com/cloudwatch/home?region=${region}#logsV2:log-groups/log-group/${enc(group)}/log-events/${enc(stream)}`;
}
