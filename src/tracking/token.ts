/**
 * Signed tracking tokens: what `/t/c/<token>` (click) and `/t/o/<token>` (open) stand for.
 *
 * A token is `<payload>.<mac>`: the payload is base64url of `kind \n messageId \n recipientIdx [\n url]`
 * (UTF-8, so the original URL travels byte for byte, non-ASCII included) and the mac is the first 128 bits
 * of HMAC-SHA256 over a domain-separation label and the payload. The label keeps these tokens from ever
 * verifying as a return path or unsubscribe token made with the same SIGNING_SECRET, and the mac makes the
 * click endpoint no open redirect: only URLs the relay itself put in a message can come back out.
 *
 * Pure: Web Crypto only, runs in Node and in Workers.
 */
import { decodeBase64Url, encodeBase64Url } from "../mime/encoding";
import { hmacSha256, constantTimeEqual } from "../mime/hmac";

/** A click or open of one recipient of one message. */
export type TrackingToken =
  | { kind: "click"; messageId: string; recipientIdx: number; url: string }
  | { kind: "open"; messageId: string; recipientIdx: number };

/** Internal message ids (src/store/ids.ts): lowercase base36, at most 32 characters. */
const MESSAGE_ID = /^[0-9a-z]{1,32}$/;
/** Recipients of one message: MAX_RECIPIENTS is 50 by default; this bound only keeps tokens well-formed. */
const MAX_RECIPIENT_IDX = 999_999;
/** Links longer than this are left untracked: a token is 4/3 of the URL, and some clients cut links near 8 KB. */
export const MAX_TRACKED_URL_CHARS = 2048;
/** 128 bits of HMAC-SHA256: forging one takes 2^128 guesses against an endpoint that answers 404 to each. */
const MAC_BYTES = 16;
/** Domain separation from the other HMACs made with SIGNING_SECRET (return paths, unsubscribe tokens). */
const LABEL = "edge-relay tracking v1\n";

async function mac(payload: string, secret: string): Promise<string> {
  return encodeBase64Url((await hmacSha256(secret, LABEL + payload)).subarray(0, MAC_BYTES));
}

function payloadOf(t: TrackingToken): string {
  if (!MESSAGE_ID.test(t.messageId)) throw new RangeError(`tracking token: message id must match [0-9a-z]{1,32}: ${t.messageId}`);
  if (!Number.isInteger(t.recipientIdx) || t.recipientIdx < 0 || t.recipientIdx > MAX_RECIPIENT_IDX) {
    throw new RangeError(`tracking token: recipient index out of range: ${t.recipientIdx}`);
  }
  if (t.kind === "open") return `o\n${t.messageId}\n${t.recipientIdx}`;
  if (/[\r\n]/.test(t.url)) throw new RangeError("tracking token: the URL contains a line break");
  return `c\n${t.messageId}\n${t.recipientIdx}\n${t.url}`;
}

/** The signed token for a click or an open. Throws RangeError for ids or URLs outside the documented shape. */
export async function signTrackingToken(t: TrackingToken, secret: string): Promise<string> {
  const payload = encodeBase64Url(new TextEncoder().encode(payloadOf(t)));
  return `${payload}.${await mac(payload, secret)}`;
}

/** What a token stands for, or null when it is malformed, of the wrong kind, or its signature does not match. */
export async function verifyTrackingToken(token: string, secret: string, kind?: TrackingToken["kind"]): Promise<TrackingToken | null> {
  // A token for the longest trackable URL (4 bytes per character at most, 4/3 for base64) plus the mac.
  if (token.length > ((MAX_TRACKED_URL_CHARS * 4 + 64) * 4) / 3 + 32) return null;
  const dot = token.lastIndexOf(".");
  if (dot <= 0) return null;
  const payload = token.slice(0, dot);
  if (!constantTimeEqual(token.slice(dot + 1), await mac(payload, secret))) return null;
  const bytes = decodeBase64Url(payload);
  if (!bytes) return null;
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(bytes);
  } catch {
    return null;
  }
  const parts = text.split("\n");
  const [k, messageId = "", idxText = ""] = parts;
  if (!MESSAGE_ID.test(messageId) || !/^(0|[1-9]\d{0,5})$/.test(idxText)) return null;
  const recipientIdx = Number(idxText);
  if (k === "o" && parts.length === 3 && (kind === undefined || kind === "open")) return { kind: "open", messageId, recipientIdx };
  if (k === "c" && parts.length === 4 && (kind === undefined || kind === "click")) return { kind: "click", messageId, recipientIdx, url: parts[3]! };
  return null;
}
