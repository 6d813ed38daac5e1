/**
 * Emission: webhook jobs are made from the event log itself, by event-id watermark (like the rollups), so every
 * writer of events (accept, delivery, inbound bounces and complaints, housekeeping) is covered without calling
 * anything, and an event is never lost between its D1 write and the queue send. `emitNewEvents` runs at the start
 * and end of each OUTBOX batch and on the cron trigger. Jobs carry a delivery id made of the endpoint and event
 * ids, so a receiver can drop the rare duplicate (delivery is at least once).
 */
import { enabledWebhooksOf, parseEventTypes } from "../store/webhooks";
import type { EventRow as StoredEventRow } from "../store/messages";
import { FEED_COLUMNS, FEED_FROM, FEED_ORDER } from "../store/feed";
import { isRedactedValue } from "../store/redaction";
import { eventDetail } from "../store/event-detail";
import type { WebhookPayload } from "./events";

/** The columns of an event that a webhook carries. */
type EventRow = Omit<StoredEventRow, "recipient_idx" | "seq">;

export interface WebhookJob {
  v: 1;
  webhookId: string;
  payload: WebhookPayload;
}

export function isWebhookJob(v: unknown): v is WebhookJob {
  if (typeof v !== "object" || v === null) return false;
  const j = v as Partial<WebhookJob>;
  return j.v === 1 && typeof j.webhookId === "string" && typeof j.payload === "object" && j.payload !== null && typeof j.payload.id === "string";
}

/** Cloudflare Queues take at most 100 messages per sendBatch. */
const SEND_BATCH_MAX = 100;
/** Events read per pass; small enough that one pass's jobs are a few sendBatch calls. */
const EMIT_PASS_EVENTS = 500;

function payloadOf(webhookId: string, e: EventRow & { tenant_id: string }): WebhookPayload {
  let extra: unknown;
  try {
    extra = e.data === null ? undefined : JSON.parse(e.data);
  } catch {
    extra = e.data;
  }
  return {
    id: `${webhookId}-${e.id}`,
    event_id: e.id,
    type: e.type,
    created_at: new Date(e.at).toISOString(),
    tenant_id: e.tenant_id,
    message_id: e.message_id,
    recipient: e.recipient,
    redacted: isRedactedValue(e.recipient),
    data: { ...eventDetail(e), ...(extra !== undefined ? { extra } : {}) },
  };
}

/** The jobs for a range of events: one per (event, enabled endpoint of its tenant subscribed to its type). */
export async function webhookJobsFor(db: D1Database, lo: number, hi: number): Promise<WebhookJob[]> {
  const { results } = await db
    .prepare(
      `SELECT ${FEED_COLUMNS} FROM ${FEED_FROM} WHERE e.id > ? AND e.id <= ? ORDER BY ${FEED_ORDER}`,
    )
    .bind(lo, hi)
    .all<EventRow>();
  const events = results.filter((e): e is EventRow & { tenant_id: string } => e.tenant_id !== null);
  const hooks = await enabledWebhooksOf(db, [...new Set(events.map((e) => e.tenant_id))]);
  const jobs: WebhookJob[] = [];
  for (const e of events) {
    for (const h of hooks) {
      if (h.tenant_id !== e.tenant_id) continue;
      const types = parseEventTypes(h.event_types);
      if (types.includes("*") || types.includes(e.type)) jobs.push({ v: 1, webhookId: h.id, payload: payloadOf(h.id, e) });
    }
  }
  return jobs;
}

/**
 * A pass over a range holds a lease (the row 'webhooks:lease', whose last_event_id is the range's end and
 * updated_at the lease time) so concurrent callers do not send the same range; a caller that dies mid-pass
 * leaves the lease to expire and the next caller sends the range again (at least once, never lost).
 */
const LEASE_MS = 120_000;

/**
 * Enqueues webhook deliveries for events written since the last call, at most `maxPasses` × 500 events: take the
 * lease, send the jobs for (watermark, end], then move the 'webhooks' watermark and release the lease together.
 * If sending fails the lease is released without moving the watermark and the error is thrown.
 */
export async function emitNewEvents(env: Env, maxPasses = 10, now = Date.now()): Promise<number> {
  const db = env.DB;
  let sent = 0;
  for (let pass = 0; pass < maxPasses; pass++) {
    const top = await db.prepare("SELECT MAX(id) AS top FROM events").first<{ top: number | null }>();
    const [, lease] = await db.batch([
      db.prepare("DELETE FROM report_watermarks WHERE name = 'webhooks:lease' AND updated_at <= ?").bind(now - LEASE_MS),
      // No 'webhooks' row: no endpoint was ever created (createWebhook starts the watermark at the newest event).
      db
        .prepare(
          `INSERT OR IGNORE INTO report_watermarks (name, last_event_id, updated_at)
           SELECT 'webhooks:lease', MIN(w.last_event_id + ?, ?), ? FROM report_watermarks w
            WHERE w.name = 'webhooks' AND w.last_event_id < ?`,
        )
        .bind(EMIT_PASS_EVENTS, top?.top ?? 0, now, top?.top ?? 0),
    ]);
    if (!lease?.meta.changes) return sent;
    const range = await db
      .prepare(
        `SELECT w.last_event_id AS lo, l.last_event_id AS hi, (SELECT COUNT(*) FROM webhooks WHERE disabled_at IS NULL) AS hooks
           FROM report_watermarks w, report_watermarks l WHERE w.name = 'webhooks' AND l.name = 'webhooks:lease'`,
      )
      .first<{ lo: number; hi: number; hooks: number }>();
    if (!range) return sent;
    const release = (advance: boolean) =>
      db.batch([
        ...(advance ? [db.prepare("UPDATE report_watermarks SET last_event_id = ?, updated_at = ? WHERE name = 'webhooks' AND last_event_id = ?").bind(range.hi, now, range.lo)] : []),
        db.prepare("DELETE FROM report_watermarks WHERE name = 'webhooks:lease' AND last_event_id = ? AND updated_at = ?").bind(range.hi, now),
      ]);
    try {
      const jobs = range.hooks ? await webhookJobsFor(db, range.lo, range.hi) : [];
      for (let i = 0; i < jobs.length; i += SEND_BATCH_MAX) {
        await env.WEBHOOKS.sendBatch(jobs.slice(i, i + SEND_BATCH_MAX).map((body) => ({ body, contentType: "json" as const })));
      }
      sent += jobs.length;
    } catch (e) {
      await release(false);
      throw new Error(`webhooks: could not enqueue events ${range.lo + 1}..${range.hi}; the next run retries them`, { cause: e });
    }
    await release(true);
  }
  return sent;
}

/** Runs `emitNewEvents` and logs (never throws): for waitUntil after queue batches and on the cron trigger. */
export async function emitNewEventsLogged(env: Env): Promise<void> {
  try {
    await emitNewEvents(env);
  } catch (e) {
    console.error(String(e), e instanceof Error ? e.cause : undefined);
  }
}
