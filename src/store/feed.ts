/**
 * The event feed: `events` rows expanded into the events readers see. A message's first outcome event also
 * announces its `accepted` and its recipient's `queued` (bits of the event's feed value, both at its accepted-at
 * time), because the ledger writes no rows for them (issue 16). The consumer writes the events of one outcome
 * write as one row (`events.batch`, a JSON array, see migrations/0010_event_batches.sql) that owns one id per
 * element (`id - length + 1 .. id`); older rows hold one event each. A batch element is a JSON array
 * `[message id, type, ms after the row's at, log index, feed bits]` (since migrations/0011_compact_events.sql; the
 * feed bits are left out when there are none): it keeps only the message id, type, time and feed bits, and points at
 * the attempt's entry in the message's log for the rest (recipient, reply, host, TLS, latency, sequence): readers join
 * the message row by its primary key (`fm`). Each stored event yields up to three feed
 * events with ids `event id × 4 + k` (k = 0 accepted, 1 queued, 2 the event itself), so feed ids increase with
 * row ids and a cursor or watermark over row ids covers every feed event of those rows.
 */

/** Feed events per stored event at most, as the multiplier of event ids. */
export const FEED_ID_STRIDE = 4;

/** The feed id range's first row id for a feed-id cursor (`after`): rows with a feed event above it. */
export function firstRowAfter(feedId: number): number {
  return Math.floor(feedId / FEED_ID_STRIDE);
}

/** The positions of a batch element's fields (see the header): `at` is milliseconds after the row's own `at`. */
const BATCH_FIELD: Record<string, number> = { m: 0, y: 1, at: 2, x: 3, f: 4 };

/** A batch element's own field. */
const own = (key: string) => (key === "at" ? `(e.at + json_extract(j.value, '$[2]'))` : `json_extract(j.value, '$[${BATCH_FIELD[key]}]')`);
/** A key of the attempt's entry in the message's log, which a batch element points at (`x`). */
const logged = (key: string) => `json_extract(fm.log, '$[' || ${own("x")} || '].${key}')`;

/** A stored event's field: the row's column, or for a batch element its own key or its log entry's. */
function field(column: string, key: string, inLog = true): string {
  return `(CASE WHEN e.batch IS NULL THEN e.${column} ELSE ${inLog ? logged(key) : own(key)} END)`;
}

/** The id of a stored event (a batch row's elements take the ids just below the row's own). */
export const EVENT_ID = `(CASE WHEN e.batch IS NULL THEN e.id ELSE e.id - json_array_length(e.batch) + 1 + j.key END)`;
/** The feed bits of a stored event. */
export const EVENT_FEED = field("feed", "f", false);
/** When the message of a stored event was accepted (set on events that announce it). */
export const EVENT_ACCEPTED_AT = `(CASE WHEN e.batch IS NULL THEN e.accepted_at ELSE fm.created_at END)`;

/**
 * `FROM` clause yielding the feed events of `events e` (each stored event as `j`). Filter rows with conditions on
 * `e.id` (e.g. `e.id > ?`) so the read seeks by the primary key, and on the `FEED_*` expressions. CROSS JOIN keeps
 * the log the outer loop, walked in id order (otherwise the planner may build a temporary index on the whole log
 * for each query).
 */
export const FEED_FROM = `events e CROSS JOIN json_each(COALESCE(e.batch, '[0]')) j
  CROSS JOIN (VALUES (0), (1), (2)) k ON k.column1 = 2 OR (COALESCE(${EVENT_FEED}, 0) & (1 << k.column1)) <> 0
  LEFT JOIN messages fm ON e.batch IS NOT NULL AND fm.tenant_id = e.tenant_id AND fm.id = ${own("m")}`;

/** Feed order: by row, by element, by k (the same as by feed id). */
export const FEED_ORDER = "e.id, j.key, k.column1";

export const FEED_ID = `(${EVENT_ID} * ${FEED_ID_STRIDE} + k.column1)`;
export const FEED_TYPE = `(CASE k.column1 WHEN 0 THEN 'accepted' WHEN 1 THEN 'queued' ELSE ${field("type", "y", false)} END)`;
export const FEED_AT = `(CASE WHEN k.column1 < 2 THEN COALESCE(${EVENT_ACCEPTED_AT}, ${field("at", "at", false)}) ELSE ${field("at", "at", false)} END)`;
export const FEED_MESSAGE_ID = field("message_id", "m", false);
/** A batch element's recipient: its log entry's index into the message's recipients. */
const EVENT_RECIPIENT = `(CASE WHEN e.batch IS NULL THEN e.recipient ELSE json_extract(fm.rcpts, '$[' || ${logged("i")} || '].a') END)`;
export const FEED_RECIPIENT = `(CASE WHEN k.column1 = 0 THEN NULL ELSE ${EVENT_RECIPIENT} END)`;

/** An attempt's field, absent on the `accepted` and `queued` events a row announces. */
const detail = (column: string, key: string) => `CASE WHEN k.column1 < 2 THEN NULL ELSE ${field(column, key)} END AS ${column}`;

/** The select list of a feed event: the columns of an `events` row, with the feed id as `id`. */
export const FEED_COLUMNS = `${FEED_ID} AS id, ${FEED_MESSAGE_ID} AS message_id, e.tenant_id AS tenant_id,
  CASE WHEN k.column1 = 0 THEN NULL ELSE ${field("recipient_idx", "i")} END AS recipient_idx,
  ${FEED_RECIPIENT} AS recipient, ${FEED_TYPE} AS type, ${FEED_AT} AS at,
  ${detail("attempt", "n")}, ${detail("code", "c")}, ${detail("enhanced", "e")}, ${detail("text", "t")}, ${detail("host", "h")},
  ${detail("tls", "s")}, ${detail("latency_ms", "l")}, ${detail("seq", "q")}, ${detail("data", "d")}`;
