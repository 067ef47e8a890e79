import type { Readable } from "node:stream";
import {
  AbortMultipartUploadCommand,
  DeleteObjectCommand,
  GetObjectCommand,
  ListMultipartUploadsCommand,
  S3Client,
  paginateListObjectsV2,
  type S3ClientConfig,
} from "@aws-sdk/client-s3";
import { ConditionalWriteFailed, DEFAULT_PART_SIZE, PROVIDER_PROFILES, S3_MAX_PARTS, S3_PROVIDERS, UnsupportedStoreFeature, UsageError, providerOf, unknownSizeBound, type ProviderProfile, type S3Provider, joinKey, partPlan, readDeployedConfig, type IncompleteUpload, type LifeboatConfig, type Logger, type ObjectStore, type PutOptions, type StoredObject } from "@lifeboat/core";
import { uploadStream } from "./multipart.js";

export interface S3StoreOptions {
  /** Where warnings about the store go (conditional writes it does not implement); default: a JSON line on stderr. */
  log?: Logger | undefined;
  /** S3's limits, lowered only by tests that prove the part arithmetic at small scale. */
  limits?: { maxParts?: number; minPartSize?: number } | undefined;
  bucket: string;
  prefix?: string | undefined;
  region?: string | undefined;
  endpoint?: string | undefined;
  forcePathStyle?: boolean | undefined;
  /** The provider whose rules uploads follow (default: $LIFEBOAT_S3_PROVIDER, else aws without an endpoint, generic with one). */
  provider?: S3Provider | undefined;
  /** S3 Object Lock on every object written (a copy's objectLock): the mode, and the days from the write it holds. */
  objectLock?: { mode: "GOVERNANCE" | "COMPLIANCE"; days: number } | undefined;
}

/** The store's provider and its profile (core's providers.ts). */
export function storeProvider(opts: S3StoreOptions, env: NodeJS.ProcessEnv = process.env): { provider: S3Provider; profile: ProviderProfile } {
  const fromEnv = env.LIFEBOAT_S3_PROVIDER || undefined;
  if (fromEnv !== undefined && !(S3_PROVIDERS as readonly string[]).includes(fromEnv)) {
    throw new UsageError(`LIFEBOAT_S3_PROVIDER=${fromEnv} is not a provider Lifeboat knows`, `use one of ${S3_PROVIDERS.join(", ")}`);
  }
  const provider = providerOf(opts.provider ?? (fromEnv as S3Provider | undefined), opts.endpoint || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined);
  return { provider, profile: PROVIDER_PROFILES[provider] };
}

/**
 * S3 and S3-compatible stores. The endpoint comes from the config, else AWS_ENDPOINT_URL_S3, else AWS_ENDPOINT_URL
 * (the SDK's own conventions); credentials always come from the SDK's default chain (environment, profile, SSO,
 * instance or task role).
 *
 * The provider's profile (core's providers.ts) decides the rest. With a custom endpoint (a provider other than aws):
 * path-style addressing by default, and the SDK's default request checksums switched to "when required": those send
 * aws-chunked bodies with trailing checksums, which many S3-compatible servers reject (Backblaze B2 refuses the
 * headers); integrity is kept end to end by the manifest's SHA-256, which restore and verify check. The aws profile
 * keeps the SDK's defaults, also with an endpoint (a VPC or FIPS endpoint of AWS S3 itself).
 */
export function s3ClientConfig(opts: S3StoreOptions, env: NodeJS.ProcessEnv = process.env): S3ClientConfig {
  // an empty variable is an unset one (systemd's Environment=AWS_REGION= , a shell's export AWS_REGION=)
  const endpoint = opts.endpoint || env.AWS_ENDPOINT_URL_S3 || env.AWS_ENDPOINT_URL || undefined;
  const config: S3ClientConfig = {};
  const region = opts.region || env.AWS_REGION || env.AWS_DEFAULT_REGION || (endpoint ? "us-east-1" : undefined);
  if (region) config.region = region;
  const { profile } = storeProvider(opts, env);
  if (endpoint) {
    config.endpoint = endpoint;
    config.forcePathStyle = opts.forcePathStyle ?? profile.pathStyle;
    if (profile.checksums === "when_required") {
      config.requestChecksumCalculation = "WHEN_REQUIRED";
      config.responseChecksumValidation = "WHEN_REQUIRED";
    }
  } else if (opts.forcePathStyle !== undefined) {
    config.forcePathStyle = opts.forcePathStyle;
  }
  return config;
}

