import type { BackupFailedEvent, LifeboatEvent } from "./events.js";

/** What CloudWatch publishes to the topic when one of Lifeboat's alarms changes state (the fields used here). */
export interface AlarmNotification {
  AlarmName: string;
  AlarmDescription?: string | null;
  NewStateValue: string;
  NewStateReason?: string;
  StateChangeTime?: string;
  Region?: string;
}

export function isAlarmNotification(x: unknown): x is AlarmNotification {
  return typeof x === "object" && x !== null && typeof (x as AlarmNotification).AlarmName === "string" && typeof (x as AlarmNotification).NewStateValue === "string";
}

/** An alarm, as a person reads it in Slack: what is wrong, where to look; and when it is over. */
/** Where a failure's reader looks next: the stack's CloudWatch dashboard, when the deployment has one. */
export interface SlackRenderOptions {
  dashboardUrl?: string | undefined;
}

function dashboardBlock(opts: SlackRenderOptions): unknown[] {
  return opts.dashboardUrl ? [{ type: "context", elements: [{ type: "mrkdwn", text: `<${opts.dashboardUrl}|CloudWatch dashboard of every target>` }] }] : [];
}

export function renderAlarmMessage(a: AlarmNotification, opts: SlackRenderOptions = {}): { text: string; blocks: unknown[] } {
  const alarming = a.NewStateValue === "ALARM";
  const what = a.AlarmDescription || a.AlarmName;
  const text = alarming ? `:rotating_light: ${what}` : `:white_check_mark: Resolved: ${what}`;
  return {
    text,
    blocks: [
      { type: "section", text: { type: "mrkdwn", text } },
      {
        type: "context",
        elements: [{ type: "mrkdwn", text: `CloudWatch alarm \`${a.AlarmName}\` is ${a.NewStateValue}${a.Region ? ` in ${a.Region}` : ""}${a.StateChangeTime ? ` since ${a.StateChangeTime}` : ""}${a.NewStateReason ? `: ${a.NewStateReason.slice(0, 500)}` : ""}` }],
      },
      ...(alarming ? dashboardBlock(opts) : []),
    ],
  };
}

/** Human sizes and durations, shared by the CLI and the Slack rendering. */
export function formatBytes(n: number): string {
  const units = ["B", "KiB", "MiB", "GiB", "TiB"];
  let v = n;
  let i = 0;
  while (v >= 1024 && i < units.length - 1) {
    v /= 1024;
    i++;
  }
  return `${i === 0 ? v : v.toFixed(1)} ${units[i]}`;
}

export function formatDuration(ms: number): string {
  if (ms < 1000) return `${ms} ms`;
  const s = ms / 1000;
  if (s < 60) return `${s.toFixed(1)} s`;
  const m = Math.floor(s / 60);
  return `${m} min ${Math.round(s - m * 60)} s`;
}

/** An age as people say it: 3 h 20 min, 2 d 4 h. */
export function formatAge(ms: number): string {
  const min = Math.floor(ms / 60_000);
  if (min < 60) return `${min} min`;
  const h = Math.floor(min / 60);
  if (h < 48) return `${h} h ${min % 60} min`;
  return `${Math.floor(h / 24)} d ${h % 24} h`;
}

/** Where a deployed run happened, as one context line: stage, region, task, a link to its logs. */
function originBlock(e: LifeboatEvent): unknown[] {
  const o = e.origin;
  if (!o) return [];
  const parts = [o.stage && `stage *${o.stage}*`, o.region, o.task && `task \`${o.task.split("/").pop()}\``, o.logs && `<${o.logs}|logs of this run>`, `run \`${e.runId}\``].filter(Boolean);
  return [{ type: "context", elements: [{ type: "mrkdwn", text: parts.join(" · ") }] }];
}

/** One rendering of a result event as a Slack Block Kit message (with where it ran, when the runner said). */
export function renderSlackMessage(e: LifeboatEvent, opts: SlackRenderOptions = {}): { text: string; blocks: unknown[] } {
  const m = renderEvent(e);
  // a failure (failed, missed, a failed drill) links the dashboard: the target's history, and every other target
  return { text: m.text, blocks: [...m.blocks, ...originBlock(e), ...(e.status === "failed" ? dashboardBlock(opts) : [])] };
}

