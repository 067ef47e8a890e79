// `lifeboat dashboard` and `lifeboat report` in a real browser (Playwright's playwright-core driving the system's
// Chromium) over a real store: backups, a failed run, a drill, a held lease and missed fire times made by Lifeboat
// itself against the test PostgreSQL and the local S3 server.
import { spawn, type ChildProcess } from "node:child_process";
import { request } from "node:http";
import { copyFileSync, existsSync, mkdirSync, readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { createRequire } from "node:module";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type BrowserContext, type Page } from "playwright-core";
import { S3Store, acquireLease, checkFreshness, loadConfig } from "@lifeboat/runner";
import { BIN, REPO, cli, closedPort, createDatabase, pg, s3, s3Client, tempDir, unique } from "./support/helpers.js";

const CHROMIUM = process.env.LIFEBOAT_CHROMIUM ?? "/usr/bin/chromium";
// written for a person to look at (printed below); LIFEBOAT_UPDATE_SCREENSHOTS=1 also copies them to docs/images
const SHOTS = join(REPO, "test-results", "dashboard");
// planted: the database password, a Slack webhook (a closed loopback port: the failed run's message goes nowhere), an
// environment value no page has any business showing
const SECRETS = { DASH_DB_PASSWORD: pg().password, DASH_SLACK: "", DASH_PLANTED: "planted-env-value-7f3a9c" };

let dir: string;
let configFile: string;
let prefix: string;
let identity: string;
let recipient: string;
let browser: Browser;
const servers: ChildProcess[] = [];

function configText(copies = ["local"]): string {
  const db = (name: string) => `{ host: "127.0.0.1", port: ${pg().port}, database: ${JSON.stringify(name)}, user: "postgres", password: { env: "DASH_DB_PASSWORD" } }`;
  return `export default {
  storage: { s3: { bucket: ${JSON.stringify(s3().bucket)}, prefix: ${JSON.stringify(prefix)}, endpoint: ${JSON.stringify(s3().endpoint)} } },
  targets: {
    shop: { database: ${db(shopDb)}, retention: { days: 30, keepLast: 5 }, retries: { attempts: 1 },
      copies: [${copies.map((c) => `{ name: ${JSON.stringify(c)}, directory: ${JSON.stringify(`./copy-${c}`)} }`).join(", ")}],
      encryption: { recipients: [${JSON.stringify(recipient)}], identity: { env: "DASH_AGE_IDENTITY" } } },
    broken: { database: ${db("no_such_database_here")}, retries: { attempts: 1 } },
    nightly: { database: ${db(shopDb)}, schedule: "cron(0 * * * ? *)", freshness: { graceMinutes: 5 } },
    minutely: { database: ${db(shopDb)}, schedule: "rate(1 minute)" },
    busy: { database: ${db(shopDb)} },
  },
  notifications: { slack: { webhook: { env: "DASH_SLACK" }, on: ["failed"] } },
};
`;
}

let shopDb: string;
const env = () => ({ ...SECRETS, DASH_AGE_IDENTITY: readFileSync(identity, "utf8"), CI: "1" });

/** Starts `lifeboat dashboard` and waits for the URL it prints. */
async function startDashboard(args: string[], extraEnv: NodeJS.ProcessEnv = {}): Promise<{ url: string; child: ChildProcess; stderr: () => string }> {
  const child = spawn(process.execPath, [BIN, "dashboard", "--port", "0", ...args], { cwd: dir, env: { ...process.env, ...env(), ...extraEnv }, stdio: ["ignore", "pipe", "pipe"] });
  servers.push(child);
  let out = "";
  let err = "";
  child.stderr!.on("data", (d: Buffer) => (err += d.toString()));
  const url = await new Promise<string>((resolve, reject) => {
    child.stdout!.on("data", (d: Buffer) => {
      out += d.toString();
      const m = /(http:\/\/\S+)/.exec(out);
      if (m) resolve(m[1]!);
    });
    child.once("exit", (code) => reject(new Error(`dashboard exited ${code}: ${err}`)));
  });
  return { url, child, stderr: () => err };
}

