// The runner container's entry point (the package's runner.js, which packages/runner/Dockerfile runs): one run of
// LIFEBOAT_TARGET, its exit code the process's. See runnerMain for the environment and the exit codes.
import "./heap.js";
import { runnerMain } from "./main.js";

process.env.AWS_SDK_JS_NODE_VERSION_SUPPORT_WARNING_DISABLED ??= "true";
process.exitCode = await runnerMain();
