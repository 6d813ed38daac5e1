/**
 * Header fields that receivers use to judge and sort mail: a `Received` trace line for the accepting hop,
 * `Feedback-ID` (Gmail's feedback loop), `List-Unsubscribe` with one-click `List-Unsubscribe-Post` (RFC 8058,
 * required by Gmail and Yahoo of bulk senders), the signed unsubscribe token behind the one-click URL, and
 * `insertHeaders`, which puts fields at the top of a raw message without letting a value break out of its field.
 *
 * Insert these before DKIM signing: `List-Unsubscribe*` and `Feedback-ID` are in the signed header list.
 * Pure: Web Crypto only.
 */
import { decodeBase64Url, encodeBase64Url } from "./encoding";
import { formatRfc5322Date } from "./compose";
import { hmacSha256, type HmacSecret, constantTimeEqual } from "./hmac";

/** One header field; `value` is unfolded text and must not contain CR, LF or NUL. */
export interface HeaderField {
  name: string;
  value: string;
}

/** Thrown when a field name or value cannot be written safely (header injection or an over-long line). */
export class HeaderValueError extends Error {
  override name = "HeaderValueError";
  constructor(
    message: string,
    readonly field: string,
  ) {
    super(message);
  }
}

export type { HmacSecret };

/** RFC 5322 section 2.1.1: lines SHOULD be at most 78 characters; we fold at whitespace to stay under it. */
export const HEADER_FOLD_WIDTH = 78;
/** RFC 5322 section 2.1.1: lines MUST be at most 998 characters. */
export const MAX_HEADER_LINE_CHARS = 998;
// RFC 5322 section 3.6.8: printable US-ASCII except colon.
const FIELD_NAME_PATTERN = /^[\x21-\x39\x3b-\x7e]+$/;

/**
 * `Name: value`, folded before spaces so lines stay within 78 characters where the value allows it.
 * No trailing CRLF; continuation lines are joined with CRLF + the space that was there.
 */
export function formatHeaderField(field: HeaderField): string {
  const { name, value } = field;
  if (!FIELD_NAME_PATTERN.test(name)) throw new HeaderValueError(`invalid header field name: ${JSON.stringify(name)}`, name);
  // A CR or LF in a value would end the field and start a new one (header injection); NUL is never valid.
  if (/[\r\n\0]/.test(value)) throw new HeaderValueError(`header ${name} contains CR, LF or NUL`, name);
  const lines: string[] = [];
  let line = `${name}:`;
  let wordOnLine = false;
  for (const word of value.split(" ")) {
    // Fold only before a word and only after one, so no line is whitespace alone (RFC 5322 section 3.2.2).
    if (word !== "" && wordOnLine && line.length + 1 + word.length > HEADER_FOLD_WIDTH) {
      lines.push(line);
      line = " " + word;
    } else {
      line += " " + word;
      wordOnLine ||= word !== "";
    }
  }
  lines.push(line);
  if (lines.some((l) => l.length > MAX_HEADER_LINE_CHARS)) {
    throw new HeaderValueError(`header ${name} has a line longer than ${MAX_HEADER_LINE_CHARS} characters`, name);
  }
  return lines.join("\r\n");
}

/**
 * Returns the message with `fields` added at the top, in order, using the message's own line ending (CRLF,
 * or LF if its first line ends in a bare LF). Strings stay strings; bytes stay bytes (fields in UTF-8).
 * Throws HeaderValueError for unsafe fields, or when the message starts with whitespace (its first line would
 * otherwise become a continuation of the last inserted field).
 */
export function insertHeaders(raw: string, fields: readonly HeaderField[]): string;
export function insertHeaders(raw: Uint8Array, fields: readonly HeaderField[]): Uint8Array;
export function insertHeaders(raw: string | Uint8Array, fields: readonly HeaderField[]): string | Uint8Array {
  const first = typeof raw === "string" ? raw.charCodeAt(0) : raw[0];
  if (first === 0x20 || first === 0x09) {
    throw new HeaderValueError("message starts with whitespace; inserted fields would swallow its first line", "");
  }
  const eol = lineEnding(raw);
  const block = fields.map((f) => formatHeaderField(f).replace(/\r\n/g, eol) + eol).join("");
  if (typeof raw === "string") return block + raw;
  const head = new TextEncoder().encode(block);
  const out = new Uint8Array(head.length + raw.length);
  out.set(head, 0);
  out.set(raw, head.length);
  return out;
}

