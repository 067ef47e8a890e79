import { DEFAULT_PART_SIZE, S3_MAX_PARTS } from "./parts.js";

/**
 * What an S3-compatible provider allows, where it differs from AWS S3, from each provider's documentation:
 *
 * - aws: 10,000 parts (https://docs.aws.amazon.com/AmazonS3/latest/userguide/qfacts.html); the SDK's default request
 *   checksums (CRC32, aws-chunked bodies) are kept.
 * - r2 (Cloudflare): "All parts except the last one must be the same size", the last no larger; 10,000 parts
 *   (https://developers.cloudflare.com/r2/objects/multipart-objects).
 * - b2 (Backblaze): refuses the SDK's checksum headers (`x-amz-checksum-*`, `x-amz-sdk-checksum-algorithm`:
 *   "Unsupported header ... received for this API call", https://www.backblaze.com/docs/cloud-storage-s3-compatible-api).
 * - scaleway: 1 to 1,000 parts per object, 5 MB to 5 GB each
 *   (https://www.scaleway.com/en/docs/storage/object/api-cli/multipart-uploads/).
 * - minio, generic: AWS's part limits; checksums only when an operation requires them (many S3-compatible servers
 *   reject aws-chunked bodies); path-style addressing.
 *
 * Lifeboat's uploads always send parts of one size (all but the last, which is smaller): R2's rule needs nothing more.
 * Conditional writes are tried on every provider, and written without (with a warning, once) where a store answers
 * them 501 NotImplemented.
 */
export const S3_PROVIDERS = ["aws", "r2", "b2", "scaleway", "minio", "generic"] as const;
export type S3Provider = (typeof S3_PROVIDERS)[number];

export interface ProviderProfile {
  /** Parts a multipart upload may have. */
  maxParts: number;
  /** The SDK's default request checksums (aws-chunked bodies with trailing checksums), or only where required. */
  checksums: "when_supported" | "when_required";
  /** Path-style addressing (http://endpoint/bucket/key) unless the config says otherwise. */
  pathStyle: boolean;
}

export const PROVIDER_PROFILES: Record<S3Provider, ProviderProfile> = {
  aws: { maxParts: S3_MAX_PARTS, checksums: "when_supported", pathStyle: false },
  r2: { maxParts: 10_000, checksums: "when_required", pathStyle: true },
  b2: { maxParts: 10_000, checksums: "when_required", pathStyle: true },
  scaleway: { maxParts: 1_000, checksums: "when_required", pathStyle: true },
  minio: { maxParts: 10_000, checksums: "when_required", pathStyle: true },
  generic: { maxParts: 10_000, checksums: "when_required", pathStyle: true },
};

/** The provider of an S3 store: the one named, else AWS without an endpoint and a generic S3-compatible one with. */
export function providerOf(named: S3Provider | undefined, endpoint: string | undefined): S3Provider {
  return named ?? (endpoint ? "generic" : "aws");
}

/**
 * The size to plan parts for when a dump's size is not known in advance: what AWS's default parts would carry
 * (DEFAULT_PART_SIZE x 10,000, about 78 GiB), so that a provider with fewer parts gets larger ones instead of failing
 * at its last part (Scaleway: 80 MiB parts). `minPartSize`: a test's smaller parts, scaled the same way.
 */
export function unknownSizeBound(profile: ProviderProfile, minPartSize = DEFAULT_PART_SIZE): number | undefined {
  return profile.maxParts < S3_MAX_PARTS ? minPartSize * S3_MAX_PARTS : undefined;
}
