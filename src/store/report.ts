/**
 * Reads for the reporting page's overview and destinations: totals, time series and latency percentiles from
 * the rollup tables (never from raw events), and queue health from `recipients`.
 */
import { idFloor } from "./ids";
import { LATENCY_BOUNDS_MS, type RollupPeriod } from "./rollups";

/** '*' means all tenants. */
export type TenantScope = string;
export const ALL_TENANTS: TenantScope = "*";

export type ReportWindow = "1h" | "24h" | "7d" | "30d";
export const REPORT_WINDOWS: readonly ReportWindow[] = ["1h", "24h", "7d", "30d"];

export interface WindowSpec {
  /** Rollup period read for this window. */
  period: RollupPeriod;
  /** Width of one bar of the chart, in ms. */
  stepMs: number;
  /** Number of bars. */
  steps: number;
}


/** The SQL of the overview and destinations (exported for the EXPLAIN QUERY PLAN test). */
export const REPORT_SQL = {
  totals: `SELECT type, SUM(count) AS n FROM report_rollups
        WHERE period = ? AND level = 'total' AND tenant_id = ? AND bucket >= ? GROUP BY type`,
  series: `SELECT (bucket / ?1) * ?1 AS step, type, SUM(count) AS n FROM report_rollups
        WHERE period = ?2 AND level = 'total' AND tenant_id = ?3 AND bucket >= ?4 GROUP BY step, type`,
  latency: `SELECT le_ms, SUM(count) AS n FROM report_latency
        WHERE period = ? AND level = 'total' AND tenant_id = ? AND bucket >= ? GROUP BY le_ms ORDER BY le_ms`,
  destinationCounts: `SELECT key, type, SUM(count) AS n FROM report_rollups
          WHERE period = 3600 AND level = ? AND tenant_id = ? AND bucket >= ? GROUP BY key, type`,
  destinationLatency: `SELECT key, le_ms, SUM(count) AS n FROM report_latency
          WHERE period = 3600 AND level = ? AND tenant_id = ? AND bucket >= ? GROUP BY key, le_ms ORDER BY key, le_ms`,
};

const HOUR_MS = 3_600_000;
export const WINDOW_SPECS: Record<ReportWindow, WindowSpec> = {
  "1h": { period: 300, stepMs: 300_000, steps: 12 },
  "24h": { period: 3600, stepMs: HOUR_MS, steps: 24 },
  "7d": { period: 3600, stepMs: 6 * HOUR_MS, steps: 28 },
  "30d": { period: 3600, stepMs: 24 * HOUR_MS, steps: 30 },
};

/** The first bucket start of a window ending at `now` (the current, partial step is the last bar). */
export function windowStart(window: ReportWindow, now: number): number {
  const s = WINDOW_SPECS[window];
  return Math.floor(now / s.stepMs) * s.stepMs - (s.steps - 1) * s.stepMs;
}

export type Counts = Record<string, number>;

export interface LatencyHistogram {
  /** [upper bound ms, count] sorted by bound. */
  buckets: [number, number][];
  total: number;
}

/** The rows of a per-window report query whose binds are (period, tenant, window start). */
async function windowRows<T>(db: D1Database, sql: string, tenant: TenantScope, window: ReportWindow, now: number): Promise<T[]> {
  const { results } = await db.prepare(sql).bind(WINDOW_SPECS[window].period, tenant, windowStart(window, now)).all<T>();
  return results;
}

/** Event counts by type over a window. */
export async function windowTotals(db: D1Database, tenant: TenantScope, window: ReportWindow, now = Date.now()): Promise<Counts> {
  const results = await windowRows<{ type: string; n: number }>(db, REPORT_SQL.totals, tenant, window, now);
  return Object.fromEntries(results.map((r) => [r.type, r.n]));
}

export interface SeriesPoint {
  at: number;
  counts: Counts;
}

/** One point per chart step, oldest first, with counts by event type (empty steps included). */
export async function windowSeries(db: D1Database, tenant: TenantScope, window: ReportWindow, now = Date.now()): Promise<SeriesPoint[]> {
  const spec = WINDOW_SPECS[window];
  const start = windowStart(window, now);
  const { results } = await db.prepare(REPORT_SQL.series).bind(spec.stepMs, spec.period, tenant, start).all<{ step: number; type: string; n: number }>();
  const points: SeriesPoint[] = Array.from({ length: spec.steps }, (_, i) => ({ at: start + i * spec.stepMs, counts: {} }));
  for (const r of results) {
    const p = points[Math.round((r.step - start) / spec.stepMs)];
    if (p) p.counts[r.type] = (p.counts[r.type] ?? 0) + r.n;
  }
  return points;
}