function lineEnding(raw: string | Uint8Array): "\r\n" | "\n" {
  const lf = typeof raw === "string" ? raw.indexOf("\n") : raw.indexOf(0x0a);
  if (lf <= 0) return "\r\n";
  const before = typeof raw === "string" ? raw.charCodeAt(lf - 1) : raw[lf - 1];
  return before === 0x0d ? "\r\n" : "\n";
}

export interface ReceivedOptions {
  /** Host name of this relay (`by`). */
  by: string;
  /** What the client called itself: SMTP HELO/EHLO name, or e.g. the API key name for HTTP. */
  fromName?: string;
  /** Client IP address, written as an address literal; leave out where client addresses are private. */
  fromAddress?: string;
  /** Protocol (`with`): ESMTPSA, ESMTPS, ESMTP (RFC 3848), HTTP or HTTPS. */
  protocol: string;
  /** Our message id. */
  id: string;
  /** The recipient, only when there is exactly one (RFC 5321 section 7.6: do not list several). */
  for?: string;
  date: Date;
  /** Product comment after `by`, default "Edge Relay". */
  comment?: string;
}

/**
 * The trace field for the accepting hop (RFC 5321 section 4.4), e.g.
 * `Received: from app01 ([203.0.113.7]) by relay.example.com (Edge Relay) with HTTPS id m1abc; <date>`.
 */
export function receivedField(options: ReceivedOptions): HeaderField {
  const parts: string[] = [];
  if (options.fromName !== undefined || options.fromAddress !== undefined) {
    const name = options.fromName !== undefined ? traceToken(options.fromName, "fromName") : "unknown";
    const address = options.fromAddress !== undefined ? ` (${addressLiteral(options.fromAddress)})` : "";
    parts.push(`from ${name}${address}`);
  }
  parts.push(`by ${traceToken(options.by, "by")} (${commentText(options.comment ?? "Edge Relay")})`);
  parts.push(`with ${traceToken(options.protocol, "protocol")}`);
  parts.push(`id ${traceToken(options.id, "id")}`);
  if (options.for !== undefined) parts.push(`for <${traceToken(options.for, "for")}>`);
  return { name: "Received", value: `${parts.join(" ")}; ${formatRfc5322Date(options.date)}` };
}