beforeAll(async () => {
  dir = tempDir("lifeboat-dash-");
  SECRETS.DASH_SLACK = `http://127.0.0.1:${await closedPort()}/services/T0/B0/PLANTEDSLACKSECRET`;
  prefix = unique("dash");
  // a shop with names that need quoting and data of several kinds
  shopDb = unique("dashshop");
  await createDatabase(
    shopDb,
    `create table customers(id int primary key, email text, profile jsonb);
     insert into customers select g, 'c' || g || '@example.com', jsonb_build_object('n', g) from generate_series(1, 500) g;
     create table "Order Lines"(id int primary key, customer int references customers, blob bytea);
     insert into "Order Lines" select g, 1 + g % 500, decode(md5(g::text), 'hex') from generate_series(1, 2000) g;`,
  );
  identity = join(dir, "age-identity.txt");
  const keygen = await cli(["keygen", "--output", identity]);
  expect(keygen.code, keygen.stderr).toBe(0);
  recipient = /age1[0-9a-z]{58}/.exec(keygen.stdout)![0];
  configFile = join(dir, "lifeboat.config.ts");
  writeFileSync(configFile, configText());

  // three backups of shop (sizes and durations for the charts), one drill of the newest; a failed run of broken
  for (let i = 0; i < 3; i++) {
    const run = await cli(["run", "shop", "--config", configFile], { env: env() });
    expect(run.code, run.stderr).toBe(0);
  }
  const drill = await cli(["verify", "shop", "--config", configFile], { env: env() });
  expect(drill.code, drill.stderr).toBe(0);
  const failed = await cli(["run", "broken", "--config", configFile], { env: env() });
  expect(failed.code).toBe(1);
  // nightly: watched by the freshness check since 3 hours ago (its clock), no backup since: its fire times are missed
  // minutely: watched since 2 minutes ago, within its grace period: late. busy: a scheduler holds its lease now.
  const config = await loadConfig(configFile);
  const store = new S3Store({ bucket: s3().bucket, prefix, endpoint: s3().endpoint }, s3Client());
  await checkFreshness(config, store, { now: new Date(Date.now() - 3 * 3600_000), only: ["nightly"], publish: async () => {} });
  await checkFreshness(config, store, { now: new Date(Date.now() - 2 * 60_000), only: ["minutely"], publish: async () => {} });
  const lease = await acquireLease(store, "busy", { ttlMs: 15 * 60_000 });
  expect(lease.taken).toBe(true);
  // a second copy of shop added after its backups: it holds none of them (degraded)
  writeFileSync(configFile, configText(["local", "late"]));

  browser = await chromium.launch({ executablePath: CHROMIUM, args: ["--no-sandbox"] });
  mkdirSync(SHOTS, { recursive: true });
  console.log(`dashboard screenshots: ${SHOTS}`);
}, 240_000);

afterAll(async () => {
  await browser?.close();
  for (const s of servers) s.kill("SIGTERM");
  await Promise.all(servers.map((s) => (s.exitCode === null && s.signalCode === null ? new Promise((r) => s.once("exit", r)) : undefined)));
});

/** A page whose every request is recorded, and whose CSP violations and console errors are collected. */
async function open(context: BrowserContext): Promise<{ page: Page; requests: string[]; problems: string[] }> {
  const page = await context.newPage();
  const requests: string[] = [];
  const problems: string[] = [];
  page.on("request", (r) => requests.push(r.url()));
  page.on("console", (m) => {
    if (m.type() === "error") problems.push(m.text());
  });
  page.on("pageerror", (e) => problems.push(e.message));
  return { page, requests, problems };
}

const AXE = readFileSync(createRequire(import.meta.url).resolve("axe-core/axe.min.js"), "utf8");
async function seriousViolations(page: Page): Promise<string[]> {
  // evaluated through the DevTools protocol, which the page's CSP does not govern (a script tag would be refused)
  await page.evaluate(AXE);
  const result = await page.evaluate(async () => (globalThis as unknown as { axe: { run: () => Promise<{ violations: Array<{ id: string; impact: string; nodes: unknown[] }> }> } }).axe.run());
  return result.violations.filter((v) => v.impact === "serious" || v.impact === "critical").map((v) => `${v.id} (${v.impact}, ${v.nodes.length} nodes)`);
}

