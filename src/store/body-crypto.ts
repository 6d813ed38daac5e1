/**
 * Encryption at rest of message bodies (issue 21): bodies in R2 and bodies carried inline in delivery jobs (queue
 * messages, and the jobs D1 holds for scheduled sends and paused streams) are sealed with AES-256-GCM under a key
 * from the BODY_ENCRYPTION_KEYS secret. Each sealed body names its key id, so keys rotate without losing queued
 * mail: the first key seals, every listed key opens. Without the secret, bodies are stored as before; a body
 * stored in the clear (before the secret was set) is still delivered.
 *
 * Formats (the 12-byte IV is random per body; the additional data binds a body to its place, so a body copied to
 * another message does not open):
 * - inline: `"\0sealed:v1:<key id>:" + base64(iv || ciphertext+tag)`, additional data = the message id. No
 *   RFC 5322 message starts with NUL (accept refuses NUL), so the prefix cannot be a plaintext body.
 * - R2: custom metadata `sealed: v1:<key id>`; the object is `iv || record 0 || record 1 ...`, each record 64 KiB
 *   of the body sealed on its own (nonce = iv with the record index mixed in; additional data = object key, index
 *   and whether it is the last record), so bodies stream through without being held whole and a truncated or
 *   reordered object does not open.
 */

import { bodyEncryptionKeysSecret } from "../config";
import { decodeBase64, encodeBase64 } from "../mime/encoding";

/** Every sealed inline body starts with this. */
const INLINE_PREFIX = "\0sealed:v1:";
const IV_BYTES = 12;
/** Key ids appear in stored bodies and metadata: short and plain. */
const KEY_ID = /^[A-Za-z0-9_-]{1,32}$/;

/** The secret is malformed, or a body names a key that is not (or no longer) configured. */
export class BodyKeyError extends Error {
  override name = "BodyKeyError";
}

interface BodyKeys {
  currentId: string;
  keys: Map<string, CryptoKey>;
}

let parsed: { secret: string; keys: Promise<BodyKeys> } | undefined;

function secretOf(env: Env): string | undefined {
  return bodyEncryptionKeysSecret(env);
}

/** Parses `id:base64key[,id:base64key...]`: each key 32 bytes (AES-256); the first seals. Once per isolate. */
function bodyKeys(env: Env): Promise<BodyKeys> | null {
  const secret = secretOf(env);
  if (!secret) return null;
  if (parsed?.secret !== secret) parsed = { secret, keys: importKeys(secret) };
  return parsed.keys;
}

async function importKeys(secret: string): Promise<BodyKeys> {
  const keys = new Map<string, CryptoKey>();
  let currentId = "";
  for (const entry of secret.split(",").map((e) => e.trim()).filter(Boolean)) {
    const i = entry.indexOf(":");
    const id = entry.slice(0, i);
    if (i < 0 || !KEY_ID.test(id)) throw new BodyKeyError("BODY_ENCRYPTION_KEYS: each entry is <key id>:<base64 of 32 bytes>, key ids 1-32 of A-Z a-z 0-9 _ -");
    let raw: Uint8Array;
    try {
      raw = Uint8Array.from(atob(entry.slice(i + 1)), (c) => c.charCodeAt(0));
    } catch {
      throw new BodyKeyError(`BODY_ENCRYPTION_KEYS: key ${id} is not base64`);
    }
    if (raw.byteLength !== 32) throw new BodyKeyError(`BODY_ENCRYPTION_KEYS: key ${id} must be 32 bytes, got ${raw.byteLength}`);
    if (keys.has(id)) throw new BodyKeyError(`BODY_ENCRYPTION_KEYS: key id ${id} appears twice`);
    keys.set(id, await crypto.subtle.importKey("raw", raw, "AES-GCM", false, ["encrypt", "decrypt"]));
    currentId ||= id;
  }
  if (!currentId) throw new BodyKeyError("BODY_ENCRYPTION_KEYS is set but holds no key");
  return { currentId, keys };
}

/** Throws BodyKeyError when BODY_ENCRYPTION_KEYS is set but malformed; call before recording anything. */
export async function checkBodyKeys(env: Env): Promise<void> {
  await bodyKeys(env);
}

/** Whether bodies are sealed (BODY_ENCRYPTION_KEYS is set). */
export function bodyEncryptionEnabled(env: Env): boolean {
  return secretOf(env) !== undefined;
}

async function encrypt(keys: BodyKeys, plain: Uint8Array, aad: string): Promise<Uint8Array> {
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv, additionalData: new TextEncoder().encode(aad) }, keys.keys.get(keys.currentId)!, plain));
  const out = new Uint8Array(IV_BYTES + ct.byteLength);
  out.set(iv);
  out.set(ct, IV_BYTES);
  return out;
}

