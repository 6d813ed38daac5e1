/**
 * A small, synchronous MIME reader for returned mail (bounces, complaints, auto-replies).
 *
 * Bounce parsing needs the tree of parts, their headers and decoded text, nothing more; doing it
 * synchronously keeps `parseBounce` a plain function. Input may use LF or CRLF line endings.
 * Pure: no Workers imports.
 */

/** Defends against pathological nesting (a message/rfc822 inside a multipart inside ... ). */
const MAX_MIME_DEPTH = 12;
/** Defends against a part bomb: a report never needs more than a handful of parts. */
const MAX_MIME_PARTS = 200;

export class HeaderList {
  readonly entries: Array<[string, string]> = [];

  add(name: string, value: string): void {
    this.entries.push([name.toLowerCase(), value]);
  }

  /** First value of a header (case-insensitive name), or undefined. */
  get(name: string): string | undefined {
    const key = name.toLowerCase();
    for (const [k, v] of this.entries) if (k === key) return v;
    return undefined;
  }

  getAll(name: string): string[] {
    const key = name.toLowerCase();
    return this.entries.filter(([k]) => k === key).map(([, v]) => v);
  }

  has(name: string): boolean {
    return this.get(name) !== undefined;
  }
}

export interface MimePart {
  headers: HeaderList;
  /** Lower-case media type, e.g. "multipart/report". Defaults to text/plain. */
  contentType: string;
  params: Record<string, string>;
  /** Decoded body text (transfer encoding undone, charset decoded where known). Empty for multiparts. */
  text: string;
  /** Child parts of a multipart, or the single enclosed message of message/rfc822. */
  parts: MimePart[];
}

/** Turns bytes into a "binary" string (one char per byte) so that parts can be decoded later by charset. */
export function bytesToBinary(bytes: Uint8Array): string {
  let out = "";
  const CHUNK = 0x8000;
  for (let i = 0; i < bytes.length; i += CHUNK) {
    out += String.fromCharCode(...bytes.subarray(i, i + CHUNK));
  }
  return out;
}

function binaryToBytes(s: string): Uint8Array {
  const out = new Uint8Array(s.length);
  for (let i = 0; i < s.length; i++) out[i] = s.charCodeAt(i) & 0xff;
  return out;
}

function decodeCharset(binary: string, charset: string | undefined): string {
  const cs = (charset ?? "").toLowerCase().trim();
  // Already-decoded text (a JS string given by the caller) has code points above 0xff: leave it.
  if (/[^\x00-\xff]/.test(binary)) return binary;
  // Only decode when bytes above 0x7f exist; ASCII text is the same in every charset we care about.
  if (!/[\x80-\xff]/.test(binary)) return binary;
  const label = cs === "" ? "utf-8" : cs;
  try {
    return new TextDecoder(label).decode(binaryToBytes(binary));
  } catch {
    return binary;
  }
}

function decodeBase64(s: string): string {
  const clean = s.replace(/[^A-Za-z0-9+/]/g, "");
  const table = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
  let out = "";
  let buffer = 0;
  let bits = 0;
  for (const ch of clean) {
    buffer = (buffer << 6) | table.indexOf(ch);
    bits += 6;
    if (bits >= 8) {
      bits -= 8;
      out += String.fromCharCode((buffer >> bits) & 0xff);
    }
  }
  return out;
}

function decodeQuotedPrintable(s: string): string {
  return s
    .replace(/=\n/g, "")
    .replace(/=([0-9A-Fa-f]{2})/g, (_m, hex: string) => String.fromCharCode(parseInt(hex, 16)));
}

/** Decodes RFC 2047 encoded words in a header value. */
export function decodeEncodedWords(value: string): string {
  return value
    .replace(/\?=\s+=\?/g, "?==?")
    .replace(/=\?([^?]+)\?([bBqQ])\?([^?]*)\?=/g, (_m, charset: string, enc: string, text: string) => {
      const binary =
        enc.toUpperCase() === "B"
          ? decodeBase64(text)
          : decodeQuotedPrintable(text.replace(/_/g, " "));
      return decodeCharset(binary, charset.replace(/\*.*$/, ""));
    });
}

/** Parses `type/subtype; a=b; c="d"` into its media type and parameters. */
export function parseContentType(value: string | undefined): { type: string; params: Record<string, string> } {
  if (!value) return { type: "text/plain", params: {} };
  const [head = "", ...rest] = value.split(";");
  const params: Record<string, string> = {};
  const re = /([A-Za-z0-9*_.-]+)\s*=\s*("(?:[^"\\]|\\.)*"|[^;\s]+)/g;
  const tail = rest.join(";");
  let m: RegExpExecArray | null;
  while ((m = re.exec(tail)) !== null) {
    const key = (m[1] ?? "").toLowerCase();
    let v = m[2] ?? "";
    if (v.startsWith('"')) v = v.slice(1, -1).replace(/\\(.)/g, "$1");
    params[key] = v;
  }
  const type = head.trim().toLowerCase() || "text/plain";
  return { type, params };
}

