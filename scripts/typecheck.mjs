#!/usr/bin/env node
// The two type-checks (the packages and tests; the infrastructure against SST's platform types) side by side: each is
// one single-threaded tsc, so on two cores together they take the time of the longer. Exit 1 if either fails, with
// both outputs.
import { spawn } from "node:child_process";

const run = (project) =>
  new Promise((resolve) => {
    const child = spawn(process.execPath, ["node_modules/typescript/bin/tsc", "--noEmit", "-p", project], { stdio: ["ignore", "pipe", "pipe"] });
    let out = "";
    child.stdout.on("data", (d) => (out += d));
    child.stderr.on("data", (d) => (out += d));
    child.on("close", (code) => resolve({ project, code, out }));
  });

const results = await Promise.all([run("tsconfig.json"), run("tsconfig.infra.json")]);
for (const r of results) {
  if (r.out) process.stdout.write(r.out);
  console.log(`tsc -p ${r.project}: ${r.code === 0 ? "ok" : `failed (exit ${r.code})`}`);
}
process.exit(results.every((r) => r.code === 0) ? 0 : 1);
