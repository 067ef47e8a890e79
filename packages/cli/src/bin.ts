// The `lifeboat` command's entry point: the package's bin/lifeboat.js is this file, compiled (scripts/build.mjs).
// The AWS SDK prints a multi-line notice on Node < 22 (its future minimum) that would break JSON-lines output;
// Lifeboat's README states the Node versions it supports instead.
import "@lifeboat/runner/heap";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
// a reader that went away (`lifeboat run --help | head -2`) is not an error: stop writing, exit quietly
for (const stream of [process.stdout, process.stderr]) {
  stream.on("error", (err: NodeJS.ErrnoException) => {
    if (err.code === "EPIPE") process.exit(process.exitCode ?? 0);
    throw err;
  });
}
const { main } = await import("./main.js");
process.exitCode = await main(process.argv);
