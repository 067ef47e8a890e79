// The dashboard's pages, rendered on the server as HTML: every value goes through hono/html's `html` template, which
// escapes it (no page can be broken, or scripted, by a target name, a table name or an error message). Pages read
// well without scripts; the one script (assets.ts) draws the charts, copies commands and refreshes.
import { html, raw } from "hono/html";
import { LIFEBOAT_VERSION, backupObjects, backupSize, formatAge, formatBytes, formatDuration, type Manifest } from "@lifeboat/core";
import type { VerifyResult } from "@lifeboat/runner";
import type { FireCell, FireOutcome, TargetView } from "./model.js";

type Html = ReturnType<typeof html>;

export const OUTCOME_TEXT: Record<FireOutcome, string> = {
  drilled: "backed up, drill passed",
  "drill-failed": "backed up, drill FAILED",
  "backed-up": "backed up",
  failed: "run failed",
  missed: "missed",
  due: "due (within its grace period)",
  before: "before the target was first seen",
};

/** One page: the layout every page shares. `refresh`: seconds between reloads (0: none). */
export function layout(title: string, body: Html, opts: { refresh: number; crumbs?: Array<[string, string]> }): Html {
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
${opts.refresh > 0 ? html`<meta http-equiv="refresh" content="${opts.refresh}">` : ""}
<title>${title} · Lifeboat</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="/assets/uPlot.min.css">
<link rel="stylesheet" href="/assets/app.css">
<script src="/assets/uPlot.iife.min.js" defer></script>
<script src="/assets/app.js" defer></script>
</head>
<body>
<header><a class="brand" href="/">Lifeboat</a>${(opts.crumbs ?? []).map(([href, text]) => html` <span aria-hidden="true">›</span> <a href="${href}">${text}</a>`)}</header>
<main>
${body}
</main>
<footer>Lifeboat ${LIFEBOAT_VERSION} · read-only view of the store${opts.refresh > 0 ? ` · refreshes every ${opts.refresh} s` : ""}</footer>
</body>
</html>`;
}

export function verdictBadge(verdict: string): Html {
  return html`<span class="verdict verdict-${verdict}">${verdict}</span>`;
}

function when(iso: string | null | undefined, now: Date): Html | string {
  if (!iso) return "—";
  return html`<time datetime="${iso}" title="${iso}">${iso.replace(/\.\d+Z$/, "Z").replace("T", " ")}</time> <span class="age">(${relative(iso, now)})</span>`;
}

function relative(iso: string, now: Date): string {
  const ms = now.getTime() - Date.parse(iso);
  return ms >= 0 ? `${formatAge(ms)} ago` : `in ${formatAge(-ms)}`;
}

/** A row of fire times, oldest first, each a square with its outcome in words (title and the accessible name). */
export function strip(t: TargetView): Html {
  const cell = (c: FireCell) => {
    const label = `${c.at.replace(/\.\d+Z$/, "Z")}: ${OUTCOME_TEXT[c.outcome]}${c.backupId ? ` (${c.backupId})` : ""}`;
    return c.backupId
      ? html`<a class="cell cell-${c.outcome}" href="/t/${encodeURIComponent(t.name)}/b/${c.backupId}" title="${label}" aria-label="${label}" data-outcome="${c.outcome}"></a>`
      : html`<span class="cell cell-${c.outcome}" title="${label}" role="img" aria-label="${label}" data-outcome="${c.outcome}"></span>`;
  };
  return html`<div class="strip" data-cells="${t.fires.length}">${t.fires.map(cell)}</div>`;
}

export function legend(): Html {
  return html`<ul class="legend">${(Object.keys(OUTCOME_TEXT) as FireOutcome[]).map((o) => html`<li><span class="cell cell-${o}" aria-hidden="true"></span>${OUTCOME_TEXT[o]}</li>`)}</ul>`;
}

export function overviewPage(targets: TargetView[], storeUrl: string, now: Date, refresh: number): Html {
  const rows = targets.map((t) => {
    const s = t.status;
    const drill = s.latestDrill;
    return html`<tr data-target="${t.name}" data-verdict="${s.verdict}">
<th scope="row"><a href="/t/${encodeURIComponent(t.name)}">${t.name}</a></th>
<td>${verdictBadge(s.verdict)}${t.copies.some((c) => !c.holdsNewest) ? html`<div class="copy-degraded">copy degraded</div>` : ""}</td>
<td>${strip(t)}<div class="strip-note">${t.firesAreRuns ? `last ${t.fires.length} runs (no schedule)` : `last ${t.fires.length} fire times`}</div></td>
<td>${s.newestBackup ? html`${formatAge(s.newestBackup.ageMs)} ago<br><span class="muted">${formatBytes(s.newestBackup.size)}</span>` : "no backup yet"}</td>
<td>${drill ? html`${drill.outcome}<br><span class="muted">${relative(drill.verifiedAt, now)}</span>` : "never"}</td>
<td>${s.dueSince ? html`due since ${when(s.dueSince, now)}` : s.nextFireTime ? when(s.nextFireTime, now) : s.schedule ? "—" : "manual"}</td>
</tr>`;
  });
  return layout(
    "All targets",
    html`<h1>Backups</h1>
<p class="muted">Store <code>${storeUrl}</code> · ${targets.length} target${targets.length === 1 ? "" : "s"} · as of ${when(now.toISOString(), now)}</p>
${targets.length
  ? html`<table class="targets">
<thead><tr><th scope="col">Target</th><th scope="col">Verdict</th><th scope="col">Fire times</th><th scope="col">Newest backup</th><th scope="col">Latest drill</th><th scope="col">Next</th></tr></thead>
<tbody>${rows}</tbody>
</table>
${legend()}`
  : html`<p class="empty">No backups in this store yet. Run <code>lifeboat run</code>, or point the dashboard at another store with <code>--from</code>.</p>`}`,
    { refresh },
  );
}

/** The command that restores this backup, to copy: the --to database is the reader's to fill in. */
export function restoreCommand(t: TargetView, m: Manifest, storeUrl: string): string {
  const q = (s: string) => (/^[\w@%+=:,./-]+$/.test(s) ? s : `'${s.replace(/'/g, `'\\''`)}'`);
  const to = m.format === "sqlite" ? ["--to-file", "./restored.sqlite"] : ["--to", "postgres://USER@HOST:5432/NEW_DATABASE"];
  const identity = m.encryption ? ["--identity", "./age-identity.txt"] : [];
  return ["npx", "lifeboat", "restore", q(t.name), "--from", q(storeUrl), "--backup", m.id, ...to, ...identity].join(" ");
}

