import { createHash, randomUUID } from "node:crypto";
import { z } from "zod";
import type { LifeboatConfig } from "./config.js";
import { LifeboatError } from "./errors.js";

/**
 * The launcher's input: a scheduled event from EventBridge Scheduler, or a manual one from the Lambda console, the
 * AWS CLI or `lifeboat run --remote`:
 *   {"target":"prod"}   {"targets":["prod","staging"]}   {"all":true}        each with an optional "reason"
 */
const reason = z.string().max(500).optional();
const mode = z.enum(["backup", "verify"]).optional();
export const scheduledEventSchema = z.object({
  source: z.literal("lifeboat.schedule"),
  target: z.string(),
  scheduledTime: z.iso.datetime({ offset: true }),
  mode,
});
export const manualEventSchema = z.union([
  z.object({ target: z.string().min(1), reason, mode }).strict(),
  z.object({ targets: z.array(z.string().min(1)).min(1), reason, mode }).strict(),
  z.object({ all: z.literal(true), reason, mode }).strict(),
]);
export type ScheduledEvent = z.infer<typeof scheduledEventSchema>;
export type ManualEvent = z.infer<typeof manualEventSchema>;

/** backup: pg_dump to the store; verify: a restore drill of the target's latest backup. */
export type RunMode = "backup" | "verify";

export type LaunchRequest =
  | { kind: "schedule"; mode: RunMode; targets: string[]; scheduledTime: string }
  | { kind: "manual"; mode: RunMode; targets: string[]; reason?: string | undefined };

export class LaunchEventError extends LifeboatError {
  constructor(message: string, hint?: string) {
    super(message, hint === undefined ? { exitCode: 2 } : { exitCode: 2, hint });
  }
}

const MANUAL_EXAMPLES = '{"target":"prod"}, {"targets":["prod","staging"]} or {"all":true}, each with an optional "reason" and "mode" ("backup" or "verify")';

/** Parses and resolves a launcher event against the config. Unknown targets are an error naming the known ones. */
export function parseLaunchEvent(event: unknown, config: LifeboatConfig): LaunchRequest {
  const known = Object.keys(config.targets);
  const check = (names: string[]) => {
    const unknown = names.filter((n) => !config.targets[n]);
    if (unknown.length) {
      throw new LaunchEventError(`unknown target${unknown.length > 1 ? "s" : ""} ${unknown.map((n) => `"${n}"`).join(", ")}`, `known targets: ${known.join(", ")}`);
    }
    return [...new Set(names)];
  };
  const scheduled = scheduledEventSchema.safeParse(event);
  if (scheduled.success) {
    return { kind: "schedule", mode: scheduled.data.mode ?? "backup", targets: check([scheduled.data.target]), scheduledTime: scheduled.data.scheduledTime };
  }
  const manual = manualEventSchema.safeParse(event);
  if (!manual.success) throw new LaunchEventError(`unrecognised launcher event ${JSON.stringify(event).slice(0, 200)}`, `send ${MANUAL_EXAMPLES}`);
  const m = manual.data;
  const targets = "all" in m ? known : "targets" in m ? check(m.targets) : check([m.target]);
  return { kind: "manual", mode: m.mode ?? "backup", targets, reason: m.reason };
}

/**
 * RunTask's clientToken (idempotency, max 64 characters): the same target and scheduled time always give the same
 * token, so a duplicate delivery of one schedule cannot start a second dump. Manual runs and retries are unique.
 */
export function launchClientToken(target: string, scheduledTimeOrRunId: string, attempt = 1): string {
  return createHash("sha256").update(`lifeboat\0${target}\0${scheduledTimeOrRunId}\0${attempt}`).digest("hex").slice(0, 64);
}

/** A deterministic run id for a scheduled run (UUID-shaped), a random one otherwise. */
export function runIdFor(target: string, scheduledTime?: string): string {
  if (!scheduledTime) return randomUUID();
  const h = createHash("sha256").update(`run\0${target}\0${scheduledTime}`).digest("hex");
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20, 32)}`;
}

/** Environment the runner container gets from the launcher (and the watcher's relaunch): never a secret. */
export interface RunnerRunEnv {
  LIFEBOAT_TARGET: string;
  LIFEBOAT_RUN_ID: string;
  LIFEBOAT_TRIGGER: "schedule" | "manual" | "remote" | "retry";
  LIFEBOAT_ATTEMPT: string;
  /** Absent for backups. */
  LIFEBOAT_MODE?: "verify";
}

/**
 * How many times the launch queue delivers a launch (its redrive policy, infra/schedule.ts): the launcher leaves a
 * launch that may succeed later on the queue, and reports its failure on the last delivery.
 */
export const LAUNCH_DELIVERIES = 3;