/** Accept-to-delivery histogram over a window. */
export async function windowLatency(db: D1Database, tenant: TenantScope, window: ReportWindow, now = Date.now()): Promise<LatencyHistogram> {
  const results = await windowRows<{ le_ms: number; n: number }>(db, REPORT_SQL.latency, tenant, window, now);
  const buckets = results.map((r) => [r.le_ms, r.n] as [number, number]);
  return { buckets, total: buckets.reduce((s, [, n]) => s + n, 0) };
}

/**
 * The q-quantile (0..1) of a histogram, interpolated linearly inside its bucket; null when empty. The answer
 * is as precise as the bucket bounds (LATENCY_BOUNDS_MS); the open last bucket reports its lower bound.
 */
export function quantile(h: LatencyHistogram, q: number): number | null {
  if (!h.total) return null;
  const rank = q * h.total;
  let seen = 0;
  let lower = 0;
  for (const [upper, n] of h.buckets) {
    if (seen + n >= rank && n > 0) {
      if (upper === LATENCY_BOUNDS_MS[LATENCY_BOUNDS_MS.length - 1]) return lower;
      return Math.round(lower + ((rank - seen) / n) * (upper - lower));
    }
    seen += n;
    lower = upper;
  }
  return lower;
}

export interface DeliveryRates {
  /** delivered / (delivered + bounced + expired + failed) */
  delivery: number | null;
  /** bounced (permanent, 5xx) / same denominator */
  bounce: number | null;
  /** complained / delivered */
  complaint: number | null;
  /** deferred attempts / all delivery attempts (delivered + deferred + bounced) */
  deferral: number | null;
}

/** The usual sender-reputation thresholds (Gmail/Yahoo bulk sender rules, SES account review levels). */
export const RATE_THRESHOLDS = { deliveryMin: 0.95, bounceMax: 0.02, complaintMax: 0.001 } as const;

export function deliveryRates(c: Counts): DeliveryRates {
  const n = (t: string) => c[t] ?? 0;
  const outcomes = n("delivered") + n("bounced") + n("expired") + n("failed");
  const attempts = n("delivered") + n("deferred") + n("bounced");
  return {
    delivery: outcomes ? n("delivered") / outcomes : null,
    bounce: outcomes ? n("bounced") / outcomes : null,
    complaint: n("delivered") ? n("complained") / n("delivered") : null,
    deferral: attempts ? n("deferred") / attempts : null,
  };
}

export interface DestinationRow {
  key: string;
  counts: Counts;
  /** Recipients handed to this destination: queued (domains) or attempts (routes). */
  volume: number;
  rates: DeliveryRates;
  medianLatencyMs: number | null;
  /** The accept-to-delivery histogram behind the median (summed when the page adds up ledger shards). */
  latency: LatencyHistogram | null;
}

/** Per recipient domain (level 'domain') or per next hop (level 'route') over a window, busiest first. */
export async function destinations(
  db: D1Database,
  tenant: TenantScope,
  level: "domain" | "route",
  window: ReportWindow,
  limit = 100,
  now = Date.now(),
): Promise<DestinationRow[]> {
  // Destinations read hourly rollups even for the 1h window (5-minute rollups keep no per-domain rows).
  const start = Math.min(windowStart(window, now), Math.floor(now / HOUR_MS) * HOUR_MS);
  const [counts, latency] = await db.batch<{ key: string; type?: string; le_ms?: number; n: number }>(
    [REPORT_SQL.destinationCounts, REPORT_SQL.destinationLatency].map((sql) => db.prepare(sql).bind(level, tenant, start)),
  );
  const byKey = new Map<string, Counts>();
  for (const r of counts?.results ?? []) {
    const c = byKey.get(r.key) ?? {};
    c[r.type!] = (c[r.type!] ?? 0) + r.n;
    byKey.set(r.key, c);
  }
  const hist = new Map<string, LatencyHistogram>();
  for (const r of latency?.results ?? []) {
    const h = hist.get(r.key) ?? { buckets: [], total: 0 };
    h.buckets.push([r.le_ms!, r.n]);
    h.total += r.n;
    hist.set(r.key, h);
  }
  const rows = [...byKey].map(([key, c]): DestinationRow => {
    const n = (t: string) => c[t] ?? 0;
    const volume = level === "domain" ? n("queued") + n("suppressed") : n("delivered") + n("deferred") + n("bounced");
    const h = hist.get(key);
    return { key, counts: c, volume, rates: deliveryRates(c), medianLatencyMs: h ? quantile(h, 0.5) : null, latency: h ?? null };
  });
  rows.sort((a, b) => b.volume - a.volume || a.key.localeCompare(b.key));
  return rows.slice(0, limit);
}

