// The dashboard's static files: its style sheet and its one script (plain JavaScript for the browser, no build step),
// and uPlot's, served from the installed uplot package. uPlot (MIT, ~50 KB, no dependencies) draws time series on a
// canvas quickly and needs no framework: chosen over Chart.js (4x the size) for a page that only draws two series.
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { dirname, join } from "node:path";

export const APP_CSS = `
:root { color-scheme: light; --ok: #1a7f37; --bad: #c62828; --warn: #9a6700; --muted: #57606a; --line: #d0d7de; }
* { box-sizing: border-box; }
body { font: 15px/1.45 system-ui, -apple-system, "Segoe UI", Roboto, sans-serif; margin: 0; color: #1f2328; background: #fff; }
header { padding: 10px 24px; border-bottom: 1px solid var(--line); background: #f6f8fa; }
header a { color: #0b57d0; } header .brand { font-weight: 700; color: #1f2328; text-decoration: none; }
main { padding: 8px 24px 24px; max-width: 1200px; }
footer { padding: 12px 24px; color: var(--muted); font-size: 13px; border-top: 1px solid var(--line); }
h1 { font-size: 24px; } h2 { font-size: 18px; margin-top: 28px; }
a { color: #0b57d0; }
.muted, .age { color: var(--muted); }
code { font: 13px ui-monospace, SFMono-Regular, Menlo, monospace; }
table { border-collapse: collapse; width: 100%; }
th, td { text-align: left; padding: 6px 8px; border-bottom: 1px solid var(--line); vertical-align: top; }
thead th { font-size: 13px; color: var(--muted); }
td.num { text-align: right; font-variant-numeric: tabular-nums; }
.verdict { display: inline-block; padding: 1px 8px; border-radius: 10px; font-size: 13px; font-weight: 600; text-transform: uppercase; color: #fff; }
.verdict-ok { background: var(--ok); } .verdict-running { background: #0b57d0; } .verdict-late { background: var(--warn); }
.verdict-missed, .verdict-failing { background: var(--bad); }
.strip { display: flex; gap: 2px; flex-wrap: nowrap; }
.cell { display: inline-block; width: 12px; height: 20px; border-radius: 2px; background: #eaeef2; border: 1px solid transparent; }
.cell-drilled { background: var(--ok); } .cell-backed-up { background: #6fdd8b; } .cell-drill-failed { background: #e16f24; }
.cell-failed { background: var(--bad); } .cell-missed { background: #fff; border: 2px solid var(--bad); }
.cell-due { background: #fff; border: 1px dashed var(--muted); } .cell-before { background: #eaeef2; }
.strip-note { font-size: 12px; color: var(--muted); }
.legend { list-style: none; padding: 0; display: flex; flex-wrap: wrap; gap: 14px; font-size: 13px; color: var(--muted); }
.legend .cell { vertical-align: middle; margin-right: 4px; height: 14px; }
.facts { display: grid; grid-template-columns: max-content 1fr; gap: 4px 16px; }
.facts dt { color: var(--muted); } .facts dd { margin: 0; }
.charts { display: flex; flex-wrap: wrap; gap: 24px; } figure { margin: 0; } figcaption { font-size: 13px; color: var(--muted); }
.chart { min-height: 220px; width: 540px; }
.copy { display: flex; gap: 8px; align-items: center; background: #f6f8fa; border: 1px solid var(--line); border-radius: 6px; padding: 8px; }
.copy code { flex: 1; white-space: pre-wrap; word-break: break-all; }
.copy button { font: inherit; padding: 4px 12px; border: 1px solid #8c959f; border-radius: 6px; background: #fff; cursor: pointer; }
.copied { color: var(--ok); font-size: 13px; min-width: 4em; }
pre.error { white-space: pre-wrap; color: var(--bad); margin: 4px 0; font-size: 13px; }
.drill-passed, .checks .ok strong { color: var(--ok); } .drill-failed, .checks .bad strong { color: var(--bad); }
.empty { color: var(--muted); }
.copy-degraded { color: var(--bad); font-size: 12px; font-weight: 600; margin-top: 4px; }
pre.manifest { background: #f6f8fa; padding: 12px; overflow-x: auto; font-size: 12px; }
.sha { word-break: break-all; }
`;

/**
 * The page script: draws the charts from the page's JSON (each chart says how many points it drew, in data-points,
 * once drawn), copies a command, and keeps the clock of the refresh. No inline script anywhere (the CSP allows scripts
 * from this server only).
 */
export const APP_JS = `
"use strict";
(function () {
  function bytes(n) {
    var units = ["B", "KiB", "MiB", "GiB", "TiB"], i = 0;
    while (Math.abs(n) >= 1024 && i < units.length - 1) { n /= 1024; i++; }
    return (i ? n.toFixed(n < 10 ? 1 : 0) : String(n)) + " " + units[i];
  }
  function drawCharts() {
    var holder = document.getElementById("chart-data");
    if (!holder || typeof uPlot === "undefined") return;
    var data = JSON.parse(holder.textContent);
    var units = { size: "bytes", duration: "s" };
    document.querySelectorAll("[data-chart]").forEach(function (el) {
      var key = el.getAttribute("data-chart");
      var values = data[key];
      var opts = {
        width: Math.max(320, Math.min(540, el.clientWidth || 540)),
        height: 220,
        legend: { show: false },
        scales: { x: { time: true } },
        axes: [{}, key === "size" ? { size: 80, values: function (u, splits) { return splits.map(bytes); } } : { label: units[key], size: 70 }],
        series: [{}, { label: key, stroke: "#0b57d0", width: 2, points: { show: true, size: 7, fill: "#0b57d0" } }],
        hooks: {
          draw: [function (u) {
            var drawn = 0;
            var xs = u.data[0], ys = u.data[1];
            for (var i = 0; i < xs.length; i++) if (ys[i] != null && u.valToPos(xs[i], "x") >= 0) drawn++;
            el.setAttribute("data-points", String(drawn));
          }],
        },
      };
      new uPlot(opts, [data.t, values], el);
    });
  }
  function copyButtons() {
    document.querySelectorAll("button[data-copy]").forEach(function (button) {
      button.addEventListener("click", function () {
        var text = document.getElementById(button.getAttribute("data-copy")).textContent;
        var said = button.parentNode.querySelector(".copied");
        navigator.clipboard.writeText(text).then(function () { said.textContent = "copied"; }, function () { said.textContent = "select and copy"; });
      });
    });
  }
  document.addEventListener("DOMContentLoaded", function () { drawCharts(); copyButtons(); });
})();
`;

/** uPlot's browser build and style sheet, read once from the installed package. */
export function uplotFile(name: "uPlot.iife.min.js" | "uPlot.min.css"): string {
  const dir = dirname(createRequire(import.meta.url).resolve("uplot/package.json"));
  return readFileSync(join(dir, "dist", name), "utf8");
}
