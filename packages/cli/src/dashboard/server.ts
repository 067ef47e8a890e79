// `lifeboat dashboard`: a read-only web UI over a store. Hono (MIT, small, no dependencies, maintained, Web-standard
// request/response) serves it through @hono/node-server, with its secureHeaders middleware for the
// Content-Security-Policy and the other headers: chosen over Express (no CSP helper, callback style) and Fastify
// (plugins for each of these) for the few routes a dashboard needs.
import { createHash, randomBytes, timingSafeEqual } from "node:crypto";
import type { AddressInfo } from "node:net";
import { serve, type ServerType } from "@hono/node-server";
import { Hono, type Context as HonoContext } from "hono";
import { getCookie, setCookie } from "hono/cookie";
import { secureHeaders } from "hono/secure-headers";
import { BACKUP_ID, errorMessage, redact, type LifeboatConfig, type ObjectStore } from "@lifeboat/core";
import { APP_CSS, APP_JS, uplotFile } from "./assets.js";
import { StoreView, allTargets, findBackupIn } from "./model.js";
import { backupPage, errorPage, overviewPage, targetPage } from "./pages.js";

export interface DashboardOptions {
  store: ObjectStore;
  config: LifeboatConfig | undefined;
  host: string;
  port: number;
  /** Required unless host is a loopback address. */
  token?: string | undefined;
  /** Seconds between page reloads (0: none). */
  refresh: number;
  now?: () => Date;
}

export interface Dashboard {
  url: string;
  /** The URL to open (with the token, when one is needed). */
  openUrl: string;
  close(): Promise<void>;
}

const LOOPBACK = new Set(["127.0.0.1", "::1", "localhost"]);
export const isLoopback = (host: string) => LOOPBACK.has(host) || /^127\./.test(host);
const COOKIE = "lifeboat_dashboard";

export function dashboardApp(opts: DashboardOptions): Hono {
  const view = new StoreView(opts.store, opts.config);
  const now = opts.now ?? (() => new Date());
  const app = new Hono();
  const digest = (s: string) => createHash("sha256").update(s).digest();
  const expected = opts.token ? digest(opts.token) : undefined;

  app.use(
    secureHeaders({
      contentSecurityPolicy: {
        defaultSrc: ["'none'"],
        scriptSrc: ["'self'"],
        styleSrc: ["'self'"],
        imgSrc: ["'self'", "data:"],
        connectSrc: ["'self'"],
        baseUri: ["'none'"],
        formAction: ["'none'"],
        frameAncestors: ["'none'"],
      },
      referrerPolicy: "no-referrer",
      crossOriginResourcePolicy: "same-origin",
    }),
  );
  app.use(async (c, next) => {
    c.header("Cache-Control", "no-store");
    // on loopback, only pages asked for by a loopback name: a web page elsewhere cannot read this one through a DNS
    // name it points at 127.0.0.1 (DNS rebinding)
    if (!expected) {
      const host = (c.req.header("host") ?? "").replace(/:\d+$/, "").replace(/^\[|\]$/g, "");
      if (!isLoopback(host)) return c.html(errorPage("Wrong address", `This dashboard answers on its loopback address only, not as "${host}".`, "Open the URL that `lifeboat dashboard` printed."), 421);
    }
    await next();
  });

  // a token for any address but loopback: in the query once (then a cookie), or as a bearer token
  if (expected) {
    app.use(async (c, next) => {
      const given = c.req.query("token") ?? getCookie(c, COOKIE) ?? c.req.header("authorization")?.replace(/^Bearer /i, "");
      if (!given || !timingSafeEqual(digest(given), expected)) {
        return c.html(errorPage("Token needed", "This dashboard is served beyond this machine, so it asks for its token.", "Open the URL that `lifeboat dashboard` printed (it carries ?token=...), or send Authorization: Bearer <token>."), 401);
      }
      if (c.req.query("token")) {
        setCookie(c, COOKIE, given, { httpOnly: true, sameSite: "Strict", path: "/" });
        const url = new URL(c.req.url);
        url.searchParams.delete("token");
        return c.redirect(url.pathname + url.search, 303);
      }
      await next();
    });
  }

  app.get("/assets/app.css", (c) => c.body(APP_CSS, 200, { "Content-Type": "text/css; charset=utf-8" }));
  app.get("/assets/app.js", (c) => c.body(APP_JS, 200, { "Content-Type": "text/javascript; charset=utf-8" }));
  const uplotJs = uplotFile("uPlot.iife.min.js");
  const uplotCss = uplotFile("uPlot.min.css");
  app.get("/assets/uPlot.iife.min.js", (c) => c.body(uplotJs, 200, { "Content-Type": "text/javascript; charset=utf-8" }));
  app.get("/assets/uPlot.min.css", (c) => c.body(uplotCss, 200, { "Content-Type": "text/css; charset=utf-8" }));

  app.get("/", async (c) => c.html(overviewPage(await allTargets(view, now()), opts.store.url, now(), opts.refresh)));

  const known = async (c: HonoContext, name: string) => {
    const names = await view.targetNames();
    if (names.includes(name)) return true;
    c.status(404);
    return false;
  };
  app.get("/t/:target", async (c) => {
    const name = c.req.param("target");
    if (!(await known(c, name))) return c.html(errorPage("No such target", `The store ${opts.store.url} has no target "${name}".`, "Pick one from the list of all targets."), 404);
    return c.html(targetPage(await view.target(name, now()), opts.store.url, now(), opts.refresh));
  });
  app.get("/t/:target/b/:id", async (c) => {
    const name = c.req.param("target");
    const id = c.req.param("id");
    if (!(await known(c, name))) return c.html(errorPage("No such target", `The store ${opts.store.url} has no target "${name}".`, "Pick one from the list of all targets."), 404);
    const t = await view.target(name, now());
    const m = BACKUP_ID.test(id) ? findBackupIn(t, id) : undefined;
    if (!m) return c.html(errorPage("No such backup", `Target "${name}" has no backup "${id}" in ${opts.store.url}: it may have been pruned.`, "Its backups are listed on the target's page."), 404);
    return c.html(backupPage(t, m, opts.store.url, now()));
  });
  app.notFound((c) => c.html(errorPage("Not found", `Nothing here: ${new URL(c.req.url).pathname}`, "The dashboard has a page for all targets, one per target and one per backup."), 404));
  // a store that cannot be read (down, credentials refused, a missing bucket): a page that says so, and retries
  app.onError((err, c) =>
    c.html(
      errorPage("The store cannot be read", `Reading ${opts.store.url} failed: ${redact(errorMessage(err))}`, "Check that the store is up and that the credentials in this shell may list and read it; this page retries on reload."),
      503,
    ),
  );
  return app;
}

/** Starts the server; resolves once it listens (rejects with a clear error when the port is taken). */
export async function startDashboard(opts: DashboardOptions): Promise<Dashboard> {
  const app = dashboardApp(opts);
  const server: ServerType = await new Promise((resolve, reject) => {
    const s = serve({ fetch: app.fetch, hostname: opts.host, port: opts.port }, () => resolve(s));
    s.once("error", reject);
  });
  const address = server.address() as AddressInfo;
  const host = address.family === "IPv6" ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}/`;
  return {
    url,
    openUrl: opts.token ? `${url}?token=${encodeURIComponent(opts.token)}` : url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        if ("closeAllConnections" in server) server.closeAllConnections();
      }),
  };
}

export function newToken(): string {
  return randomBytes(18).toString("base64url");
}
