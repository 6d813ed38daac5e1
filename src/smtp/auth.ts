/**
 * SASL helpers for SMTP AUTH (RFC 4954): PLAIN (RFC 4616), LOGIN (draft-murchison-sasl-login) and CRAM-MD5
 * (RFC 2195). Pure: base64 of UTF-8 and an HMAC-MD5 in plain TypeScript, because WebCrypto has no MD5.
 */
import { encodeBase64 } from "../mime/encoding";

export type AuthMethod = "PLAIN" | "LOGIN" | "CRAM-MD5";

/** Our preference when the hop's config does not list methods. */
export const DEFAULT_AUTH_METHODS: readonly AuthMethod[] = ["PLAIN", "LOGIN", "CRAM-MD5"];

const encoder = new TextEncoder();

/** Base64 of the UTF-8 bytes of a string (or of raw bytes). */
export function base64(data: string | Uint8Array): string {
  return encodeBase64(typeof data === "string" ? encoder.encode(data) : data);
}

/** Decodes base64 into bytes; throws on malformed input. */
export function fromBase64(s: string): Uint8Array {
  const bin = atob(s.trim());
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** The PLAIN initial response: authzid (empty) NUL authcid NUL passwd. */
export function plainResponse(user: string, pass: string): string {
  return base64(`\u0000${user}\u0000${pass}`);
}

/** The CRAM-MD5 response to a base64 challenge: "user hex(HMAC-MD5(pass, challenge))", base64-encoded. */
export function cramMd5Response(user: string, pass: string, challengeBase64: string): string {
  const digest = hmacMd5(encoder.encode(pass), fromBase64(challengeBase64));
  let hex = "";
  for (const b of digest) hex += b.toString(16).padStart(2, "0");
  return base64(`${user} ${hex}`);
}

/** HMAC-MD5 (RFC 2104). */
export function hmacMd5(key: Uint8Array, message: Uint8Array): Uint8Array {
  let k = key.length > 64 ? md5(key) : key;
  const padded = new Uint8Array(64);
  padded.set(k);
  k = padded;
  const inner = new Uint8Array(64 + message.length);
  const outer = new Uint8Array(64 + 16);
  for (let i = 0; i < 64; i++) {
    inner[i] = k[i]! ^ 0x36;
    outer[i] = k[i]! ^ 0x5c;
  }
  inner.set(message, 64);
  outer.set(md5(inner), 64);
  return md5(outer);
}

const S = [
  7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 7, 12, 17, 22, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 5, 9, 14, 20, 4,
  11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 4, 11, 16, 23, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21, 6, 10, 15, 21,
];
const K = Array.from({ length: 64 }, (_, i) => Math.floor(Math.abs(Math.sin(i + 1)) * 0x100000000) >>> 0);

/** MD5 (RFC 1321). Only for CRAM-MD5, which the protocol fixes; never for anything that needs a secure hash. */
export function md5(message: Uint8Array): Uint8Array {
  const bitLen = message.length * 8;
  const total = (((message.length + 8) >> 6) + 1) * 64;
  const buf = new Uint8Array(total);
  buf.set(message);
  buf[message.length] = 0x80;
  const view = new DataView(buf.buffer);
  view.setUint32(total - 8, bitLen >>> 0, true);
  view.setUint32(total - 4, Math.floor(bitLen / 0x100000000), true);
  let a0 = 0x67452301;
  let b0 = 0xefcdab89;
  let c0 = 0x98badcfe;
  let d0 = 0x10325476;
  const m = new Uint32Array(16);
  for (let off = 0; off < total; off += 64) {
    for (let j = 0; j < 16; j++) m[j] = view.getUint32(off + j * 4, true);
    let a = a0;
    let b = b0;
    let c = c0;
    let d = d0;
    for (let i = 0; i < 64; i++) {
      let f: number;
      let g: number;
      if (i < 16) {
        f = (b & c) | (~b & d);
        g = i;
      } else if (i < 32) {
        f = (d & b) | (~d & c);
        g = (5 * i + 1) % 16;
      } else if (i < 48) {
        f = b ^ c ^ d;
        g = (3 * i + 5) % 16;
      } else {
        f = c ^ (b | ~d);
        g = (7 * i) % 16;
      }
      f = (f + a + K[i]! + m[g]!) >>> 0;
      a = d;
      d = c;
      c = b;
      b = (b + ((f << S[i]!) | (f >>> (32 - S[i]!)))) >>> 0;
    }
    a0 = (a0 + a) >>> 0;
    b0 = (b0 + b) >>> 0;
    c0 = (c0 + c) >>> 0;
    d0 = (d0 + d) >>> 0;
  }
  const out = new Uint8Array(16);
  const ov = new DataView(out.buffer);
  ov.setUint32(0, a0, true);
  ov.setUint32(4, b0, true);
  ov.setUint32(8, c0, true);
  ov.setUint32(12, d0, true);
  return out;
}
