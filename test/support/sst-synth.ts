/**
 * Synthesizes sst.config.ts offline under Pulumi mocks, recreating what the sst CLI does before calling run():
 * the $app/$cli/$dev globals, the platform's shim ($interpolate, $jsonStringify, ...), the `aws` and `sst` globals,
 * and the CLI's JSON-RPC server (Provider.Aws.Bootstrap, Runtime.Build) that Function and Task call. Every resource
 * registered is recorded with its inputs. This leans on SST internals: re-check it on every sst upgrade
 * (../shared/notes/sst-offline.md section 3).
 */
import { createServer, type Server } from "node:http";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
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
    // type "*" with identifiers ["*"] is rendered as AWS's provider renders it: "Principal": "*"
    ...(s.principals ? { Principal: s.principals.some((p: any) => p.type === "*") ? "*" : Object.fromEntries(s.principals.map((p: any) => [p.type, p.identifiers])) } : {}),
    // several conditions of one operator go under it together, as the provider renders them
    ...(s.conditions ? { Condition: s.conditions.reduce((all: any, c: any) => ({ ...all, [c.test]: { ...all[c.test], [c.variable]: c.values } }), {}) } : {}),
  }));
  return JSON.stringify({ Version: "2012-10-17", Statement: statements });
}

async function startRpc(): Promise<{ server: Server; url: string; out: string }> {
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
  return { server, url: `http://127.0.0.1:${(server.address() as { port: number }).port}`, out };
}

/** ARNs shaped as AWS shapes them, so that IAM evaluation (test/iam.test.ts) can match them against policies. */
function arnFor(type: string, name: string, inputs: Record<string, any>, region: string): string {
  const a = ACCOUNT;
  switch (type) {
    case "aws:s3/bucket:Bucket":
      return `arn:aws:s3:::${inputs.bucket ?? name}`;
    case "aws:sns/topic:Topic":
      return `arn:aws:sns:${region}:${a}:${name}`;
    case "aws:sqs/queue:Queue":
      return `arn:aws:sqs:${region}:${a}:${name}`;
    case "aws:ecs/cluster:Cluster":
      return `arn:aws:ecs:${region}:${a}:cluster/${name}`;
    case "aws:ecs/taskDefinition:TaskDefinition":
      return `arn:aws:ecs:${region}:${a}:task-definition/${inputs.family}:1`;
    case "aws:iam/role:Role":
      return `arn:aws:iam::${a}:role/${name}`;
    case "aws:secretsmanager/secret:Secret":
      return `arn:aws:secretsmanager:${region}:${a}:secret:${name}-AbCdEf`;
    case "aws:lambda/function:Function":
      return `arn:aws:lambda:${region}:${a}:function:${name}`;
    case "aws:cloudwatch/logGroup:LogGroup":
      return `arn:aws:logs:${region}:${a}:log-group:${name}`;
    case "aws:cloudwatch/eventRule:EventRule":
      return `arn:aws:events:${region}:${a}:rule/${name}`;
    default:
      return `arn:aws:mock:${region}:${a}:${type.split(":").pop()!.toLowerCase()}/${name}`;
  }
}

export const ACCOUNT = "123456789012";
/** Every password the mocks make up starts with this: a test that finds it outside a secret's place fails. */
export const MOCK_SECRET = "mock-secret-0f9e8d";
/** The region the mocks answer when the config names none (the deployer's default region). */
export const DEFAULT_REGION = "us-east-1";

export interface SynthOptions {
  /** Synthesize as under `sst dev` ($dev = true). */
  dev?: boolean;
  /** Another SST app (its sst.config.ts, and its own .sst/platform after `sst install`); this repository's by default. */
  root?: string;
}

/**
 * Runs sst.config.ts for `stage` as the sst CLI would: app() first (its providers decide the stack's region, which
 * the mocks then answer), then run(). Returns every resource registered, once registration settles.
 */