function noSecret(text: string): void {
  for (const [name, value] of Object.entries({ ...SECRETS, AWS_SECRET_ACCESS_KEY: s3().secretAccessKey, AGE_IDENTITY: readFileSync(identity, "utf8").trim().split("\n").pop()! })) {
    expect(text.includes(value), `${name} appears in a page`).toBe(false);
  }
  expect(text).not.toContain("AGE-SECRET-KEY");
}

describe("lifeboat dashboard in a browser", () => {
  it("shows every target's verdict, fire times, charts, backups and drills; copies the restore command; stays on loopback", async () => {
    const dash = await startDashboard(["--config", configFile, "--refresh", "0"]);
    expect(dash.url).toMatch(/^http:\/\/127\.0\.0\.1:\d+\/$/);
    const origin = new URL(dash.url).origin;
    const context = await browser.newContext({ viewport: { width: 1280, height: 900 } });
    await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin });
    const { page, requests, problems } = await open(context);
    const seen: string[] = [];

    // all targets
    const overview = await page.goto(dash.url);
    expect(overview!.status()).toBe(200);
    const csp = overview!.headers()["content-security-policy"]!;
    expect(csp).toContain("default-src 'none'");
    expect(csp).toContain("script-src 'self'");
    const verdicts = Object.fromEntries(await page.$$eval("tr[data-target]", (rows) => rows.map((r) => [r.getAttribute("data-target"), r.getAttribute("data-verdict")])));
    expect(verdicts).toEqual({ shop: "ok", broken: "failing", nightly: "missed", minutely: "late", busy: "running" });
    for (const [target, verdict] of Object.entries(verdicts)) await expect(page.locator(`tr[data-target="${target}"] .verdict`).textContent()).resolves.toBe(verdict);
    // nightly: 30 hourly fire times, those of the last 3 hours missed (the newest one due instead while in its 5
    // minutes of grace), the rest from before it was watched
    const nightly = await page.$$eval('tr[data-target="nightly"] .cell', (cells) => cells.map((c) => c.getAttribute("data-outcome")));
    expect(nightly).toHaveLength(30);
    const watched = nightly.slice(nightly.indexOf("missed"));
    expect(watched.length).toBeGreaterThanOrEqual(2);
    expect(watched.length).toBeLessThanOrEqual(3);
    expect(watched.slice(0, -1).every((o) => o === "missed")).toBe(true);
    expect(["missed", "due"]).toContain(watched.at(-1));
    expect(nightly.slice(0, nightly.indexOf("missed")).every((o) => o === "before")).toBe(true);
    // shop has no schedule: its runs, the newest drilled
    await expect(page.locator('tr[data-target="shop"] .copy-degraded').textContent()).resolves.toBe("copy degraded");
    const shop = await page.$$eval('tr[data-target="shop"] .cell', (cells) => cells.map((c) => c.getAttribute("data-outcome")));
    expect(shop).toEqual(["backed-up", "backed-up", "drilled"]);
    await expect(page.$$eval('tr[data-target="broken"] .cell', (cells) => cells.map((c) => c.getAttribute("data-outcome")))).resolves.toEqual(["failed"]);
    await page.screenshot({ path: join(SHOTS, "dashboard-overview.png"), fullPage: true });
    expect(await seriousViolations(page)).toEqual([]);
    seen.push(await page.content());

    // one target: charts with a point per backup, the backups table, the restore command copied
    await page.click('tr[data-target="shop"] th a');
    await page.waitForSelector('[data-chart="size"][data-points]');
    await expect(page.getAttribute('[data-chart="size"]', "data-points")).resolves.toBe("3");
    await expect(page.getAttribute('[data-chart="duration"]', "data-points")).resolves.toBe("3");
    await expect(page.locator("table.backups tbody tr").count()).resolves.toBe(3);
    const newestId = await page.getAttribute("table.backups tbody tr:first-child", "data-backup");
    // its copies: the one written with every backup holds all three, the one added later none (degraded)
    await expect(page.locator('tr[data-copy="local"]').textContent()).resolves.toContain("3 of 3");
    await expect(page.getAttribute('tr[data-copy="local"]', "data-holds-newest")).resolves.toBe("true");
    await expect(page.getAttribute('tr[data-copy="late"]', "data-holds-newest")).resolves.toBe("false");
    await expect(page.locator('tr[data-copy="late"]').textContent()).resolves.toContain("lifeboat copy shop --to late");
    await expect(page.locator("table.backups tbody tr:first-child").textContent()).resolves.toContain("passed");
    await page.click('button[data-copy="restore-newest"]');
    await page.waitForSelector(".copied:text('copied')");
    const copied = await page.evaluate("navigator.clipboard.readText()");
    expect(copied).toBe(`npx lifeboat restore shop --from s3://${s3().bucket}/${prefix} --backup ${newestId} --to postgres://USER@HOST:5432/NEW_DATABASE --identity ./age-identity.txt`);
    await page.screenshot({ path: join(SHOTS, "dashboard-target.png"), fullPage: true });
    expect(await seriousViolations(page)).toEqual([]);
    seen.push(await page.content());

    // one backup: its tables with row counts, its drill, its encryption
    await page.click(`table.backups a[href$="${newestId}"]`);
    await expect(page.locator("h1").textContent()).resolves.toContain(newestId!);
    const rows = Object.fromEntries(await page.$$eval("table.tables tbody tr", (trs) => trs.map((tr) => [tr.children[0]!.textContent, tr.children[1]!.textContent])));
    expect(rows).toEqual({ "public.customers": "500", 'public."Order Lines"': "2,000" });
    await expect(page.locator('section.drill[data-outcome="passed"]').count()).resolves.toBe(1);
    await expect(page.locator("ul.recipients").textContent()).resolves.toContain(recipient);
    await page.screenshot({ path: join(SHOTS, "dashboard-backup.png"), fullPage: true });
    expect(await seriousViolations(page)).toEqual([]);
    seen.push(await page.content());

    expect(problems).toEqual([]);
    // a page that does not exist
    const missing = await page.goto(`${dash.url}t/nope`);
    expect(missing!.status()).toBe(404);
    await expect(page.locator("h1").textContent()).resolves.toBe("No such target");
    const noBackup = await page.goto(`${dash.url}t/shop/b/20200101T000000Z-abcd`);
    expect(noBackup!.status()).toBe(404);
    await expect(page.locator("h1").textContent()).resolves.toBe("No such backup");
    seen.push(await page.content());

    expect(requests.length).toBeGreaterThan(5);
    expect(requests.filter((r) => !r.startsWith(origin + "/"))).toEqual([]);
    for (const html of seen) noSecret(html);
    await context.close();

    if (process.env.LIFEBOAT_UPDATE_SCREENSHOTS) for (const f of ["dashboard-overview.png", "dashboard-target.png", "dashboard-backup.png"]) copyFileSync(join(SHOTS, f), join(REPO, "docs", "images", f));
  });

  it("a store that cannot be read shows a page that says so (503), and the page recovers nothing it cannot read", async () => {
    const down = await closedPort();
    const dash = await startDashboard(["--from", `s3://${s3().bucket}/${prefix}`, "--refresh", "0"], { AWS_ENDPOINT_URL_S3: `http://127.0.0.1:${down}`, AWS_MAX_ATTEMPTS: "1" });
    const context = await browser.newContext();
    const { page } = await open(context);
    const res = await page.goto(dash.url);
    expect(res!.status()).toBe(503);
    await expect(page.locator("h1").textContent()).resolves.toBe("The store cannot be read");
    await expect(page.locator(".error-message").textContent()).resolves.toContain(`s3://${s3().bucket}/${prefix}`);
    noSecret(await page.content());
    await context.close();
  });

  it("beyond loopback it asks for a token; the printed URL carries it once, then a cookie", async () => {
    const dash = await startDashboard(["--config", configFile, "--host", "0.0.0.0"]);
    const opened = new URL(dash.url);
    const token = opened.searchParams.get("token");
    expect(token).toMatch(/^[\w-]{20,}$/);
    const base = `http://127.0.0.1:${opened.port}/`;
    const context = await browser.newContext();
    const { page } = await open(context);
    const refused = await page.goto(base);
    expect(refused!.status()).toBe(401);
    await page.goto(`${base}?token=${token}`);
    expect(page.url()).toBe(base);
    await expect(page.locator("tr[data-target]").count()).resolves.toBe(5);
    await context.close();
    // a wrong token, and no token at all, from outside the browser
    expect((await fetch(base, { headers: { authorization: "Bearer wrong-token-wrong-token" } })).status).toBe(401);
    expect((await fetch(base, { headers: { authorization: `Bearer ${token}` } })).status).toBe(200);
  });

  it("on loopback it answers only to loopback names (no DNS rebinding), and refuses a port in use", async () => {
    const dash = await startDashboard(["--config", configFile]);
    const port = new URL(dash.url).port;
    // a browser sends the name it resolved in Host (fetch would not let a test set it: node:http does)
    const rebound = await new Promise<number>((resolve, reject) =>
      request(dash.url, { headers: { host: `evil.example:${port}` } }, (res) => (res.resume(), resolve(res.statusCode!))).on("error", reject).end(),
    );
    expect(rebound).toBe(421);
    const taken = await cli(["dashboard", "--config", configFile, "--port", port], { cwd: dir, env: env() });
    expect(taken.code).toBe(2);
    expect(taken.stderr).toContain(`port ${port} on 127.0.0.1 is in use`);
  });
});

