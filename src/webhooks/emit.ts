/**
 * Emission: webhook jobs are made from the event log itself, by event-id watermark (like the rollups), so every
 * writer of events (accept, delivery, inbound bounces and complaints, housekeeping) is covered without calling
 * anything, and an event is never lost between its D1 write and the queue send. `emitNewEvents` runs at the start
 * and end of each OUTBOX batch and on the cron trigger. Jobs carry a delivery id made of the endpoint and event
 * ids, so a receiver can drop the rare duplicate (delivery is at least once).
 */
import { enabledWebhooksOf, parseEventTypes } from "../store/webhooks";
import { countEnabledWebhooks, emissionRange, feedEventsBetween, newestEventId, releaseEmissionLease, takeEmissionLease, type FeedEventRow as EventRow } from "../store/webhook-emission";
import { isRedactedValue } from "../store/redaction";
import { eventDetail } from "../store/event-detail";
import type { WebhookPayload } from "./events";
import { ledgerShards, type LedgerShard } from "../store/shards";

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
export async function webhookJobsFor(ledger: D1Database, control: D1Database, lo: number, hi: number): Promise<WebhookJob[]> {
  const events = (await feedEventsBetween(ledger, lo, hi)).filter((e): e is EventRow & { tenant_id: string } => e.tenant_id !== null);
  const hooks = await enabledWebhooksOf(control, [...new Set(events.map((e) => e.tenant_id))]);
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
 * Enqueues webhook deliveries for events written since the last call, at most `maxPasses` × 500 events per
 * ledger shard: take the lease, send the jobs for (watermark, end], then move the 'webhooks' watermark and release
 * the lease together. Each shard has its own feed and watermark; shards are served in parallel and one that fails
 * does not hold up the others. If sending fails the lease is released without moving the watermark and the error
 * is thrown (after every shard had its turn).
 */
export async function emitNewEvents(env: Env, maxPasses = 10, now = Date.now(), shards: readonly LedgerShard[] = ledgerShards(env)): Promise<number> {
  let hooks: Promise<number> | undefined;
  const enabled = () => (hooks ??= countEnabledWebhooks(env.DB));
  const settled = await Promise.allSettled(shards.map((s) => emitFromShard(env, s.db, enabled, maxPasses, now)));
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return settled.reduce((n, r) => n + (r as PromiseFulfilledResult<number>).value, 0);
}

async function emitFromShard(env: Env, db: D1Database, enabled: () => Promise<number>, maxPasses: number, now: number): Promise<number> {
  let sent = 0;
  for (let pass = 0; pass < maxPasses; pass++) {
    const top = await newestEventId(db);
    if (!(await takeEmissionLease(db, EMIT_PASS_EVENTS, top, now, LEASE_MS))) return sent;
    const range = await emissionRange(db);
    if (!range) return sent;
    const release = (advance: boolean) => releaseEmissionLease(db, range, advance, now);
    try {
      const jobs = (await enabled()) ? await webhookJobsFor(db, env.DB, range.lo, range.hi) : [];
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
export async function emitNewEventsLogged(env: Env, shards?: readonly LedgerShard[]): Promise<void> {
  try {
    await emitNewEvents(env, undefined, undefined, shards);
  } catch (e) {
    console.error(String(e), e instanceof Error ? e.cause : undefined);
  }
}
