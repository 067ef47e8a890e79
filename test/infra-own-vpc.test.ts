import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { assertLeastPrivilege, statements } from "./support/least-privilege.js";
import { DEFAULT_REGION, one, ofType, synthesize, unwrap, type Recorded } from "./support/sst-synth.js";

/**
 * Lifeboat's own VPC (no aws.vpc: databases reachable over the internet), no region in the config, and synthesized as
 * under `sst dev`, where SST's default Lambda role would also trust the account root. A target keeps monthly backups,
 * so the runner prunes it and may delete under that target's prefix only.
 */
vi.mock("../lifeboat.config", () => ({
  default: {
    storage: { s3: { bucket: "acme-backups", prefix: "lb" } },
    targets: {
      app: { database: { host: "db.example.com", database: "app", user: "backup", password: { ssm: "/lb/app" } }, schedule: "rate(1 day)", retention: { days: 7, monthly: 12 } },
      other: { database: { url: "postgres://backup@pg.example.net/other" }, schedule: "rate(1 day)", retention: { days: 30 } },
    },
    notifications: { slack: { webhook: { ssm: "/lb/slack" } } },
  },
}));

let resources: Recorded[];
let region: string;
let close: () => void;
beforeAll(async () => {
  ({ resources, region, close } = await synthesize("dev", { dev: true }));
}, 120_000);
afterAll(() => close?.());

describe("Lifeboat's own VPC, under sst dev", () => {
  it("creates a VPC whose security group lets nothing in; tasks get a public IP in its public subnets", () => {
    expect(ofType(resources, "aws:ec2/vpc:Vpc")).toHaveLength(1);
    const sg = unwrap(one(resources, "aws:ec2/defaultSecurityGroup:DefaultSecurityGroup").inputs);
    expect(sg.ingress).toEqual([]);
    const env = unwrap(one(resources, "aws:lambda/function:Function", "LifeboatLauncherFunction").inputs).environment.variables;
    expect(env.LIFEBOAT_ASSIGN_PUBLIC_IP).toBe("true");
    expect(ofType(resources, "aws:vpc/securityGroupIngressRule:SecurityGroupIngressRule")).toEqual([]);
  });

  it("an S3 gateway endpoint (free) on the VPC's route tables: the runner's S3 traffic stays inside AWS", () => {
    const endpoint = unwrap(one(resources, "aws:ec2/vpcEndpoint:VpcEndpoint", "LifeboatS3GatewayEndpoint").inputs);
    expect({ type: endpoint.vpcEndpointType, service: endpoint.serviceName }).toEqual({ type: "Gateway", service: `com.amazonaws.${DEFAULT_REGION}.s3` });
    const tables = ofType(resources, "aws:ec2/routeTable:RouteTable").map((r) => `${r.name}-id`);
    expect(tables.length).toBeGreaterThan(0);
    expect([...endpoint.routeTableIds].sort()).toEqual(tables.sort());
  });

  it("without storage.s3.region the stack takes the deployer's default region, which the runner's SDK also uses", () => {
    expect(region).toBe(DEFAULT_REGION);
  });

  it("meets least privilege (Lambda roles trust Lambda only, even under sst dev)", () => {
    assertLeastPrivilege(resources);
  });

  it("a target with monthly retention is pruned by the runner: delete under its prefix (elsewhere dumps only), no expiration rule for it, old versions kept as long as its counts reach", () => {
    const deletes = (t: string) => statements(one(resources, "aws:iam/role:Role", t)).filter((x) => x.Action.some((a) => a.startsWith("s3:Delete")));
    expect(deletes("LifeboatRunnerAppRole")).toEqual([{ Effect: "Allow", Action: ["s3:DeleteObject"], Resource: ["arn:aws:s3:::acme-backups-dev/lb/app/*"] }]);
    expect(deletes("LifeboatRunnerOtherRole")).toEqual([
      { Effect: "Allow", Action: ["s3:DeleteObject"], Resource: ["arn:aws:s3:::acme-backups-dev/lb/other/*.dump", "arn:aws:s3:::acme-backups-dev/lb/other/*.sql", "arn:aws:s3:::acme-backups-dev/lb/other/*.sql.gz"] },
    ]);
    // no expiration for "app" (the runner prunes it), but its replaced and deleted versions are kept as long as its
    // monthly backups reach: 12 x 31 days
    expect(unwrap(one(resources, "aws:s3/bucketLifecycleConfiguration:BucketLifecycleConfiguration").inputs).rules.slice(1)).toEqual([
      { id: "retention-app", status: "Enabled", filter: { prefix: "lb/app/" }, noncurrentVersionExpiration: { noncurrentDays: 372 } },
      { id: "retention-other", status: "Enabled", filter: { prefix: "lb/other/" }, expiration: { days: 30 }, noncurrentVersionExpiration: { noncurrentDays: 30 } },
    ]);
  });
});
