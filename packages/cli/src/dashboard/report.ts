// `lifeboat report`: the evidence a reviewer asks for over a period (SOC 2, ISO 27001 A.8.13: backups taken as
// scheduled, restores tested), as one HTML file that needs nothing else: its style inline (allowed by its own
// Content-Security-Policy, by hash), no script, no request anywhere.
import { createHash } from "node:crypto";
import { html, raw } from "hono/html";
import { LIFEBOAT_VERSION, UsageError, backupSize, formatBytes, formatDuration, type LifeboatConfig, type Manifest } from "@lifeboat/core";
import type { VerifyResult } from "@lifeboat/runner";
import { APP_CSS } from "./assets.js";
import type { FireOutcome, TargetView } from "./model.js";
import { OUTCOME_TEXT, legend, strip } from "./pages.js";

const REPORT_CSS = `${APP_CSS}
main { max-width: 1100px; }
section.target { border-top: 2px solid var(--line); margin-top: 32px; }
.summary td, .summary th { border: none; padding: 2px 12px 2px 0; }
.outcome-missed, .outcome-failed, .outcome-drill-failed { color: var(--bad); font-weight: 600; }
@media print { .strip { flex-wrap: wrap; } a { color: inherit; text-decoration: none; } }
`;

export interface ReportInput {
  storeUrl: string;
  config: LifeboatConfig | undefined;
  targets: TargetView[];
  period: { from: Date; to: Date };
  generatedAt: Date;
}

