import { rmSync } from "node:fs";

/** The IAM project's global setup: once every IAM file has read the suite's recorded AWS calls, they are removed. */
export default function setup() {
  return () => rmSync(process.env.LIFEBOAT_AWS_CALLS!, { recursive: true, force: true });
}