/**
 * An answer that says the server does not implement a call (501 NotImplemented, 405 MethodNotAllowed: plain s3rver,
 * some S3-compatible providers), as UnsupportedStoreFeature; anything else (a network error, a 5xx) is not.
 */
export function unsupported(err: unknown, feature: string, store: string): UnsupportedStoreFeature | undefined {
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  if (e?.name === "NotImplemented" || e?.name === "MethodNotAllowed" || status === 501 || status === 405) {
    return new UnsupportedStoreFeature(feature, store, `${e.name ?? "error"}${status ? `, HTTP ${status}` : ""}`);
  }
  return undefined;
}

/**
 * S3's answers to a conditional write (https://docs.aws.amazon.com/AmazonS3/latest/userguide/conditional-writes.html):
 * 412 PreconditionFailed (If-None-Match: the key exists; If-Match: the ETag differs), 404 NoSuchKey (If-Match on a
 * key that holds nothing), 409 ConditionalRequestConflict (another conditional write of the key was in progress).
 */
export function conditionRefused(err: unknown, key: string, opts: PutOptions): ConditionalWriteFailed | undefined {
  if (!opts.ifNoneMatch && !opts.ifMatch) return undefined;
  const e = err as { name?: string; $metadata?: { httpStatusCode?: number } };
  const status = e?.$metadata?.httpStatusCode;
  if (status === 412 || e?.name === "PreconditionFailed") return new ConditionalWriteFailed(key, opts.ifNoneMatch ? "exists" : "changed");
  if (status === 409 || e?.name === "ConditionalRequestConflict") return new ConditionalWriteFailed(key, "conflict");
  if (opts.ifMatch && (status === 404 || e?.name === "NoSuchKey")) return new ConditionalWriteFailed(key, "changed");
  return undefined;
}

const stderrLogger: Logger = { log: (level, msg, fields) => process.stderr.write(JSON.stringify({ level, msg, ...fields }) + "\n") };

/** Multipart parts of an ordinary dump: memory use is about partSize x queueSize whatever the size of the dump. */
export const PART_SIZE = DEFAULT_PART_SIZE;
export const QUEUE_SIZE = partPlan(undefined).queueSize;

/**
 * The deployed config (core's readDeployedConfig: refused unless its SHA-256 is `sha256`), read from the deployment's
 * bucket: what the runner and the Lambdas run with.
 */
export function readDeployedConfigFromS3(bucket: string, key: string, sha256: string | undefined): Promise<LifeboatConfig> {
  const store = new S3Store({ bucket });
  return readDeployedConfig((k) => store.read(k), key, sha256, `s3://${bucket}/${key}`);
}

export class S3Store implements ObjectStore {
  readonly url: string;
  readonly bucket: string;
  readonly prefix: string;
  readonly client: S3Client;
  private readonly limits: S3StoreOptions["limits"];
  private readonly profile: ProviderProfile;
  private readonly log: Logger | undefined;
  private readonly objectLock: S3StoreOptions["objectLock"];
  private warnedConditions = false;

  constructor(opts: S3StoreOptions, client?: S3Client) {
    this.limits = opts.limits;
    this.objectLock = opts.objectLock;
    this.profile = storeProvider(opts).profile;
    this.log = opts.log;
    this.bucket = opts.bucket;
    this.prefix = (opts.prefix ?? "").replace(/^\/+|\/+$/g, "");
    this.client = client ?? new S3Client(s3ClientConfig(opts));
    this.url = `s3://${this.bucket}${this.prefix ? `/${this.prefix}` : ""}`;
  }

  private full(key: string): string {
    return joinKey(this.prefix, key);
  }

  location(key: string): string {
    return `s3://${this.bucket}/${this.full(key)}`;
  }

