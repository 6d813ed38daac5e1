/** The JSON body of a webhook delivery, and the event types an endpoint may subscribe to. */
import type { EventRecord, RecipientOutcome } from "../store/messages";

/** Event types endpoints may ask for; "*" subscribes to all. */
export const WEBHOOK_EVENT_TYPES = [
  "accepted",
  "queued",
  "deferred",
  "delivered",
  "bounced",
  "expired",
  "suppressed",
  "failed",
  "complained",
  "opened",
  "clicked",
  "auto_replied",
  "unsubscribed",
] as const;

/** What a receiver gets, one event per POST. */
export interface WebhookPayload {
  /** Delivery id, stable across retries: receivers deduplicate on it (also in the Edge-Relay-Delivery header). */
  id: string;
  type: string;
  /** When the event happened (ISO 8601). */
  created_at: string;
  tenant_id: string;
  message_id: string;
  recipient: string | null;
  data: {
    attempt: number | null;
    code: number | null;
    enhanced: string | null;
    text: string | null;
    host: string | null;
    tls: boolean | null;
    latency_ms: number | null;
    extra?: unknown;
  };
}

/** An event to emit: what was written to D1 (an event record) with its tenant known. */
export type EmittableEvent = EventRecord & { tenantId: string };

/** The events a batch of recipient outcomes wrote (recordOutcome writes one event per outcome). */
export function eventsFromOutcomes(outcomes: readonly RecipientOutcome[]): EventRecord[] {
  return outcomes.map((o) => ({
    messageId: o.messageId,
    tenantId: o.tenantId,
    recipientIdx: o.idx,
    recipient: o.address,
    type: o.status,
    at: o.at,
    attempt: o.attempt,
    code: o.code,
    enhanced: o.enhanced,
    text: o.text,
    host: o.host,
    tls: o.tls,
    latencyMs: o.latencyMs,
  }));
}

export function toPayload(id: string, e: EmittableEvent): WebhookPayload {
  return {
    id,
    type: e.type,
    created_at: new Date(e.at).toISOString(),
    tenant_id: e.tenantId,
    message_id: e.messageId,
    recipient: e.recipient ?? null,
    data: {
      attempt: e.attempt ?? null,
      code: e.code ?? null,
      enhanced: e.enhanced ?? null,
      text: e.text ?? null,
      host: e.host ?? null,
      tls: e.tls ?? null,
      latency_ms: e.latencyMs ?? null,
      ...(e.data !== undefined ? { extra: e.data } : {}),
    },
  };
}
