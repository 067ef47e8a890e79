export * from "./compression.js";
export * from "./config.js";
export * from "./errors.js";
export * from "./events.js";
export * from "./manifest.js";
export * from "./naming.js";
export * from "./ports.js";
export * from "./redact.js";
export * from "./schedule.js";
export * from "./store-url.js";

export const LIFEBOAT_VERSION = "0.1.0";
/** The SST version Lifeboat's component is built and tested with (`lifeboat init` pins it; package.json's devDependencies.sst). */
export const SST_VERSION = "4.17.1";
export * from "./slack.js";
export * from "./deploy.js";
export * from "./launch.js";
export * from "./schedule-eval.js";
export * from "./retention.js";
export * from "./parts.js";
export * from "./providers.js";
export * from "./freshness.js";
export * from "./deployed-config.js";
