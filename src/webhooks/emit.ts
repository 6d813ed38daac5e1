/**
 * Emission: after events are written to D1, `emitEvents` enqueues one WEBHOOKS job per (event, subscribed
 * endpoint). Delivery (signing, POST, retries) happens in the webhook consumer, never in the caller's path.
 */
import { newId } from "../store/ids";
import type { EventRecord } from "../store/messages";
import { enabledWebhooksOf, parseEventTypes } from "../store/webhooks";
import { toPayload, type WebhookPayload } from "./events";

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

/** The jobs for these events: one per (event, enabled endpoint of the event's tenant subscribed to its type). */
export async function webhookJobs(db: D1Database, events: readonly EventRecord[]): Promise<WebhookJob[]> {
  if (!events.length) return [];
  const missing = [...new Set(events.filter((e) => !e.tenantId).map((e) => e.messageId))];
  const tenantOf = new Map<string, string>();
  for (let i = 0; i < missing.length; i += 90) {
    const chunk = missing.slice(i, i + 90);
    const { results } = await db
      .prepare(`SELECT id, tenant_id FROM messages WHERE id IN (${chunk.map(() => "?").join(", ")})`)
      .bind(...chunk)
      .all<{ id: string; tenant_id: string }>();
    for (const r of results) tenantOf.set(r.id, r.tenant_id);
  }
  const resolved = events.flatMap((e) => {
    const tenantId = e.tenantId ?? tenantOf.get(e.messageId);
    return tenantId ? [{ ...e, tenantId }] : [];
  });
  const hooks = await enabledWebhooksOf(db, [...new Set(resolved.map((e) => e.tenantId))]);
  if (!hooks.length) return [];
  const jobs: WebhookJob[] = [];
  for (const e of resolved) {
    for (const h of hooks) {
      if (h.tenant_id !== e.tenantId) continue;
      const types = parseEventTypes(h.event_types);
      if (!types.includes("*") && !types.includes(e.type)) continue;
      jobs.push({ v: 1, webhookId: h.id, payload: toPayload(newId(e.at), e) });
    }
  }
  return jobs;
}

/**
 * Enqueues webhook deliveries for events already written to D1. Never throws: a webhook problem must not
 * fail the send or the delivery that produced the events; it is logged instead.
 */
export async function emitEvents(env: Env, events: readonly EventRecord[]): Promise<number> {
  try {
    const jobs = await webhookJobs(env.DB, events);
    for (let i = 0; i < jobs.length; i += SEND_BATCH_MAX) {
      await env.WEBHOOKS.sendBatch(jobs.slice(i, i + SEND_BATCH_MAX).map((body) => ({ body, contentType: "json" as const })));
    }
    return jobs.length;
  } catch (e) {
    console.error("webhooks: could not enqueue events", e);
    return 0;
  }
}
