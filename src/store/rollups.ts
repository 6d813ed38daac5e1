/**
 * Rollups of the event log for the reporting page: counts per time bucket, tenant, recipient domain and next
 * hop, and a histogram of accept-to-delivery time. They are built incrementally from `events` by id
 * watermark (see `advanceRollups`), so every writer of events is covered without having to remember to
 * update them, and the page reads only these small tables.
 */
import { EVENT_ACCEPTED_AT, EVENT_FEED, FEED_COLUMNS, FEED_FROM } from "./feed";

/** Bucket sizes in seconds: 5 minutes (for the 1h window, kept 2 days) and one hour (kept forever). */
export const ROLLUP_PERIODS_S = [300, 3600] as const;
export type RollupPeriod = (typeof ROLLUP_PERIODS_S)[number];
/** 5-minute rollups are kept this long; only the 1h window reads them. */
export const FINE_ROLLUP_RETENTION_MS = 2 * 86_400_000;
/** Events rolled up per pass by the cron: one D1 batch stays well under D1's 30 s statement limit at this size. */
export const ROLLUP_PASS_EVENTS = 10_000;
/** Events a page load folds in before it reads (the cron does the bulk): keeps the page's own cost small. */
export const PAGE_ROLLUP_EVENTS = 2_000;

/**
 * Upper bounds (ms) of the accept-to-delivery histogram. Close steps below a minute (relay-to-upstream
 * times), then the retry schedule's steps up to MAX_MESSAGE_AGE_SECONDS' default of 72 h.
 */
export const LATENCY_BOUNDS_MS = [
  100, 250, 500, 1_000, 2_000, 5_000, 10_000, 30_000, 60_000, 120_000, 300_000, 600_000, 1_800_000, 3_600_000, 7_200_000,
  21_600_000, 43_200_000, 86_400_000, 259_200_000, 9_007_199_254_740_991,
] as const;

const GUARD = "(SELECT last_event_id FROM report_watermarks WHERE name = 'rollup') = ?1";

/** The feed events (store/feed.ts) of rows (lo, hi], as `f`. */
const FEED_IN_RANGE = `FROM (SELECT ${FEED_COLUMNS}, ${EVENT_ACCEPTED_AT} AS accepted_at, ${EVENT_FEED} AS feed FROM ${FEED_FROM}
    WHERE e.id > ?1 AND e.id <= ?2 AND ${GUARD}) f`;
const DOMAIN = "CASE WHEN f.recipient IS NULL THEN '' ELSE lower(substr(f.recipient, instr(f.recipient, '@') + 1)) END";

/**
 * Each event counted at every (period, level, tenant) a page reads: totals every 5 minutes and every hour, per
 * recipient domain and per next hop every hour; under its own tenant and under '*'. A VALUES table rather than
 * UNION ALL: D1 caps compound SELECTs at a few terms.
 */
function dimensions(valueColumn: string): string {
  return `dims AS (
    SELECT d.column1 AS period, d.column2 AS level, CASE d.column3 WHEN 1 THEN '*' ELSE ev.tenant_id END AS tenant_id,
           CASE d.column2 WHEN 'domain' THEN ev.domain WHEN 'route' THEN ev.route ELSE '' END AS key, ev.${valueColumn} AS ${valueColumn}, ev.at AS at
      FROM ev JOIN (VALUES (300, 'total', 0), (300, 'total', 1), (3600, 'total', 0), (3600, 'total', 1),
                           (3600, 'domain', 0), (3600, 'domain', 1), (3600, 'route', 0), (3600, 'route', 1)) d
     WHERE (d.column2 <> 'domain' OR ev.domain <> '') AND (d.column2 <> 'route' OR ev.route <> '')
  )`;
}