export async function renderReport(input: ReportInput): Promise<string> {
  const hash = createHash("sha256").update(REPORT_CSS).digest("base64");
  const csp = `default-src 'none'; style-src 'sha256-${hash}'; img-src data:; base-uri 'none'; form-action 'none'`;
  const day = (d: Date) => d.toISOString().slice(0, 16).replace("T", " ") + " UTC";
  const body = html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta http-equiv="Content-Security-Policy" content="${csp}">
<meta name="viewport" content="width=device-width, initial-scale=1">
<title>Backup evidence ${day(input.period.from)} to ${day(input.period.to)} · Lifeboat</title>
<style>${raw(REPORT_CSS)}</style>
</head>
<body>
<main>
<h1>Backup and restore evidence</h1>
<table class="summary">
<tr><th scope="row">Period</th><td>${day(input.period.from)} to ${day(input.period.to)}</td></tr>
<tr><th scope="row">Store</th><td><code>${input.storeUrl}</code></td></tr>
<tr><th scope="row">Targets</th><td>${input.targets.map((t) => t.name).join(", ") || "none"}</td></tr>
<tr><th scope="row">Generated</th><td>${day(input.generatedAt)} by Lifeboat ${LIFEBOAT_VERSION}, from the store's manifests, drill results and run records</td></tr>
</table>
${input.targets.map((t) => targetSection(t, input))}
</main>
</body>
</html>
`;
  return (await body).toString();
}

function targetSection(t: TargetView, input: ReportInput): ReturnType<typeof html> {
  const from = input.period.from.toISOString();
  const to = input.period.to.toISOString();
  const count = (o: FireOutcome[]) => t.fires.filter((f) => o.includes(f.outcome)).length;
  const drills = [...t.drills.values()].flat().filter((d) => d.verifiedAt >= from && d.verifiedAt <= to).sort((a, b) => (a.verifiedAt < b.verifiedAt ? -1 : 1));
  const byId = new Map(t.backups.map((m) => [m.id, m]));
  const backupsInPeriod = t.backups.filter((m) => m.startedAt >= from && m.startedAt <= to);
  const c = t.config;
  // fire times before the target was first seen are counted, not listed one by one
  const shown = t.fires.filter((f) => f.outcome !== "before");
  const lock = input.config?.aws?.bucket?.objectLock;
  const recipients = [...new Set([...(c?.encryption?.recipients ?? []), ...backupsInPeriod.flatMap((m) => m.encryption?.recipients ?? [])])];
  return html`<section class="target" data-target="${t.name}">
<h2>${t.name}</h2>
<table class="summary">
<tr><th scope="row">Schedule</th><td>${c?.schedule ? html`<code>${c.schedule}</code> (${c.timezone})` : c ? "none (manual runs)" : "unknown (no config given)"}</td></tr>
<tr><th scope="row">Retention</th><td>${c?.retention ? retentionText(c.retention) : c ? "not set: backups are kept until pruned" : "unknown (no config given)"}</td></tr>
<tr><th scope="row">Object Lock</th><td>${lock ? `${lock.mode}, ${lock.days} days` : input.config ? (input.config.aws ? "off" : "not applicable (not deployed to AWS by this config)") : "unknown (no config given)"}</td></tr>
<tr><th scope="row">Encryption</th><td>${recipients.length ? html`age, recipients (public keys): ${recipients.map((r) => html`<br><code>${r}</code>`)}` : "none (the store's own encryption only)"}</td></tr>
<tr><th scope="row">Backups in the period</th><td>${backupsInPeriod.length}${backupsInPeriod.length ? `, ${formatBytes(backupsInPeriod.reduce((n, m) => n + backupSize(m), 0))} in all` : ""}</td></tr>
<tr><th scope="row">${t.firesAreRuns ? "Runs" : "Scheduled fire times"}</th><td data-fires="${t.fires.length}">${t.fires.length}: ${count(["drilled", "drill-failed", "backed-up"])} backed up, ${count(["failed"])} failed, ${count(["missed"])} missed${count(["due"]) ? `, ${count(["due"])} still due` : ""}${count(["before"]) ? `, ${count(["before"])} before the target was first seen` : ""}</td></tr>
<tr><th scope="row">Restore drills</th><td data-drills="${drills.length}">${drills.length}: ${drills.filter((d) => d.outcome === "passed").length} passed, ${drills.filter((d) => d.outcome === "failed").length} failed</td></tr>
</table>
${shown.length ? html`${strip({ ...t, fires: shown })}${legend()}` : ""}
<h3>${t.firesAreRuns ? "Every run" : "Every scheduled fire time"} and its outcome</h3>
${shown.length
  ? html`<table class="fires"><thead><tr><th scope="col">${t.firesAreRuns ? "Run started" : "Fire time"} (UTC)</th><th scope="col">Outcome</th><th scope="col">Backup</th><th scope="col">Size</th><th scope="col">SHA-256</th></tr></thead>
<tbody>${shown.map((f) => {
      const m = f.backupId ? byId.get(f.backupId) : undefined;
      return html`<tr data-outcome="${f.outcome}"><td>${f.at.replace(/\.\d+Z$/, "Z")}</td><td class="outcome-${f.outcome}">${OUTCOME_TEXT[f.outcome]}${f.detail ? html`<pre class="error">${f.detail}</pre>` : ""}</td><td>${f.backupId ?? "—"}</td><td>${m ? formatBytes(backupSize(m)) : "—"}</td><td>${m ? html`<code class="sha">${m.object.sha256}</code>` : "—"}</td></tr>`;
    })}</tbody></table>`
  : html`<p class="empty">None in the period.</p>`}
<h3>Restore drills</h3>
${drills.length ? drills.map((d) => drillSection(d, byId.get(d.backupId))) : html`<p class="empty">No restore drill in the period.</p>`}
</section>`;
}

function drillSection(d: VerifyResult, m: Manifest | undefined): ReturnType<typeof html> {
  const mismatched = new Map(d.mismatches.map((x) => [x.table, x]));
  return html`<div class="drill" data-outcome="${d.outcome}" data-backup="${d.backupId}">
<h4>${d.verifiedAt.replace(/\.\d+Z$/, "Z")}: backup ${d.backupId}, <span class="drill-${d.outcome}">${d.outcome.toUpperCase()}</span></h4>
<p>Restored into a ${d.server.where} PostgreSQL ${d.server.version} in ${formatDuration(d.restoreMs)} (drill ${formatDuration(d.durationMs)} in all)${m ? html`; backup SHA-256 <code class="sha">${m.object.sha256}</code>${m.parts?.length ? ` and ${m.parts.length} parts` : ""}` : " (backup since pruned)"}.</p>
<ul class="checks">${d.checks.map((c) => html`<li class="${c.ok ? "ok" : "bad"}"><strong>${c.check}</strong> ${c.ok ? "ok" : "FAILED"}: ${c.detail}</li>`)}</ul>
${m?.tables?.length
  ? html`<table class="tables"><thead><tr><th scope="col">Table</th><th scope="col">Rows in the backup</th><th scope="col">Rows after the restore</th></tr></thead>
<tbody>${m.tables.map((x) => {
      const bad = mismatched.get(x.name);
      return html`<tr><td><code>${x.name}</code></td><td class="num">${x.rows.toLocaleString("en-US")}</td><td class="num${bad ? " outcome-failed" : ""}">${bad ? (bad.actual === null ? "missing" : bad.actual.toLocaleString("en-US")) : x.rows.toLocaleString("en-US")}</td></tr>`;
    })}</tbody></table>`
  : ""}
</div>`;
}

function retentionText(r: NonNullable<NonNullable<ReportInput["config"]>["targets"][string]["retention"]>): string {
  const parts = Object.entries(r)
    .filter(([, v]) => v !== undefined)
    .map(([k, v]) => `${k} ${String(v)}`);
  return parts.join(", ") || "default";
}

