#!/usr/bin/env node
// The `lifeboat` command. Lifeboat's packages are TypeScript run through tsx (no build step), which also lets the
// CLI load a lifeboat.config.ts.
import { register } from "tsx/esm/api";

// The AWS SDK prints a multi-line notice on Node < 22 (its future minimum) that would break JSON-lines output;
// Lifeboat's README states the Node versions it supports instead.
process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
register();
const { main } = await import("../src/main.ts");
process.exitCode = await main(process.argv);
