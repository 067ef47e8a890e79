import { mockClient } from "aws-sdk-client-mock";
import { DescribeTasksCommand, ECSClient, ListTasksCommand, RunTaskCommand, type RunTaskCommandInput } from "@aws-sdk/client-ecs";
import { RDSClient } from "@aws-sdk/client-rds";
import { Logger } from "@aws-lambda-powertools/logger";
import { describe, expect, it } from "vitest";
import { LAUNCH_DELIVERIES, parseConfig, type BackupFailedEvent } from "@lifeboat/core";
import { createLauncher } from "@lifeboat/functions";
import { SETTINGS } from "./support/cloud-fixture.js";

/**
 * 200 targets due in the same minute. The schedules put 200 messages on the launch queue at once; Lambda's SQS poller
 * hands them to the launcher LAUNCH_CONCURRENCY (2) invocations at a time, one message each, and delivers again (after
 * the visibility timeout) a message whose launch the launcher left for later, up to LAUNCH_DELIVERIES times, then to the
 * dead-letter queue. That poller is played here by a small loop (its rules as "Using Lambda with Amazon SQS" states
 * them; the visibility timeout shortened from 6 minutes to 0.2 s). ECS is a mock that throttles as ECS documents its
 * limits: RunTask at 20 calls a second after a burst of 100 (the task launch rate), ListTasks and DescribeTasks at 20 a
 * second after a burst of 50, ThrottlingException beyond; and every 23rd RunTask finds no capacity. It starts a task
 * once per clientToken, as ECS's idempotency does.
 */
class Bucket {
  private tokens: number;
  private last = performance.now();
  constructor(
    private readonly burst: number,
    private readonly perSecond: number,
  ) {
    this.tokens = burst;
  }
  take(): boolean {
    const now = performance.now();
    this.tokens = Math.min(this.burst, this.tokens + ((now - this.last) / 1000) * this.perSecond);
    this.last = now;
    if (this.tokens < 1) return false;
    this.tokens -= 1;
    return true;
  }
}
const throttled = () => Object.assign(new Error("Rate exceeded"), { name: "ThrottlingException", $metadata: { httpStatusCode: 400 } });

