/** Helpers for the email() handler tests: fake Email Routing messages, fixtures from the Node side, D1 reads. */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { inject } from "vitest";
import worker from "../../src/index";
import { expect } from "vitest";
import { call, createTenantWithKey, env, unique, waitFor } from "./helpers";

const control = () => `http://127.0.0.1:${inject("controlPort")}`;

/**
 * Sends a message through the API to `to` and waits until every recipient is delivered (at the sink). Its domain
 * is `<prefix>-….example`, or under signed.example (signed by the relay's test DKIM keys, vitest.config.ts).
 */
export async function sendDelivered(to: string[], o: { signed?: boolean; prefix?: string } = {}): Promise<{ id: string; key: string; tenantId: string; domain: string; messageIdHeader: string }> {
  const label = unique(o.prefix ?? "in");
  const domain = o.signed ? `${label}.signed.example` : `${label}.example`;
  const { key, tenantId } = await createTenantWithKey([domain]);
  const res = await call("/v1/messages", { method: "POST", key, json: { from: `app@${domain}`, to, subject: "Your receipt", text: "Thanks for your order." } });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  const view = await waitFor(async () => {
    const v = (await (await call(`/v1/messages/${id}`, { key })).json()) as { message_id_header: string; recipients: { status: string }[] };
    return v.recipients.every((r) => r.status === "delivered") ? v : undefined;
  }, 30_000, `delivery of every recipient of ${id}`);
  return { id, key, tenantId, domain, messageIdHeader: view.message_id_header };
}

/** Bytes of a fixture served by the control server: `bounces/<file>` (test/fixtures/bounces) or `inbound/<path>`. */
export async function fixtureBytes(path: string): Promise<Uint8Array> {
  const r = await fetch(`${control()}/fixtures/${path}`);
  if (r.status !== 200) throw new Error(`fixture ${path}: ${r.status}`);
  return new Uint8Array(await r.arrayBuffer());
}

/** A template fixture with `{{NAME}}` placeholders filled in; a line holding only an empty placeholder is dropped. */
export async function fixtureFilled(path: string, vars: Record<string, string>): Promise<string> {
  let text = new TextDecoder().decode(await fixtureBytes(path));
  for (const [k, v] of Object.entries(vars)) {
    if (v === "") text = text.replace(new RegExp(`^\\{\\{${k}\\}\\}\\r?\\n`, "gm"), "");
    text = text.split(`{{${k}}}`).join(v);
  }
  const left = /\{\{[A-Z_]+\}\}/.exec(text);
  if (left) throw new Error(`fixture ${path}: ${left[0]} not filled`);
  return text.replace(/\r?\n/g, "\r\n");
}

/** Labels of the shared bounce corpus (labels.json). */
export interface BounceLabel {
  file: string;
  index: number;
  status: string | null;
  reason: string;
  hardbounce: boolean;
  replycode: string | null;
  feedbacktype: string | null;
}
export async function bounceLabels(): Promise<BounceLabel[]> {
  return JSON.parse(new TextDecoder().decode(await fixtureBytes("bounces/labels.json"))) as BounceLabel[];
}

/** What the handler did with a fake message. */
export interface FakeEmail {
  message: ForwardableEmailMessage;
  rejected(): string | null;
  forwarded: string[];
}

function headersOf(raw: Uint8Array): Headers {
  const text = new TextDecoder("latin1").decode(raw);
  const m = /\r?\n\r?\n/.exec(text);
  const head = m ? text.slice(0, m.index) : text;
  const h = new Headers();
  let name = "";
  let value = "";
  const flush = () => {
    if (name) {
      try {
        h.append(name, value.trim());
      } catch {
        // Headers refuses some byte values; Email Routing would too.
      }
    }
  };
  for (const line of head.split(/\r?\n/)) {
    if (/^[ \t]/.test(line)) {
      value += " " + line.trim();
      continue;
    }
    flush();
    const i = line.indexOf(":");
    name = i > 0 ? line.slice(0, i).trim() : "";
    value = i > 0 ? line.slice(i + 1) : "";
  }
  flush();
  return h;
}

