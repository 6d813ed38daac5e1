/** Helpers shared by the tracking tests in the Workers runtime. */
import PostalMime from "postal-mime";
import { inject } from "vitest";
import { call, receivedAt, routedDomain, waitFor } from "./helpers";
import type { ReceivedMessage } from "../support/peers";

export const CHROME = "Mozilla/5.0 (Windows NT 10.0; Win64; x64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/131.0.0.0 Safari/537.36";
export const APPLE_MPP = "Mozilla/5.0";

/** A recipient domain routed to a fresh recording SMTP server. */
export async function recordingDomain(): Promise<{ domain: string; port: number }> {
  const { port, domain } = await routedDomain({}, "rcpt");
  return { domain, port };
}

/** The message for `rcpt` once it has arrived at the server on `port`. */
export function arrival(port: number, rcpt: string): Promise<ReceivedMessage> {
  return waitFor(async () => (await receivedAt(port)).find((m) => m.rcptTo.includes(rcpt)), 20_000, `message for ${rcpt}`);
}

/** The decoded HTML part of a received message. */
export async function htmlOf(m: ReceivedMessage): Promise<string> {
  const bytes = Uint8Array.from(m.raw, (ch) => ch.charCodeAt(0));
  const parsed = await PostalMime.parse(bytes);
  return parsed.html ?? "";
}

/** The tokens of the tracked links and of the open pixel in an HTML body. */
export function tokensIn(html: string): { clicks: string[]; open: string | null } {
  const clicks = [...html.matchAll(/href="https:\/\/relay\.test\/t\/c\/([A-Za-z0-9_.-]+)"/g)].map((m) => m[1]!);
  const open = /<img src="https:\/\/relay\.test\/t\/o\/([A-Za-z0-9_.-]+)"/.exec(html)?.[1] ?? null;
  return { clicks, open };
}

/** Publishes the DKIM keys of `domain` (from GET /v1/domains/:domain/dns) in the DNS stub. */
export async function publishDkim(domain: string, key: string): Promise<number> {
  const r = await call(`/v1/domains/${domain}/dns`, { key });
  const { records } = (await r.json()) as { records: { purpose: string; type: string; name: string; value: string }[] };
  const dkim = records.filter((x) => x.purpose === "dkim");
  for (const rec of dkim) {
    const data = (rec.value.match(/.{1,255}/g) ?? []).map((s) => `"${s}"`).join(" ");
    await fetch(`http://127.0.0.1:${inject("controlPort")}/dns`, {
      method: "POST",
      body: JSON.stringify({ name: rec.name, type: "TXT", entry: { Status: 0, Answer: [{ name: `${rec.name}.`, type: 16, TTL: 300, data }] } }),
    });
  }
  return dkim.length;
}

/** mailauth's DKIM verdicts for a received message (Node side, keys from the DNS stub). */
export async function verifyDkim(m: ReceivedMessage): Promise<{ domain: string; selector: string; result: string }[]> {
  const r = await fetch(`http://127.0.0.1:${inject("controlPort")}/verify-dkim`, { method: "POST", body: JSON.stringify({ raw: m.raw }) });
  return (await r.json()) as { domain: string; selector: string; result: string }[];
}

/** Polls D1 for the events of a type of a message. */
export async function eventsOf(db: D1Database, messageId: string, type: string, count = 1): Promise<{ recipient_idx: number; recipient: string; text: string | null; data: Record<string, unknown> }[]> {
  return waitFor(async () => {
    const { results } = await db
      .prepare("SELECT recipient_idx, recipient, text, data FROM event_log WHERE message_id = ? AND type = ? ORDER BY id")
      .bind(messageId, type)
      .all<{ recipient_idx: number; recipient: string; text: string | null; data: string }>();
    return results.length >= count ? results.map((r) => ({ ...r, data: JSON.parse(r.data) as Record<string, unknown> })) : undefined;
  }, 10_000, `${count} ${type} event(s)`);
}
