/**
 * HMAC-SHA256 with Web Crypto for the relay's signed tokens (return paths, unsubscribe links, tracking links).
 * Each use prefixes its own label to the data, so MACs made with the same secret never stand in for each other.
 */

export type HmacSecret = string | Uint8Array;

/** HMAC keys kept per isolate; a relay has a handful of secrets, the cap only stops unbounded growth. */
const MAX_CACHED_KEYS = 64;
const keyCache = new Map<string, Promise<CryptoKey>>();

function hmacKey(secret: HmacSecret): Promise<CryptoKey> {
  const bytes = typeof secret === "string" ? new TextEncoder().encode(secret) : new Uint8Array(secret);
  if (bytes.length === 0) throw new RangeError("HMAC: empty secret");
  const cacheKey = Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
  let key = keyCache.get(cacheKey);
  if (!key) {
    key = crypto.subtle.importKey("raw", bytes, { name: "HMAC", hash: "SHA-256" }, false, ["sign"]);
    if (keyCache.size >= MAX_CACHED_KEYS) keyCache.delete(keyCache.keys().next().value as string);
    keyCache.set(cacheKey, key);
  }
  return key;
}

/** Compares two strings in time that depends only on their lengths, so timing does not reveal how much of a guess matched. */
export function constantTimeEqual(a: string, b: string): boolean {
  let diff = a.length ^ b.length;
  const n = Math.max(a.length, b.length);
  for (let i = 0; i < n; i++) diff |= (a.charCodeAt(i) || 0) ^ (b.charCodeAt(i) || 0);
  return diff === 0;
}

/** HMAC-SHA256 of `data` (UTF-8) under `secret`: 32 bytes. */
export async function hmacSha256(secret: HmacSecret, data: string): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.sign("HMAC", await hmacKey(secret), new TextEncoder().encode(data)));
}
