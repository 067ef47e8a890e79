import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { DescribeTasksCommand, ECSClient } from "@aws-sdk/client-ecs";
import { LifeboatError, UsageError } from "@lifeboat/core";
import type { Context } from "../context.js";

/**
 * `lifeboat run <target> --remote`: invokes the deployed launcher (as the console or a schedule would), prints the
 * runner task's ARN and follows it until it stops. The launcher is found with --launcher, $LIFEBOAT_LAUNCHER, or the
 * `launcher` output that `sst deploy` writes to .sst/outputs.json.
 */
export interface RemoteDeps {
  lambda?: LambdaClient;
  ecs?: ECSClient;
  pollMs?: number;
}

export function findLauncher(explicit: string | undefined, cwd = process.cwd(), env = process.env): string {
  if (explicit) return explicit;
  if (env.LIFEBOAT_LAUNCHER) return env.LIFEBOAT_LAUNCHER;
  const outputs = join(cwd, ".sst", "outputs.json");
  if (existsSync(outputs)) {
    const launcher = (JSON.parse(readFileSync(outputs, "utf8")) as { launcher?: string }).launcher;
    if (launcher) return launcher;
  }
  throw new UsageError("cannot find the deployed launcher function", "pass --launcher <function name or ARN>, set LIFEBOAT_LAUNCHER, or run where `sst deploy` wrote .sst/outputs.json");
}

export async function runRemote(ctx: Context, target: string, opts: { launcher?: string; reason?: string }, deps: RemoteDeps = {}): Promise<number> {
  const { out } = ctx;
  const FunctionName = findLauncher(opts.launcher);
  const lambda = deps.lambda ?? new LambdaClient({});
  const payload = { target, reason: opts.reason ?? "lifeboat run --remote" };
  out.log("info", `invoking ${FunctionName}`, { target });
  const res = await lambda.send(new InvokeCommand({ FunctionName, InvocationType: "RequestResponse", Payload: new TextEncoder().encode(JSON.stringify(payload)) }));
  const body = res.Payload ? JSON.parse(new TextDecoder().decode(res.Payload)) : undefined;
  if (res.FunctionError) {
    const msg = body?.errorMessage ?? res.FunctionError;
    throw new LifeboatError(`the launcher refused the run: ${msg}`, { exitCode: /unknown target|unrecognised launcher event/.test(msg) ? 2 : 1 });
  }
  const failed = (body?.failed ?? []) as Array<{ code: string; error: string }>;
  if (failed.length) throw new LifeboatError(`the launcher could not start the run: ${failed[0]!.error} (${failed[0]!.code})`);
  const launched = (body?.launched ?? []) as Array<{ taskArn: string; runId: string }>;
  if (!launched[0]) throw new LifeboatError("the launcher started no task");
  const { taskArn, runId } = launched[0];
  out.log("info", "runner task started", { taskArn, runId });

  const ecs = deps.ecs ?? new ECSClient({});
  const cluster = taskArn.split(":task/")[1]?.split("/")[0];
  let last = "";
  for (;;) {
    const d = await ecs.send(new DescribeTasksCommand({ cluster, tasks: [taskArn] }));
    const task = d.tasks?.[0];
    const status = task?.lastStatus ?? "UNKNOWN";
    if (status !== last) {
      out.log("info", `task ${status.toLowerCase()}`, { taskArn });
      last = status;
    }
    if (status === "STOPPED") {
      const exitCode = task?.containers?.[0]?.exitCode;
      const reason = task?.containers?.[0]?.reason ?? task?.stoppedReason;
      const ok = exitCode === 0;
      out.result(
        ok
          ? `backup of "${target}" succeeded remotely (task ${taskArn}, run ${runId}); see \`lifeboat list ${target}\``
          : `backup of "${target}" failed remotely (task ${taskArn}, exit code ${exitCode ?? "none"}${reason ? `: ${reason}` : ""}); the details went to the topic and the task's logs`,
        { status: ok ? "succeeded" : "failed", target, taskArn, runId, exitCode: exitCode ?? null, reason: reason ?? null },
      );
      return ok ? 0 : 1;
    }
    await new Promise((r) => setTimeout(r, deps.pollMs ?? 5000));
  }
}