function copyBox(command: string, id: string): Html {
  return html`<div class="copy"><code id="${id}" tabindex="0">${command}</code><button type="button" data-copy="${id}">Copy</button><span class="copied" role="status" aria-live="polite"></span></div>`;
}

function drillText(d: VerifyResult | undefined): Html | string {
  if (!d) return "not drilled";
  return html`<span class="drill-${d.outcome}">${d.outcome}</span> <span class="muted">${d.verifiedAt.slice(0, 16).replace("T", " ")}, restore ${formatDuration(d.restoreMs)}</span>`;
}

export function targetPage(t: TargetView, storeUrl: string, now: Date, refresh: number): Html {
  const s = t.status;
  const chronological = [...t.backups].reverse();
  const chart = {
    t: chronological.map((m) => Math.round(Date.parse(m.startedAt) / 1000)),
    size: chronological.map((m) => backupSize(m)),
    duration: chronological.map((m) => Math.round(m.durationMs) / 1000),
  };
  const newest = t.backups[0];
  const missed = [...new Set([...s.missedFireTimes, ...t.reportedMissed, ...t.fires.filter((f) => f.outcome === "missed").map((f) => f.at)])].sort().reverse();
  const failedRuns = t.runs.filter((r) => r.outcome === "failed").slice(0, 10);
  return layout(
    t.name,
    html`<h1>${t.name} ${verdictBadge(s.verdict)}</h1>
<dl class="facts">
<dt>Schedule</dt><dd>${s.schedule ? html`<code>${s.schedule}</code>${t.config?.timezone ? ` (${t.config.timezone})` : ""}` : "none (manual runs)"}</dd>
<dt>Next fire time</dt><dd>${s.dueSince ? html`due since ${when(s.dueSince, now)}` : when(s.nextFireTime, now)}</dd>
<dt>Newest backup</dt><dd>${s.newestBackup ? html`<a href="/t/${encodeURIComponent(t.name)}/b/${s.newestBackup.id}">${s.newestBackup.id}</a>, ${formatAge(s.newestBackup.ageMs)} old, ${formatBytes(s.newestBackup.size)}` : "none yet"}</dd>
<dt>Last run</dt><dd>${s.lastRun ? html`${s.lastRun.outcome} ${when(s.lastRun.finishedAt, now)}${s.lastRun.outcome === "failed" ? html`<pre class="error">${s.lastRun.code ? `${s.lastRun.code}: ` : ""}${s.lastRun.error ?? ""}</pre>` : ""}` : "none recorded"}</dd>
<dt>Backups kept</dt><dd>${t.backups.length}</dd>
</dl>
<h2>Fire times</h2>
${strip(t)}
${legend()}
<h2>Size and duration</h2>
${chronological.length
  ? html`<div class="charts">
<figure><figcaption id="cap-size">Size of each backup (bytes, as stored)</figcaption><div class="chart" data-chart="size" role="img" aria-labelledby="cap-size"></div></figure>
<figure><figcaption id="cap-duration">Duration of each backup (seconds)</figcaption><div class="chart" data-chart="duration" role="img" aria-labelledby="cap-duration"></div></figure>
</div>
<script type="application/json" id="chart-data">${raw(JSON.stringify(chart).replace(/</g, "\\u003c"))}</script>`
  : html`<p class="empty">No backup yet.</p>`}
${newest
  ? html`<h2>Restore the newest backup</h2>
${copyBox(restoreCommand(t, newest, storeUrl), "restore-newest")}
<p class="muted">Create the database first (<code>createdb</code>), or restore beside the live one and swap: see <code>lifeboat restore --help</code>.</p>`
  : ""}
<h2>Backups</h2>
${t.backups.length
  ? html`<table class="backups">
<thead><tr><th scope="col">Backup</th><th scope="col">Started (UTC)</th><th scope="col">Size</th><th scope="col">Duration</th><th scope="col">Objects</th><th scope="col">Encryption</th><th scope="col">Drill</th><th scope="col">SHA-256</th></tr></thead>
<tbody>${t.backups.map(
      (m) => html`<tr data-backup="${m.id}">
<th scope="row"><a href="/t/${encodeURIComponent(t.name)}/b/${m.id}">${m.id}</a>${m.kind === "globals" ? " (globals)" : t.config?.databases || t.config?.all ? html` <span class="muted">${m.database.name}</span>` : ""}</th>
<td>${m.startedAt.replace(/\.\d+Z$/, "Z").replace("T", " ")}</td>
<td>${formatBytes(backupSize(m))}</td>
<td>${formatDuration(m.durationMs)}</td>
<td>${m.parts?.length ? `${m.parts.length + 1} (set)` : "1"}</td>
<td>${m.encryption ? `age, ${m.encryption.recipients.length} recipient${m.encryption.recipients.length === 1 ? "" : "s"}` : "none"}</td>
<td>${drillText(t.drills.get(m.id)?.[0])}</td>
<td><code class="sha">${m.object.sha256.slice(0, 16)}…</code></td>
</tr>`,
    )}</tbody></table>`
  : html`<p class="empty">No backups kept.</p>`}
${t.copies.length
  ? html`<h2>Copies</h2>
<table class="copies"><thead><tr><th scope="col">Copy</th><th scope="col">Store</th><th scope="col">Backups held</th><th scope="col">Newest backup</th></tr></thead>
<tbody>${t.copies.map(
      (c) => html`<tr data-copy="${c.name}" data-holds-newest="${String(c.holdsNewest)}"><th scope="row">${c.name}</th><td><code>${c.url}</code></td><td>${c.error ? html`<span class="drill-failed">cannot be read: ${c.error}</span>` : `${c.held} of ${t.backups.length}`}</td><td>${c.holdsNewest ? "held" : html`<span class="drill-failed">DEGRADED: missing</span> <code>lifeboat copy ${t.name} --to ${c.name}</code>`}</td></tr>`,
    )}</tbody></table>`
  : ""}
<h2>Missed fire times</h2>
${missed.length ? html`<ul class="missed">${missed.slice(0, 50).map((m) => html`<li>${when(m, now)}</li>`)}</ul>` : html`<p class="empty">None.</p>`}
${failedRuns.length
  ? html`<h2>Failed runs</h2><ul class="failed">${failedRuns.map((r) => html`<li>${when(r.startedAt, now)} <span class="muted">${r.code ?? ""}</span><pre class="error">${r.error ?? ""}</pre></li>`)}</ul>`
  : ""}`,
    { refresh, crumbs: [[`/t/${encodeURIComponent(t.name)}`, t.name]] },
  );
}

