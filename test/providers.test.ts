// Provider profiles (core's providers.ts) against the local S3 server made strict in the way each provider differs
// from AWS S3 (embedded-s3.ts ProviderRules, as each provider documents it): each rule refuses what Lifeboat sends
// without the profile (or what another client sends), and Lifeboat's upload passes with it.
import { randomBytes, createHash } from "node:crypto";
import { Readable } from "node:stream";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { CompleteMultipartUploadCommand, CreateMultipartUploadCommand, S3Client, UploadPartCommand } from "@aws-sdk/client-s3";
import { PROVIDER_PROFILES, deployPlan, parseConfig, partPlan, unknownSizeBound, S3_MAX_PARTS, MiB } from "@lifeboat/core";
import { S3Store, s3ClientConfig } from "@lifeboat/runner";
import { startEmbeddedS3, type EmbeddedS3 } from "@lifeboat/cli";

const servers: EmbeddedS3[] = [];
async function strict(rules: NonNullable<Parameters<typeof startEmbeddedS3>[0]>["rules"]): Promise<EmbeddedS3> {
  const s = await startEmbeddedS3({ bucket: "providers", rules });
  servers.push(s);
  return s;
}
afterAll(async () => {
  await Promise.all(servers.map((s) => s.stop()));
});

/** Puts `bytes` through a store of this provider (no size told in advance, as a streamed dump), and reads it back. */
async function roundTrip(server: EmbeddedS3, provider: "aws" | "b2" | "r2" | "scaleway" | "generic", bytes: Buffer, limits?: { minPartSize?: number }): Promise<string> {
  const store = new S3Store({ bucket: server.bucket, prefix: provider, endpoint: server.endpoint, provider, ...(limits ? { limits } : {}) });
  const chunks = Array.from({ length: Math.ceil(bytes.length / 65536) }, (_, i) => bytes.subarray(i * 65536, (i + 1) * 65536));
  await store.put("dump.bin", Readable.from(chunks));
  const back = await store.read("dump.bin");
  return createHash("sha256").update(back!.body).digest("hex");
}

describe("Backblaze B2: no checksum headers", () => {
  let server: EmbeddedS3;
  beforeAll(async () => {
    server = await strict({ noChecksumHeaders: true });
  });
  it("the SDK's default checksums (the aws profile) are refused as B2 refuses them; the b2 profile sends none", async () => {
    const bytes = randomBytes(12 * MiB + 5);
    await expect(roundTrip(server, "aws", bytes)).rejects.toThrow(/Unsupported header 'x-amz-(checksum-[a-z0-9]+|sdk-checksum-algorithm|trailer)' received for this API call/);
    await expect(roundTrip(server, "b2", bytes)).resolves.toBe(createHash("sha256").update(bytes).digest("hex"));
  });
  it("the profile sets the client: checksums only when required, path-style addressing", () => {
    expect(s3ClientConfig({ bucket: "b", endpoint: "https://s3.eu-central-003.backblazeb2.com", provider: "b2" })).toMatchObject({ requestChecksumCalculation: "WHEN_REQUIRED", responseChecksumValidation: "WHEN_REQUIRED", forcePathStyle: true });
    const aws = s3ClientConfig({ bucket: "b", endpoint: "https://bucket.vpce-1a2b.s3.eu-west-1.vpce.amazonaws.com", provider: "aws" });
    expect(aws.requestChecksumCalculation).toBeUndefined();
    expect(aws.forcePathStyle).toBe(false);
  });
});

