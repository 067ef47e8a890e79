#!/usr/bin/env node
// The `lifeboat` command in this repository: the TypeScript sources through tsx (the installed package runs them
// compiled: scripts/build.mjs, `npm run pack`).
import { register } from "tsx/esm/api";

register();
await import("../src/bin.ts");
