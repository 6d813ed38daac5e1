/**
 * Encoding of a message for the SMTP DATA phase (RFC 5321 sections 2.3.8, 4.1.1.4 and 4.5.2):
 * - every line ends in CRLF; a bare CR or a bare LF becomes CRLF, so no byte sequence in the message can end
 *   the DATA phase early or be read differently by another server (SMTP smuggling, CVE-2023-51764/5/6);
 * - a line starting with "." gets a second "." (dot-stuffing);
 * - the body ends with CRLF "." CRLF.
 * Bodies can be streamed (R2 object bodies) chunk by chunk without being copied whole.
 */
import { concatBytes } from "../mime/encoding";

const CR = 0x0d;
const LF = 0x0a;
const DOT = 0x2e;

/** Bytes written after the last line of the message. */
const TERMINATOR = new Uint8Array([DOT, CR, LF]);

/** Stateful DATA encoder; chunks may split lines, CRLF pairs and multi-byte characters anywhere. */
export class DataEncoder {
  private atLineStart = true;
  private pendingCr = false;
  /** Bytes of message content seen (before encoding). */
  bytesIn = 0;
  /** True once any byte has the high bit set (the body needs 8BITMIME or SMTPUTF8). */
  eightBit = false;

  /** Encodes one chunk. The result may be empty. */
  push(chunk: Uint8Array): Uint8Array {
    this.bytesIn += chunk.length;
    // Worst case every byte doubles (LF -> CRLF, "." at line start -> ".."), plus a CRLF for a CR held over.
    const out = new Uint8Array(chunk.length * 2 + 2);
    let o = 0;
    let atLineStart = this.atLineStart;
    let eightBit = this.eightBit;
    let i = 0;
    if (this.pendingCr) {
      this.pendingCr = false;
      out[o++] = CR;
      out[o++] = LF;
      atLineStart = true;
      if (chunk.length && chunk[0] === LF) i = 1;
    }
    const n = chunk.length;
    while (i < n) {
      const b = chunk[i]!;
      if (b === CR) {
        if (i + 1 < n) {
          // CRLF stays as it is; a bare CR becomes CRLF.
          if (chunk[i + 1] === LF) i++;
          out[o++] = CR;
          out[o++] = LF;
          atLineStart = true;
          i++;
          continue;
        }
        this.pendingCr = true;
        i++;
        continue;
      }
      if (b === LF) {
        out[o++] = CR;
        out[o++] = LF;
        atLineStart = true;
        i++;
        continue;
      }
      if (atLineStart && b === DOT) out[o++] = DOT;
      atLineStart = false;
      // Copy the run of ordinary bytes up to the next CR or LF in one go.
      let j = i;
      while (j < n) {
        const c = chunk[j]!;
        if (c === CR || c === LF) break;
        if (c > 0x7f) eightBit = true;
        j++;
      }
      out.set(chunk.subarray(i, j), o);
      o += j - i;
      i = j;
    }
    this.atLineStart = atLineStart;
    this.eightBit = eightBit;
    return out.subarray(0, o);
  }

  /** Finishes the body: closes the last line and appends the "." terminator line. */
  end(): Uint8Array {
    const out = new Uint8Array(5);
    let o = 0;
    if (this.pendingCr || !this.atLineStart) {
      out[o++] = CR;
      out[o++] = LF;
    }
    this.pendingCr = false;
    this.atLineStart = true;
    out.set(TERMINATOR, o);
    return out.subarray(0, o + TERMINATOR.length);
  }
}

/** Encodes a whole in-memory body, terminator included. */
export function encodeData(body: Uint8Array | string): Uint8Array {
  return encodeWith(new DataEncoder(), typeof body === "string" ? new TextEncoder().encode(body) : body);
}

/**
 * Encodes an in-memory body into pieces of about `pieceBytes` (the terminator in the last one), so a large body
 * costs one extra copy of itself rather than the encoder's worst-case scratch space, and goes out in bounded writes.
 */
export function encodeDataPieces(body: Uint8Array, pieceBytes = DATA_WRITE_CHUNK_BYTES): { pieces: Uint8Array[]; eightBit: boolean } {
  const enc = new DataEncoder();
  if (body.length <= pieceBytes) return { pieces: [encodeWith(enc, body)], eightBit: enc.eightBit };
  const pieces: Uint8Array[] = [];
  for (let o = 0; o < body.length; o += pieceBytes) {
    const slice = body.subarray(o, o + pieceBytes);
    pieces.push(o + pieceBytes >= body.length ? encodeWith(enc, slice) : enc.push(slice).slice());
  }
  return { pieces, eightBit: enc.eightBit };
}

/** Encodes the last bytes of a body and the terminator into one buffer. */
function encodeWith(enc: DataEncoder, last: Uint8Array): Uint8Array {
  const a = enc.push(last);
  const b = enc.end();
  const out = new Uint8Array(a.length + b.length);
  out.set(a, 0);
  out.set(b, a.length);
  return out;
}

/** Writes coalesced to at least this many bytes, so small stream chunks do not become many tiny TCP writes. */
export const DATA_WRITE_CHUNK_BYTES = 64 * 1024;

/**
 * Encodes a streamed body chunk by chunk, yielding encoded pieces of about DATA_WRITE_CHUNK_BYTES, the
 * terminator included in the last one. Only one piece is held in memory at a time.
 */
export async function* encodeDataStream(body: ReadableStream<Uint8Array>): AsyncGenerator<Uint8Array> {
  const enc = new DataEncoder();
  const reader = body.getReader();
  let parts: Uint8Array[] = [];
  let size = 0;
  let finished = false;
  const flush = () => {
    const out = parts.length === 1 ? parts[0]! : concatBytes(parts, size);
    parts = [];
    size = 0;
    return out;
  };
  try {
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      const encoded = enc.push(value);
      if (!encoded.length) continue;
      // push() returns a view of a fresh buffer, safe to keep until written.
      parts.push(encoded);
      size += encoded.length;
      if (size >= DATA_WRITE_CHUNK_BYTES) yield flush();
    }
    parts.push(enc.end());
    size += parts[parts.length - 1]!.length;
    finished = true;
    yield flush();
  } finally {
    // Stopped early (the connection failed): release the source, e.g. an R2 object body.
    if (!finished) await reader.cancel().catch(() => undefined);
    reader.releaseLock();
  }
}
