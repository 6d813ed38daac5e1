/** Helpers for the delivery engine tests (inside the Workers runtime): routes, DNS records, server stats, bulk sends. */
import { inject } from "vitest";
import type { NewMessage } from "../../src/store/messages";
import type { DnsEntry } from "./peers";
import { ADMIN_TOKEN, call, env } from "../workers/helpers";

const control = () => `http://127.0.0.1:${inject("controlPort")}`;

export interface RouteSpec {
  match_recipient_domain: string;
  next_hop_url: string;
  match_sender_domain?: string;
  tenant_id?: string;
  name?: string;
  priority?: number;
  weight?: number;
  policy?: Record<string, number>;
  retry_schedule_seconds?: number[];
  max_message_age_seconds?: number;
}

export async function addRoute(spec: RouteSpec): Promise<string> {
  const r = await call("/admin/routes", { method: "POST", key: ADMIN_TOKEN, json: spec });
  if (r.status !== 201) throw new Error(`route: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { id: string }).id;
}

/**
 * A new message for `insertMessage`, as the accept path would store it, with plain defaults (sender a@x.example,
 * transactional, no body key, created now) for the fields a test that queues or parks jobs by hand does not look at.
 */
export function newMessage(m: Pick<NewMessage, "id" | "tenantId" | "recipients"> & Partial<NewMessage>): NewMessage {
  return {
    mailFrom: "a@x.example",
    headerFrom: "a@x.example",
    subject: null,
    messageIdHeader: `<${m.id}@x.example>`,
    stream: "transactional",
    sizeBytes: 10,
    bodyKey: null,
    tags: [],
    metadata: {},
    createdAt: Date.now(),
    sendAt: null,
    ...m,
  };
}

/** Registers a record set at the DoH stub. */
export async function dnsRecord(name: string, type: "MX" | "A" | "AAAA" | "TXT", entry: DnsEntry): Promise<void> {
  const r = await fetch(`${control()}/dns`, { method: "POST", body: JSON.stringify({ name, type, entry }) });
  if (!r.ok) throw new Error(`dns: ${r.status}`);
}

export const DNS_TYPE = { A: 1, MX: 15, TXT: 16, AAAA: 28 } as const;

export async function smtpStats(port: number): Promise<{ mailTimes: number[]; connections: { openedAt: number; closedAt?: number }[] }> {
  const r = await fetch(`${control()}/smtp/${port}/stats`);
  return (await r.json()) as { mailTimes: number[]; connections: { openedAt: number; closedAt?: number }[] };
}

export async function stopSmtp(port: number): Promise<void> {
  await fetch(`${control()}/smtp/${port}`, { method: "DELETE" });
}

/** Sends messages through the HTTP API, `parallel` at a time; returns their ids in order. */
export async function sendMany(
  key: string,
  items: { from: string; to: string[]; subject: string; text?: string }[],
  parallel = 16,
): Promise<string[]> {
  const ids: string[] = new Array(items.length);
  let next = 0;
  const worker = async () => {
    while (next < items.length) {
      const i = next++;
      const it = items[i]!;
      const r = await call("/v1/messages", { method: "POST", key, json: { text: "body", ...it } });
      if (r.status !== 202) throw new Error(`send ${i}: ${r.status} ${await r.text()}`);
      ids[i] = ((await r.json()) as { id: string }).id;
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return ids;
}

export interface RecipientRow {
  message_id: string;
  idx: number;
  address: string;
  status: string;
  attempts: number;
  last_code: number | null;
  last_enhanced: string | null;
}

/** Recipient rows of the given messages. */
export async function recipientRows(ids: string[]): Promise<RecipientRow[]> {
  const out: RecipientRow[] = [];
  for (let i = 0; i < ids.length; i += 90) {
    const chunk = ids.slice(i, i + 90);
    const { results } = await env.DB.prepare(
      `SELECT message_id, idx, address, status, attempts, last_code, last_enhanced FROM recipients WHERE message_id IN (${chunk.map(() => "?").join(",")})`,
    )
      .bind(...chunk)
      .all<RecipientRow>();
    out.push(...results);
  }
  return out;
}

export const FINAL = new Set(["delivered", "bounced", "expired", "suppressed", "failed"]);

/** Polls until every recipient of `ids` is in a final state; returns the rows. */
export async function waitAllFinal(ids: string[], timeoutMs: number, what = "final states"): Promise<RecipientRow[]> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const rows = await recipientRows(ids);
    const pending = rows.filter((r) => !FINAL.has(r.status));
    if (!pending.length && rows.length) return rows;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}: ${pending.length} of ${rows.length} pending (${JSON.stringify(pending.slice(0, 3))})`);
    await new Promise((r) => setTimeout(r, 250));
  }
}

export interface EventRow {
  message_id: string;
  recipient_idx: number | null;
  recipient: string | null;
  type: string;
  attempt: number | null;
  code: number | null;
  enhanced: string | null;
  text: string | null;
  host: string | null;
  tls: number | null;
  latency_ms: number | null;
  seq: number | null;
  at: number;
}

export async function eventRows(ids: string[]): Promise<EventRow[]> {
  const out: EventRow[] = [];
  for (let i = 0; i < ids.length; i += 90) {
    const chunk = ids.slice(i, i + 90);
    const { results } = await env.DB.prepare(`SELECT * FROM event_log WHERE message_id IN (${chunk.map(() => "?").join(",")}) ORDER BY id`)
      .bind(...chunk)
      .all<EventRow>();
    out.push(...results);
  }
  return out;
}

export async function gateState(key: string): Promise<Record<string, unknown>> {
  const r = await call(`/admin/gates/${encodeURIComponent(key)}`, { key: ADMIN_TOKEN });
  if (r.status !== 200) throw new Error(`gate: ${r.status} ${await r.text()}`);
  return (await r.json()) as Record<string, unknown>;
}

/** Largest number of timestamps inside any window of `windowMs` (sliding, anchored at each timestamp). */
export function maxInWindow(times: number[], windowMs: number): number {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  let j = 0;
  for (let i = 0; i < t.length; i++) {
    while (t[i]! - t[j]! >= windowMs) j++;
    best = Math.max(best, i - j + 1);
  }
  return best;
}

/** Most connections open at the same time, from open/close timestamps. */
export function maxConcurrent(conns: { openedAt: number; closedAt?: number }[]): number {
  const edges: [number, number][] = [];
  for (const c of conns) {
    edges.push([c.openedAt, 1]);
    edges.push([c.closedAt ?? Number.POSITIVE_INFINITY, -1]);
  }
  // At equal times, process closes before opens.
  edges.sort((a, b) => a[0] - b[0] || a[1] - b[1]);
  let cur = 0;
  let best = 0;
  for (const [, d] of edges) {
    cur += d;
    best = Math.max(best, cur);
  }
  return best;
}