function renderEvent(e: LifeboatEvent): { text: string; blocks: unknown[] } {
  if (e.type === "backup.succeeded") {
    const text = `:white_check_mark: Backup of *${e.target}* succeeded (${formatBytes(e.backup.size)} in ${formatDuration(e.backup.durationMs)})`;
    return {
      text,
      blocks: [
        { type: "section", text: { type: "mrkdwn", text } },
        {
          type: "section",
          fields: [
            { type: "mrkdwn", text: `*Target*\n${e.target}` },
            { type: "mrkdwn", text: `*Size*\n${formatBytes(e.backup.size)}` },
            { type: "mrkdwn", text: `*Duration*\n${formatDuration(e.backup.durationMs)}` },
            { type: "mrkdwn", text: `*Attempt*\n${e.attempt}` },
          ],
        },
        { type: "section", text: { type: "mrkdwn", text: `*Location*\n\`${e.backup.location}\`\n*SHA-256* \`${e.backup.sha256}\`` } },
        ...(e.databases ? [databasesBlock(e.databases)] : []),
        { type: "context", elements: [{ type: "mrkdwn", text: `Restore: \`${e.restoreCommand}\`` }] },
      ],
    };
  }
  if (e.type === "backup.missed") {
    const m = e.missed;
    const newest = m.newestBackup ? `the newest backup (${m.newestBackup.id}) is ${formatAge(m.newestBackup.ageMs)} old` : "there is no backup of it yet";
    const text = `:warning: Backup of *${e.target}* MISSED: no backup for its ${m.fireTime} run (${m.schedule} ${m.timezone}); ${newest}`;
    return {
      text,
      blocks: [
        { type: "section", text: { type: "mrkdwn", text } },
        { type: "context", elements: [{ type: "mrkdwn", text: `Reported ${m.graceMinutes} min after the fire time. ${m.scheduler === "lifeboat schedule" ? "Check that `lifeboat schedule` runs on its server (`lifeboat status` says when it was last alive)" : "Check the schedule and the launcher's logs"}, or run it now: \`lifeboat run ${e.target}\`` }] },
      ],
    };
  }
  if (e.type === "backup.copy_failed") {
    const c = e.copy;
    const text = `:warning: Copy *${c.name}* of *${e.target}*'s backup ${c.backupId} FAILED: the backup is whole in the primary store, not in this copy`;
    return {
      text,
      blocks: [
        { type: "section", text: { type: "mrkdwn", text } },
        { type: "section", text: { type: "mrkdwn", text: "```" + c.error.slice(0, 1500) + "```" } },
        { type: "context", elements: [{ type: "mrkdwn", text: `Primary: \`${c.location}\`. Repair: \`${c.repair}\`` }] },
      ],
    };
  }
  if (e.type === "backup.refresh_failed") {
    const r = e.refresh;
    const text = `:x: Refresh of ${r.to} from *${e.target}*${r.backupId ? ` (backup ${r.backupId})` : ""} FAILED: nothing was swapped, the database is as it was`;
    return {
      text,
      blocks: [
        { type: "section", text: { type: "mrkdwn", text } },
        { type: "section", text: { type: "mrkdwn", text: "```" + r.error.slice(0, 1500) + "```" } },
        { type: "context", elements: [{ type: "mrkdwn", text: `Run it again: \`${r.repair}\`` }] },
      ],
    };
  }
  if (e.type === "backup.prune_failed") {
    const p = e.prune;
    const text = `:warning: Retention of *${e.target}* could not be applied in ${p.store === "primary" ? "the primary store" : `copy *${p.store}*`}: the backup succeeded, old backups stay until a prune works`;
    return {
      text,
      blocks: [
        { type: "section", text: { type: "mrkdwn", text } },
        { type: "section", text: { type: "mrkdwn", text: "```" + p.error.slice(0, 1500) + "```" } },
        { type: "context", elements: [{ type: "mrkdwn", text: `Apply it by hand: \`${p.repair}\`` }] },
      ],
    };
  }
  if (e.type !== "backup.failed") {
    const v = e.verification;
    const ok = e.type === "backup.verified";
    const text = ok
      ? `:white_check_mark: Restore drill of *${e.target}* passed: backup ${v.backupId} restored, ${v.tables} tables checked (${formatDuration(v.durationMs)})`
      : `:rotating_light: Restore drill of *${e.target}* FAILED for backup ${v.backupId}`;
    return {
      text,
      blocks: [
        { type: "section", text: { type: "mrkdwn", text } },
        ...(ok ? [] : [{ type: "section", text: { type: "mrkdwn", text: "```" + v.failures.join("\n").slice(0, 1500) + "```" } }]),
        { type: "context", elements: [{ type: "mrkdwn", text: `\`${v.location}\`` }] },
      ],
    };
  }
  const text = `:rotating_light: Backup of *${e.target}* FAILED after ${e.error.attempts.length} attempt(s): ${e.error.code}`;
  const summary = e.error.message.length > 1500 ? e.error.message.slice(0, 1500) + "…" : e.error.message;
  return {
    text,
    blocks: [
      { type: "section", text: { type: "mrkdwn", text } },
      {
        type: "section",
        fields: [
          { type: "mrkdwn", text: `*Target*\n${e.target}` },
          { type: "mrkdwn", text: `*Attempts*\n${e.error.attempts.length}` },
          { type: "mrkdwn", text: `*Failure*\n${e.error.kind} (${e.error.code})` },
          { type: "mrkdwn", text: `*Run*\n${e.runId}` },
        ],
      },
      { type: "section", text: { type: "mrkdwn", text: "```" + summary + "```" } },
      ...(e.databases ? [databasesBlock(e.databases)] : []),
    ],
  };
}

function databasesBlock(dbs: NonNullable<BackupFailedEvent["databases"]>) {
  const lines = dbs.map((d) => `${d.status === "succeeded" ? ":white_check_mark:" : ":x:"} ${d.database}${d.size !== undefined ? ` (${formatBytes(d.size)})` : ""}${d.error ? `: ${d.error.slice(0, 200)}` : ""}`);
  return { type: "section", text: { type: "mrkdwn", text: lines.join("\n").slice(0, 2900) } };
}
