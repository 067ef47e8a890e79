/**
 * What the `lifeboat` package exports to users: `defineConfig` and the config's types, so that a lifeboat.config.ts
 * anywhere type-checks with `import { defineConfig } from "lifeboat"`.
 */
export { defineConfig } from "./config.js";
export type { DatabaseConfig, DumpOptions, LifeboatConfig, LifeboatConfigInput, RetentionPolicy, SecretRef, TargetConfig } from "./config.js";
export type { LifeboatEvent, BackupSucceededEvent, BackupFailedEvent, BackupMissedEvent, BackupVerifyEvent } from "./events.js";
export type { Manifest } from "./manifest.js";
