/**
 * How current the reporting page's counts are: the rollups hold every event up to their watermark, and this says
 * up to when that is and how many events wait beyond it. Kept apart from the fold itself (rollups.ts) so that a
 * different way of feeding the rollups only has to re-implement this one function for the page's "as of" line.
 */

export interface RollupFreshness {
  /** The counts include every event written before this time (ms since the epoch); the read time when caught up. */
  asOf: number;
  /** Events written but not counted yet (0 when the rollups are caught up). */
  pendingEvents: number;
}

/**
 * One row, three primary-key lookups: the watermark, the newest event id, and the time of the first event past
 * the watermark. Pending events are counted by id (ids are handed out in commit order), so a backlog of any size
 * costs the same to measure; exported for the query-plan test.
 */
export const ROLLUP_FRESHNESS_SQL = `SELECT w.last_event_id AS watermark, w.updated_at AS updated_at,
    (SELECT MAX(id) FROM events) AS top,
    (SELECT e.at FROM events e WHERE e.id > w.last_event_id ORDER BY e.id LIMIT 1) AS next_at
  FROM report_watermarks w WHERE w.name = 'rollup'`;

/** How far the rollups have got, read after any fold the caller did (see `advanceRollups`). */
export async function rollupFreshness(db: D1Database, now = Date.now()): Promise<RollupFreshness> {
  const row = await db.prepare(ROLLUP_FRESHNESS_SQL).first<{ watermark: number; updated_at: number; top: number | null; next_at: number | null }>();
  if (!row) throw new Error("report_watermarks has no 'rollup' row: apply migration 0004_report.sql");
  const pendingEvents = Math.max(0, (row.top ?? 0) - row.watermark);
  if (pendingEvents === 0) return { asOf: now, pendingEvents: 0 };
  // Everything before the first uncounted event is counted; if retention already removed it, the last fold's time.
  return { asOf: Math.min(now, row.next_at ?? row.updated_at), pendingEvents };
}
