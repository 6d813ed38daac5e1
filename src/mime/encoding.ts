/**
 * Transfer and header encodings for composing messages: RFC 2047 encoded words, RFC 2045
 * quoted-printable and base64, RFC 2231 parameter values and RFC 5322 header folding.
 *
 * Pure and Web-standard only (TextEncoder, no Buffer) so it runs in Workers and in Node.
 * Every producer here emits CRLF line endings and 7-bit output unless stated otherwise.
 */

const encoder = new TextEncoder();

/** RFC 5322 §2.1.1: lines SHOULD be at most 78 characters, excluding CRLF. */
export const HEADER_SOFT_LINE_LIMIT = 78;
/** RFC 5322 §2.1.1 / RFC 5321 §4.5.3.1.6: lines MUST be at most 998 octets, excluding CRLF. */
export const LINE_HARD_LIMIT = 998;
/** RFC 2045 §6.7 rule 5 and §6.8: encoded lines are at most 76 characters. */
export const ENCODED_LINE_LIMIT = 76;
/** RFC 2047 §2: an encoded word is at most 75 characters. */
export const ENCODED_WORD_LIMIT = 75;

export function utf8Bytes(value: string): Uint8Array {
  return encoder.encode(value);
}

export function utf8Length(value: string): number {
  return encoder.encode(value).length;
}

/** True when every character is 7-bit ASCII. */
export function isAscii(value: string): boolean {
  // eslint-disable-next-line no-control-regex
  return /^[\x00-\x7f]*$/.test(value);
}

/** True when the string contains an unpaired UTF-16 surrogate, i.e. cannot be encoded as UTF-8. */
export function hasLoneSurrogate(value: string): boolean {
  return /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/.test(value);
}

/** Bytes per btoa call: a multiple of 57 (one 76-character line) and of 3 (no padding mid-stream). */
const BASE64_CHUNK_BYTES = 57 * 256;

function base64Chunk(bytes: Uint8Array): string {
  // btoa is Web-standard (Workers and Node) and far faster than encoding by hand; it takes a
  // "binary string" whose code units are the bytes.
  return btoa(String.fromCharCode.apply(null, bytes as unknown as number[]));
}

/** The parts one after another in one array; `size` is their total length when the caller counted it already. */
export function concatBytes(parts: readonly Uint8Array[], size = parts.reduce((n, p) => n + p.byteLength, 0)): Uint8Array {
  const out = new Uint8Array(size);
  let at = 0;
  for (const p of parts) {
    out.set(p, at);
    at += p.byteLength;
  }
  return out;
}

/** Base64 (RFC 4648 §4) of the bytes, on one line. */
export function encodeBase64(bytes: Uint8Array): string {
  const parts: string[] = [];
  for (let i = 0; i < bytes.length; i += BASE64_CHUNK_BYTES) parts.push(base64Chunk(bytes.subarray(i, i + BASE64_CHUNK_BYTES)));
  return parts.join("");
}

