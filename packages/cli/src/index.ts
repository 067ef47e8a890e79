export { main } from "./main.js";
export { startEmbeddedS3, type EmbeddedS3 } from "./local/embedded-s3.js";
export { sampleDatabaseSql } from "./local/sample.js";
export { loadConfig, findConfigFile } from "@lifeboat/runner";
