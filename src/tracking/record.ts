/**
 * Records one open or click: classifies it (human or machine), counts it per recipient, writes the
 * `opened` / `clicked` event to D1 (from where rollups, the message timeline and webhooks pick it up) and returns
 * it, so the caller can have webhooks sent right away. Runs after the tracking endpoint has answered
 * (`waitUntil`). Not pure: D1.
 */
import { appendToLog, insertEvent, type EventRecord } from "../store/messages";
import { countTrackingHit, findTrackedRecipient } from "../store/tracking";
import { classifyTrackingHit } from "./machine";
import type { TrackingToken } from "./token";

/**
 * Events written per recipient and kind; later hits only move the counters. Reloading a pixel or a link in a
 * loop would otherwise grow the events table (and the webhook traffic) without bound.
 */
export const MAX_OPEN_EVENTS_PER_RECIPIENT = 20;
export const MAX_CLICK_EVENTS_PER_RECIPIENT = 100;
/** User agents are kept for the record, cut to this length (they are untrusted input). */
const MAX_USER_AGENT_CHARS = 512;

export interface TrackingRequest {
  userAgent: string | null;
  method: string;
  at: number;
}

/** The event written for a hit, or null when the message is gone (retention) or the cap was reached. */
export async function recordTrackingHit(env: Env, token: TrackingToken, req: TrackingRequest): Promise<EventRecord | null> {
  const rcpt = await findTrackedRecipient(env.DB, token.messageId, token.recipientIdx);
  if (!rcpt) return null;
  const kind = token.kind;
  const verdict = classifyTrackingHit({
    kind,
    userAgent: req.userAgent,
    method: req.method,
    at: req.at,
    deliveredAt: rcpt.deliveredAt,
    pending: rcpt.status === "queued" || rcpt.status === "deferred",
  });
  const counters = await countTrackingHit(env.DB, { messageId: token.messageId, recipientIdx: token.recipientIdx, tenantId: rcpt.tenantId, kind, machine: verdict.machine, at: req.at });
  const total = kind === "open" ? counters.opens + counters.machineOpens : counters.clicks + counters.machineClicks;
  if (total > (kind === "open" ? MAX_OPEN_EVENTS_PER_RECIPIENT : MAX_CLICK_EVENTS_PER_RECIPIENT)) return null;
  const firstHuman = !verdict.machine && (kind === "open" ? counters.opens === 1 : counters.clicks === 1);
  const event: EventRecord = {
    messageId: token.messageId,
    tenantId: rcpt.tenantId,
    recipientIdx: token.recipientIdx,
    recipient: rcpt.address,
    type: kind === "open" ? "opened" : "clicked",
    at: req.at,
    // The timeline shows `text`: the URL of a click, and why a hit counts as a machine's.
    text: [token.kind === "click" ? token.url : null, verdict.machine ? `machine: ${verdict.reason}` : null].filter(Boolean).join(" ") || null,
    data: {
      machine: verdict.machine,
      ...(verdict.reason ? { machine_reason: verdict.reason } : {}),
      ...(verdict.proxy ? { proxy: verdict.proxy } : {}),
      ...(token.kind === "click" ? { url: token.url } : {}),
      first: firstHuman,
      user_agent: req.userAgent === null ? null : req.userAgent.slice(0, MAX_USER_AGENT_CHARS),
    },
  };
  // The event feeds webhooks and rollups; the log entry puts it in the message's timeline (issue 16: no index on events).
  await env.DB.batch([insertEvent(env.DB, event), appendToLog(env.DB, event)]);
  return event;
}