/** A ForwardableEmailMessage as Email Routing builds it: envelope, headers, raw stream, size, and recorded actions. */
export function fakeEmail(o: { from: string; to: string; raw: string | Uint8Array; rawSize?: number; chunkBytes?: number }): FakeEmail {
  const bytes = typeof o.raw === "string" ? new TextEncoder().encode(o.raw) : o.raw;
  let rejectedWith: string | null = null;
  const forwarded: string[] = [];
  const chunk = o.chunkBytes ?? 16 * 1024;
  let at = 0;
  const raw = new ReadableStream<Uint8Array>({
    pull(controller) {
      if (at >= bytes.byteLength) return controller.close();
      controller.enqueue(bytes.slice(at, at + chunk));
      at += chunk;
    },
  });
  const message: ForwardableEmailMessage = {
    from: o.from,
    to: o.to,
    headers: headersOf(bytes),
    raw,
    rawSize: o.rawSize ?? bytes.byteLength,
    canBeForwarded: true,
    setReject(reason: string) {
      rejectedWith = reason;
    },
    async forward(rcptTo: string) {
      forwarded.push(rcptTo);
      return { messageId: `fwd-${forwarded.length}` };
    },
    async reply() {
      throw new Error("the handler must not reply");
    },
  };
  return { message, rejected: () => rejectedWith, forwarded };
}

/** Runs the Worker's email() handler on a fake message, as Email Routing would, with an optional env override. */
export async function deliverToWorker(fake: FakeEmail, overrides: Partial<Env> = {}): Promise<void> {
  const ctx = createExecutionContext();
  await worker.email(fake.message, { ...env, ...overrides }, ctx);
  await waitOnExecutionContext(ctx);
}

export interface RecipientRow {
  idx: number;
  address: string;
  status: string;
  last_code: number | null;
  last_enhanced: string | null;
  last_text: string | null;
  final_at: number | null;
}
export async function recipientRows(messageId: string): Promise<RecipientRow[]> {
  const { results } = await env.DB.prepare("SELECT idx, address, status, last_code, last_enhanced, last_text, final_at FROM recipients WHERE message_id = ? ORDER BY idx")
    .bind(messageId)
    .all<RecipientRow>();
  return results;
}

export interface EventRow {
  type: string;
  recipient_idx: number | null;
  recipient: string | null;
  code: number | null;
  enhanced: string | null;
  text: string | null;
  data: string | null;
}
export async function eventRows(messageId: string, type?: string): Promise<EventRow[]> {
  const { results } = await env.DB.prepare("SELECT type, recipient_idx, recipient, code, enhanced, text, data FROM event_log WHERE message_id = ? AND (? IS NULL OR type = ?) ORDER BY id")
    .bind(messageId, type ?? null, type ?? null)
    .all<EventRow>();
  return results;
}

export async function suppressionOf(tenantId: string, address: string): Promise<{ scope: string; reason: string; message_id: string | null; expires_at: number | null }[]> {
  const { results } = await env.DB.prepare("SELECT scope, reason, message_id, expires_at FROM suppressions WHERE tenant_id = ? AND address = ?")
    .bind(tenantId, address.toLowerCase())
    .all<{ scope: string; reason: string; message_id: string | null; expires_at: number | null }>();
  return results;
}

export async function inboundLog(envelopeTo: string): Promise<{ kind: string; outcome: string; message_id: string | null; detail: string | null }[]> {
  const { results } = await env.DB.prepare("SELECT kind, outcome, message_id, detail FROM inbound_messages WHERE envelope_to = ? ORDER BY id")
    .bind(envelopeTo.toLowerCase())
    .all<{ kind: string; outcome: string; message_id: string | null; detail: string | null }>();
  return results;
}
