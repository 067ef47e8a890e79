/**
 * Synthesizes sst.config.ts offline under Pulumi mocks, recreating what the sst CLI does before calling run():
 * the $app/$cli/$dev globals, the platform's shim ($interpolate, $jsonStringify, ...), the `aws` and `sst` globals,
 * and the CLI's JSON-RPC server (Provider.Aws.Bootstrap, Runtime.Build) that Function and Task call. Every resource
 * registered is recorded with its inputs. This leans on SST internals: re-check it on every sst upgrade
 * (../shared/notes/sst-offline.md section 3).
 */
import { createServer, type Server } from "node:http";
import { existsSync, mkdirSync, mkdtempSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { REPO } from "./helpers.js";

export const PLATFORM = join(REPO, ".sst/platform");
export const SECRET_KEY = "4dabf18193072939515e22adb298388d";

export interface Recorded {
  type: string;
  name: string;
  inputs: Record<string, any>;
}

/** Linked values arrive wrapped as Pulumi secrets; assertions want the plain values. */
export function unwrap(v: any): any {
  if (Array.isArray(v)) return v.map(unwrap);
  if (v && typeof v === "object") {
    if (SECRET_KEY in v && "value" in v) return unwrap(v.value);
    return Object.fromEntries(Object.entries(v).map(([k, x]) => [k, unwrap(x)]));
  }
  return v;
}

function renderPolicy(args: any): string {
  const cap = (s: string) => s.charAt(0).toUpperCase() + s.slice(1).toLowerCase();
  const statements = (args.statements ?? []).map((s: any) => ({
    Effect: cap(s.effect ?? "Allow"),
    Action: s.actions,
    Resource: s.resources,
    ...(s.principals ? { Principal: Object.fromEntries(s.principals.map((p: any) => [p.type, p.identifiers])) } : {}),
    ...(s.conditions ? { Condition: Object.fromEntries(s.conditions.map((c: any) => [c.test, { [c.variable]: c.values }])) } : {}),
  }));
  return JSON.stringify({ Version: "2012-10-17", Statement: statements });
}

async function startRpc(): Promise<{ server: Server; url: string }> {
  const out = mkdtempSync(join(tmpdir(), "lifeboat-sst-build-"));
  writeFileSync(join(out, "index.mjs"), "export const handler = async () => ({});\n");
  const server = createServer(async (req, res) => {
    let body = "";
    for await (const c of req) body += c;
    const { method } = JSON.parse(body);
    const answer = (result: unknown) => res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ result, error: null }));
    if (method === "Provider.Aws.Bootstrap") {
      return answer({ asset: "sst-asset-bucket", assetEcrRegistryId: "123456789012", assetEcrUrl: "123456789012.dkr.ecr.eu-west-1.amazonaws.com/sst-asset", state: "sst-state", appsyncHttp: "", appsyncRealtime: "" });
    }
    if (method === "Runtime.Build") return answer({ handler: "index.handler", out, errors: [], sourcemaps: [] });
    if (method === "Runtime.AddTarget") return answer({});
    res.writeHead(200, { "content-type": "application/json" }).end(JSON.stringify({ result: null, error: `rpc: can't find method ${method}` }));
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", r));
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}` };
}

/** Runs sst.config.ts's run() for `stage` and returns every resource registered, once registration settles. */
export async function synthesize(stage: string): Promise<{ resources: Recorded[]; outputs: Record<string, unknown>; close: () => void }> {
  if (!existsSync(join(PLATFORM, "config.d.ts"))) {
    throw new Error("the SST platform is not installed: run `npm run sst:install` (npm test does it first)");
  }
  const rpc = await startRpc();
  process.env.SST_SERVER = rpc.url;
  const work = mkdtempSync(join(tmpdir(), "lifeboat-sst-work-"));
  mkdirSync(join(work, "artifacts"), { recursive: true });

  const pulumi = await import("@pulumi/pulumi");
  const resources: Recorded[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        resources.push({ type: args.type, name: args.name, inputs: args.inputs });
        const name = args.inputs.name ?? args.inputs.bucket ?? `${args.name}-physical`;
        return {
          id: `${args.name}-id`,
          state: {
            ...args.inputs,
            name,
            arn: args.inputs.arn ?? `arn:aws:mock:eu-west-1:123456789012:${args.type.split(":").pop()!.toLowerCase()}/${name}`,
            ...(args.type === "aws:s3/bucket:Bucket" ? { bucket: args.inputs.bucket ?? name, arn: `arn:aws:s3:::${args.inputs.bucket ?? name}` } : {}),
            ...(args.type === "aws:ecs/taskDefinition:TaskDefinition" ? { arn: `arn:aws:ecs:eu-west-1:123456789012:task-definition/${args.inputs.family}:1` } : {}),
          },
        };
      },
      call(args) {
        switch (args.token) {
          case "aws:index/getRegion:getRegion":
            return { name: "eu-west-1", region: "eu-west-1", id: "eu-west-1" };
          case "aws:index/getPartition:getPartition":
            return { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws" };
          case "aws:index/getCallerIdentity:getCallerIdentity":
            return { accountId: "123456789012", arn: "arn:aws:iam::123456789012:user/ci", userId: "ci", id: "123456789012" };
          case "aws:iam/getPolicyDocument:getPolicyDocument":
            return { json: renderPolicy(args.inputs), statements: args.inputs.statements ?? [], id: "policy" };
          case "aws:index/getAvailabilityZones:getAvailabilityZones":
            return { names: ["eu-west-1a", "eu-west-1b"], zoneIds: ["euw1-az1", "euw1-az2"], id: "azs" };
          case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return { userName: "AWS", password: "mock-token", proxyEndpoint: "https://123456789012.dkr.ecr.eu-west-1.amazonaws.com", id: "ecr" };
          default:
            return { id: args.token };
        }
      },
    },
    "lifeboat",
    stage,
    false,
  );

  const g = globalThis as Record<string, unknown>;
  g.$app = { name: "lifeboat", stage, removal: stage === "production" ? "retain" : "remove", protect: stage === "production", providers: {} };
  g.$cli = { command: "deploy", paths: { home: work, root: REPO, work, platform: PLATFORM }, state: { version: {} } };
  g.$dev = false;
  const shim = await import(join(PLATFORM, "src/shim/run.js"));
  for (const [k, v] of Object.entries(shim)) g[k] = v;
  g.aws = await import("@pulumi/aws");
  g.sst = await import(join(PLATFORM, "src/components/index.ts"));

  // the config check runs first: a refused config throws here, before Pulumi's stack exists (inside it, Pulumi
  // would also report the rejection as unhandled)
  try {
    await import(join(REPO, "infra/config.ts"));
  } catch (err) {
    rpc.server.close();
    throw err;
  }
  const config = (await import(join(REPO, "sst.config.ts"))).default as { run: () => Promise<Record<string, unknown>> };
  let outputs: Record<string, unknown> = {};
  await pulumi.runtime.runInPulumiStack(async () => {
    outputs = await config.run();
    return outputs;
  });
  // resources created inside .apply() register late: wait until the count stops growing
  let last = -1;
  for (let i = 0; i < 100 && resources.length !== last; i++) {
    last = resources.length;
    await new Promise((r) => setTimeout(r, 100));
  }
  return { resources, outputs, close: () => rpc.server.close() };
}

export function ofType(resources: Recorded[], type: string): Recorded[] {
  return resources.filter((r) => r.type === type);
}

export function one(resources: Recorded[], type: string, name?: string): Recorded {
  const found = resources.filter((r) => r.type === type && (name === undefined || r.name === name));
  if (found.length !== 1) throw new Error(`expected one ${type}${name ? ` named ${name}` : ""}, found ${found.length}: ${found.map((f) => f.name).join(", ")}`);
  return found[0]!;
}