export async function synthesize(stage: string, opts: SynthOptions = {}): Promise<{ resources: Recorded[]; outputs: Record<string, unknown>; app: Record<string, any>; region: string; close: () => void }> {
  const root = opts.root ?? REPO;
  const platform = join(root, ".sst/platform");
  if (!existsSync(join(platform, "config.d.ts"))) {
    throw new Error("the SST platform is not installed: run `npm run sst:install` (npm test does it first)");
  }
  const rpc = await startRpc();
  process.env.SST_SERVER = rpc.url;
  const work = mkdtempSync(join(tmpdir(), "lifeboat-sst-work-"));
  mkdirSync(join(work, "artifacts"), { recursive: true });

  const g = globalThis as Record<string, unknown>;
  const shim = await import(join(platform, "src/shim/run.js"));
  for (const [k, v] of Object.entries(shim)) g[k] = v;
  const sstConfig = (await import(join(root, "sst.config.ts"))).default as { app: (input: { stage: string }) => Promise<Record<string, any>>; run: () => Promise<Record<string, unknown>> };
  const app = await sstConfig.app({ stage });
  const region: string = app.providers?.aws?.region ?? DEFAULT_REGION;

  const pulumi = await import("@pulumi/pulumi");
  const resources: Recorded[] = [];
  await pulumi.runtime.setMocks(
    {
      newResource(args) {
        resources.push({ type: args.type, name: args.name, inputs: args.inputs });
        const name = args.inputs.name ?? args.inputs.bucket ?? `${args.name}-physical`;
        // what AWS makes up for an RDS instance (its endpoint) and what random makes up (a password, recognizable:
        // tests look for it where it must never be)
        if (args.type === "aws:rds/instance:Instance") {
          const port = args.inputs.port ?? 5432;
          const address = `${String(args.inputs.identifier ?? args.name).toLowerCase()}.c0ffee.${region}.rds.amazonaws.com`;
          return { id: `${args.name}-id`, state: { ...args.inputs, identifier: args.inputs.identifier ?? `${args.name.toLowerCase()}-id`, address, endpoint: `${address}:${port}`, port, resourceId: `db-${args.name.toUpperCase()}`, arn: `arn:aws:rds:${region}:${ACCOUNT}:db:${args.name.toLowerCase()}` } };
        }
        if (args.type === "aws:rds/proxy:Proxy") {
          return { id: `${args.name}-id`, state: { ...args.inputs, endpoint: `${args.name.toLowerCase()}.proxy-c0ffee.${region}.rds.amazonaws.com`, arn: `arn:aws:rds:${region}:${ACCOUNT}:db-proxy:prx-${args.name.toLowerCase()}` } };
        }
        if (args.type === "aws:rds/cluster:Cluster") {
          const host = `${String(args.inputs.clusterIdentifier ?? args.name).toLowerCase()}.cluster-c0ffee.${region}.rds.amazonaws.com`;
          return { id: `${args.name}-id`, state: { ...args.inputs, endpoint: host, readerEndpoint: host.replace(".cluster-", ".cluster-ro-"), port: args.inputs.port ?? 5432, clusterResourceId: `cluster-${args.name.toUpperCase()}`, arn: `arn:aws:rds:${region}:${ACCOUNT}:cluster:${args.name.toLowerCase()}` } };
        }
        if (args.type === "aws:rds/clusterInstance:ClusterInstance") return { id: `${args.name}-id`, state: { ...args.inputs, port: args.inputs.port ?? 5432, endpoint: `${args.name.toLowerCase()}.c0ffee.${region}.rds.amazonaws.com` } };
        if (args.type === "random:index/randomPassword:RandomPassword") return { id: `${args.name}-id`, state: { ...args.inputs, result: `${MOCK_SECRET}-${args.name}` } };
        return {
          id: `${args.name}-id`,
          state: {
            ...args.inputs,
            name,
            arn: args.inputs.arn ?? arnFor(args.type, name, args.inputs, region),
            ...(args.type === "aws:s3/bucket:Bucket" ? { bucket: args.inputs.bucket ?? name } : {}),
          },
        };
      },
      call(args) {
        switch (args.token) {
          case "aws:index/getRegion:getRegion":
            return { name: region, region, id: region };
          case "aws:index/getPartition:getPartition":
            return { partition: "aws", dnsSuffix: "amazonaws.com", id: "aws" };
          case "aws:index/getCallerIdentity:getCallerIdentity":
            return { accountId: ACCOUNT, arn: `arn:aws:iam::${ACCOUNT}:user/ci`, userId: "ci", id: ACCOUNT };
          case "aws:iam/getPolicyDocument:getPolicyDocument":
            return { json: renderPolicy(args.inputs), statements: args.inputs.statements ?? [], id: "policy" };
          case "aws:index/getAvailabilityZones:getAvailabilityZones":
            return { names: [`${region}a`, `${region}b`], zoneIds: ["az1", "az2"], id: "azs" };
          case "aws:rds/getInstance:getInstance": {
            // an instance's resource id (db-...), as RDS gives it: what rds-db:connect names; an "aurora" instance
            // belongs to a cluster (acme-aurora-1 to acme-aurora)
            const id = String(args.inputs.dbInstanceIdentifier);
            const cluster = id.includes("aurora") ? id.replace(/-\d+$/, "") : "";
            return { dbInstanceIdentifier: id, dbClusterIdentifier: cluster, resourceId: `db-${Buffer.from(id).toString("hex").toUpperCase().slice(0, 26)}`, id };
          }
          case "aws:rds/getCluster:getCluster":
            return { clusterIdentifier: args.inputs.clusterIdentifier, clusterResourceId: `cluster-${String(args.inputs.clusterIdentifier).replace(/-/g, "").toUpperCase()}`, id: args.inputs.clusterIdentifier };
          case "aws:ecr/getAuthorizationToken:getAuthorizationToken":
            return { userName: "AWS", password: "mock-token", proxyEndpoint: `https://${ACCOUNT}.dkr.ecr.${region}.amazonaws.com`, id: "ecr" };
          default:
            return { id: args.token };
        }
      },
    },
    "lifeboat",
    stage,
    false,
  );

  g.$app = { name: app.name, stage, removal: app.removal, protect: app.protect, providers: app.providers ?? {} };
  g.$cli = { command: opts.dev ? "dev" : "deploy", paths: { home: work, root, work, platform }, state: { version: {} } };
  g.$dev = Boolean(opts.dev);
  g.aws = await import("@pulumi/aws");
  g.sst = await import(join(platform, "src/components/index.ts"));

  // the config check runs first: a refused config throws here, before Pulumi's stack exists (inside it, Pulumi
  // would also report the rejection as unhandled)
  const cleanup = () => {
    rpc.server.close();
    rmSync(work, { recursive: true, force: true });
    rmSync(rpc.out, { recursive: true, force: true });
  };
  try {
    if (root === REPO) {
      const { planDeployment } = await import(join(REPO, "infra/context.ts"));
      planDeployment((await import(join(REPO, "lifeboat.config.ts"))).default, "lifeboat.config.ts");
    }
  } catch (err) {
    cleanup();
    throw err;
  }
  const config = sstConfig;
  let outputs: Record<string, unknown> = {};
  try {
    await pulumi.runtime.runInPulumiStack(async () => {
      outputs = await config.run();
      return outputs;
    });
  } catch (err) {
    cleanup();
    throw err;
  }
  // resources created inside .apply() register late: Pulumi's own queue of outstanding RPCs (registrations, calls,
  // the applies they resolve) is drained, as Pulumi does before a program ends; then a check that nothing came after
  const runtime = pulumi.runtime as unknown as { waitForRPCs(): Promise<void> };
  await runtime.waitForRPCs();
  const settled = resources.length;
  await new Promise((r) => setTimeout(r, 250));
  if (resources.length !== settled) throw new Error(`synthesis registered ${resources.length - settled} resources after Pulumi's RPC queue drained: the test harness would miss them`);
  return {
    resources,
    outputs,
    app,
    region,
    close: cleanup,
  };
}

export function ofType(resources: Recorded[], type: string): Recorded[] {
  return resources.filter((r) => r.type === type);
}

export function one(resources: Recorded[], type: string, name?: string): Recorded {
  const found = resources.filter((r) => r.type === type && (name === undefined || r.name === name));
  if (found.length !== 1) throw new Error(`expected one ${type}${name ? ` named ${name}` : ""}, found ${found.length}: ${found.map((f) => f.name).join(", ")}`);
  return found[0]!;
}
