/** Open and click tracking in D1: tenant/stream settings, per-recipient counters, and the reads behind the API. */
import { MESSAGE_BY_ID, parseRecipients, type RecipientStatus } from "./messages";

export type TrackingStream = "transactional" | "broadcast" | "*";

export interface TrackingSwitches {
  trackOpens: boolean;
  trackClicks: boolean;
}

/** A row of settings; null means "inherit" (stream -> tenant-wide -> off). */
export interface TrackingSettingsRow {
  stream: TrackingStream;
  track_opens: boolean | null;
  track_clicks: boolean | null;
  updated_at: string;
}

const bool = (v: unknown): boolean | null => (v === null || v === undefined ? null : Number(v) === 1);

/** The tenant's settings rows: `*` (tenant-wide) and per stream, those that exist. */
export async function listTrackingSettings(db: D1Database, tenantId: string): Promise<TrackingSettingsRow[]> {
  const { results } = await db
    .prepare("SELECT stream, track_opens, track_clicks, updated_at FROM tracking_settings WHERE tenant_id = ? ORDER BY stream")
    .bind(tenantId)
    .all<{ stream: TrackingStream; track_opens: number | null; track_clicks: number | null; updated_at: number }>();
  return results.map((r) => ({ stream: r.stream, track_opens: bool(r.track_opens), track_clicks: bool(r.track_clicks), updated_at: new Date(r.updated_at).toISOString() }));
}

/** Sets (or, with null, clears back to "inherit") the switches of one stream or the tenant-wide default. */
export async function putTrackingSettings(
  db: D1Database,
  tenantId: string,
  stream: TrackingStream,
  patch: { trackOpens?: boolean | null; trackClicks?: boolean | null },
  now = Date.now(),
): Promise<void> {
  const v = (b: boolean | null | undefined) => (b === undefined || b === null ? null : b ? 1 : 0);
  await db
    .prepare(
      `INSERT INTO tracking_settings (tenant_id, stream, track_opens, track_clicks, updated_at) VALUES (?1, ?2, ?3, ?4, ?5)
       ON CONFLICT (tenant_id, stream) DO UPDATE SET
         track_opens = CASE WHEN ?6 THEN excluded.track_opens ELSE track_opens END,
         track_clicks = CASE WHEN ?7 THEN excluded.track_clicks ELSE track_clicks END,
         updated_at = excluded.updated_at`,
    )
    .bind(tenantId, stream, v(patch.trackOpens), v(patch.trackClicks), now, patch.trackOpens !== undefined ? 1 : 0, patch.trackClicks !== undefined ? 1 : 0)
    .run();
}

/** What applies to a message: its own fields, else the stream's setting, else the tenant's, else off. */
export async function resolveTrackingSwitches(
  db: D1Database,
  tenantId: string,
  stream: "transactional" | "broadcast",
  own: { trackOpens?: boolean | undefined; trackClicks?: boolean | undefined },
): Promise<TrackingSwitches> {
  if (own.trackOpens !== undefined && own.trackClicks !== undefined) return { trackOpens: own.trackOpens, trackClicks: own.trackClicks };
  const { results } = await db
    .prepare("SELECT stream, track_opens, track_clicks FROM tracking_settings WHERE tenant_id = ? AND stream IN (?, '*')")
    .bind(tenantId, stream)
    .all<{ stream: string; track_opens: number | null; track_clicks: number | null }>();
  const of = (s: string) => results.find((r) => r.stream === s);
  const pick = (col: "track_opens" | "track_clicks") => bool(of(stream)?.[col]) ?? bool(of("*")?.[col]) ?? false;
  return { trackOpens: own.trackOpens ?? pick("track_opens"), trackClicks: own.trackClicks ?? pick("track_clicks") };
}

/** The recipient an open or click token names, with what the machine rules need. */
export interface TrackedRecipient {
  tenantId: string;
  address: string;
  status: RecipientStatus;
  /** When the recipient reached `delivered`, else null. */
  deliveredAt: number | null;
}

export async function findTrackedRecipient(db: D1Database, messageId: string, idx: number): Promise<TrackedRecipient | null> {
  const row = await db.prepare(`SELECT tenant_id, rcpts FROM messages WHERE ${MESSAGE_BY_ID}`).bind(messageId).first<{ tenant_id: string; rcpts: string }>();
  const r = row ? parseRecipients(row.rcpts)[idx] : undefined;
  if (!row || !r) return null;
  return { tenantId: row.tenant_id, address: r.a, status: r.s, deliveredAt: r.s === "delivered" ? (r.f ?? null) : null };
}

/** The counters of one recipient after a hit was counted. */
export interface TrackingCounters {
  opens: number;
  machineOpens: number;
  clicks: number;
  machineClicks: number;
  firstOpenAt: number | null;
  firstClickAt: number | null;
}