function traceToken(value: string, what: string): string {
  if (!/^[\x21-\x7e]+$/.test(value) || /[()<>;\\"]/.test(value)) {
    throw new HeaderValueError(`Received: ${what} is not a single safe token: ${JSON.stringify(value)}`, "Received");
  }
  return value;
}

function addressLiteral(ip: string): string {
  if (/^\d{1,3}(?:\.\d{1,3}){3}$/.test(ip)) return `[${ip}]`;
  if (/^[0-9a-f:.]+$/i.test(ip) && ip.includes(":")) return `[IPv6:${ip}]`;
  throw new HeaderValueError(`Received: not an IP address: ${JSON.stringify(ip)}`, "Received");
}

function commentText(text: string): string {
  return text.replace(/[()\\\r\n\0]/g, "");
}

export interface FeedbackIdOptions {
  /** The customer (account) the mail is sent for. */
  tenant: string;
  /** Mail stream, e.g. "transactional" or "broadcast". */
  stream: string;
  /** Campaign or message tag; empty when there is none. */
  tag?: string;
  /** Identifies this relay installation; constant across all mail (Gmail's SenderId). */
  relayId: string;
}

/**
 * `Feedback-ID: <tenant>:<stream>:<tag>:<relay-id>` for Gmail's feedback loop, which reports complaint rates
 * per value of each field. Characters other than letters, digits, `.`, `_` and `-` become `-` (a `:` would
 * shift the fields).
 */
export function feedbackIdField(options: FeedbackIdOptions): HeaderField {
  const clean = (s: string): string => s.replace(/[^A-Za-z0-9._-]+/g, "-").slice(0, 64);
  const relayId = clean(options.relayId);
  if (relayId === "") throw new HeaderValueError("Feedback-ID needs a relay id", "Feedback-ID");
  return { name: "Feedback-ID", value: [options.tenant, options.stream, options.tag ?? "", options.relayId].map(clean).join(":") };
}

export interface ListUnsubscribeOptions {
  /** The https one-click URL (RFC 8058 requires https); see {@link unsubscribeUrl}. */
  url: string;
  /** Optional mailto address; the token goes into the subject (see {@link unsubscribeMailto}). */
  mailto?: string;
}

/**
 * `List-Unsubscribe: <https://...>, <mailto:...>` and `List-Unsubscribe-Post: List-Unsubscribe=One-Click`
 * (RFC 2369, RFC 8058). Both must be DKIM-signed, which the default DKIM header list does.
 */
export function listUnsubscribeFields(options: ListUnsubscribeOptions): HeaderField[] {
  let url: URL;
  try {
    url = new URL(options.url);
  } catch {
    throw new HeaderValueError(`List-Unsubscribe: invalid URL ${JSON.stringify(options.url)}`, "List-Unsubscribe");
  }
  if (url.protocol !== "https:") throw new HeaderValueError("List-Unsubscribe: one-click needs an https URL (RFC 8058 section 3.1)", "List-Unsubscribe");
  const uris = [`<${url.href}>`];
  if (options.mailto !== undefined) {
    if (!/^mailto:[^\s<>,"]+$/.test(options.mailto)) {
      throw new HeaderValueError(`List-Unsubscribe: invalid mailto URI ${JSON.stringify(options.mailto)}`, "List-Unsubscribe");
    }
    uris.push(`<${options.mailto}>`);
  }
  return [
    { name: "List-Unsubscribe", value: uris.join(", ") },
    { name: "List-Unsubscribe-Post", value: "List-Unsubscribe=One-Click" },
  ];
}

/** `<base>/<token>` with exactly one slash between them; the token is URL-safe already. */
export function unsubscribeUrl(baseUrl: string, token: string): string {
  return `${baseUrl.replace(/\/+$/, "")}/${encodeURIComponent(token)}`;
}

/** `mailto:<address>?subject=unsubscribe%20<token>`; the inbound handler reads the token from the subject. */
export function unsubscribeMailto(address: string, token: string): string {
  return `mailto:${address}?subject=${encodeURIComponent(`unsubscribe ${token}`)}`;
}

/** What a one-click unsubscribe token proves: this recipient asked to stop mail from this sender. */
export interface UnsubscribePayload {
  /** The sender the suppression applies to (the From domain, or a tenant-scoped sender id). */
  sender: string;
  /** The recipient address to suppress. */
  recipient: string;
  /** The message the link came in, for the event log. */
  messageId?: string;
  /** The stream, if suppression is per stream. */
  stream?: string;
}

/** 16 bytes of HMAC-SHA256: a token cannot be forged, and the URL stays short. */
const UNSUBSCRIBE_MAC_BYTES = 16;

/** `<base64url(JSON payload)>.<base64url(HMAC)>`; URL-safe, no expiry (links in old mail must keep working). */
export async function signUnsubscribeToken(payload: UnsubscribePayload, secret: HmacSecret): Promise<string> {
  const compact: Record<string, string> = { s: payload.sender, r: payload.recipient };
  if (payload.messageId !== undefined) compact.m = payload.messageId;
  if (payload.stream !== undefined) compact.t = payload.stream;
  const body = encodeBase64Url(new TextEncoder().encode(JSON.stringify(compact)));
  return `${body}.${encodeBase64Url(await unsubscribeMac(body, secret))}`;
}

/** The payload of a token we issued, or null for anything else (bad shape, bad MAC, bad JSON). */
export async function verifyUnsubscribeToken(token: string, secret: HmacSecret): Promise<UnsubscribePayload | null> {
  const match = /^([A-Za-z0-9_-]{1,2048})\.([A-Za-z0-9_-]{22})$/.exec(token.trim());
  if (!match) return null;
  const [, body = "", mac = ""] = match;
  const expected = encodeBase64Url(await unsubscribeMac(body, secret));
  if (!constantTimeEqual(mac, expected)) return null;
  let parsed: unknown;
  try {
    parsed = JSON.parse(new TextDecoder().decode(decodeBase64Url(body) ?? new Uint8Array()));
  } catch {
    return null;
  }
  if (typeof parsed !== "object" || parsed === null) return null;
  const record = parsed as Record<string, unknown>;
  const { s, r, m, t } = record;
  if (typeof s !== "string" || typeof r !== "string") return null;
  const payload: UnsubscribePayload = { sender: s, recipient: r };
  if (typeof m === "string") payload.messageId = m;
  if (typeof t === "string") payload.stream = t;
  return payload;
}

async function unsubscribeMac(body: string, secret: HmacSecret): Promise<Uint8Array> {
  // The "unsub1:" prefix separates these MACs from the return path's, which may share the secret.
  return (await hmacSha256(secret, `unsub1:${body}`)).subarray(0, UNSUBSCRIBE_MAC_BYTES);
}

