import { describe, expect, it, vi } from "vitest";
import type { Component } from "./support/aws-calls.js";
import { ROLES, denials, recorded, synthesizedStack } from "./support/iam-check.js";

/**
 * The same recorded calls as test/iam.test.ts, against the stack of the same config with the bucket encrypted by a
 * customer managed KMS key: every role that reads or writes the bucket must be allowed the key, through S3.
 */
const KEY = "arn:aws:kms:eu-west-1:123456789012:key/0b1c2d3e-aaaa-bbbb-cccc-000000000001";
vi.mock("../lifeboat.config", async () => {
  const { cloudConfig } = await import("./support/cloud-fixture.js");
  return { default: { ...cloudConfig, aws: { ...cloudConfig.aws, bucket: { kmsKeyArn: KEY } } } };
});

const stack = synthesizedStack("production");

describe("with aws.bucket.kmsKeyArn, every call is allowed, the key's included", () => {
  it("the bucket is encrypted with the key", () => {
    expect(stack.kmsKey()).toBe(KEY);
  });

  for (const component of Object.keys(ROLES) as Component[]) {
    it(component, async () => {
      expect(recorded(component).length, `no AWS calls were recorded for the ${component}: run the whole suite (npm test)`).toBeGreaterThan(0);
      expect(denials(await stack.verdicts(component))).toEqual([]);
    });
  }

  it("the freshness check and the runner use the key, the launcher and the watcher only to read the config, only through S3; no other role may", async () => {
    const kmsUse = (c: Component) => [...new Set(recorded(c).flatMap((call) => stack.iamRequests(call)).filter((r) => r.action.startsWith("kms:")).map((r) => `${r.action} ${r.context["kms:ViaService"]}`))].sort();
    expect(kmsUse("runner")).toEqual(["kms:Decrypt s3.eu-west-1.amazonaws.com", "kms:GenerateDataKey s3.eu-west-1.amazonaws.com"]);
    expect(kmsUse("freshness")).toEqual(["kms:Decrypt s3.eu-west-1.amazonaws.com", "kms:GenerateDataKey s3.eu-west-1.amazonaws.com"]);
    // the key's use outside S3 (a direct kms:Decrypt) is denied
    expect(await stack.evaluate("runner", { action: "kms:Decrypt", resource: KEY, context: { "kms:ViaService": "ssm.eu-west-1.amazonaws.com" } })).toBe("ImplicitlyDenied");
    expect((Object.keys(ROLES) as Component[]).flatMap((c) => stack.unusedActions(c).filter((a) => a.includes("kms:")))).toEqual([]);
    // the launcher and the watcher read the deployed config (kms:Decrypt through S3), and nothing else with the key
    for (const c of ["launcher", "watcher"] as Component[]) expect(kmsUse(c)).toEqual(["kms:Decrypt s3.eu-west-1.amazonaws.com"]);
    for (const c of ["slack", "webhook"] as Component[]) {
      expect(JSON.stringify(stack.rolePolicies(c))).not.toContain("kms:");
    }
  });

  it("fails when the freshness check loses the key", async () => {
    const without = stack.rolePolicies("freshness").map((p) => ({ ...p, Statement: p.Statement.filter((s) => ![s.Action].flat().some((a: string) => a.startsWith("kms:"))) }));
    expect(denials(await stack.verdicts("freshness", without))).toEqual(expect.arrayContaining([expect.stringMatching(/^freshness may not kms:Decrypt on .*ImplicitlyDenied$/)]));
  });
});
