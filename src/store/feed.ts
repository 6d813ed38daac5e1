/**
 * The event feed: `events` rows expanded into the events readers see. A message's first outcome event also
 * announces its `accepted` and its recipient's `queued` (bits of `events.feed`, both at `events.accepted_at`),
 * because the ledger writes no rows for them (issue 16). Each row yields up to three feed events with ids
 * `row id × 4 + k` (k = 0 accepted, 1 queued, 2 the row's own event), so feed ids increase with row ids and a
 * cursor or watermark over rows covers every feed event of those rows.
 */

/** Feed events per row at most, as the multiplier of row ids. */
export const FEED_ID_STRIDE = 4;

/** The feed id range's first row id for a feed-id cursor (`after`): rows with a feed event above it. */
export function firstRowAfter(feedId: number): number {
  return Math.floor(feedId / FEED_ID_STRIDE);
}

/**
 * `FROM` clause yielding the feed events of `events e`. Filter rows with conditions on `e.*` (e.g. `e.id > ?`).
 * CROSS JOIN keeps the log the outer loop, walked in id order (otherwise the planner may build a temporary index on
 * the whole log for each query).
 */
export const FEED_FROM = `events e CROSS JOIN (VALUES (0), (1), (2)) k ON k.column1 = 2 OR (COALESCE(e.feed, 0) & (1 << k.column1)) <> 0`;

/** The select list of a feed event: the columns of an `events` row, with the feed id as `id`. */
export const FEED_COLUMNS = `e.id * ${FEED_ID_STRIDE} + k.column1 AS id, e.message_id AS message_id, e.tenant_id AS tenant_id,
  CASE WHEN k.column1 = 0 THEN NULL ELSE e.recipient_idx END AS recipient_idx,
  CASE WHEN k.column1 = 0 THEN NULL ELSE e.recipient END AS recipient,
  CASE k.column1 WHEN 0 THEN 'accepted' WHEN 1 THEN 'queued' ELSE e.type END AS type,
  CASE WHEN k.column1 < 2 THEN COALESCE(e.accepted_at, e.at) ELSE e.at END AS at,
  CASE WHEN k.column1 < 2 THEN NULL ELSE e.attempt END AS attempt,
  CASE WHEN k.column1 < 2 THEN NULL ELSE e.code END AS code,
  CASE WHEN k.column1 < 2 THEN NULL ELSE e.enhanced END AS enhanced,
  CASE WHEN k.column1 < 2 THEN NULL ELSE e.text END AS text,
  CASE WHEN k.column1 < 2 THEN NULL ELSE e.host END AS host,
  CASE WHEN k.column1 < 2 THEN NULL ELSE e.tls END AS tls,
  CASE WHEN k.column1 < 2 THEN NULL ELSE e.latency_ms END AS latency_ms,
  CASE WHEN k.column1 < 2 THEN NULL ELSE e.seq END AS seq,
  CASE WHEN k.column1 < 2 THEN NULL ELSE e.data END AS data`;
