// One CloudWatch dashboard per stack: per target its backups' size and duration, successes, failures and missed fire
// times, drills; the queues where failures wait; every alarm. From the metrics Lifeboat emits (namespace Lifeboat,
// service=runner, Target; the runner, the watcher and the freshness check emit them as embedded metric format).
import type { Alarms } from "./alarms";
import { maker, type Context } from "./context";

const NAMESPACE = "Lifeboat";

export function dashboard(ctx: Context, alarmed: Alarms, queues: { launches: sst.aws.Queue; notificationFailures: sst.aws.Queue }) {
  const make = maker(ctx);
  const { plan } = ctx;
  const name = dashboardName();
  const targets = plan.runnerTargets.map((t) => t.target);
  const metric = (metricName: string, target: string, opts: Record<string, unknown> = {}) => [NAMESPACE, metricName, "service", "runner", "Target", target, opts];
  const width = 6;
  const queueNames = $util.all([alarmed.scheduleDeadLetters, alarmed.launchFailures, alarmed.launchDeadLetters, queues.notificationFailures, queues.launches].map((q) => q.nodes.queue.name));
  const alarmArns = $util.all(alarmed.made.map((a) => a.arn));
  const body = $util.all([ctx.region, alarmArns, queueNames]).apply(
    ([region, alarms, queueNames]) => {
      const widgets: Array<Record<string, unknown>> = [];
      let y = 0;
      const row = (items: Array<Record<string, unknown>>, height = 6) => {
        items.forEach((w, i) => widgets.push({ x: i * width, y, width, height, ...w }));
        y += height;
      };
      widgets.push({ type: "text", x: 0, y, width: 24, height: 2, properties: { markdown: `# Lifeboat (${$app.name}, ${$app.stage})\nPer target: its backups' size and duration, outcomes and missed fire times, drills. Below: the queues where failures wait, and every alarm.` } });
      y += 2;
      for (const t of targets) {
        const graph = (title: string, metrics: unknown[], extra: Record<string, unknown> = {}) => ({ type: "metric", properties: { title: `${t}: ${title}`, region, view: "timeSeries", period: 3600, metrics, ...extra } });
        row([
          graph("backup size", [metric("BackupBytes", t, { stat: "Maximum", label: "size (bytes)" })]),
          graph("backup duration", [metric("BackupDuration", t, { stat: "Maximum", label: "duration (ms)" })]),
          graph("outcomes", [metric("BackupSucceeded", t, { stat: "Sum", label: "succeeded" }), metric("BackupFailed", t, { stat: "Sum", label: "failed" }), metric("BackupMissed", t, { stat: "Sum", label: "missed" }), metric("DrillPassed", t, { stat: "Sum", label: "drill passed" }), metric("DrillFailed", t, { stat: "Sum", label: "drill failed" }), metric("CopyFailed", t, { stat: "Sum", label: "copy failed" }), metric("PruneFailed", t, { stat: "Sum", label: "prune failed" })], { view: "bar", period: 86400 }),
          // the freshness check's measure, every 15 minutes (scheduled targets)
          graph("newest backup age", [metric("NewestBackupAge", t, { stat: "Maximum", label: "age (s)" })], { period: 900 }),
        ]);
      }
      const [scheduleDead, launchFailed, launchDead, notificationsFailed, launches] = queueNames;
      const queue = (q: string, label: string) => ["AWS/SQS", "ApproximateNumberOfMessagesVisible", "QueueName", q, { stat: "Maximum", label }];
      row([
        { type: "metric", properties: { title: "queues where failures wait", region, view: "timeSeries", period: 300, metrics: [queue(scheduleDead!, "schedule dead letters"), queue(launchFailed!, "launch failures"), queue(launchDead!, "launch dead letters"), queue(notificationsFailed!, "notification failures")] } },
        { type: "metric", properties: { title: "launch queue", region, view: "timeSeries", period: 300, metrics: [queue(launches!, "launches waiting")] } },
      ]);
      row([{ type: "alarm", width: 24, properties: { title: "alarms", alarms } }], 4);
      return JSON.stringify({ widgets });
    },
  );
  const board = make(aws.cloudwatch.Dashboard, "Dashboard", { dashboardName: name, dashboardBody: body });
  return { board, url: dashboardUrl(ctx) };
}

/** A dashboard's name is unique per account and region: the app and the stage. */
function dashboardName(): string {
  return `${$app.name}-${$app.stage}`.replace(/[^A-Za-z0-9_-]/g, "-");
}

/** The dashboard's console URL, known before the dashboard exists (the Slack subscriber, made earlier, links it). */
export function dashboardUrl(ctx: Context) {
  return $interpolate`https://${ctx.region}.console.aws.amazon.com/cloudwatch/home?region=${ctx.region}#dashboards/dashboard/${dashboardName()}`;
}
