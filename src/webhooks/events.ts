/** The JSON body of a webhook delivery, and the event types an endpoint may subscribe to. */
import type { EventDetail } from "../store/event-detail";

/** Event types endpoints may ask for; "*" subscribes to all. */
export const WEBHOOK_EVENT_TYPES = [
  "accepted",
  "queued",
  "deferred",
  "waiting",
  "delivered",
  "bounced",
  "expired",
  "suppressed",
  "failed",
  "complained",
  "opened",
  "clicked",
  "auto_replied",
  "delayed",
  "unsubscribed",
  // Reputation watch (issue 20): a watched IP or domain appeared on or left a blocklist; message_id is "".
  "reputation.listed",
  "reputation.delisted",
] as const;

/** What a receiver gets, one event per POST. */
export interface WebhookPayload {
  /** Delivery id, stable across retries: receivers deduplicate on it (also in the Edge-Relay-Delivery header). */
  id: string;
  /** The event's id in the relay's event log (increasing). */
  event_id: number;
  type: string;
  /** When the event happened (ISO 8601). */
  created_at: string;
  tenant_id: string;
  message_id: string;
  recipient: string | null;
  /** Message events: the recipient and texts were redacted (issue 21): they read [redacted] or [hmac:...] before @domain. */
  redacted?: boolean;
  data: EventDetail & { extra?: unknown };
}
