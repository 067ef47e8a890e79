import { deployedConfigKey, type LifeboatConfig } from "@lifeboat/core";
import { readDeployedConfigFromS3 } from "@lifeboat/runner";

// The deployed functions read the config the deployment was made from: one object in the bucket
// (LIFEBOAT_CONFIG_KEY), refused unless its SHA-256 is LIFEBOAT_CONFIG_SHA256. A deploy that changes the config
// changes that hash in the functions' environment, so a warm function never keeps an older config.
const cache = new Map<string, Promise<LifeboatConfig>>();
export function deployedConfig(env: NodeJS.ProcessEnv = process.env): Promise<LifeboatConfig> {
  const bucket = env.LIFEBOAT_BUCKET;
  if (!bucket) return Promise.reject(new Error("LIFEBOAT_BUCKET is not set: the deployment sets it (deploy again)"));
  const key = env.LIFEBOAT_CONFIG_KEY ?? deployedConfigKey(undefined);
  const id = `${bucket}/${key}#${env.LIFEBOAT_CONFIG_SHA256 ?? ""}`;
  let config = cache.get(id);
  if (!config) {
    config = readDeployedConfigFromS3(bucket, key, env.LIFEBOAT_CONFIG_SHA256)
      // a failed read is tried again on the next invocation
      .catch((err) => {
        cache.delete(id);
        throw err;
      });
    cache.set(id, config);
  }
  return config;
}
