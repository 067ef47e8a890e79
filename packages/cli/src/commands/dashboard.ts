import { UsageError } from "@lifeboat/core";
import type { Context } from "../context.js";
import { wholeNumber } from "../options.js";

export interface DashboardCommandOptions {
  from?: string;
  host?: string;
  port?: string;
  token?: string;
  refresh?: string;
}

/**
 * `lifeboat dashboard`: serves the read-only web UI over the config's store (or --from any store) until Ctrl-C.
 * Loopback by default; any other address needs a token (--token, $LIFEBOAT_DASHBOARD_TOKEN, or one made up and
 * printed in the URL to open).
 */
export async function dashboardCommand(ctx: Context, opts: DashboardCommandOptions): Promise<number> {
  const { isLoopback, newToken, startDashboard } = await import("../dashboard/server.js");
  const host = opts.host ?? "127.0.0.1";
  const port = wholeNumber(opts.port, "--port", 0, 65535) ?? 8080;
  const refresh = wholeNumber(opts.refresh, "--refresh", 0, 86_400) ?? 30;
  const given = opts.token ?? process.env.LIFEBOAT_DASHBOARD_TOKEN;
  if (given !== undefined && given.length < 16) throw new UsageError("the dashboard's token is shorter than 16 characters", "use a long random one (openssl rand -base64 24), or leave it out to have one made up");
  const token = isLoopback(host) ? undefined : (given ?? newToken());
  const config = (await ctx.config(Boolean(opts.from)))?.config;
  const store = await ctx.store(opts.from, "--from");
  let dashboard;
  try {
    dashboard = await startDashboard({ store, config, host, port, token, refresh });
  } catch (err) {
    const code = (err as NodeJS.ErrnoException).code;
    if (code === "EADDRINUSE") throw new UsageError(`port ${port} on ${host} is in use`, "pass --port with another port (--port 0 picks a free one)");
    if (code === "EADDRNOTAVAIL" || code === "ENOTFOUND") throw new UsageError(`cannot listen on ${host}: no such address on this machine`, "pass --host 127.0.0.1 (the default), or an address of this machine");
    throw err;
  }
  // a token made up here is printed once, in the URL to open; one given is never printed
  const shown = token && given === undefined ? dashboard.openUrl : dashboard.url;
  ctx.out.log("info", `dashboard of ${store.url} at ${shown}${token && given !== undefined ? " (with the token you gave)" : ""}; Ctrl-C stops it`);
  ctx.out.result(`Open ${shown}`, { url: dashboard.url, store: store.url, tokenRequired: Boolean(token) });
  await new Promise<void>((resolve) => {
    process.once("SIGINT", () => resolve());
    process.once("SIGTERM", () => resolve());
  });
  await dashboard.close();
  return 0;
}
