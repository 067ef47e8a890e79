import type { HeartbeatStyle, LifeboatEvent } from "@lifeboat/core";
import { postJson, type DeliveryOptions } from "./post.js";

/**
 * A dead man's switch: an outside service (healthchecks.io, Cronitor, Uptime Kuma's push monitors) is pinged by every
 * run, and alarms when the pings stop - the only way a scheduler that died, or a machine that is off, is noticed.
 * Each service's convention:
 *   healthchecks  <url>/start as a run starts, <url> when it succeeded, <url>/fail when it failed
 *                 (https://healthchecks.io/docs/http_api/)
 *   cronitor      <url>?state=run, ?state=complete, ?state=fail (Cronitor's telemetry API)
 *   uptime-kuma   <url>?status=up&msg=..., ?status=down&msg=... (a push monitor; it has no "started")
 * The URL is a secret (it carries the check's key): it never reaches a log or an error.
 */
export type HeartbeatState = "start" | "success" | "fail";

export function heartbeatUrl(base: string, style: HeartbeatStyle, state: HeartbeatState, message = ""): string | undefined {
  if (style === "healthchecks") return state === "success" ? base : `${base.replace(/\/+$/, "")}/${state}`;
  const url = new URL(base);
  if (style === "cronitor") {
    url.searchParams.set("state", state === "start" ? "run" : state === "success" ? "complete" : "fail");
    if (message) url.searchParams.set("message", message.slice(0, 200));
  } else {
    if (state === "start") return undefined;
    url.searchParams.set("status", state === "success" ? "up" : "down");
    url.searchParams.set("msg", message.slice(0, 200) || (state === "success" ? "OK" : "failed"));
  }
  return url.toString();
}

export interface HeartbeatOptions extends DeliveryOptions {
  url: string;
  style: HeartbeatStyle;
}

export async function pingHeartbeat(state: HeartbeatState, opts: HeartbeatOptions, target: string, message?: string): Promise<void> {
  const url = heartbeatUrl(opts.url, opts.style, state, message);
  if (url) await postJson("heartbeat", url, "", { ...opts, method: "GET", fields: { ...opts.fields, target, state } });
}

/**
 * A bus subscriber: a backup that succeeded pings success; a failed or missed backup, or a failed drill, pings fail.
 * A ping that fails is logged as a warning, never the bus's error: the event did reach its other subscribers, and a
 * run is not failed, or reported as unpublished (the runner's exit 3), because of its heartbeat.
 */
export function heartbeatSubscriber(opts: HeartbeatOptions): (e: LifeboatEvent) => Promise<void> {
  return async (event) => {
    try {
      if (event.type === "backup.succeeded") await pingHeartbeat("success", opts, event.target, `backup ${event.backup.id}`);
      else if (event.type === "backup.failed" || event.type === "backup.missed" || event.type === "backup.verify_failed") {
        await pingHeartbeat("fail", opts, event.target, event.type === "backup.failed" ? event.error.message.split("\n")[0] : event.type);
      }
    } catch (err) {
      opts.log?.log("warn", "the heartbeat ping failed", { target: event.target, error: (err as Error).message });
    }
  };
}