export interface QueueHealth {
  queued: number;
  deferred: number;
  oldestPending: {
    messageId: string;
    address: string;
    status: string;
    attempts: number;
    lastText: string | null;
    acceptedAt: number;
    nextAttemptAt: number | null;
  } | null;
  deferredByDomain: { domain: string; n: number }[];
}

const SCOPED = "m.tenant_id IN (SELECT id FROM tenants) AND (?1 = 1 OR m.tenant_id = ?2) AND m.id >= ?3 AND m.open > 0";
const R_STATUS = "json_extract(j.value, '$.s')";
const R_ADDRESS = "json_extract(j.value, '$.a')";
/**
 * Queue health SQL; bound ?1 all-tenants flag, ?2 tenant, ?3 the smallest message id to look at (pending
 * recipients are younger than the maximum message age). A primary-key range per tenant over messages with a
 * pending recipient; their recipients are read from the row.
 */
export const QUEUE_SQL = {
  counts: `SELECT ${R_STATUS} AS status, COUNT(*) AS n FROM messages m, json_each(m.rcpts) j
            WHERE ${SCOPED} AND ${R_STATUS} IN ('queued', 'deferred') GROUP BY 1`,
  deferredByDomain: `SELECT lower(substr(${R_ADDRESS}, instr(${R_ADDRESS}, '@') + 1)) AS domain, COUNT(*) AS n FROM messages m, json_each(m.rcpts) j
            WHERE ${SCOPED} AND ${R_STATUS} = 'deferred' GROUP BY 1 ORDER BY n DESC, domain LIMIT 10`,
  oldest: (status: "queued" | "deferred") => `SELECT m.id AS message_id, ${R_ADDRESS} AS address, ${R_STATUS} AS status,
            COALESCE(json_extract(j.value, '$.n'), 0) AS attempts, json_extract(j.value, '$.t') AS last_text,
            json_extract(j.value, '$.x') AS next_attempt_at, m.created_at
            FROM messages m, json_each(m.rcpts) j
           WHERE ${SCOPED} AND ${R_STATUS} = '${status}' ORDER BY m.id LIMIT 1`,
};

/** Pending recipients are looked for among messages accepted this long ago at most (above any maximum age). */
export const QUEUE_WINDOW_MS = 8 * 86_400_000;

/** Pending recipients: the deferred backlog and the oldest recipient not yet in a final state. */
export async function queueHealth(db: D1Database, tenant: TenantScope, now = Date.now()): Promise<QueueHealth> {
  const all = tenant === ALL_TENANTS ? 1 : 0;
  const floor = idFloor(now - QUEUE_WINDOW_MS);
  const [counts, byDomain, oldestQueued, oldestDeferred] = await db.batch<Record<string, string | number | null>>([
    db.prepare(QUEUE_SQL.counts).bind(all, tenant, floor),
    db.prepare(QUEUE_SQL.deferredByDomain).bind(all, tenant, floor),
    db.prepare(QUEUE_SQL.oldest("queued")).bind(all, tenant, floor),
    db.prepare(QUEUE_SQL.oldest("deferred")).bind(all, tenant, floor),
  ]);
  const count = (s: string) => Number(counts?.results.find((r) => r.status === s)?.n ?? 0);
  const candidates = [...(oldestQueued?.results ?? []), ...(oldestDeferred?.results ?? [])].sort((a, b) =>
    String(a.message_id).localeCompare(String(b.message_id)),
  );
  const o = candidates[0];
  return {
    queued: count("queued"),
    deferred: count("deferred"),
    oldestPending: o
      ? {
          messageId: String(o.message_id),
          address: String(o.address),
          status: String(o.status),
          attempts: Number(o.attempts),
          lastText: o.last_text === null ? null : String(o.last_text),
          acceptedAt: Number(o.created_at),
          nextAttemptAt: o.next_attempt_at === null ? null : Number(o.next_attempt_at),
        }
      : null,
    deferredByDomain: (byDomain?.results ?? []).map((r) => ({ domain: String(r.domain), n: Number(r.n) })),
  };
}

/** Tenants for the page's tenant filter. */
export async function listTenants(db: D1Database, limit = 500): Promise<{ id: string; name: string }[]> {
  const { results } = await db.prepare("SELECT id, name FROM tenants ORDER BY id LIMIT ?").bind(limit).all<{ id: string; name: string }>();
  return results;
}