/** base64url without padding (RFC 4648 §5): tokens and links. */
export function encodeBase64Url(bytes: Uint8Array): string {
  return encodeBase64(bytes).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

/** Decodes unpadded base64url; null on a character outside its alphabet or a truncated final quantum. */
export function decodeBase64Url(text: string): Uint8Array | null {
  if (!/^[A-Za-z0-9_-]*$/.test(text) || text.length % 4 === 1) return null;
  const binary = atob(text.replace(/-/g, "+").replace(/_/g, "/") + "=".repeat((4 - (text.length % 4)) % 4));
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/**
 * Strict base64 decoding. Whitespace (including CRLF line breaks) is ignored; any other
 * character outside the RFC 4648 alphabet, misplaced padding or a truncated final quantum
 * returns null rather than guessing.
 */
export function decodeBase64(input: string): Uint8Array | null {
  const clean = input.replace(/[ \t\r\n]+/g, "");
  if (clean.length % 4 !== 0 || !/^[A-Za-z0-9+/]*(?:[A-Za-z0-9+/]{2}==|[A-Za-z0-9+/]{3}=)?$/.test(clean)) return null;
  // Validated above, so atob's forgiving decoder has nothing left to forgive.
  const binary = atob(clean);
  const out = new Uint8Array(binary.length);
  for (let i = 0; i < binary.length; i++) out[i] = binary.charCodeAt(i);
  return out;
}

/** Base64 body for a MIME part: lines of at most 76 characters joined with CRLF (RFC 2045 §6.8). */
export function encodeBase64Lines(bytes: Uint8Array): string {
  const lines: string[] = [];
  for (let i = 0; i < bytes.length; i += BASE64_CHUNK_BYTES) {
    const chunk = base64Chunk(bytes.subarray(i, i + BASE64_CHUNK_BYTES));
    for (let j = 0; j < chunk.length; j += ENCODED_LINE_LIMIT) lines.push(chunk.slice(j, j + ENCODED_LINE_LIMIT));
  }
  return lines.join("\r\n");
}

/** Turn CR, LF and CRLF line breaks into CRLF. */
export function normalizeLineBreaks(text: string): string {
  return text.replace(/\r\n|\r|\n/g, "\r\n");
}

function hex2(byte: number): string {
  return "=" + (byte < 16 ? "0" : "") + byte.toString(16).toUpperCase();
}

/**
 * Quoted-printable (RFC 2045 §6.7) of a text, encoded as UTF-8. Line breaks of any kind in the
 * input become CRLF hard breaks; long lines get `=` soft breaks so no encoded line exceeds 76
 * characters; escapes are never split; trailing spaces and tabs are encoded (rule 3).
 * A leading "." and "From " are encoded too, so the body survives SMTP dot-stuffing bugs and
 * mbox-style "From " quoting unchanged.
 */
export function encodeQuotedPrintable(text: string): string {
  const lines = normalizeLineBreaks(text).split("\r\n");
  return lines.map(encodeQpLine).join("\r\n");
}

/** The quoted-printable form of each octet in the middle of a line. */
const QP_TOKENS: readonly string[] = Array.from({ length: 256 }, (_, b) =>
  (b >= 33 && b <= 126 && b !== 61) || b === 32 || b === 9 ? String.fromCharCode(b) : hex2(b),
);

function encodeQpLine(line: string): string {
  // Fast path: short printable ASCII needing no escapes is its own encoding.
  if (line.length <= ENCODED_LINE_LIMIT && /^[\x20-\x3c\x3e-\x7e\t]*$/.test(line) && !/^(\.|From )|[ \t]$/.test(line)) return line;
  const bytes = utf8Bytes(line);
  const n = bytes.length;
  const out: string[] = [];
  let current = "";
  for (let i = 0; i < n; i++) {
    const b = bytes[i]!;
    const isLast = i === n - 1;
    let token = QP_TOKENS[b]!;
    // Rule 3: whitespace at the end of a line is encoded. A leading "." or "From " is
    // encoded so dot-stuffing bugs and mbox "From " quoting cannot alter the body.
    if (isLast && (b === 32 || b === 9)) token = hex2(b);
    else if (i === 0 && (b === 46 || (b === 70 && line.startsWith("From ")))) token = hex2(b);
    // The final line may use all 76 characters; other lines need room for the "=".
    const limit = isLast ? ENCODED_LINE_LIMIT : ENCODED_LINE_LIMIT - 1;
    if (current.length + token.length > limit) {
      // Escapes are never split. A soft break must not leave a space or tab at the end of
      // the line either, so such a character moves to the next line, encoded.
      const lastChar = current.charCodeAt(current.length - 1);
      if (lastChar === 32 || lastChar === 9) {
        out.push(current.slice(0, -1) + "=");
        current = hex2(lastChar);
      } else {
        out.push(current + "=");
        current = "";
      }
    }
    current += token;
  }
  out.push(current);
  return out.join("\r\n");
}

/** RFC 2047 §5(3): the characters a Q-encoded word may carry literally in any position. */
function isQSafe(byte: number): boolean {
  return (
    (byte >= 48 && byte <= 57) ||
    (byte >= 65 && byte <= 90) ||
    (byte >= 97 && byte <= 122) ||
    byte === 33 || byte === 42 || byte === 43 || byte === 45 || byte === 47
  );
}

function qEncodeBytes(bytes: Uint8Array): string {
  let out = "";
  for (const b of bytes) {
    if (b === 32) out += "_";
    else if (isQSafe(b)) out += String.fromCharCode(b);
    else out += hex2(b);
  }
  return out;
}

function qEncodedLength(bytes: Uint8Array): number {
  let n = 0;
  for (const b of bytes) n += b === 32 || isQSafe(b) ? 1 : 3;
  return n;
}

export type EncodedWordEncoding = "B" | "Q";

/**
 * Encode text as one or more RFC 2047 encoded words (charset UTF-8), each at most 75
 * characters, split only between whole characters (never inside a UTF-8 sequence or a
 * surrogate pair). Q is chosen when it is no longer than B; the Q alphabet used is the one
 * RFC 2047 §5(3) allows inside phrases, so the words are valid in every header position.
 * Returns the words; join them with a folding space.
 */
export function encodeWords(text: string, encoding?: EncodedWordEncoding, maxWordLength: number = ENCODED_WORD_LIMIT): string[] {
  const all = utf8Bytes(text);
  const chosen: EncodedWordEncoding = encoding ?? (qEncodedLength(all) <= Math.ceil(all.length / 3) * 4 ? "Q" : "B");
  const prefix = `=?UTF-8?${chosen}?`;
  // Room for the encoded text; at least 12 so any single character (4 bytes → 12 in Q) fits.
  const room = Math.max(12, Math.min(maxWordLength, ENCODED_WORD_LIMIT) - prefix.length - 2);
  const maxBytesB = Math.floor(room / 4) * 3;
  const words: string[] = [];
  let chunk: number[] = [];
  let chunkEncodedLength = 0;
  const flush = (): void => {
    if (chunk.length === 0) return;
    const bytes = Uint8Array.from(chunk);
    words.push(prefix + (chosen === "B" ? encodeBase64(bytes) : qEncodeBytes(bytes)) + "?=");
    chunk = [];
    chunkEncodedLength = 0;
  };
  for (const char of text) {
    const bytes = utf8Bytes(char);
    if (chosen === "B") {
      if (chunk.length + bytes.length > maxBytesB) flush();
    } else {
      const len = qEncodedLength(bytes);
      if (chunkEncodedLength + len > room) flush();
      chunkEncodedLength += len;
    }
    for (const b of bytes) chunk.push(b);
  }
  flush();
  if (words.length === 0) words.push(prefix + "?=");
  return words;
}

/**
 * Value for an unstructured header field (Subject, X-*): returned unchanged when it is
 * printable ASCII that cannot be mistaken for an encoded word and has no word too long to
 * fold (`keepLongWords` keeps ASCII as given regardless, for structured custom headers such as
 * List-Unsubscribe whose URLs must not be encoded); otherwise RFC 2047 encoded words. Pass the field name so the
 * words are short enough for `Name: word` to fit the 76-character line RFC 2047 §2 asks for.
 */
export function encodeUnstructured(value: string, fieldName = "Subject", keepLongWords = false): string {
  const printable = /^[\x20-\x7e\t]*$/.test(value);
  const looksEncoded = /=\?[^?]*\?[bBqQ]\?/.test(value);
  const longestWord = value.split(/[ \t]+/).reduce((m, w) => Math.max(m, w.length), 0);
  if (printable && (keepLongWords || (!looksEncoded && longestWord <= HEADER_SOFT_LINE_LIMIT - 12))) return value;
  return encodeWords(value, undefined, Math.max(24, ENCODED_LINE_LIMIT - fieldName.length - 2)).join(" ");
}

/**
 * Fold a header field (RFC 5322 §2.2.3) into lines of at most 76 characters where
 * whitespace allows (76 rather than RFC 5322's 78 because RFC 2047 §2 limits lines that
 * carry encoded words to 76), inserting CRLF before existing spaces or tabs. The result has no
 * trailing CRLF. Throws when a line would still exceed 998 characters: callers encode
 * or refuse such values first.
 */
export function foldHeader(name: string, value: string): string {
  const unfolded = `${name}: ${value}`;
  if (unfolded.length <= ENCODED_LINE_LIMIT) return unfolded;
  // Split before each whitespace run, keeping the whitespace with the following word.
  const pieces = unfolded.split(/(?=[ \t])/);
  const lines: string[] = [];
  let current = "";
  for (const piece of pieces) {
    // Never leave the field name alone on the first line.
    const nameOnly = lines.length === 0 && current === `${name}:`;
    if (!nameOnly && current.length > 0 && current.length + piece.length > ENCODED_LINE_LIMIT && current.trim().length > 0) {
      lines.push(current);
      current = piece;
    } else {
      current += piece;
    }
  }
  lines.push(current);
  for (const line of lines) {
    if (utf8Length(line) > LINE_HARD_LIMIT) throw new RangeError(`header ${name} has a line longer than ${LINE_HARD_LIMIT} octets`);
  }
  return lines.join("\r\n");
}

/**
 * A MIME parameter `name=value` list item. ASCII values use a quoted string; non-ASCII or
 * very long values use RFC 2231 extended syntax (`name*=UTF-8''...`, with `name*0*=`
 * continuations) so no header line grows past the folding limit.
 */
export function formatParameter(name: string, value: string): string[] {
  const printableAscii = /^[\x20-\x7e]*$/.test(value);
  if (printableAscii && value.length <= 60) {
    return [`${name}="${value.replace(/[\\"]/g, (c) => "\\" + c)}"`];
  }
  let encoded = "";
  for (const b of utf8Bytes(value)) {
    const keep = (b >= 48 && b <= 57) || (b >= 65 && b <= 90) || (b >= 97 && b <= 122) || b === 45 || b === 46 || b === 95;
    encoded += keep ? String.fromCharCode(b) : "%" + (b < 16 ? "0" : "") + b.toString(16).toUpperCase();
  }
  const first = `UTF-8''`;
  if (first.length + encoded.length <= 60) return [`${name}*=${first}${encoded}`];
  const parts: string[] = [];
  let rest = encoded;
  let index = 0;
  while (rest.length > 0) {
    let take = Math.min(rest.length, index === 0 ? 50 : 57);
    // Do not split a %XX escape.
    const pct = rest.lastIndexOf("%", take - 1);
    if (pct >= 0 && pct > take - 3) take = pct;
    const chunk = rest.slice(0, take);
    parts.push(`${name}*${index}*=${index === 0 ? first : ""}${chunk}`);
    rest = rest.slice(take);
    index++;
  }
  return parts;
}
