export { createLauncher, type LauncherDeps, type LaunchResult } from "./launcher.js";
export { createSlackHandler, type SlackDeps } from "./slack.js";
export { createWatcher, type WatcherDeps, type WatchResult } from "./watcher.js";
export { createWebhookHandler } from "./webhook.js";
export { createFreshnessCheck, type FreshnessDeps } from "./freshness.js";
export { deployedConfig } from "./config.js";