  async put(key: string, body: Readable, opts: PutOptions = {}): Promise<{ size?: number; etag?: string }> {
    const Key = this.full(key);
    // the provider's part limit; a dump of unknown size gets parts large enough for what AWS's default parts carry
    const maxParts = Math.min(this.limits?.maxParts ?? S3_MAX_PARTS, this.profile.maxParts);
    const expected = opts.expectedBytes ?? unknownSizeBound(this.profile, this.limits?.minPartSize);
    const parts = partPlan(expected, { ...this.limits, maxParts }, opts.concurrent);
    try {
      return await uploadStream({
        client: this.client,
        Bucket: this.bucket,
        Key,
        ContentType: opts.contentType ?? "application/octet-stream",
        body,
        partSize: parts.partSize,
        queueSize: parts.queueSize,
        maxParts,
        signal: opts.signal,
        conditions: { ...(opts.ifNoneMatch ? { IfNoneMatch: opts.ifNoneMatch } : {}), ...(opts.ifMatch ? { IfMatch: opts.ifMatch } : {}) },
        // retained from the write: a copy's version nobody may delete (or, in COMPLIANCE mode, shorten) before then
        ...(this.objectLock ? { objectLock: { ObjectLockMode: this.objectLock.mode, ObjectLockRetainUntilDate: new Date(Date.now() + this.objectLock.days * 86_400_000) } } : {}),
        onConditionsUnsupported: () => {
          if (this.warnedConditions) return;
          this.warnedConditions = true;
          (this.log ?? stderrLogger).log("warn", `${this.url} does not implement conditional writes (If-None-Match / If-Match): written without them`, {
            store: this.url,
            hint: "stored backups are then not protected against being overwritten, and schedulers sharing this store may both take a target's lease; use a store that implements them (AWS S3, MinIO, Cloudflare R2, ...)",
          });
        },
      });
    } catch (err) {
      await this.abortPendingUploads(Key);
      throw conditionRefused(err, key, opts) ?? err;
    }
  }

  async read(key: string): Promise<{ body: Buffer; etag: string } | undefined> {
    try {
      const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
      return { body: Buffer.from(await res.Body!.transformToByteArray()), etag: res.ETag ?? "" };
    } catch (err) {
      if ((err as { name?: string }).name === "NoSuchKey") return undefined;
      throw err;
    }
  }

  /**
   * uploadStream aborts its multipart upload when it fails; this makes sure (that abort may itself have failed),
   * because an orphaned upload is invisible storage that is billed. Errors here are not the user's problem and are ignored.
   */
  private async abortPendingUploads(Key: string): Promise<void> {
    try {
      const res = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: Key }));
      for (const u of res.Uploads ?? []) {
        if (u.Key === Key && u.UploadId) {
          await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key, UploadId: u.UploadId }));
        }
      }
    } catch {
      /* best effort */
    }
  }

  /** One DeleteObject per key: DeleteObjects needs checksums that several S3-compatible servers do not handle. */
  async delete(keys: string[]): Promise<void> {
    for (const key of keys) await this.client.send(new DeleteObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
  }

  async *incomplete(prefix: string): AsyncIterable<IncompleteUpload> {
    const strip = this.prefix ? this.prefix.length + 1 : 0;
    let KeyMarker: string | undefined;
    let UploadIdMarker: string | undefined;
    do {
      let res;
      try {
        res = await this.client.send(new ListMultipartUploadsCommand({ Bucket: this.bucket, Prefix: this.full(prefix) + (prefix.endsWith("/") ? "/" : ""), KeyMarker, UploadIdMarker }));
      } catch (err) {
        throw unsupported(err, "ListMultipartUploads", this.url) ?? err;
      }
      for (const u of res.Uploads ?? []) {
        if (u.Key && u.UploadId) yield { key: u.Key.slice(strip), id: u.UploadId, startedAt: u.Initiated ?? new Date(0) };
      }
      [KeyMarker, UploadIdMarker] = res.IsTruncated ? [res.NextKeyMarker, res.NextUploadIdMarker] : [undefined, undefined];
    } while (KeyMarker);
  }

  async removeIncomplete(upload: IncompleteUpload): Promise<void> {
    await this.client.send(new AbortMultipartUploadCommand({ Bucket: this.bucket, Key: this.full(upload.key), UploadId: upload.id }));
  }

  async get(key: string): Promise<Readable> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.full(key) }));
    return res.Body as Readable;
  }

  async getRange(key: string, start: number, end: number): Promise<Readable> {
    const res = await this.client.send(new GetObjectCommand({ Bucket: this.bucket, Key: this.full(key), Range: `bytes=${start}-${end}` }));
    return res.Body as Readable;
  }

  async *list(prefix: string): AsyncIterable<StoredObject> {
    const strip = this.prefix ? this.prefix.length + 1 : 0;
    const full = this.prefix ? `${this.prefix}/${prefix}` : prefix;
    for await (const page of paginateListObjectsV2({ client: this.client }, { Bucket: this.bucket, Prefix: full })) {
      for (const o of page.Contents ?? []) {
        if (o.Key) yield { key: o.Key.slice(strip), size: o.Size ?? 0 };
      }
    }
  }
}