describe("Scaleway: at most 1,000 parts", () => {
  let server: EmbeddedS3;
  beforeAll(async () => {
    server = await strict({ maxParts: 1000 });
  });
  it("a dump of unknown size gets parts large enough for 1,000 (at small scale: 1 KiB parts for the generic profile)", async () => {
    // 1,025 KiB in parts of 1 KiB: part 1,001 is refused as Scaleway refuses it; with the profile, parts grow instead
    const bytes = randomBytes(1025 * 1024);
    await expect(roundTrip(server, "generic", bytes, { minPartSize: 1024 })).rejects.toThrow(/Part number must be an integer between 1 and 1000/);
    await expect(roundTrip(server, "scaleway", bytes, { minPartSize: 1024 })).resolves.toBe(createHash("sha256").update(bytes).digest("hex"));
  });
  it("at full scale: 80 MiB parts for a dump of unknown size (what AWS's 8 MiB x 10,000 carry), sized to fit a known one", () => {
    const profile = PROVIDER_PROFILES.scaleway;
    const unknown = partPlan(unknownSizeBound(profile), { maxParts: profile.maxParts });
    expect(unknown.partSize).toBe(80 * MiB);
    expect(unknown.capacity).toBeGreaterThanOrEqual(partPlan(undefined).capacity);
    // a 2 TB database's dump bound: parts of at least bound / 1,000
    const bound = 2e12;
    const known = partPlan(bound, { maxParts: profile.maxParts });
    expect(known.partSize * profile.maxParts).toBeGreaterThanOrEqual(bound);
    expect(unknownSizeBound(PROVIDER_PROFILES.aws)).toBeUndefined();
    expect(PROVIDER_PROFILES.aws.maxParts).toBe(S3_MAX_PARTS);
  });
});

describe("Cloudflare R2: equal parts", () => {
  let server: EmbeddedS3;
  beforeAll(async () => {
    server = await strict({ equalParts: true });
  });
  it("refuses parts of different sizes (as R2 does), and Lifeboat's parts are always equal with a smaller last one", async () => {
    const client = Object.assign(new S3Client({ ...s3ClientConfig({ bucket: server.bucket, endpoint: server.endpoint }), credentials: { accessKeyId: server.accessKeyId, secretAccessKey: server.secretAccessKey } }), { [Symbol.for("lifeboat.test-client")]: true });
    const Key = "unequal.bin";
    const { UploadId } = await client.send(new CreateMultipartUploadCommand({ Bucket: server.bucket, Key }));
    const parts = [];
    for (const [n, size] of [[1, 5 * MiB], [2, 6 * MiB], [3, 1000]] as const) {
      const res = await client.send(new UploadPartCommand({ Bucket: server.bucket, Key, UploadId, PartNumber: n, Body: randomBytes(size) }));
      parts.push({ PartNumber: n, ETag: res.ETag });
    }
    await expect(client.send(new CompleteMultipartUploadCommand({ Bucket: server.bucket, Key, UploadId, MultipartUpload: { Parts: parts } }))).rejects.toThrow("All non-trailing parts must have the same length.");
    // Lifeboat: 8 MiB parts and a last one of 3 MiB + 7 bytes
    const bytes = randomBytes(27 * MiB + 7);
    await expect(roundTrip(server, "r2", bytes)).resolves.toBe(createHash("sha256").update(bytes).digest("hex"));
  });
});

describe("the provider in the config", () => {
  it("is one of the profiles, named in the error otherwise; the AWS deployment refuses any but aws", () => {
    const config = (provider: string) => ({ storage: { s3: { bucket: "acme-backups", endpoint: "https://example.r2.cloudflarestorage.com", provider } }, targets: { app: { database: { url: "postgres://u@db.example.com/d" } } } });
    expect(parseConfig(config("r2")).storage.s3!.provider).toBe("r2");
    expect(() => parseConfig(config("wasabi"))).toThrow(/storage\.s3\.provider: is not a provider Lifeboat knows: aws, r2, b2, scaleway, minio, generic/);
    expect(() => deployPlan(parseConfig({ ...config("r2"), storage: { s3: { bucket: "acme-backups", provider: "r2" } } }), "production")).toThrow(/storage\.s3\.provider: is r2: the AWS deployment makes its bucket in AWS S3/);
    expect(() => deployPlan(parseConfig({ ...config("r2"), storage: { s3: { bucket: "acme-backups", provider: "aws" } } }), "production")).not.toThrow();
  });
});