export function backupPage(t: TargetView, m: Manifest, storeUrl: string, now: Date): Html {
  const drills = t.drills.get(m.id) ?? [];
  return layout(
    `${m.id} of ${t.name}`,
    html`<h1>Backup <code>${m.id}</code></h1>
${copyBox(restoreCommand(t, m, storeUrl), "restore-this")}
<dl class="facts">
<dt>Target</dt><dd><a href="/t/${encodeURIComponent(t.name)}">${t.name}</a></dd>
<dt>Database</dt><dd>${m.kind === "globals" ? "roles and tablespaces (globals)" : m.database.name} on PostgreSQL ${m.database.serverVersion}</dd>
<dt>Started</dt><dd>${when(m.startedAt, now)}</dd>
<dt>Duration</dt><dd>${formatDuration(m.durationMs)}${m.rowCountMs ? `, of which counting rows ${formatDuration(m.rowCountMs)}` : ""}</dd>
<dt>Trigger</dt><dd>${m.trigger}, attempt ${m.attempt}</dd>
<dt>Format</dt><dd>${m.format}, compression ${String(m.compression)}, pg_dump ${m.pgDump.version}</dd>
<dt>Size</dt><dd>${formatBytes(backupSize(m))} (${backupSize(m)} bytes)</dd>
<dt>Encryption</dt><dd>${m.encryption ? html`age, for <ul class="recipients">${m.encryption.recipients.map((r) => html`<li><code>${r}</code></li>`)}</ul>` : "none"}</dd>
${m.toc ? html`<dt>Table of contents</dt><dd>${m.toc.entries} entries: ${Object.entries(m.toc.byType).map(([k, v]) => `${v} ${k}`).join(", ")}</dd>` : ""}
</dl>
<h2>Objects</h2>
<table class="objects"><thead><tr><th scope="col">Key</th><th scope="col">Table</th><th scope="col">Size</th><th scope="col">SHA-256</th></tr></thead>
<tbody>${backupObjects(m).map((o) => html`<tr><td><code>${o.key}</code></td><td>${"table" in o ? String(o.table) : "base archive"}</td><td>${formatBytes(o.size)}</td><td><code class="sha">${o.sha256}</code></td></tr>`)}</tbody></table>
<h2>Tables</h2>
${m.tables?.length
  ? html`<table class="tables"><thead><tr><th scope="col">Table</th><th scope="col">Rows (in the dump's snapshot)</th></tr></thead>
<tbody>${m.tables.map((x) => html`<tr><td><code>${x.name}</code></td><td class="num">${x.rows.toLocaleString("en-US")}</td></tr>`)}</tbody></table>`
  : html`<p class="empty">No row counts in this manifest (plain format, or dump.rowCounts off).</p>`}
<h2>Restore drills</h2>
${drills.length
  ? drills.map(
      (d) => html`<section class="drill" data-outcome="${d.outcome}">
<h3>${d.outcome === "passed" ? "Passed" : "FAILED"} <span class="muted">${d.verifiedAt}</span></h3>
<p>Total ${formatDuration(d.durationMs)}, restore ${formatDuration(d.restoreMs)}, into a ${d.server.where} PostgreSQL ${d.server.version}</p>
<ul class="checks">${d.checks.map((c) => html`<li class="${c.ok ? "ok" : "bad"}"><strong>${c.check}</strong> ${c.ok ? "ok" : "FAILED"}: ${c.detail}</li>`)}</ul>
${d.mismatches.length ? html`<p>Row counts that differ:</p><ul>${d.mismatches.map((x) => html`<li><code>${x.table}</code>: expected ${x.expected}, found ${x.actual ?? "no table"}</li>`)}</ul>` : ""}
</section>`,
    )
  : html`<p class="empty">Not drilled yet: <code>lifeboat verify ${t.name} --backup ${m.id}</code>.</p>`}
<details><summary>Manifest (JSON)</summary><pre class="manifest" tabindex="0">${JSON.stringify(m, null, 2)}</pre></details>`,
    { refresh: 0, crumbs: [[`/t/${encodeURIComponent(t.name)}`, t.name], [`/t/${encodeURIComponent(t.name)}/b/${m.id}`, m.id]] },
  );
}

export function errorPage(title: string, message: string, hint: string): Html {
  return layout(title, html`<h1>${title}</h1><p class="error-message">${message}</p><p>${hint}</p><p><a href="/">All targets</a></p>`, { refresh: 0 });
}
