import { parseConfig, type LifeboatConfig } from "@lifeboat/core";
// The deployed functions carry the same config the deployment was made from (bundled by esbuild at deploy time).
import raw from "../../../lifeboat.config.js";

let cached: LifeboatConfig | undefined;
export function bundledConfig(): LifeboatConfig {
  cached ??= parseConfig(raw, "lifeboat.config.ts");
  return cached;
}
