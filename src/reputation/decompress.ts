/**
 * Bounded decompression of report attachments: gzip (RFC 1952) and zip (PKWARE APPNOTE: stored and deflate
 * entries), with an absolute and a ratio limit so a decompression bomb is refused after reading at most
 * `maxBytes`. Uses the platform's DecompressionStream (Workers and Node 18+). Pure otherwise.
 */
import { concatBytes } from "../mime/encoding";

/** Why decompression gave up; the caller records it and keeps the mail out of delivery state. */
export class DecompressError extends Error {
  override name = "DecompressError";
}

export interface InflateLimits {
  /** Largest output, bytes. */
  maxBytes: number;
  /** Largest output / input ratio; real DMARC XML compresses ~10-40×, bombs ~1000×. */
  maxRatio: number;
}

async function inflate(input: Uint8Array, format: "gzip" | "deflate-raw", limits: InflateLimits): Promise<Uint8Array> {
  const cap = Math.min(limits.maxBytes, Math.max(64 * 1024, input.byteLength * limits.maxRatio));
  const stream = new Blob([input]).stream().pipeThrough(new DecompressionStream(format));
  const reader = stream.getReader();
  const chunks: Uint8Array[] = [];
  let total = 0;
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > cap) {
        await reader.cancel().catch(() => undefined);
        throw new DecompressError(
          total > limits.maxBytes
            ? `decompressed size exceeds ${limits.maxBytes} bytes`
            : `compression ratio exceeds ${limits.maxRatio}:1 (${input.byteLength} bytes in)`,
        );
      }
      chunks.push(value);
    }
  } catch (e) {
    if (e instanceof DecompressError) throw e;
    throw new DecompressError(`corrupt ${format} data: ${e instanceof Error ? e.message : String(e)}`);
  } finally {
    reader.releaseLock();
  }
  return concatBytes(chunks, total);
}

/** Gunzips one gzip member (the format DMARC and TLS reporters use: RFC 7489 7.2.1.1, RFC 8460 5.3). */
export function gunzip(input: Uint8Array, limits: InflateLimits): Promise<Uint8Array> {
  if (input[0] !== 0x1f || input[1] !== 0x8b) return Promise.reject(new DecompressError("not gzip data"));
  return inflate(input, "gzip", limits);
}

export function isGzip(b: Uint8Array): boolean {
  return b[0] === 0x1f && b[1] === 0x8b;
}

export function isZip(b: Uint8Array): boolean {
  return b[0] === 0x50 && b[1] === 0x4b && b[2] === 0x03 && b[3] === 0x04;
}

export interface ZipEntry {
  name: string;
  data: Uint8Array;
}

/** Entries read from one archive; a report zip holds one XML file. */
const MAX_ZIP_ENTRIES = 8;
const EOCD_SIGNATURE = 0x06054b50;
const CENTRAL_SIGNATURE = 0x02014b50;
const LOCAL_SIGNATURE = 0x04034b50;

/**
 * Reads a zip archive through its central directory (sizes there are authoritative; local headers may defer
 * them to a data descriptor). Stored (0) and deflate (8) entries only; encrypted, zip64 and other methods are
 * refused. The limits apply to the sum of all entries.
 */
export async function unzip(input: Uint8Array, limits: InflateLimits): Promise<ZipEntry[]> {
  const view = new DataView(input.buffer, input.byteOffset, input.byteLength);
  // End of central directory: 22 bytes plus a comment of at most 65535.
  let eocd = -1;
  for (let i = input.byteLength - 22; i >= Math.max(0, input.byteLength - 22 - 65535); i--) {
    if (view.getUint32(i, true) === EOCD_SIGNATURE) {
      eocd = i;
      break;
    }
  }
  if (eocd < 0) throw new DecompressError("not a zip archive (no end of central directory)");
  const count = view.getUint16(eocd + 10, true);
  let p = view.getUint32(eocd + 16, true);
  if (count === 0xffff || p === 0xffffffff) throw new DecompressError("zip64 archives are not supported");
  if (count > MAX_ZIP_ENTRIES) throw new DecompressError(`zip has ${count} entries; at most ${MAX_ZIP_ENTRIES} are read`);
  const out: ZipEntry[] = [];
  let produced = 0;
  for (let n = 0; n < count; n++) {
    if (p + 46 > input.byteLength || view.getUint32(p, true) !== CENTRAL_SIGNATURE) throw new DecompressError("corrupt zip central directory");
    const flags = view.getUint16(p + 8, true);
    const method = view.getUint16(p + 10, true);
    const compressed = view.getUint32(p + 20, true);
    const size = view.getUint32(p + 24, true);
    const nameLen = view.getUint16(p + 28, true);
    const extraLen = view.getUint16(p + 30, true);
    const commentLen = view.getUint16(p + 32, true);
    const local = view.getUint32(p + 42, true);
    const name = new TextDecoder().decode(input.subarray(p + 46, p + 46 + nameLen));
    p += 46 + nameLen + extraLen + commentLen;
    if (name.endsWith("/")) continue;
    if (flags & 1) throw new DecompressError(`zip entry ${name} is encrypted`);
    if (local + 30 > input.byteLength || view.getUint32(local, true) !== LOCAL_SIGNATURE) throw new DecompressError("corrupt zip local header");
    const start = local + 30 + view.getUint16(local + 26, true) + view.getUint16(local + 28, true);
    if (start + compressed > input.byteLength) throw new DecompressError(`zip entry ${name} runs past the end of the archive`);
    const body = input.subarray(start, start + compressed);
    const left = { maxBytes: limits.maxBytes - produced, maxRatio: limits.maxRatio };
    // The declared size is checked first (cheap), then the real output is bounded while inflating.
    if (size > left.maxBytes) throw new DecompressError(`decompressed size exceeds ${limits.maxBytes} bytes`);
    let data: Uint8Array;
    if (method === 0) data = body;
    else if (method === 8) data = await inflate(body, "deflate-raw", left);
    else throw new DecompressError(`zip entry ${name} uses compression method ${method}; only stored and deflate are read`);
    produced += data.byteLength;
    out.push({ name, data });
  }
  return out;
}
