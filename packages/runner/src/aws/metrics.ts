import { Metrics, MetricUnit } from "@aws-lambda-powertools/metrics";
import type { LifeboatEvent } from "@lifeboat/core";

/**
 * CloudWatch metrics in embedded metric format (one JSON line on stdout, no API call), through Powertools Metrics:
 * namespace Lifeboat, dimensions service=runner and Target; BackupSucceeded / BackupFailed (count),
 * BackupDuration (ms) and BackupBytes for successes.
 */
export function backupMetrics(event: LifeboatEvent): Metrics {
  const metrics = new Metrics({ namespace: "Lifeboat", serviceName: "runner" });
  metrics.addDimension("Target", event.target);
  if (event.type === "backup.succeeded") {
    metrics.addMetric("BackupSucceeded", MetricUnit.Count, 1);
    metrics.addMetric("BackupDuration", MetricUnit.Milliseconds, event.backup.durationMs);
    metrics.addMetric("BackupBytes", MetricUnit.Bytes, event.backup.size);
  } else if (event.type === "backup.failed") {
    metrics.addMetric("BackupFailed", MetricUnit.Count, 1);
  } else if (event.type === "backup.missed") {
    metrics.addMetric("BackupMissed", MetricUnit.Count, 1);
  } else if (event.type === "backup.copy_failed") {
    metrics.addMetric("CopyFailed", MetricUnit.Count, 1);
  } else if (event.type === "backup.prune_failed") {
    metrics.addMetric("PruneFailed", MetricUnit.Count, 1);
  } else if (event.type === "backup.refresh_failed") {
    metrics.addMetric("RefreshFailed", MetricUnit.Count, 1);
  } else {
    metrics.addMetric(event.type === "backup.verified" ? "DrillPassed" : "DrillFailed", MetricUnit.Count, 1);
    metrics.addMetric("DrillDuration", MetricUnit.Milliseconds, event.verification.durationMs);
  }
  return metrics;
}

export function emitBackupMetrics(event: LifeboatEvent): void {
  backupMetrics(event).publishStoredMetrics();
}

/** A publisher that also emits each event's metrics (after it was published: a failed publish is the caller's error). */
export function withMetrics(publish: (e: LifeboatEvent) => Promise<void>): (e: LifeboatEvent) => Promise<void> {
  return async (e) => {
    await publish(e);
    emitBackupMetrics(e);
  };
}

/**
 * A target's newest backup age (seconds), emitted by the freshness check every 15 minutes: what CloudWatch cannot
 * derive from the backups' own metrics. A target without a backup emits nothing (no age to draw).
 */
export function backupAgeMetrics(target: string, seconds: number | undefined): Metrics | undefined {
  if (seconds === undefined) return undefined;
  const metrics = new Metrics({ namespace: "Lifeboat", serviceName: "runner" });
  metrics.addDimension("Target", target);
  metrics.addMetric("NewestBackupAge", MetricUnit.Seconds, Math.round(seconds));
  return metrics;
}

export function emitBackupAge(target: string, seconds: number | undefined): void {
  backupAgeMetrics(target, seconds)?.publishStoredMetrics();
}