const COUNTS_SQL = `WITH ev AS (
    SELECT f.type AS type, COALESCE(f.tenant_id, '') AS tenant_id, ${DOMAIN} AS domain, COALESCE(f.host, '') AS route, f.at AS at
    ${FEED_IN_RANGE}
  ), ${dimensions("type")}
  INSERT INTO report_rollups (period, level, tenant_id, bucket, key, type, count)
  SELECT period, level, tenant_id, (at / (period * 1000)) * (period * 1000), key, type, COUNT(*) FROM dims WHERE true
  GROUP BY 1, 2, 3, 4, 5, 6
  ON CONFLICT (period, level, tenant_id, bucket, key, type) DO UPDATE SET count = count + excluded.count`;

const LATENCY_CASE = `CASE ${LATENCY_BOUNDS_MS.slice(0, -1)
  .map((b) => `WHEN f.at - f.accepted_at <= ${b} THEN ${b}`)
  .join(" ")} ELSE ${LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]} END`;

const LATENCY_SQL = `WITH ev AS (
    SELECT COALESCE(f.tenant_id, '') AS tenant_id, ${DOMAIN} AS domain, COALESCE(f.host, '') AS route, f.at AS at, ${LATENCY_CASE} AS le_ms
    ${FEED_IN_RANGE} WHERE f.type = 'delivered' AND f.accepted_at IS NOT NULL
  ), ${dimensions("le_ms")}
  INSERT INTO report_latency (period, level, tenant_id, bucket, key, le_ms, count)
  SELECT period, level, tenant_id, (at / (period * 1000)) * (period * 1000), key, le_ms, COUNT(*) FROM dims WHERE true
  GROUP BY 1, 2, 3, 4, 5, 6
  ON CONFLICT (period, level, tenant_id, bucket, key, le_ms) DO UPDATE SET count = count + excluded.count`;

/**
 * Statements that fold events (lo, hi] into the rollups and move the watermark from lo to hi, for one
 * `db.batch` (a transaction). Every statement re-checks that the watermark is still lo, so two passes racing
 * over the same range (cron and a page load) count each event once: the second finds the watermark moved.
 */
export function rollupStatements(db: D1Database, lo: number, hi: number, now = Date.now()): D1PreparedStatement[] {
  return [
    db.prepare(COUNTS_SQL).bind(lo, hi),
    db.prepare(LATENCY_SQL).bind(lo, hi),
    db.prepare("UPDATE report_watermarks SET last_event_id = ?2, updated_at = ?3 WHERE name = 'rollup' AND last_event_id = ?1").bind(lo, hi, now),
  ];
}

export interface RollupProgress {
  /** Events folded in by this call. */
  rolledUp: number;
  /** The watermark after this call. */
  watermark: number;
  /** Events still waiting (0 when caught up). */
  behind: number;
}

/**
 * Folds new events into the rollups, at most `maxPasses` batches of `passEvents` ids. Called by the cron trigger
 * (until caught up) and by the reporting page before it reads (one small pass), so the page is current.
 */
export async function advanceRollups(db: D1Database, maxPasses = 1, now = Date.now(), passEvents = ROLLUP_PASS_EVENTS): Promise<RollupProgress> {
  let rolledUp = 0;
  let watermark = 0;
  let top = 0;
  for (let pass = 0; pass < maxPasses; pass++) {
    const row = await db
      .prepare("SELECT w.last_event_id AS lo, (SELECT MAX(id) FROM events) AS top FROM report_watermarks w WHERE w.name = 'rollup'")
      .first<{ lo: number; top: number | null }>();
    if (!row) throw new Error("report_watermarks has no 'rollup' row: apply migration 0004_report.sql");
    watermark = row.lo;
    top = row.top ?? 0;
    if (top <= watermark) break;
    const hi = Math.min(top, watermark + passEvents);
    const results = await db.batch(rollupStatements(db, watermark, hi, now));
    const moved = (results[results.length - 1]?.meta.changes ?? 0) > 0;
    if (moved) rolledUp += hi - watermark;
    watermark = moved ? hi : watermark;
  }
  return { rolledUp, watermark, behind: Math.max(0, top - watermark) };
}
