import type { StorageConfig } from "./config.js";
import { UsageError } from "./errors.js";

/**
 * Store URLs, accepted by --to / --from:
 *   s3://bucket/optional/prefix     S3 or any S3-compatible store (endpoint from AWS_ENDPOINT_URL_S3 / AWS_ENDPOINT_URL)
 *   file:///absolute/path           a directory
 */
export function parseStoreUrl(url: string): StorageConfig {
  const parsed = (() => {
    try {
      return new URL(url);
    } catch {
      throw new UsageError(`"${url}" is not a store URL`, "use s3://bucket/prefix or file:///absolute/path");
    }
  })();
  if (parsed.protocol === "s3:") {
    const bucket = parsed.hostname;
    if (!bucket) throw new UsageError(`"${url}" has no bucket`, "use s3://bucket/prefix");
    if (parsed.search) throw new UsageError(`"${url}": store URLs take no query string`, "set the endpoint with AWS_ENDPOINT_URL_S3 or in lifeboat.config.ts");
    return { s3: { bucket, prefix: decodeURIComponent(parsed.pathname).replace(/^\/+|\/+$/g, "") } };
  }
  if (parsed.protocol === "file:") {
    if (parsed.hostname && parsed.hostname !== "localhost") {
      throw new UsageError(`"${url}" names a host; file URLs need an absolute path`, "use file:///absolute/path (three slashes)");
    }
    return { directory: decodeURIComponent(parsed.pathname) };
  }
  throw new UsageError(`"${url}": unsupported store scheme ${parsed.protocol}`, "use s3://bucket/prefix or file:///absolute/path");
}
