// One bucket for every target: versioned, private, TLS only, encrypted, retention as lifecycle rules; and the config
// the deployment was made from, which the runner and the functions read from it.
import { MISSED_FOLDER, RUNS_FOLDER, deployedConfigKey } from "@lifeboat/core";
import { maker, type Context } from "./context";

/**
 * What Lifeboat never rewrites once stored: dumps and parts, manifests, drill results, freshness markers, run history. The bucket
 * refuses to create any of these keys without If-None-Match, from anyone ("Enforce conditional writes", S3 User
 * Guide): an object there can be written once and never overwritten, not even with the runner's own credentials.
 * CreateMultipartUpload and UploadPart take no conditional header, so only the calls that make an object
 * (s3:ObjectCreationOperation: PutObject, CompleteMultipartUpload, CopyObject) are held to it. The run record and the
 * scheduler's lease are replaced by compare-and-swap (If-Match) and stay outside.
 */
export function writeOncePaths(prefix: string): string[] {
  const under = (pattern: string) => (prefix ? `${prefix}/${pattern}` : pattern);
  return ["*.dump", "*.sql", "*.sql.gz", "*.manifest.json", "*.verify.json", `*/${MISSED_FOLDER}/*`, `*/${RUNS_FOLDER}/*`].map(under);
}

export function storage(ctx: Context, configText: $util.Output<string>) {
  const { plan } = ctx;
  const lock = plan.aws.bucket.objectLock;
  const kmsKeyArn = plan.aws.bucket.kmsKeyArn;
  const make = maker(ctx);

  const bucket = make(sst.aws.Bucket, "Backups", {
    cors: false,
    versioning: true,
    enforceHttps: true,
    policy: [
      {
        effect: "deny",
        principals: "*",
        actions: ["s3:PutObject"],
        paths: writeOncePaths(plan.prefix),
        conditions: [
          { test: "Null", variable: "s3:if-none-match", values: ["true"] },
          { test: "Bool", variable: "s3:ObjectCreationOperation", values: ["true"] },
        ],
      },
    ],
    // ids here, the full rules (expiration, transition, noncurrent versions, multipart abort) in the transform
    lifecycle: plan.lifecycle.map((r) => ({ id: r.id, prefix: r.prefix })),
    transform: {
      bucket: (args) => {
        args.bucket = plan.bucketName;
        args.forceDestroy = false; // backups are never deleted with the stack
        if (lock) args.objectLockEnabled = true;
      },
      lifecycle: (args) => {
        args.rules = plan.lifecycle.map((r) => ({
          id: r.id,
          status: "Enabled",
          filter: { prefix: r.prefix },
          ...(r.expirationDays ? { expiration: { days: r.expirationDays } } : {}),
          ...(r.noncurrentVersionDays ? { noncurrentVersionExpiration: { noncurrentDays: r.noncurrentVersionDays } } : {}),
          ...(r.abortIncompleteMultipartUploadDays ? { abortIncompleteMultipartUpload: { daysAfterInitiation: r.abortIncompleteMultipartUploadDays } } : {}),
          ...(r.transition ? { transitions: [{ days: r.transition.days, storageClass: r.transition.storageClass }] } : {}),
        }));
      },
    },
  });

  make(aws.s3.BucketServerSideEncryptionConfiguration, "BackupsEncryption", {
    bucket: bucket.name,
    rules: [
      {
        applyServerSideEncryptionByDefault: kmsKeyArn ? { sseAlgorithm: "aws:kms", kmsMasterKeyId: kmsKeyArn } : { sseAlgorithm: "AES256" },
        bucketKeyEnabled: Boolean(kmsKeyArn),
      },
    ],
  });

  if (lock) {
    make(aws.s3.BucketObjectLockConfiguration, "BackupsObjectLock", {
      bucket: bucket.name,
      rule: { defaultRetention: { mode: lock.mode, days: lock.days } },
    });
  }

  // The config, as the runner and the functions read it (they check it against its SHA-256 in their environment).
  // Outside every target's prefix: no runner may write it.
  const configKey = deployedConfigKey(plan.prefix || undefined);
  make(aws.s3.BucketObjectv2, "DeployedConfig", {
    bucket: bucket.name,
    key: configKey,
    content: configText,
    contentType: "application/json",
  });

  return { bucket, configKey };
}
