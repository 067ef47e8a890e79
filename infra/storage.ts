// One bucket for every target: versioned, private, TLS only, encrypted, retention as lifecycle rules.
import { MISSED_FOLDER } from "@lifeboat/core";
import { plan } from "./config";

const lock = plan.aws.bucket.objectLock;
const kmsKeyArn = plan.aws.bucket.kmsKeyArn;

/**
 * What Lifeboat never rewrites once stored: dumps and parts, manifests, drill results, freshness markers. The bucket
 * refuses to create any of these keys without If-None-Match, from anyone ("Enforce conditional writes", S3 User
 * Guide): an object there can be written once and never overwritten, not even with the runner's own credentials.
 * CreateMultipartUpload and UploadPart take no conditional header, so only the calls that make an object
 * (s3:ObjectCreationOperation: PutObject, CompleteMultipartUpload, CopyObject) are held to it. The run record and the
 * scheduler's lease are replaced by compare-and-swap (If-Match) and stay outside.
 */
const under = (pattern: string) => (plan.prefix ? `${plan.prefix}/${pattern}` : pattern);
export const writeOncePaths = ["*.dump", "*.sql", "*.sql.gz", "*.manifest.json", "*.verify.json", `*/${MISSED_FOLDER}/*`].map(under);

export const bucket = new sst.aws.Bucket("Backups", {
  cors: false,
  versioning: true,
  enforceHttps: true,
  policy: [
    {
      effect: "deny",
      principals: "*",
      actions: ["s3:PutObject"],
      paths: writeOncePaths,
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

new aws.s3.BucketServerSideEncryptionConfiguration("BackupsEncryption", {
  bucket: bucket.name,
  rules: [
    {
      applyServerSideEncryptionByDefault: kmsKeyArn ? { sseAlgorithm: "aws:kms", kmsMasterKeyId: kmsKeyArn } : { sseAlgorithm: "AES256" },
      bucketKeyEnabled: Boolean(kmsKeyArn),
    },
  ],
});

if (lock) {
  new aws.s3.BucketObjectLockConfiguration("BackupsObjectLock", {
    bucket: bucket.name,
    rule: { defaultRetention: { mode: lock.mode, days: lock.days } },
  });
}
