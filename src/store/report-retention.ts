/** Retention for the reporting data: raw events are pruned after EVENT_RETENTION_DAYS; hourly rollups are kept. */
import { FINE_ROLLUP_RETENTION_MS } from "./rollups";

/** Events deleted per cron run at most, so one run stays short; the next run continues. */
export const PRUNE_EVENTS_PER_RUN = 20_000;
/** Webhook attempt logs are kept this long (the page shows only the latest). */
export const WEBHOOK_ATTEMPT_RETENTION_MS = 30 * 86_400_000;

export interface PruneResult {
  events: number;
  fineRollups: number;
  webhookAttempts: number;
  sessions: number;
}

/**
 * Deletes raw events older than `eventRetentionMs` (only those already folded into the rollups, so totals never
 * lose them), 5-minute rollups older than two days, old webhook attempts and expired dashboard sessions.
 */
export async function pruneReportData(db: D1Database, eventRetentionMs: number, now = Date.now()): Promise<PruneResult> {
  const results = await db.batch([
    db
      .prepare(
        // The oldest rows by id (the log has no index on time): a bounded walk from the start of the table. The newest
        // row stays, so ids (no AUTOINCREMENT) never go back.
        `DELETE FROM events WHERE id IN (
           SELECT id FROM (SELECT id, at FROM events ORDER BY id LIMIT ?2)
            WHERE at < ?1 AND id <= (SELECT last_event_id FROM report_watermarks WHERE name = 'rollup')
              AND id < (SELECT MAX(id) FROM events))`,
      )
      .bind(now - eventRetentionMs, PRUNE_EVENTS_PER_RUN),
    db.prepare("DELETE FROM report_rollups WHERE period = 300 AND bucket < ?").bind(now - FINE_ROLLUP_RETENTION_MS),
    db.prepare("DELETE FROM report_latency WHERE period = 300 AND bucket < ?").bind(now - FINE_ROLLUP_RETENTION_MS),
    db.prepare("DELETE FROM webhook_attempts WHERE at < ?").bind(now - WEBHOOK_ATTEMPT_RETENTION_MS),
    db.prepare("DELETE FROM dashboard_sessions WHERE expires_at < ?").bind(now),
  ]);
  const changes = (i: number) => results[i]?.meta.changes ?? 0;
  return { events: changes(0), fineRollups: changes(1) + changes(2), webhookAttempts: changes(3), sessions: changes(4) };
}
