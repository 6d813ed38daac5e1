/**
 * Streams per tenant in D1 (issue 12): pause state and delivery limits (`tenant_streams`), and the delivery jobs
 * of paused streams (`parked_jobs`), kept in arrival order and released in that order.
 */
import type { DeliveryJob, Stream } from "../queue/job";

export const STREAMS: readonly Stream[] = ["transactional", "broadcast"];

export interface StreamSettings {
  paused: boolean;
  pausedAt: number | null;
  ratePerSecond: number | null;
  quotaPerDay: number | null;
}

const NONE: StreamSettings = { paused: false, pausedAt: null, ratePerSecond: null, quotaPerDay: null };

interface Row {
  tenant_id: string;
  stream: string;
  paused_at: number | null;
  rate_per_second: number | null;
  quota_per_day: number | null;
}

function toSettings(r: Row | undefined): StreamSettings {
  if (!r) return NONE;
  return { paused: r.paused_at !== null, pausedAt: r.paused_at, ratePerSecond: r.rate_per_second, quotaPerDay: r.quota_per_day };
}

/** Settings of every stream of the given tenants that has any, keyed `tenant|stream`; absent: no pause, no limit. */
export async function streamSettings(db: D1Database, tenantIds: readonly string[]): Promise<Map<string, StreamSettings>> {
  const out = new Map<string, StreamSettings>();
  const ids = [...new Set(tenantIds)];
  for (let i = 0; i < ids.length; i += 90) {
    const chunk = ids.slice(i, i + 90);
    const { results } = await db
      .prepare(`SELECT tenant_id, stream, paused_at, rate_per_second, quota_per_day FROM tenant_streams WHERE tenant_id IN (${chunk.map(() => "?").join(",")})`)
      .bind(...chunk)
      .all<Row>();
    for (const r of results) out.set(`${r.tenant_id}|${r.stream}`, toSettings(r));
  }
  return out;
}

/** One stream's settings. */
export async function getStreamSettings(db: D1Database, tenantId: string, stream: Stream): Promise<StreamSettings> {
  const r = await db.prepare("SELECT * FROM tenant_streams WHERE tenant_id = ? AND stream = ?").bind(tenantId, stream).first<Row>();
  return toSettings(r ?? undefined);
}

/** Pauses or resumes a stream; a pause keeps its first time. */
export async function setStreamPaused(db: D1Database, tenantId: string, stream: Stream, paused: boolean, now = Date.now()): Promise<void> {
  await db
    .prepare(
      `INSERT INTO tenant_streams (tenant_id, stream, paused_at, updated_at) VALUES (?, ?, ?, ?)
       ON CONFLICT (tenant_id, stream) DO UPDATE SET paused_at = CASE WHEN excluded.paused_at IS NULL THEN NULL ELSE COALESCE(tenant_streams.paused_at, excluded.paused_at) END,
         updated_at = excluded.updated_at`,
    )
    .bind(tenantId, stream, paused ? now : null, now)
    .run();
}

/** Sets a stream's delivery limits (null: none). */
export async function setStreamLimits(db: D1Database, tenantId: string, stream: Stream, limits: { ratePerSecond: number | null; quotaPerDay: number | null }, now = Date.now()): Promise<void> {
  await db
    .prepare(
      `INSERT INTO tenant_streams (tenant_id, stream, rate_per_second, quota_per_day, updated_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (tenant_id, stream) DO UPDATE SET rate_per_second = excluded.rate_per_second, quota_per_day = excluded.quota_per_day, updated_at = excluded.updated_at`,
    )
    .bind(tenantId, stream, limits.ratePerSecond, limits.quotaPerDay, now)
    .run();
}

/** Statements that park jobs, in the given order. */
export function parkJobStatements(db: D1Database, jobs: readonly DeliveryJob[], now = Date.now()): D1PreparedStatement[] {
  return jobs.map((j) =>
    db.prepare("INSERT INTO parked_jobs (tenant_id, stream, job, parked_at) VALUES (?, ?, ?, ?)").bind(j.tenantId, j.stream ?? "transactional", JSON.stringify(j), now),
  );
}

/** Jobs parked for a stream. */
export async function countParkedJobs(db: D1Database, tenantId: string, stream: Stream): Promise<number> {
  const r = await db.prepare("SELECT COUNT(*) AS n FROM parked_jobs WHERE tenant_id = ? AND stream = ?").bind(tenantId, stream).first<{ n: number }>();
  return r?.n ?? 0;
}

/**
 * Takes (deletes and returns) up to `limit` of a stream's oldest parked jobs, oldest first. One statement, so two
 * releasers never take the same job.
 */
export async function takeParkedJobs(db: D1Database, tenantId: string, stream: Stream, limit: number): Promise<{ id: number; job: DeliveryJob }[]> {
  const { results } = await db
    .prepare(
      `DELETE FROM parked_jobs WHERE id IN (SELECT id FROM parked_jobs WHERE tenant_id = ? AND stream = ? ORDER BY id LIMIT ?)
       RETURNING id, job`,
    )
    .bind(tenantId, stream, limit)
    .all<{ id: number; job: string }>();
  return results.map((r) => ({ id: r.id, job: JSON.parse(r.job) as DeliveryJob })).sort((a, b) => a.id - b.id);
}

/** Puts taken jobs back under their old ids (their queueing failed), so their place in line is kept. */
export function unparkFailedStatements(db: D1Database, taken: readonly { id: number; job: DeliveryJob }[], now = Date.now()): D1PreparedStatement[] {
  return taken.map((t) =>
    db.prepare("INSERT INTO parked_jobs (id, tenant_id, stream, job, parked_at) VALUES (?, ?, ?, ?, ?)").bind(t.id, t.job.tenantId, t.job.stream ?? "transactional", JSON.stringify(t.job), now),
  );
}
