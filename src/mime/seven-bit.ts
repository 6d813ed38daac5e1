/**
 * 8-bit safety (issue 21): makes a message's body 7-bit before it is signed, so it can go to any server, with or
 * without 8BITMIME (RFC 6152 section 3 leaves a relay two choices for a server without it: convert, or return the
 * message). Each MIME leaf with 8-bit content gets a new Content-Transfer-Encoding (RFC 2045 section 6):
 * quoted-printable for text, base64 for anything else; multiparts and message/rfc822 parts are walked. Header
 * fields are not touched (8-bit headers need SMTPUTF8, not a body encoding). Pure: no Workers imports.
 */
import { encodeBase64Lines, encodeQuotedPrintable, utf8Bytes } from "./encoding";

/** Nested multiparts deeper than this are not mail anyone means to send; such a message is left as it is. */
const MAX_DEPTH = 20;
const NON_ASCII = /[^\x00-\x7f]/;

interface Entity {
  head: string;
  body: string;
}

function split(entity: string): Entity {
  const end = entity.indexOf("\r\n\r\n");
  if (end < 0) return { head: entity, body: "" };
  return { head: entity.slice(0, end), body: entity.slice(end + 4) };
}

/** The unfolded value of a header field of the head, or undefined. */
function field(head: string, name: string): string | undefined {
  const m = new RegExp(`^${name}[ \\t]*:((?:.*)(?:\\r\\n[ \\t].*)*)`, "im").exec(head);
  return m ? m[1]!.replace(/\r\n[ \t]/g, " ").trim() : undefined;
}

/** The head with its Content-Transfer-Encoding field (folded lines included) replaced by `cte`. */
function withEncoding(head: string, cte: string): string {
  const lines = head.split("\r\n");
  const out: string[] = [];
  let skipping = false;
  for (const line of lines) {
    if (skipping && /^[ \t]/.test(line)) continue;
    skipping = /^Content-Transfer-Encoding[ \t]*:/i.test(line);
    if (!skipping) out.push(line);
  }
  out.push(`Content-Transfer-Encoding: ${cte}`);
  return out.join("\r\n");
}

function boundaryOf(contentType: string): string | undefined {
  const m = /;\s*boundary\s*=\s*(?:"([^"]{1,200})"|([^\s;"]{1,200}))/i.exec(contentType);
  return m ? (m[1] ?? m[2]) : undefined;
}

function escapeRegExp(s: string): string {
  return s.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
}

/** Converts one entity (head + body); null when it has 8-bit content it cannot convert safely. */
function convertEntity(entity: string, depth: number): string | null {
  const { head, body } = split(entity);
  if (!NON_ASCII.test(body)) return entity;
  if (depth > MAX_DEPTH) return null;
  const type = (field(head, "Content-Type") ?? "text/plain").toLowerCase();
  const cte = (field(head, "Content-Transfer-Encoding") ?? "7bit").toLowerCase();
  // A body declared base64 or quoted-printable that holds 8-bit octets is broken; leave it to be refused.
  if (cte !== "7bit" && cte !== "8bit" && cte !== "binary") return null;
  const rebuilt = (newBody: string, newHead = head) => `${newHead}\r\n\r\n${newBody}`;
  if (type.startsWith("multipart/")) {
    const boundary = boundaryOf(field(head, "Content-Type") ?? "");
    if (!boundary) return null;
    // RFC 2046 section 5.1.1: a delimiter is CRLF "--" boundary at the start of a line; the CRLF belongs to it.
    const delimiter = new RegExp(`(^|\\r\\n)(--${escapeRegExp(boundary)}(?:--)?[ \\t]*)(?=\\r\\n|$)`, "g");
    const pieces: string[] = [];
    const delimiters: string[] = [];
    let last = 0;
    for (let m = delimiter.exec(body); m; m = delimiter.exec(body)) {
      pieces.push(body.slice(last, m.index));
      delimiters.push(m[1]! + m[2]!);
      last = m.index + m[0].length;
    }
    pieces.push(body.slice(last));
    if (!delimiters.length) return null;
    // pieces[0] is the preamble, the last is the epilogue; in between, each starts with the CRLF after its delimiter.
    const out: string[] = [];
    for (let i = 0; i < pieces.length; i++) {
      const piece = pieces[i]!;
      if (i === 0 || i === pieces.length - 1 || !piece.startsWith("\r\n")) {
        if (NON_ASCII.test(piece)) return null; // 8-bit preamble or epilogue: nobody reads it, nobody should send it
        out.push(piece);
      } else {
        const part = convertEntity(piece.slice(2), depth + 1);
        if (part === null) return null;
        out.push("\r\n" + part);
      }
      if (i < delimiters.length) out.push(delimiters[i]!);
    }
    return rebuilt(out.join(""), cte === "7bit" ? head : withEncoding(head, "7bit"));
  }
  if (type.startsWith("message/rfc822") || type.startsWith("message/global")) {
    const inner = convertEntity(body, depth + 1);
    if (inner === null) return null;
    // message/global may carry UTF-8 headers (RFC 6532); those stay 8-bit, so the part stays 8bit then.
    return rebuilt(inner, NON_ASCII.test(inner) ? head : withEncoding(head, "7bit"));
  }
  if (type.startsWith("text/")) {
    // The octets were valid UTF-8 (accept checks), so quoted-printable of the UTF-8 text reproduces them.
    // RFC 2045 section 6.7: a trailing CRLF of the body stays a line break.
    return rebuilt(encodeQuotedPrintable(body), withEncoding(head, "quoted-printable"));
  }
  return rebuilt(encodeBase64Lines(utf8Bytes(body)), withEncoding(head, "base64"));
}

/**
 * The message with every 8-bit body part re-encoded; `converted` false when there was nothing to do. Null when
 * the body has 8-bit content that cannot be converted without guessing (broken MIME): the caller leaves it.
 */
export function toSevenBitBody(raw: string): { raw: string; converted: boolean } | null {
  const { body } = split(raw);
  if (!NON_ASCII.test(body)) return { raw, converted: false };
  const out = convertEntity(raw, 0);
  return out === null ? null : { raw: out, converted: true };
}
