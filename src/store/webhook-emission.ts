/**
 * Webhook emission's bookkeeping on the event feed: the 'webhooks' watermark (how far jobs were made) and the
 * 'webhooks:lease' row (a range being sent, expiring after the lease time), both in `report_watermarks` beside
 * the `events` they count, so a watermark moves in the same database as the events it reads.
 */
import type { EventRow } from "./messages";
import { FEED_COLUMNS, FEED_FROM, FEED_ORDER } from "./feed";

/** The columns of a feed event that a webhook carries. */
export type FeedEventRow = Omit<EventRow, "recipient_idx" | "seq">;

export async function newestEventId(db: D1Database): Promise<number> {
  return (await db.prepare("SELECT MAX(id) AS top FROM events").first<{ top: number | null }>())?.top ?? 0;
}

/**
 * Takes the lease on the next range (at most `passEvents` past the watermark, up to `top`) after dropping an
 * expired one; false when another caller holds it, the watermark is at `top`, or there is no watermark (no
 * endpoint was ever created: createWebhook starts it at the newest event).
 */
export async function takeEmissionLease(db: D1Database, passEvents: number, top: number, now: number, leaseMs: number): Promise<boolean> {
  const [, lease] = await db.batch([
    db.prepare("DELETE FROM report_watermarks WHERE name = 'webhooks:lease' AND updated_at <= ?").bind(now - leaseMs),
    db
      .prepare(
        `INSERT OR IGNORE INTO report_watermarks (name, last_event_id, updated_at)
         SELECT 'webhooks:lease', MIN(w.last_event_id + ?, ?), ? FROM report_watermarks w
          WHERE w.name = 'webhooks' AND w.last_event_id < ?`,
      )
      .bind(passEvents, top, now, top),
  ]);
  return (lease?.meta.changes ?? 0) > 0;
}

/** The leased range: (lo, hi] of event row ids. */
export async function emissionRange(db: D1Database): Promise<{ lo: number; hi: number } | null> {
  return db
    .prepare(`SELECT w.last_event_id AS lo, l.last_event_id AS hi FROM report_watermarks w, report_watermarks l WHERE w.name = 'webhooks' AND l.name = 'webhooks:lease'`)
    .first<{ lo: number; hi: number }>();
}

/** Releases the lease taken at `leasedAt`, moving the watermark to its end when `advance` (compare-and-set). */
export async function releaseEmissionLease(db: D1Database, range: { lo: number; hi: number }, advance: boolean, leasedAt: number): Promise<void> {
  await db.batch([
    ...(advance
      ? [db.prepare("UPDATE report_watermarks SET last_event_id = ?, updated_at = ? WHERE name = 'webhooks' AND last_event_id = ?").bind(range.hi, leasedAt, range.lo)]
      : []),
    db.prepare("DELETE FROM report_watermarks WHERE name = 'webhooks:lease' AND last_event_id = ? AND updated_at = ?").bind(range.hi, leasedAt),
  ]);
}

/** Feed events of rows (lo, hi], in feed order. */
export async function feedEventsBetween(db: D1Database, lo: number, hi: number): Promise<FeedEventRow[]> {
  const { results } = await db.prepare(`SELECT ${FEED_COLUMNS} FROM ${FEED_FROM} WHERE e.id > ? AND e.id <= ? ORDER BY ${FEED_ORDER}`).bind(lo, hi).all<FeedEventRow>();
  return results;
}

/** How many endpoints are enabled (none: ranges are passed over without reading them). */
export async function countEnabledWebhooks(db: D1Database): Promise<number> {
  return (await db.prepare("SELECT COUNT(*) AS n FROM webhooks WHERE disabled_at IS NULL").first<{ n: number }>())?.n ?? 0;
}

/**
 * Starts a shard's 'webhooks' watermark at its newest event when there is none (createWebhook does this on DB):
 * history is not replayed to a new endpoint.
 */
export async function startEmissionWatermark(db: D1Database, now = Date.now()): Promise<void> {
  await db.prepare("INSERT OR IGNORE INTO report_watermarks (name, last_event_id, updated_at) SELECT 'webhooks', COALESCE(MAX(id), 0), ? FROM events").bind(now).run();
}
