import { mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { mockClient } from "aws-sdk-client-mock";
import { InvokeCommand, LambdaClient } from "@aws-sdk/client-lambda";
import { DescribeTasksCommand, ECSClient } from "@aws-sdk/client-ecs";
import { beforeEach, describe, expect, it } from "vitest";
import { Context } from "../packages/cli/src/context.js";
import { findLauncher, runRemote } from "../packages/cli/src/commands/remote.js";
import { cli, tempDir } from "./support/helpers.js";

const lambda = mockClient(LambdaClient);
const ecs = mockClient(ECSClient);
beforeEach(() => {
  lambda.reset();
  ecs.reset();
});

const TASK = "arn:aws:ecs:eu-west-1:123456789012:task/lifeboat-production-Cluster/0123abcd";
const payload = (v: unknown) => new TextEncoder().encode(JSON.stringify(v)) as never;
const ctx = () => new Context({ json: true });
const deps = () => ({ lambda: new LambdaClient({ region: "eu-west-1" }), ecs: new ECSClient({ region: "eu-west-1" }), pollMs: 5 });

describe("lifeboat run <target> --remote", () => {
  it("invokes the launcher with the target, then follows the task until it stops (exit 0 on success)", async () => {
    lambda.on(InvokeCommand).resolves({ StatusCode: 200, Payload: payload({ launched: [{ target: "prod", runId: "run-1", taskArn: TASK }], failed: [] }) });
    ecs
      .on(DescribeTasksCommand)
      .resolvesOnce({ tasks: [{ lastStatus: "PROVISIONING" }] })
      .resolvesOnce({ tasks: [{ lastStatus: "RUNNING" }] })
      .resolves({ tasks: [{ lastStatus: "STOPPED", containers: [{ exitCode: 0 }] }] });
    const code = await runRemote(ctx(), "prod", { launcher: "lifeboat-production-LauncherFunction-x", reason: "before deploy" }, deps());
    expect(code).toBe(0);
    const [invoke] = lambda.commandCalls(InvokeCommand).map((c) => c.args[0].input);
    expect({ ...invoke, Payload: JSON.parse(new TextDecoder().decode(invoke!.Payload as Uint8Array)) }).toEqual({
      FunctionName: "lifeboat-production-LauncherFunction-x",
      InvocationType: "RequestResponse",
      Payload: { target: "prod", reason: "before deploy" },
    });
    expect(ecs.commandCalls(DescribeTasksCommand).map((c) => c.args[0].input)).toEqual(Array(3).fill({ cluster: "lifeboat-production-Cluster", tasks: [TASK] }));
  });

  it("a task that stops non-zero is a failed run (exit 1), with ECS's reason", async () => {
    lambda.on(InvokeCommand).resolves({ Payload: payload({ launched: [{ target: "prod", runId: "r", taskArn: TASK }], failed: [] }) });
    ecs.on(DescribeTasksCommand).resolves({ tasks: [{ lastStatus: "STOPPED", containers: [{ exitCode: 137, reason: "OutOfMemoryError" }] }] });
    expect(await runRemote(ctx(), "prod", { launcher: "l" }, deps())).toBe(1);
  });

  it("a launcher error (unknown target) becomes a usage error; a launch failure a run failure", async () => {
    lambda.on(InvokeCommand).resolvesOnce({ FunctionError: "Unhandled", Payload: payload({ errorMessage: 'unknown target "nope"' }) });
    await expect(runRemote(ctx(), "nope", { launcher: "l" }, deps())).rejects.toMatchObject({ exitCode: 2, message: 'the launcher refused the run: unknown target "nope"' });
    lambda.on(InvokeCommand).resolves({ Payload: payload({ launched: [], failed: [{ target: "prod", runId: "r", code: "rds_not_available", error: 'RDS instance "acme-prod" is stopped, not available' }] }) });
    await expect(runRemote(ctx(), "prod", { launcher: "l" }, deps())).rejects.toMatchObject({ exitCode: 1, message: expect.stringContaining("is stopped, not available (rds_not_available)") });
    expect(ecs.commandCalls(DescribeTasksCommand)).toEqual([]);
  });

  it("finds the launcher from --launcher, $LIFEBOAT_LAUNCHER, or .sst/outputs.json, and says how when it cannot", async () => {
    const dir = tempDir("lifeboat-outputs-");
    expect(() => findLauncher(undefined, dir, {})).toThrow("cannot find the deployed launcher function");
    mkdirSync(join(dir, ".sst"));
    writeFileSync(join(dir, ".sst", "outputs.json"), JSON.stringify({ launcher: "from-outputs", bucket: "b" }));
    expect(findLauncher(undefined, dir, {})).toBe("from-outputs");
    expect(findLauncher(undefined, dir, { LIFEBOAT_LAUNCHER: "from-env" })).toBe("from-env");
    expect(findLauncher("from-flag", dir, { LIFEBOAT_LAUNCHER: "from-env" })).toBe("from-flag");
    const res = await cli(["run", "--remote", "--db", "postgres://u@h/d"]);
    expect(res.code).toBe(2);
    expect(res.stderr).toContain("lifeboat run <target> --remote");
  });
});