describe("a crowded minute: 200 targets due at once", () => {
  it("each target is started exactly once and none is reported failed, through throttling and capacity errors", async () => {
    const TARGETS = 200;
    const names = Array.from({ length: TARGETS }, (_, i) => `t${String(i).padStart(3, "0")}`);
    const config = parseConfig({
      storage: { s3: { bucket: "acme-backups" } },
      targets: Object.fromEntries(names.map((n) => [n, { database: { host: "db.example.com", database: "d", user: "u" }, schedule: "cron(0 2 * * ? *)" }])),
    });
    const ecs = mockClient(ECSClient);
    const runTaskBucket = new Bucket(100, 20);
    const readBucket = new Bucket(50, 20);
    const byToken = new Map<string, { arn: string; input: RunTaskCommandInput }>();
    const stats = { runTask: 0, throttled: 0, noCapacity: 0, reads: 0, readsThrottled: 0 };
    ecs.on(RunTaskCommand).callsFake((input: RunTaskCommandInput) => {
      stats.runTask++;
      if (!runTaskBucket.take()) {
        stats.throttled++;
        throw throttled();
      }
      const known = byToken.get(input.clientToken!);
      if (known) return { tasks: [{ taskArn: known.arn }], failures: [] };
      if (stats.runTask % 23 === 0) {
        stats.noCapacity++;
        return { tasks: [], failures: [{ reason: "Capacity is unavailable at this time. Please try again later or in a different availability zone" }] };
      }
      const arn = `arn:aws:ecs:eu-west-1:123456789012:task/lifeboat/${byToken.size.toString(16).padStart(8, "0")}`;
      byToken.set(input.clientToken!, { arn, input });
      return { tasks: [{ taskArn: arn }], failures: [] };
    });
    const started = (startedBy: string | undefined) => [...byToken.values()].filter((t) => t.input.startedBy === startedBy);
    ecs.on(ListTasksCommand).callsFake((input: { startedBy?: string }) => {
      stats.reads++;
      if (!readBucket.take()) {
        stats.readsThrottled++;
        throw throttled();
      }
      return { taskArns: started(input.startedBy).map((t) => t.arn) };
    });
    ecs.on(DescribeTasksCommand).callsFake((input: { tasks: string[] }) => {
      stats.reads++;
      if (!readBucket.take()) {
        stats.readsThrottled++;
        throw throttled();
      }
      return { tasks: [...byToken.values()].filter((t) => input.tasks.includes(t.arn)).map((t) => ({ taskArn: t.arn, overrides: t.input.overrides })) };
    });

    const reported: BackupFailedEvent[] = [];
    const launch = createLauncher({
      config,
      ecs: new ECSClient({ region: "eu-west-1" }),
      rds: new RDSClient({ region: "eu-west-1" }),
      publish: async (e) => void reported.push(e),
      settings: SETTINGS,
      logger: new Logger({ serviceName: "test", logLevel: "SILENT" }),
      launchRetry: { attempts: 4, minDelayMs: 50 },
    });

    // the queue and its poller
    const VISIBILITY_MS = 200;
    const queue = names.map((target, i) => ({ messageId: `m${i}`, body: JSON.stringify({ source: "lifeboat.schedule", target, scheduledTime: "2026-12-03T02:00:00Z" }), receives: 0, visibleAt: 0 }));
    const deadLetters: string[] = [];
    let redelivered = 0;
    const t0 = performance.now();
    await Promise.all(
      Array.from({ length: 2 }, async () => {
        for (;;) {
          const now = performance.now();
          const next = queue.find((m) => m.visibleAt <= now);
          if (!next) {
            if (!queue.length) return;
            await new Promise((r) => setTimeout(r, 20));
            continue;
          }
          queue.splice(queue.indexOf(next), 1);
          next.receives++;
          const res = await launch({ Records: [{ messageId: next.messageId, body: next.body, attributes: { ApproximateReceiveCount: String(next.receives) }, eventSource: "aws:sqs" }] });
          if (!res.batchItemFailures?.some((f) => f.itemIdentifier === next.messageId)) continue;
          if (next.receives >= LAUNCH_DELIVERIES) deadLetters.push(next.messageId);
          else {
            redelivered++;
            queue.push({ ...next, visibleAt: performance.now() + VISIBILITY_MS });
          }
        }
      }),
    );
    const seconds = (performance.now() - t0) / 1000;
    console.log(
      `crowded minute: ${TARGETS} launches in ${seconds.toFixed(1)} s: ${stats.runTask} RunTask calls (${stats.throttled} throttled, ${stats.noCapacity} without capacity), ${stats.reads} ECS reads (${stats.readsThrottled} throttled), ${redelivered} redeliveries, ${deadLetters.length} dead letters`,
    );
    // every target started exactly once (one task per target), nobody told of a failure that did not happen
    const perTarget = new Map<string, number>();
    for (const t of byToken.values()) {
      const target = t.input.overrides!.containerOverrides![0]!.environment!.find((e) => e.name === "LIFEBOAT_TARGET")!.value!;
      perTarget.set(target, (perTarget.get(target) ?? 0) + 1);
    }
    expect([...perTarget.keys()].sort()).toEqual(names);
    expect([...perTarget.values()].every((n) => n === 1)).toBe(true);
    expect(reported).toEqual([]);
    expect(deadLetters).toEqual([]);
    // the limits were met, not avoided: throttled reads backed off, launches without capacity were tried again
    expect(stats.throttled + stats.readsThrottled).toBeGreaterThan(0);
    expect(stats.noCapacity).toBeGreaterThan(0);
    ecs.restore();
  }, 120_000);
});
