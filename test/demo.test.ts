import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { cli, tempDir } from "./support/helpers.js";

/** The README's first command: the whole job on embedded defaults. */
describe("lifeboat demo", () => {
  it("backs up a throwaway database to an embedded S3 server, restores it and finds it identical", async () => {
    const res = await cli(["demo", "--json"], { env: { AWS_ENDPOINT_URL_S3: "", AWS_ACCESS_KEY_ID: "", AWS_SECRET_ACCESS_KEY: "" } });
    expect(res.code, res.stderr).toBe(0);
    const out = JSON.parse(res.stdout);
    expect(out).toMatchObject({ status: "verified", schemaEqual: true, tablesEqual: true });
    expect(out.tables.map((t: { table: string }) => t.table)).toEqual(["public.customers", "public.order_items", "public.orders", "public.products"]);
    expect(out.location).toMatch(/^s3:\/\/lifeboat-demo\/demo\/shop\/\d{4}\/\d{2}\/\d{2}\/\d{8}T\d{6}Z-[0-9a-f]{4}\.dump$/);
    expect(out.manifest.object.size).toBeGreaterThan(100_000);
    const logs = res.stderr.trim().split("\n").map((l) => JSON.parse(l).msg);
    expect(logs).toContain("cleaning up");
  });

  it("--keep serves the dashboard of the backup it made, and stops it with the servers on Ctrl-C", async () => {
    let kept: { dashboard: string } | undefined;
    let page = "";
    let stdout = "";
    const res = await cli(["demo", "--keep", "--json"], {
      onStderr: (chunk, child) => {
        if (!chunk.includes("kept running") || kept) return;
        const line = chunk.split("\n").find((l) => l.includes("kept running"))!;
        kept = { dashboard: JSON.parse(line).dashboard };
        void fetch(kept.dashboard)
          .then((r) => r.text())
          .then((text) => (page = text))
          .finally(() => child.kill("SIGINT"));
      },
    }).then((r) => ((stdout = r.stdout), r));
    expect(res.code, res.stderr).toBe(0);
    expect(kept!.dashboard).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    expect(JSON.parse(stdout).kept.dashboard).toBe(kept!.dashboard);
    expect(page).toContain('data-target="shop"');
    expect(page).toContain('data-verdict="ok"');
    // stopped with the rest
    await expect(fetch(kept!.dashboard)).rejects.toThrow();
  });

  it("SIGTERM while it runs stops its PostgreSQL and S3 server, removes their directories and exits 143", async () => {
    let port: number | undefined;
    const res = await cli(["demo", "--json"], {
      onStderr: (chunk, child) => {
        const up = /"msg":"PostgreSQL [^"]+ is up","port":(\d+)/.exec(chunk);
        if (up && port === undefined) {
          port = Number(up[1]);
          child.kill("SIGTERM");
        }
      },
    });
    expect(port).toBeDefined();
    expect(res.code, res.stderr).toBe(143);
    expect(res.stderr).toContain("SIGTERM: stopping the demo");
    expect(res.stderr).toContain("interrupted by SIGTERM: stopped the demo");
    // nothing listens on its port any more (the run's teardown also checks that no lifeboat-* directory is left)
    const refused = await new Promise<boolean>((resolve) => {
      const socket = connect(port!, "127.0.0.1");
      socket.once("connect", () => (socket.destroy(), resolve(false)));
      socket.once("error", () => resolve(true));
    });
    expect(refused).toBe(true);
  });

  it("without PostgreSQL binaries, says how to install them and exits 2", async () => {
    const empty = tempDir("lifeboat-nobin-");
    const res = await cli(["demo"], { env: { LIFEBOAT_PG_BINDIR: empty } });
    expect(res.code).toBe(2);
    expect(res.stderr).toContain(`initdb was not found (searched ${empty})`);
    expect(res.stderr).toContain("apt-get install -y postgresql");
    expect(res.stderr).toContain("brew install postgresql@17");
  });
});
