import { execFileSync } from "node:child_process";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";

const HEAP = fileURLToPath(new URL("../packages/runner/src/heap.ts", import.meta.url));

/** In a process of its own (V8 flags are process-wide): how many forced young-generation collections `streamed` ran. */
function forcedYoungCollections(restore: boolean, chunks: number, chunkBytes: number): number {
  const script = `
    import { PerformanceObserver, constants } from "node:perf_hooks";
    const { heapForThroughput, streamed } = await import(${JSON.stringify(HEAP)});
    const seen = [];
    new PerformanceObserver((list) => seen.push(...list.getEntries().map((e) => e.detail))).observe({ entryTypes: ["gc"] });
    if (${restore}) heapForThroughput();
    for (let i = 0; i < ${chunks}; i++) streamed(${chunkBytes});
    await new Promise((r) => setTimeout(r, 100));
    console.log(seen.filter((d) => d.kind === constants.NODE_PERFORMANCE_GC_MINOR && d.flags & constants.NODE_PERFORMANCE_GC_FLAGS_FORCED).length);
  `;
  return Number(execFileSync(process.execPath, ["--import", "tsx", "--input-type=module", "-e", script], { encoding: "utf8" }).trim());
}

describe("heap: a restore's young-generation collections", () => {
  it("collects the young generation every 4 MiB a restore streams, and never in a process that is not restoring", () => {
    expect(forcedYoungCollections(true, 64, 256 * 1024)).toBe(4); // 16 MiB
    expect(forcedYoungCollections(true, 3, 1024 * 1024)).toBe(0); // under 4 MiB
    expect(forcedYoungCollections(false, 64, 256 * 1024)).toBe(0);
  });
});
