/**
 * The first half of test/iam-sst-app.test.ts, run beside the suite's other files: an SST app outside this repository
 * installs the packed tarball and sst, runs `sst install`, and its sst.config.ts (a Vpc, Postgres and Aurora
 * databases, the Backups component with targets on them) type-checks against SST's platform types and lifeboat/sst's.
 * The IAM project synthesizes and checks it once the suite has recorded its AWS calls, then removes it.
 */
import { describe, expect, it } from "vitest";
import { prepareOutsideApp } from "./support/outside-app.js";
import { typeCheckApp } from "./support/sst-app.js";

describe("an SST app outside this repository, with lifeboat installed from the tarball", () => {
  it("installs, and type-checks against SST's platform types and lifeboat/sst's", () => {
    const app = prepareOutsideApp();
    const tsc = typeCheckApp(app);
    expect(tsc.status, tsc.output).toBe(0);
  }, 600_000);
});
