/**
 * Webhook signatures: `Edge-Relay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
 * the scheme of Stripe's webhooks, so receivers can reuse familiar code. Signing the timestamp with the
 * body lets receivers refuse replays older than a few minutes.
 */
import { constantTimeEqual, hmacSha256 } from "../mime/hmac";

export const SIGNATURE_HEADER = "Edge-Relay-Signature";
/** Receivers should refuse signatures older than this (Stripe's default tolerance). */
export const SIGNATURE_TOLERANCE_S = 300;

async function hmacHex(secret: string, text: string): Promise<string> {
  return [...(await hmacSha256(secret, text))].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** The signature header value for a body sent at `timestampS`. */
export async function signWebhook(secret: string, body: string, timestampS: number): Promise<string> {
  return `t=${timestampS},v1=${await hmacHex(secret, `${timestampS}.${body}`)}`;
}

/** Checks a signature header against the body; false when malformed, wrong, or outside the tolerance. */
export async function verifyWebhook(secret: string, body: string, header: string, nowS = Math.floor(Date.now() / 1000)): Promise<boolean> {
  const parts = new Map(header.split(",").map((p) => p.trim().split("=", 2) as [string, string]));
  const t = Number(parts.get("t"));
  const v1 = parts.get("v1");
  if (!Number.isInteger(t) || !v1 || Math.abs(nowS - t) > SIGNATURE_TOLERANCE_S) return false;
  const expected = await hmacHex(secret, `${t}.${body}`);
  return constantTimeEqual(expected, v1);
}
