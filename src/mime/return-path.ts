/**
 * The VERP envelope sender (return path): `bounce+<messageId>-<recipientIndex>-<sig>@bounces.<from-domain>`.
 *
 * The bounce domain is a subdomain of the From domain, so SPF on it aligns with From under DMARC's relaxed
 * alignment, and its MX points at Cloudflare Email Routing, so bounces reach the `email()` handler, which
 * decodes the address back to the message and recipient. The signature is a truncated HMAC-SHA256, so
 * nobody can forge a bounce for a recipient they did not receive a bounce address for.
 *
 * Pure: Web Crypto only.
 */
import { hmacSha256, type HmacSecret, constantTimeEqual } from "./hmac";

/** What a return path identifies: our internal message id and the recipient's position in that message. */
export interface ReturnPathToken {
  /** Internal message id: lower-case `[a-z0-9]`, at most 32 characters. */
  messageId: string;
  /** Zero-based recipient index within the message, at most 999999. */
  recipientIndex: number;
}

export type { HmacSecret };

/** Local-part prefix of every return path we issue. */
export const RETURN_PATH_PREFIX = "bounce";
/** 10 base32 characters = 50 bits of HMAC; enough against guessing over SMTP, short enough for 64 octets. */
export const RETURN_PATH_SIGNATURE_LENGTH = 10;
/** RFC 5321 section 4.5.3.1.1: a local part is at most 64 octets. */
const MAX_LOCAL_PART_OCTETS = 64;
const MAX_RECIPIENT_INDEX = 999_999;
const MESSAGE_ID_PATTERN = /^[a-z0-9]{1,32}$/;
const DOMAIN_PATTERN = /^[a-z0-9](?:[a-z0-9-]*[a-z0-9])?(?:\.[a-z0-9](?:[a-z0-9-]*[a-z0-9])?)+$/;
const LOCAL_PART_PATTERN = new RegExp(
  `^${RETURN_PATH_PREFIX}\\+([a-z0-9]{1,32})-(0|[1-9][0-9]{0,5})-([a-z2-7]{${RETURN_PATH_SIGNATURE_LENGTH}})$`,
);

/**
 * `bounce+<messageId>-<recipientIndex>-<sig>@<bounceDomain>`, at most 57 octets of local part.
 * Throws RangeError for an id, index or domain outside the documented shape (a programming error).
 */
export async function encodeReturnPath(token: ReturnPathToken, secret: HmacSecret, bounceDomain: string): Promise<string> {
  const { messageId, recipientIndex } = token;
  if (!MESSAGE_ID_PATTERN.test(messageId)) throw new RangeError(`return path: message id must match [a-z0-9]{1,32}: ${messageId}`);
  if (!Number.isInteger(recipientIndex) || recipientIndex < 0 || recipientIndex > MAX_RECIPIENT_INDEX) {
    throw new RangeError(`return path: recipient index out of range: ${recipientIndex}`);
  }
  const domain = normalizeDomain(bounceDomain);
  if (!domain) throw new RangeError(`return path: invalid bounce domain: ${bounceDomain}`);
  const local = `${RETURN_PATH_PREFIX}+${messageId}-${recipientIndex}-${await signature(messageId, recipientIndex, secret)}`;
  if (local.length > MAX_LOCAL_PART_OCTETS) throw new RangeError("return path: local part longer than 64 octets");
  return `${local}@${domain}`;
}

/**
 * The message and recipient a return path stands for, or null when the address is not one of ours or its
 * signature does not match. Accepts `<addr>` and any letter case (some MTAs change the case of local parts).
 */
export async function decodeReturnPath(address: string, secret: HmacSecret): Promise<ReturnPathToken | null> {
  const trimmed = address.trim().replace(/^<(.*)>$/, "$1");
  const at = trimmed.lastIndexOf("@");
  if (at <= 0) return null;
  const match = LOCAL_PART_PATTERN.exec(trimmed.slice(0, at).toLowerCase());
  if (!match) return null;
  const [, messageId = "", index = "", sig = ""] = match;
  const recipientIndex = Number(index);
  const expected = await signature(messageId, recipientIndex, secret);
  return constantTimeEqual(sig, expected) ? { messageId, recipientIndex } : null;
}

/** True when the address has the shape of one of our return paths (signature not checked). */
export function isReturnPathAddress(address: string): boolean {
  const trimmed = address.trim().replace(/^<(.*)>$/, "$1");
  const at = trimmed.lastIndexOf("@");
  return at > 0 && LOCAL_PART_PATTERN.test(trimmed.slice(0, at).toLowerCase());
}

/** The bounce domain for a From domain: `<prefix>.<from-domain>`, lower case, e.g. `bounces.example.com`. */
export function bounceDomainFor(fromDomain: string, prefix = "bounces"): string {
  const domain = normalizeDomain(fromDomain);
  if (!domain) throw new RangeError(`invalid From domain: ${fromDomain}`);
  const label = prefix.toLowerCase();
  if (!/^[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?$/.test(label)) throw new RangeError(`invalid bounce domain label: ${prefix}`);
  return `${label}.${domain}`;
}

function normalizeDomain(domain: string): string | null {
  const d = domain.trim().toLowerCase().replace(/\.$/, "");
  return d.length <= 253 && DOMAIN_PATTERN.test(d) ? d : null;
}

async function signature(messageId: string, recipientIndex: number, secret: HmacSecret): Promise<string> {
  // The "rp1:" prefix separates these MACs from any other use of the same secret.
  return base32(await hmacSha256(secret, `rp1:${messageId}:${recipientIndex}`)).slice(0, RETURN_PATH_SIGNATURE_LENGTH);
}

const BASE32_ALPHABET = "abcdefghijklmnopqrstuvwxyz234567";

/** RFC 4648 base32, lower case, no padding. */
function base32(bytes: Uint8Array): string {
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of bytes) {
    buffer = (buffer << 8) | byte;
    bits += 8;
    while (bits >= 5) {
      out += BASE32_ALPHABET[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
  }
  if (bits > 0) out += BASE32_ALPHABET[(buffer << (5 - bits)) & 31];
  return out;
}

