/**
 * Webhook signatures: `Edge-Relay-Signature: t=<unix seconds>,v1=<hex HMAC-SHA256(secret, "<t>.<body>")>`,
 * the scheme of Stripe's webhooks, so receivers can reuse familiar code. Signing the timestamp with the
 * body lets receivers refuse replays older than a few minutes.
 */

export const SIGNATURE_HEADER = "Edge-Relay-Signature";
/** Receivers should refuse signatures older than this (Stripe's default tolerance). */
export const SIGNATURE_TOLERANCE_S = 300;

async function hmacHex(secret: string, text: string): Promise<string> {
  const key = await crypto.subtle.importKey("raw", new TextEncoder().encode(secret), { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
  const mac = await crypto.subtle.sign("HMAC", key, new TextEncoder().encode(text));
  return [...new Uint8Array(mac)].map((b) => b.toString(16).padStart(2, "0")).join("");
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
  if (expected.length !== v1.length) return false;
  let diff = 0;
  for (let i = 0; i < expected.length; i++) diff |= expected.charCodeAt(i) ^ v1.charCodeAt(i);
  return diff === 0;
}
