/**
 * Sender Rewriting Scheme (SRS) for forwarding, in the common form of Shevek's "Sender Rewriting Scheme"
 * paper as implemented by Mail::SRS and libsrs2 (the Guarded scheme):
 *
 *   SRS0=HHHH=TT=orig-domain=orig-local@forwarder-domain
 *   SRS1=HHHH=first-forwarder==HHHH=TT=orig-domain=orig-local@forwarder-domain   (re-forwarding an SRS0 address)
 *
 * HHHH is the first SRS_HASH_LENGTH (10) base32 characters of the HMAC-SHA256 of the other fields (lower-cased,
 * so a hop that folds the local part's case changes nothing), keyed with the relay's SIGNING_SECRET: 50 bits,
 * as strong as our VERP signatures (libsrs2's 4 base64 characters compared without case are about 19 bits,
 * within reach of a guessing script). Only this relay reverses its SRS addresses, so the format of the hash
 * is ours to choose; TT is the day number modulo 1024 in two base32 characters. A
 * forwarded message's envelope sender then belongs to the forwarding domain, so SPF passes at the destination,
 * and a bounce to the rewritten address can be turned back into the original sender, but only for addresses we
 * issued in the last MAX_AGE_DAYS (so the address cannot be used as an open relay for backscatter).
 *
 * Pure: Web Crypto only.
 */
import { hmacSha256 } from "./hmac";

/** 10 base32 characters = 50 bits of HMAC-SHA256, like RETURN_PATH_SIGNATURE_LENGTH (issue 15). */
export const SRS_HASH_LENGTH = 10;
/** Mail::SRS and libsrs2 default maximum age of an SRS address (days). */
export const SRS_MAX_AGE_DAYS = 21;
/** The timestamp counts days modulo 2^10 (Shevek). */
const TIMESTAMP_PERIOD_DAYS = 1024;
const DAY_MS = 86_400_000;
const BASE32 = "ABCDEFGHIJKLMNOPQRSTUVWXYZ234567";

export type SrsResult = { ok: true; address: string } | { ok: false; error: string };

function splitAddress(address: string): { local: string; domain: string } | null {
  const a = address.trim().replace(/^<(.*)>$/, "$1");
  const at = a.lastIndexOf("@");
  if (at <= 0 || at === a.length - 1) return null;
  return { local: a.slice(0, at), domain: a.slice(at + 1) };
}

/** True when the local part is an SRS0 or SRS1 address (any case, any of the separators =, + and -). */
export function isSrsAddress(address: string): boolean {
  const parts = splitAddress(address);
  return parts !== null && /^srs[01][=+-]/i.test(parts.local);
}

async function hash(secret: string, fields: string[]): Promise<string> {
  // The "srs2:" prefix separates these MACs from the other uses of SIGNING_SECRET (return paths use "rp1:").
  const mac = await hmacSha256(secret, `srs2:${fields.join("\0").toLowerCase()}`);
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const byte of mac) {
    buffer = ((buffer << 8) | byte) & 0xffff;
    bits += 8;
    while (bits >= 5 && out.length < SRS_HASH_LENGTH) {
      out += BASE32[(buffer >>> (bits - 5)) & 31];
      bits -= 5;
    }
    if (out.length >= SRS_HASH_LENGTH) break;
  }
  return out;
}

/** Compares without an early exit; case-insensitive because some MTAs fold the case of local parts. */
function hashEqual(a: string, b: string): boolean {
  const x = a.toLowerCase();
  const y = b.toLowerCase();
  if (x.length !== y.length) return false;
  let diff = 0;
  for (let i = 0; i < x.length; i++) diff |= x.charCodeAt(i) ^ y.charCodeAt(i);
  return diff === 0;
}

function timestamp(now: number): string {
  const day = Math.floor(now / DAY_MS) % TIMESTAMP_PERIOD_DAYS;
  return BASE32[(day >> 5) & 31]! + BASE32[day & 31]!;
}

function timestampAgeDays(tt: string, now: number): number | null {
  if (tt.length !== 2) return null;
  const hi = BASE32.indexOf(tt[0]!.toUpperCase());
  const lo = BASE32.indexOf(tt[1]!.toUpperCase());
  if (hi < 0 || lo < 0) return null;
  const then = (hi << 5) | lo;
  const today = Math.floor(now / DAY_MS) % TIMESTAMP_PERIOD_DAYS;
  return (today - then + TIMESTAMP_PERIOD_DAYS) % TIMESTAMP_PERIOD_DAYS;
}

/**
 * The envelope sender to use when forwarding mail from `sender` through `srsDomain`. The null sender stays
 * null (bounces are not rewritten); an SRS0 address from another forwarder becomes SRS1; our own addresses at
 * `srsDomain` are kept.
 */
export async function srsForward(sender: string, srsDomain: string, secret: string, now = Date.now()): Promise<string> {
  const parts = splitAddress(sender);
  if (!parts) return "";
  const domain = srsDomain.toLowerCase();
  if (parts.domain.toLowerCase() === domain) return `${parts.local}@${parts.domain}`;
  const srs0 = /^srs0([=+-])(.*)$/i.exec(parts.local);
  if (srs0) {
    // SRS1=HHHH=<host of the SRS0 address>==<rest of the SRS0 local part>
    const user = `${srs0[1]!}${srs0[2]!}`;
    return `SRS1=${await hash(secret, [parts.domain, user])}=${parts.domain}=${user}@${domain}`;
  }
  const srs1 = /^srs1[=+-][^=]*=([^=]+)=([=+-].*)$/i.exec(parts.local);
  if (srs1) {
    const [, host = "", user = ""] = srs1;
    return `SRS1=${await hash(secret, [host, user])}=${host}=${user}@${domain}`;
  }
  const tt = timestamp(now);
  return `SRS0=${await hash(secret, [tt, parts.domain, parts.local])}=${tt}=${parts.domain}=${parts.local}@${domain}`;
}

/**
 * The address an SRS address stands for: the original sender for SRS0, the first forwarder's SRS0 address for
 * SRS1. Refuses a bad hash, an SRS0 address older than SRS_MAX_AGE_DAYS, and anything malformed.
 */
export async function srsReverse(address: string, secret: string, now = Date.now()): Promise<SrsResult> {
  const parts = splitAddress(address);
  if (!parts) return { ok: false, error: "not an address" };
  const srs0 = /^srs0[=+-]([^=]+)=([^=]{2})=([^=]+)=(.+)$/i.exec(parts.local);
  if (srs0) {
    const [, h = "", tt = "", domain = "", local = ""] = srs0;
    if (!hashEqual(h, await hash(secret, [tt, domain, local]))) return { ok: false, error: "the SRS hash does not match" };
    const age = timestampAgeDays(tt, now);
    if (age === null) return { ok: false, error: "the SRS timestamp is malformed" };
    if (age > SRS_MAX_AGE_DAYS) return { ok: false, error: `the SRS address is older than ${SRS_MAX_AGE_DAYS} days` };
    return { ok: true, address: `${local}@${domain}` };
  }
  const srs1 = /^srs1[=+-]([^=]+)=([^=]+)=([=+-].+)$/i.exec(parts.local);
  if (srs1) {
    const [, h = "", host = "", user = ""] = srs1;
    if (!hashEqual(h, await hash(secret, [host, user]))) return { ok: false, error: "the SRS hash does not match" };
    return { ok: true, address: `SRS0${user}@${host}` };
  }
  return { ok: false, error: "not an SRS address" };
}