describe("lifeboat report", () => {
  it("writes one HTML file that opens with networking off and shows the period's fire times, drills and settings", async () => {
    const out = join(dir, "evidence.html");
    const made = await cli(["report", "--config", configFile, "--out", out, "--since", "1d"], { cwd: dir, env: env() });
    expect(made.code, made.stderr).toBe(0);
    expect(made.stdout).toContain(`wrote ${out}`);
    const text = readFileSync(out, "utf8");
    noSecret(text);
    const context = await browser.newContext({ offline: true, javaScriptEnabled: false });
    const { page, requests, problems } = await open(context);
    await page.goto(`file://${out}`);
    expect(requests).toEqual([`file://${out}`]);
    expect(problems).toEqual([]);
    // shop: three runs backed up, one drill with its row counts and checksum; nightly: its missed fire times
    const shop = page.locator('section[data-target="shop"]');
    await expect(shop.locator("[data-fires]").getAttribute("data-fires")).resolves.toBe("3");
    await expect(shop.locator("[data-drills]").getAttribute("data-drills")).resolves.toBe("1");
    const drill = shop.locator('.drill[data-outcome="passed"]');
    await expect(drill.locator("table.tables tbody tr").count()).resolves.toBe(2);
    await expect(drill.textContent()).resolves.toMatch(/SHA-256 [0-9a-f]{64}/);
    await expect(shop.textContent()).resolves.toContain(recipient);
    await expect(shop.textContent()).resolves.toContain("days 30, keepLast 5");
    const nightly = page.locator('section[data-target="nightly"]');
    expect(await nightly.locator('tr[data-outcome="missed"]').count()).toBeGreaterThanOrEqual(2);
    await expect(page.locator('section[data-target="broken"] tr[data-outcome="failed"]').count()).resolves.toBe(1);
    // its style applies under its own CSP (a refused style sheet would leave the verdict cells unstyled)
    const color = await page.locator('section[data-target="shop"] .cell-drilled').first().evaluate((el) => (globalThis as unknown as { getComputedStyle: (e: unknown) => { backgroundColor: string } }).getComputedStyle(el).backgroundColor);
    expect(color).toBe("rgb(26, 127, 55)");
    await page.screenshot({ path: join(SHOTS, "report.png"), fullPage: true });
    expect(existsSync(join(SHOTS, "report.png"))).toBe(true);
    await context.close();
  });

  it("refuses a missing --out and an unreadable period with the fix", async () => {
    const noOut = await cli(["report", "--config", configFile], { cwd: dir, env: env() });
    expect(noOut.code).toBe(2);
    expect(noOut.stderr).toContain("--out FILE.html");
    const bad = await cli(["report", "--config", configFile, "--out", join(dir, "x.html"), "--since", "last tuesday"], { cwd: dir, env: env() });
    expect(bad.code).toBe(2);
    expect(bad.stderr).toContain("is neither a time nor a span");
    expect(bad.stderr).toContain("last tuesday");
  });
});
