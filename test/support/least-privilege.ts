import { expect } from "vitest";
import { ofType, one, unwrap, type Recorded } from "./sst-synth.js";

export type Statement = { Effect: string; Action: string[]; Resource: string[]; Condition?: Record<string, Record<string, string[]>>; Principal?: unknown };

export const policies = (r: Recorded) => (unwrap(r.inputs).inlinePolicies ?? []).map((p: { policy: string }) => JSON.parse(p.policy));
export const statements = (r: Recorded): Statement[] => policies(r).flatMap((p: { Statement: Statement[] }) => p.Statement);

/**
 * What a careful AWS engineer checks in the synthesized stack, in every variant the tests synthesize: who may assume
 * each role, what the execution role may read, what may reach the runner, how tasks may be started.
 */
/** `component`: the Backups component's name, which every child's name starts with. */
export function assertLeastPrivilege(resources: Recorded[], component = "Lifeboat"): void {
  const roles = ofType(resources, "aws:iam/role:Role");
  const fnRoles = ofType(resources, "aws:lambda/function:Function").map((f) => f.name.replace(/Function$/, "Role"));
  expect(fnRoles.length).toBeGreaterThan(0);
  for (const name of fnRoles) {
    const trust = JSON.parse(unwrap(one(resources, "aws:iam/role:Role", name).inputs).assumeRolePolicy);
    expect(trust.Statement, `${name} is assumed by Lambda only`).toEqual([{ Effect: "Allow", Principal: { Service: "lambda.amazonaws.com" }, Action: "sts:AssumeRole" }]);
  }

  // the task definition names no secrets: the execution role reads none (only AWS's image-pull and log policy)
  const taskDef = unwrap(one(resources, "aws:ecs/taskDefinition:TaskDefinition").inputs);
  expect(JSON.parse(taskDef.containerDefinitions)[0].secrets ?? []).toEqual([]);
  const execution = unwrap(one(resources, "aws:iam/role:Role", `${component}RunnerExecutionRole`).inputs);
  expect(execution.inlinePolicies).toEqual([]);
  expect(execution.managedPolicyArns).toEqual(["arn:aws:iam::aws:policy/service-role/AmazonECSTaskExecutionRolePolicy"]);

  for (const role of roles) {
    for (const s of statements(role)) {
      // ListTasks has no resource to name (AWS documents only a cluster condition for it)
      if (s.Resource.includes("*")) {
        expect(s.Action, `${role.name}: ${JSON.stringify(s)} names its resources`).toEqual(["ecs:ListTasks"]);
        expect(s.Condition, `${role.name}: ListTasks only in the runner's cluster`).toEqual({ ArnEquals: { "ecs:cluster": [expect.stringMatching(/^arn:aws:ecs:[a-z0-9-]+:\d{12}:cluster\//)] } });
      }
      expect(s.Action.filter((a) => a.startsWith("ssmmessages:")), `${role.name} has no ECS Exec channel`).toEqual([]);
      if (s.Action.includes("iam:PassRole")) {
        expect(s.Resource, `${role.name} passes only the runner's two roles and this stage's target roles`).toEqual([
          taskDef.taskRoleArn,
          taskDef.executionRoleArn,
          expect.stringMatching(/^arn:aws:iam::\d{12}:role\/lifeboat\/[a-z0-9-]+\/[a-z0-9-]+\/runner\/\*$/),
        ]);
        expect(s.Condition).toEqual({ StringEquals: { "iam:PassedToService": ["ecs-tasks.amazonaws.com"] } });
      }
      if (s.Action.includes("ecs:RunTask")) {
        expect(s.Condition, `${role.name} runs tasks in the runner's cluster only, bounded in size, without ECS Exec`).toEqual({
          ArnEquals: { "ecs:cluster": [expect.stringMatching(/^arn:aws:ecs:[a-z0-9-]+:\d{12}:cluster\//)] },
          NumericLessThanEqualsIfExists: { "ecs:task-cpu": [expect.stringMatching(/^\d+$/)], "ecs:task-memory": [expect.stringMatching(/^\d+$/)] },
          BoolIfExists: { "ecs:enable-execute-command": ["false"] },
        });
      }
      if (s.Action.includes("rds:DescribeDBInstances")) {
        for (const r of s.Resource) expect(r).toMatch(/^arn:aws:rds:[a-z0-9-]+:\d{12}:db:[a-zA-Z][a-zA-Z0-9-]*$/);
      }
    }
  }

  // each target's runner role: assumed by ECS tasks of this account only; the task definition's own role grants nothing
  const targetRoles = roles.filter((r) => r.name.startsWith(`${component}Runner`) && r.name.endsWith("Role") && ![`${component}RunnerTaskRole`, `${component}RunnerExecutionRole`].includes(r.name));
  expect(targetRoles.length).toBeGreaterThan(0);
  for (const r of targetRoles) {
    const trust = JSON.parse(unwrap(r.inputs).assumeRolePolicy);
    expect(trust.Statement, `${r.name} is assumed by this account's ECS tasks only`).toEqual([
      { Effect: "Allow", Principal: { Service: "ecs-tasks.amazonaws.com" }, Action: "sts:AssumeRole", Condition: { StringEquals: { "aws:SourceAccount": expect.stringMatching(/^\d{12}$/) } } },
    ]);
    expect(unwrap(r.inputs).path).toMatch(/^\/lifeboat\/[a-z0-9-]+\/[a-z0-9-]+\/runner\/$/);
  }
  expect(statements(one(resources, "aws:iam/role:Role", `${component}RunnerTaskRole`))).toEqual([]);

  // nothing may reach the runner from anywhere
  const open = (cidrs: unknown) => [cidrs].flat().some((c) => c === "0.0.0.0/0" || c === "::/0");
  for (const sg of [...ofType(resources, "aws:ec2/securityGroup:SecurityGroup"), ...ofType(resources, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup")]) {
    for (const rule of unwrap(sg.inputs).ingress ?? []) {
      expect(open(rule.cidrBlocks) || open(rule.ipv6CidrBlocks), `${sg.name} lets the world in: ${JSON.stringify(rule)}`).toBe(false);
    }
  }
  for (const rule of ofType(resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")) {
    const r = unwrap(rule.inputs);
    expect(open(r.cidrIpv4) || open(r.cidrIpv6), `${rule.name} lets the world in`).toBe(false);
  }
  for (const rule of ofType(resources, "aws:ec2/securityGroupRule:SecurityGroupRule")) {
    const r = unwrap(rule.inputs);
    if (r.type === "ingress") expect(open(r.cidrBlocks) || open(r.ipv6CidrBlocks), `${rule.name} lets the world in`).toBe(false);
  }
}
