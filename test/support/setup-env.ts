import { afterAll, inject } from "vitest";
import { removeTempDirs, stopCliChildren } from "./helpers.js";

// The S3 API server for this run, through the AWS SDK's own conventions (endpoint and credential chain).
const s3 = inject("s3");
process.env.AWS_ENDPOINT_URL_S3 = s3.endpoint;
process.env.AWS_ACCESS_KEY_ID = s3.accessKeyId;
process.env.AWS_SECRET_ACCESS_KEY = s3.secretAccessKey;
process.env.AWS_REGION = s3.region;
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED = "true";
delete process.env.AWS_PROFILE;

// every `lifeboat` process a test started and left running (a test that timed out) is stopped when its file ends,
// then every directory a test made with tempDir() goes
afterAll(async () => {
  await stopCliChildren();
  removeTempDirs();
});