/** Parses a header block (already LF-normalised) into a HeaderList, unfolding continuation lines. */
export function parseHeaderBlock(block: string): HeaderList {
  const headers = new HeaderList();
  let name: string | null = null;
  let value = "";
  for (const line of block.split("\n")) {
    if (/^[ \t]/.test(line) && name !== null) {
      value += " " + line.trim();
      continue;
    }
    const m = /^([^\s:][^:]*?)\s*:\s?(.*)$/.exec(line);
    if (!m && name !== null && line.trim() !== "") {
      // A continuation line that lost its indentation (seen in the wild: "boundary=..." on its own line).
      value += " " + line.trim();
      continue;
    }
    if (name !== null) headers.add(name, value.trim());
    if (m) {
      name = m[1] ?? "";
      value = m[2] ?? "";
    } else {
      name = null;
      value = "";
    }
  }
  if (name !== null) headers.add(name, value.trim());
  return headers;
}

/** Splits a message into header block and body at the first empty line. */
export function splitHeaderBody(raw: string): { head: string; body: string } {
  const m = /\n[ \t]*\n/.exec(raw);
  if (raw.startsWith("\n")) return { head: "", body: raw.slice(1) };
  if (!m) return { head: raw, body: "" };
  return { head: raw.slice(0, m.index), body: raw.slice(m.index + m[0].length) };
}

/** Normalises line endings to LF. */
export function normaliseNewlines(raw: string): string {
  return raw.replace(/\r\n?/g, "\n");
}

interface Counter {
  parts: number;
}

function splitMultipart(body: string, boundary: string): string[] {
  const lines = body.split("\n");
  const delimiter = "--" + boundary;
  const out: string[] = [];
  let current: string[] | null = null;
  for (const line of lines) {
    const trimmed = line.trimEnd();
    if (trimmed === delimiter || trimmed === delimiter + "--") {
      if (current !== null) out.push(current.join("\n"));
      current = trimmed === delimiter ? [] : null;
      if (trimmed !== delimiter) break;
      continue;
    }
    if (current !== null) current.push(line);
  }
  if (current !== null && current.length > 0) out.push(current.join("\n"));
  return out;
}

function buildPart(raw: string, depth: number, counter: Counter, defaultType = "text/plain"): MimePart {
  counter.parts++;
  const { head, body } = splitHeaderBody(raw);
  const headers = parseHeaderBlock(head);
  const ctHeader = headers.get("content-type");
  const { type, params } = ctHeader ? parseContentType(ctHeader) : { type: defaultType, params: {} };
  const part: MimePart = { headers, contentType: type, params, text: "", parts: [] };
  const tooDeep = depth >= MAX_MIME_DEPTH || counter.parts >= MAX_MIME_PARTS;

  if (type.startsWith("multipart/") && params["boundary"] && !tooDeep) {
    const childDefault = type === "multipart/digest" ? "message/rfc822" : "text/plain";
    let chunks = splitMultipart(body, params["boundary"]);
    if (chunks.length === 0) {
      // Some MTAs (and anonymised samples) declare one boundary and use another: take the delimiter
      // line that actually recurs in the body.
      const seen = new Map<string, number>();
      for (const m of body.matchAll(/^--([^\s-][^\s]*?)(?:--)?[ \t]*$/gm)) seen.set(m[1] ?? "", (seen.get(m[1] ?? "") ?? 0) + 1);
      const guess = [...seen.entries()].find(([, n]) => n >= 2)?.[0];
      if (guess) chunks = splitMultipart(body, guess);
    }
    for (const chunk of chunks) {
      if (counter.parts >= MAX_MIME_PARTS) break;
      part.parts.push(buildPart(chunk, depth + 1, counter, childDefault));
    }
    if (part.parts.length > 0) return part;
  }

  const cte = (headers.get("content-transfer-encoding") ?? "").toLowerCase().trim();
  let binary = body;
  if (cte === "base64") binary = decodeBase64(body);
  else if (cte === "quoted-printable") binary = decodeQuotedPrintable(body);
  part.text = decodeCharset(binary, params["charset"]);

  if ((type === "message/rfc822" || type === "message/global") && !tooDeep) {
    part.parts.push(buildPart(part.text.replace(/^\s*\n/, ""), depth + 1, counter));
  }
  return part;
}

/** Parses raw mail (string or bytes, LF or CRLF) into a tree of parts. */
export function parseMime(raw: string | Uint8Array): MimePart {
  const text = typeof raw === "string" ? raw : bytesToBinary(raw);
  return buildPart(normaliseNewlines(text), 0, { parts: 0 });
}

/** Depth-first list of a part and all its descendants. */
export function flattenParts(root: MimePart): MimePart[] {
  const out: MimePart[] = [];
  const walk = (p: MimePart): void => {
    out.push(p);
    for (const c of p.parts) walk(c);
  };
  walk(root);
  return out;
}