/** Counts one open or click (human or machine) and returns the recipient's counters afterwards. */
export async function countTrackingHit(
  db: D1Database,
  hit: { messageId: string; recipientIdx: number; tenantId: string; kind: "open" | "click"; machine: boolean; at: number },
): Promise<TrackingCounters> {
  const prefix = hit.kind === "open" ? "open" : "click";
  const counter = `${hit.machine ? "machine_" : ""}${prefix}s`;
  const first = hit.machine ? `first_machine_${prefix}_at` : `first_${prefix}_at`;
  const last = hit.machine ? null : `last_${prefix}_at`;
  // Column names come from the closed set above, never from input.
  const row = await db
    .prepare(
      `INSERT INTO tracking_recipients (message_id, recipient_idx, tenant_id, ${counter}, ${first}${last ? `, ${last}` : ""})
       VALUES (?1, ?2, ?3, 1, ?4${last ? ", ?4" : ""})
       ON CONFLICT (message_id, recipient_idx) DO UPDATE SET ${counter} = ${counter} + 1, ${first} = COALESCE(${first}, ?4)${last ? `, ${last} = MAX(COALESCE(${last}, 0), ?4)` : ""}
       RETURNING opens, machine_opens, clicks, machine_clicks, first_open_at, first_click_at`,
    )
    .bind(hit.messageId, hit.recipientIdx, hit.tenantId, hit.at)
    .first<{ opens: number; machine_opens: number; clicks: number; machine_clicks: number; first_open_at: number | null; first_click_at: number | null }>();
  if (!row) throw new Error("tracking_recipients upsert returned no row");
  return {
    opens: row.opens,
    machineOpens: row.machine_opens,
    clicks: row.clicks,
    machineClicks: row.machine_clicks,
    firstOpenAt: row.first_open_at,
    firstClickAt: row.first_click_at,
  };
}

export interface RecipientTrackingView {
  recipient: string;
  opens: number;
  machine_opens: number;
  first_open_at: string | null;
  last_open_at: string | null;
  first_machine_open_at: string | null;
  clicks: number;
  machine_clicks: number;
  first_click_at: string | null;
  last_click_at: string | null;
  first_machine_click_at: string | null;
}

/** Opens and clicks of every recipient of a tenant's message (zeros for recipients without any), or null for no such message. */
export async function messageTracking(db: D1Database, messageId: string, tenantId: string): Promise<RecipientTrackingView[] | null> {
  const [msg, rows] = await db.batch([
    db.prepare("SELECT rcpts FROM messages WHERE tenant_id = ? AND id = ?").bind(tenantId, messageId),
    db.prepare("SELECT * FROM tracking_recipients WHERE message_id = ?").bind(messageId),
  ]);
  const m = msg?.results[0] as { rcpts: string } | undefined;
  if (!m) return null;
  const counters = new Map(((rows?.results ?? []) as Record<string, unknown>[]).map((t) => [Number(t.recipient_idx), t]));
  const joined = parseRecipients(m.rcpts).map((r, idx) => ({ ...(counters.get(idx) ?? {}), address: r.a }) as Record<string, unknown>);
  const iso = (v: unknown) => (v === null || v === undefined ? null : new Date(Number(v)).toISOString());
  return joined.map((r) => ({
    recipient: String(r.address),
    opens: Number(r.opens ?? 0),
    machine_opens: Number(r.machine_opens ?? 0),
    first_open_at: iso(r.first_open_at),
    last_open_at: iso(r.last_open_at),
    first_machine_open_at: iso(r.first_machine_open_at),
    clicks: Number(r.clicks ?? 0),
    machine_clicks: Number(r.machine_clicks ?? 0),
    first_click_at: iso(r.first_click_at),
    last_click_at: iso(r.last_click_at),
    first_machine_click_at: iso(r.first_machine_click_at),
  }));
}

export interface TrackingStats {
  /** Recipients with at least one human open / click. */
  unique_opens: number;
  unique_clicks: number;
  opens: number;
  clicks: number;
  /** Recipients whose only opens / clicks were machines'. */
  machine_only_opens: number;
  machine_only_clicks: number;
  machine_opens: number;
  machine_clicks: number;
}

/** Totals over the tenant's messages accepted in [since, until). */
export async function trackingStats(db: D1Database, tenantId: string, since: number, until: number): Promise<TrackingStats> {
  const row = await db
    .prepare(
      `SELECT SUM(t.opens > 0) AS unique_opens, SUM(t.clicks > 0) AS unique_clicks, SUM(t.opens) AS opens, SUM(t.clicks) AS clicks,
              SUM(t.opens = 0 AND t.machine_opens > 0) AS machine_only_opens, SUM(t.clicks = 0 AND t.machine_clicks > 0) AS machine_only_clicks,
              SUM(t.machine_opens) AS machine_opens, SUM(t.machine_clicks) AS machine_clicks
         FROM tracking_recipients t JOIN messages m ON m.tenant_id = t.tenant_id AND m.id = t.message_id
        WHERE t.tenant_id = ? AND m.created_at >= ? AND m.created_at < ?`,
    )
    .bind(tenantId, since, until)
    .first<Record<keyof TrackingStats, number | null>>();
  const n = (k: keyof TrackingStats) => Number(row?.[k] ?? 0);
  return {
    unique_opens: n("unique_opens"),
    unique_clicks: n("unique_clicks"),
    opens: n("opens"),
    clicks: n("clicks"),
    machine_only_opens: n("machine_only_opens"),
    machine_only_clicks: n("machine_only_clicks"),
    machine_opens: n("machine_opens"),
    machine_clicks: n("machine_clicks"),
  };
}