async function decrypt(keys: BodyKeys, keyId: string, sealed: Uint8Array, aad: string): Promise<Uint8Array> {
  const key = keys.keys.get(keyId);
  if (!key) throw new BodyKeyError(`the body is sealed with key ${keyId}, which BODY_ENCRYPTION_KEYS no longer lists`);
  try {
    return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: sealed.subarray(0, IV_BYTES), additionalData: new TextEncoder().encode(aad) }, key, sealed.subarray(IV_BYTES)));
  } catch {
    throw new BodyKeyError(`the body sealed with key ${keyId} does not open (tampered, or moved from another message)`);
  }
}

/** A body for a delivery job: sealed when encryption is on, else as given. `messageId` binds it to its message. */
export async function sealInlineBody(env: Env, raw: string, messageId: string): Promise<string> {
  const keys = bodyKeys(env);
  if (!keys) return raw;
  const k = await keys;
  return `${INLINE_PREFIX}${k.currentId}:${encodeBase64(await encrypt(k, new TextEncoder().encode(raw), messageId))}`;
}

/** The message of a job's inline body (sealed or, from before encryption, plain). Throws BodyKeyError. */
export async function openInlineBody(env: Env, stored: string, messageId: string): Promise<string> {
  if (!stored.startsWith(INLINE_PREFIX)) return stored;
  const rest = stored.slice(INLINE_PREFIX.length);
  const colon = rest.indexOf(":");
  const keys = bodyKeys(env);
  if (!keys) throw new BodyKeyError("a sealed body arrived but BODY_ENCRYPTION_KEYS is not set");
  const sealed = decodeBase64(rest.slice(colon + 1));
  if (!sealed) throw new BodyKeyError("a sealed inline body is not base64");
  return new TextDecoder().decode(await decrypt(await keys, rest.slice(0, colon), sealed, messageId));
}

/**
 * Largest body carried inline in a job. Sealing adds base64 (4/3) plus ~70 bytes, and a Queue message holds
 * 128 KB: with encryption on, bodies above 3/4 of the plain limit go to R2 instead.
 */
export function inlineBodyLimit(env: Env, plainLimit: number): number {
  return bodyEncryptionEnabled(env) ? Math.floor((plainLimit * 3) / 4) - 128 : plainLimit;
}

/**
 * R2 bodies are sealed in records of this many plaintext bytes, each its own AES-GCM message, so a body is opened
 * while it streams to the next hop instead of being held whole (25 MiB bodies, six connections per invocation).
 */
const RECORD_BYTES = 64 * 1024;
const TAG_BYTES = 16;

/** Record i's nonce: the object's random IV with its last 32 bits XORed with i (at most 2^32 records per IV). */
function recordIv(iv: Uint8Array, i: number): Uint8Array {
  const out = iv.slice();
  const view = new DataView(out.buffer);
  view.setUint32(IV_BYTES - 4, view.getUint32(IV_BYTES - 4) ^ i);
  return out;
}

/** Additional data of record i: the object key, the index and whether it is the last (so truncation is detected). */
function recordAad(key: string, i: number, last: boolean): Uint8Array {
  return new TextEncoder().encode(`${key}\n${i}\n${last ? "last" : "more"}`);
}

/** Stores a body in R2, sealed when encryption is on: `iv || record 0 || record 1 ...`, each record ciphertext+tag. */
export async function putStoredBody(env: Env, key: string, bytes: Uint8Array): Promise<void> {
  const keys = bodyKeys(env);
  if (!keys) {
    await env.BODIES.put(key, bytes, { httpMetadata: { contentType: "message/rfc822" } });
    return;
  }
  const k = await keys;
  const cryptoKey = k.keys.get(k.currentId)!;
  const iv = crypto.getRandomValues(new Uint8Array(IV_BYTES));
  const records = Math.max(1, Math.ceil(bytes.byteLength / RECORD_BYTES));
  const out = new Uint8Array(IV_BYTES + bytes.byteLength + records * TAG_BYTES);
  out.set(iv);
  let at = IV_BYTES;
  for (let i = 0; i < records; i++) {
    const chunk = bytes.subarray(i * RECORD_BYTES, (i + 1) * RECORD_BYTES);
    const ct = new Uint8Array(await crypto.subtle.encrypt({ name: "AES-GCM", iv: recordIv(iv, i), additionalData: recordAad(key, i, i === records - 1) }, cryptoKey, chunk));
    out.set(ct, at);
    at += ct.byteLength;
  }
  await env.BODIES.put(key, out, { httpMetadata: { contentType: "application/octet-stream" }, customMetadata: { sealed: `v1:${k.currentId}` } });
}

