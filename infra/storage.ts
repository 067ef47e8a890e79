// One bucket for every target: versioned, private, TLS only, encrypted, retention as lifecycle rules.
import { plan } from "./config";

const lock = plan.aws.bucket.objectLock;
const kmsKeyArn = plan.aws.bucket.kmsKeyArn;

export const bucket = new sst.aws.Bucket("Backups", {
  cors: false,
  versioning: true,
  enforceHttps: true,
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