/** Opens a sealed R2 object's records as they arrive. Errors (BodyKeyError) surface on the stream's reader. */
function openingStream(sealed: ReadableStream<Uint8Array>, cryptoKey: CryptoKey, key: string): ReadableStream<Uint8Array> {
  const reader = sealed.getReader();
  let buffer: Uint8Array = new Uint8Array(0);
  let iv: Uint8Array | null = null;
  let index = 0;
  let done = false;
  // The buffer is a view: consumed records are dropped without copying (R2 may hand over large chunks).
  const append = (chunk: Uint8Array) => {
    if (!buffer.byteLength) {
      buffer = chunk;
      return;
    }
    const next = new Uint8Array(buffer.byteLength + chunk.byteLength);
    next.set(buffer);
    next.set(chunk, buffer.byteLength);
    buffer = next;
  };
  const open = async (record: Uint8Array, last: boolean): Promise<Uint8Array> => {
    try {
      return new Uint8Array(await crypto.subtle.decrypt({ name: "AES-GCM", iv: recordIv(iv!, index), additionalData: recordAad(key, index++, last) }, cryptoKey, record));
    } catch {
      throw new BodyKeyError(`the body at ${key} does not open (tampered, truncated, or moved from another object)`);
    }
  };
  const whole = RECORD_BYTES + TAG_BYTES;
  return new ReadableStream<Uint8Array>({
    async pull(controller) {
      // A record is known not to be the last once more bytes follow it; at the end, what is left is the last one.
      while (!done && buffer.byteLength <= (iv ? whole : IV_BYTES + whole)) {
        const r = await reader.read();
        if (r.done) done = true;
        else append(r.value);
      }
      if (!iv) {
        if (buffer.byteLength < IV_BYTES + TAG_BYTES) throw new BodyKeyError(`the body at ${key} is truncated`);
        iv = buffer.slice(0, IV_BYTES);
        buffer = buffer.subarray(IV_BYTES);
      }
      if (buffer.byteLength > whole) {
        controller.enqueue(await open(buffer.subarray(0, whole), false));
        buffer = buffer.subarray(whole);
        return;
      }
      if (buffer.byteLength < TAG_BYTES) throw new BodyKeyError(`the body at ${key} is truncated`);
      const plain = await open(buffer, true);
      buffer = new Uint8Array(0);
      if (plain.byteLength) controller.enqueue(plain);
      controller.close();
    },
    cancel(reason) {
      return reader.cancel(reason);
    },
  });
}

/**
 * A body from R2 for sending, streamed (never held whole), opened record by record when it is sealed.
 * Undefined when the object is gone. Throws BodyKeyError for a key that is not configured; a record that does
 * not open fails the stream with BodyKeyError.
 */
export async function readStoredBody(env: Env, key: string): Promise<ReadableStream<Uint8Array> | undefined> {
  const obj = await env.BODIES.get(key);
  if (!obj) return undefined;
  const sealed = obj.customMetadata?.sealed;
  if (!sealed) return obj.body;
  const keys = bodyKeys(env);
  if (!keys) throw new BodyKeyError("a sealed body is stored but BODY_ENCRYPTION_KEYS is not set");
  const keyId = sealed.replace(/^v1:/, "");
  const cryptoKey = (await keys).keys.get(keyId);
  if (!cryptoKey) {
    await obj.body.cancel();
    throw new BodyKeyError(`the body is sealed with key ${keyId}, which BODY_ENCRYPTION_KEYS no longer lists`);
  }
  return openingStream(obj.body, cryptoKey, key);
}

/** A body from R2 as text (send_email, DSN headers); `maxBytes` bounds what is read. Throws BodyKeyError. */
export async function readStoredText(env: Env, key: string, maxBytes?: number): Promise<string | undefined> {
  const body = await readStoredBody(env, key);
  if (!body) return undefined;
  const reader = body.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  while (maxBytes === undefined || total < maxBytes) {
    const r = await reader.read();
    if (r.done) break;
    chunks.push(r.value);
    total += r.value.byteLength;
  }
  if (maxBytes !== undefined && total >= maxBytes) await reader.cancel();
  const all = new Uint8Array(total);
  let at = 0;
  for (const c of chunks) {
    all.set(c, at);
    at += c.byteLength;
  }
  return new TextDecoder().decode(maxBytes !== undefined ? all.subarray(0, maxBytes) : all);
}
