/**
 * Compose a send request into an RFC 5322 message (CRLF line endings).
 *
 * Structure, from the outside in:
 *   multipart/mixed          when there are attachments
 *     multipart/alternative  when there is both a text and an HTML body
 *       text/plain
 *       multipart/related    when inline parts (content_id) accompany the HTML
 *         text/html
 *         inline parts...
 *     attachments...
 * Text bodies are 7bit when they are ASCII with short lines, otherwise quoted-printable
 * UTF-8; attachments are base64 in 76-character lines. Bcc is never written. Message-ID,
 * Date and MIME-Version are always added by the relay.
 *
 * Input is expected to have passed `validateSendRequest`; anything that would make the
 * message unsafe (header injection, reserved headers, invalid addresses) is still checked
 * here and thrown as a `ComposeError`, so a bug upstream can never produce a forged header.
 */
import {
  type AddressInput,
  type Mailbox,
  formatAddressHeader,
  parseAddress,
} from "./address.js";
import {
  LINE_HARD_LIMIT,
  decodeBase64,
  encodeBase64Lines,
  encodeQuotedPrintable,
  encodeUnstructured,
  foldHeader,
  formatParameter,
  isAscii,
  normalizeLineBreaks,
  utf8Length,
} from "./encoding.js";

export interface AttachmentInput {
  filename: string;
  /** Base64 of the file's bytes. */
  content: string;
  content_type?: string | undefined;
  /** Without angle brackets. Makes the part inline, referenced from the HTML as `cid:<content_id>`. */
  content_id?: string | undefined;
  disposition?: "attachment" | "inline" | undefined;
}

export interface ComposeInput {
  from: AddressInput;
  to?: AddressInput[] | undefined;
  cc?: AddressInput[] | undefined;
  /** Envelope only: never written into the headers. */
  bcc?: AddressInput[] | undefined;
  reply_to?: AddressInput[] | undefined;
  subject?: string | undefined;
  text?: string | undefined;
  html?: string | undefined;
  attachments?: AttachmentInput[] | undefined;
  headers?: Record<string, string> | undefined;
}

export interface ComposeOptions {
  /** Right-hand side of generated Message-IDs, e.g. the relay's hostname. */
  messageIdDomain: string;
  now?: Date | undefined;
  /** Use this Message-ID (without angle brackets) instead of generating one. */
  messageId?: string | undefined;
  /** Source of randomness for Message-ID and boundaries (hex string); defaults to crypto.getRandomValues. */
  random?: (() => string) | undefined;
}

export interface ComposedMessage {
  /** The complete message with CRLF line endings. */
  raw: string;
  /** Message-ID without angle brackets. */
  messageId: string;
  /** True when an address needs SMTPUTF8 (RFC 6531): the message carries raw UTF-8 in headers. */
  smtputf8: boolean;
  /** True when the message contains any octet above 127 (needs 8BITMIME or SMTPUTF8). */
  eightBit: boolean;
  /** Size of `raw` in octets. */
  size: number;
}

export type ComposeErrorCode = "invalid_sender" | "invalid_recipient" | "invalid_field" | "header_injection" | "reserved_header" | "invalid_attachment";

/** Thrown by `composeMessage` for input that `validateSendRequest` would have refused. */
export class ComposeError extends Error {
  constructor(
    readonly code: ComposeErrorCode,
    message: string,
    readonly field: string,
  ) {
    super(message);
    this.name = "ComposeError";
  }
}

/**
 * Header fields a sender may not set through `headers`. Addressing and MIME structure come
 * from their own fields; trace and authentication headers are the receiving side's or the
 * relay's to write (a forged Authentication-Results or DKIM-Signature is a phishing tool).
 * Sender and Resend-* are refused because they change who the message claims to be from.
 * List-Unsubscribe and List-Unsubscribe-Post are allowed: bulk senders must set them (RFC 8058).
 */
export const RESERVED_HEADER_NAMES: ReadonlySet<string> = new Set([
  "from",
  "to",
  "cc",
  "bcc",
  "reply-to",
  "sender",
  "subject",
  "date",
  "message-id",
  "mime-version",
  "received",
  "received-spf",
  "return-path",
  "delivered-to",
  "dkim-signature",
  "domainkey-signature",
  "authentication-results",
  "arc-authentication-results",
  "arc-message-signature",
  "arc-seal",
]);
const RESERVED_HEADER_PREFIXES = ["content-", "resent-", "arc-", "x-edge-relay-"];

/** RFC 5322 §3.6.8 field-name: printable ASCII except colon. Capped at 76 so `Name: ` plus a word fits a line. */
export const MAX_HEADER_NAME_CHARS = 76;
/** A value may not exceed what fits on one unfolded line of 998 octets. */
export const MAX_HEADER_VALUE_OCTETS = 900;

export type HeaderProblem = { code: "invalid_field" | "header_injection" | "reserved_header"; message: string };

/** Check one custom header; null when it may be added. */
export function checkCustomHeader(name: string, value: string): HeaderProblem | null {
  if (/[\r\n\0]/.test(name)) return { code: "header_injection", message: "header name contains CR, LF or NUL" };
  if (name.length === 0 || name.length > MAX_HEADER_NAME_CHARS || !/^[\x21-\x39\x3b-\x7e]+$/.test(name)) {
    return { code: "invalid_field", message: "header name must be 1-76 printable ASCII characters without a colon" };
  }
  const lower = name.toLowerCase();
  if (RESERVED_HEADER_NAMES.has(lower) || RESERVED_HEADER_PREFIXES.some((p) => lower.startsWith(p))) {
    return { code: "reserved_header", message: `header ${name} is set by the relay or by its own field and cannot be given here` };
  }
  if (/[\r\n\0\u2028\u2029]/.test(value)) return { code: "header_injection", message: "header value contains CR, LF or NUL" };
  // eslint-disable-next-line no-control-regex
  if (/[\x01-\x08\x0b-\x1f\x7f-\x9f]/.test(value)) return { code: "invalid_field", message: "header value contains a control character" };
  if (utf8Length(value) > MAX_HEADER_VALUE_OCTETS) return { code: "invalid_field", message: `header value is longer than ${MAX_HEADER_VALUE_OCTETS} octets` };
  return null;
}

/** RFC 5322 §3.6.4 msg-id right and left sides (dot-atom-text), kept to ASCII. */
const MSG_ID_PART = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+(\.[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~]+)*$/;
const CONTENT_TYPE = /^[A-Za-z0-9!#$&^_.+-]{1,64}\/[A-Za-z0-9!#$&^_.+-]{1,64}$/;
/** A Content-ID we write between angle brackets: id-left@id-right or a plain dot-atom. */
export const CONTENT_ID_PATTERN = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~.@]{1,250}$/;

const EXTENSION_TYPES: Record<string, string> = {
  pdf: "application/pdf",
  png: "image/png",
  jpg: "image/jpeg",
  jpeg: "image/jpeg",
  gif: "image/gif",
  webp: "image/webp",
  svg: "image/svg+xml",
  txt: "text/plain",
  csv: "text/csv",
  htm: "text/html",
  html: "text/html",
  ics: "text/calendar",
  json: "application/json",
  xml: "application/xml",
  zip: "application/zip",
  gz: "application/gzip",
  doc: "application/msword",
  docx: "application/vnd.openxmlformats-officedocument.wordprocessingml.document",
  xls: "application/vnd.ms-excel",
  xlsx: "application/vnd.openxmlformats-officedocument.spreadsheetml.sheet",
  pptx: "application/vnd.openxmlformats-officedocument.presentationml.presentation",
  eml: "message/rfc822",
};

/** Content type for an attachment: the given one, else one guessed from the file extension. */
export function attachmentContentType(filename: string, given?: string): string {
  if (given) return given.toLowerCase();
  const ext = filename.slice(filename.lastIndexOf(".") + 1).toLowerCase();
  return (filename.includes(".") && EXTENSION_TYPES[ext]) || "application/octet-stream";
}

function defaultRandom(): string {
  const bytes = new Uint8Array(16);
  crypto.getRandomValues(bytes);
  return Array.from(bytes, (b) => b.toString(16).padStart(2, "0")).join("");
}

const DAYS = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
const MONTHS = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];

/** RFC 5322 §3.3 date-time in UTC, e.g. `Sat, 28 Nov 2026 05:49:30 +0000`. */
export function formatRfc5322Date(date: Date): string {
  const pad = (n: number): string => String(n).padStart(2, "0");
  return `${DAYS[date.getUTCDay()]}, ${date.getUTCDate()} ${MONTHS[date.getUTCMonth()]} ${date.getUTCFullYear()} ${pad(date.getUTCHours())}:${pad(date.getUTCMinutes())}:${pad(date.getUTCSeconds())} +0000`;
}

interface Part {
  headers: string[];
  /** Encoded body (CRLF lines, no trailing CRLF) for leaf parts. */
  body?: string;
  children?: Part[];
  subtype?: "mixed" | "alternative" | "related";
}

function parseAll(list: readonly AddressInput[] | undefined, field: string, code: ComposeErrorCode): Mailbox[] {
  return (list ?? []).map((input, i) => {
    const result = parseAddress(input);
    if (!result.ok) throw new ComposeError(code, result.error.message, `${field}[${i}]`);
    return result.value;
  });
}

/** A text part: 7bit when ASCII with lines of at most 78 characters, else quoted-printable UTF-8. */
function textPart(subtype: "plain" | "html", text: string): Part {
  const normalized = normalizeLineBreaks(text);
  const shortLines = normalized.split("\r\n").every((line) => line.length <= 78);
  // eslint-disable-next-line no-control-regex
  const plain = isAscii(normalized) && shortLines && !/[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]/.test(normalized);
  return plain
    ? { headers: [`Content-Type: text/${subtype}; charset=utf-8`, "Content-Transfer-Encoding: 7bit"], body: normalized }
    : {
        headers: [`Content-Type: text/${subtype}; charset=utf-8`, "Content-Transfer-Encoding: quoted-printable"],
        body: encodeQuotedPrintable(normalized),
      };
}

function headerWithParams(name: string, value: string, params: string[]): string {
  return foldHeader(name, [value, ...params].join("; "));
}

function attachmentPart(att: AttachmentInput, index: number, inline: boolean): Part {
  const field = `attachments[${index}]`;
  const bytes = decodeBase64(att.content);
  if (!bytes) throw new ComposeError("invalid_attachment", "attachment content is not valid base64", `${field}.content`);
  const type = attachmentContentType(att.filename, att.content_type);
  if (!CONTENT_TYPE.test(type)) throw new ComposeError("invalid_attachment", "attachment content_type is not a valid MIME type", `${field}.content_type`);
  if (type.startsWith("multipart/")) throw new ComposeError("invalid_attachment", "attachment content_type may not be multipart", `${field}.content_type`);
  // eslint-disable-next-line no-control-regex
  if (/[\x00-\x1f\x7f-\x9f\u2028\u2029]/.test(att.filename) || att.filename.trim() === "") {
    throw new ComposeError("invalid_attachment", "attachment filename is empty or contains a control character", `${field}.filename`);
  }
  const headers = [
    headerWithParams("Content-Type", type, formatParameter("name", att.filename)),
    "Content-Transfer-Encoding: base64",
    headerWithParams("Content-Disposition", inline ? "inline" : "attachment", formatParameter("filename", att.filename)),
  ];
  if (att.content_id !== undefined) {
    if (!CONTENT_ID_PATTERN.test(att.content_id)) throw new ComposeError("invalid_attachment", "content_id has characters that are not allowed", `${field}.content_id`);
    headers.push(`Content-ID: <${att.content_id}>`);
  }
  return { headers, body: encodeBase64Lines(bytes) };
}

function multipart(subtype: "mixed" | "alternative" | "related", children: Part[]): Part {
  return { headers: [], children, subtype };
}

/** Build the composed message. Throws `ComposeError` for unsafe input. */
export function composeMessage(input: ComposeInput, opts: ComposeOptions): ComposedMessage {
  const random = opts.random ?? defaultRandom;
  const now = opts.now ?? new Date();

  const fromResult = parseAddress(input.from);
  if (!fromResult.ok) throw new ComposeError("invalid_sender", fromResult.error.message, "from");
  const from = fromResult.value;
  const to = parseAll(input.to, "to", "invalid_recipient");
  const cc = parseAll(input.cc, "cc", "invalid_recipient");
  const bcc = parseAll(input.bcc, "bcc", "invalid_recipient");
  const replyTo = parseAll(input.reply_to, "reply_to", "invalid_field");
  const smtputf8 = [from, ...to, ...cc, ...bcc, ...replyTo].some((m) => m.utf8);

  let messageId = opts.messageId;
  if (messageId !== undefined) {
    const at = messageId.lastIndexOf("@");
    if (at < 1 || !MSG_ID_PART.test(messageId.slice(0, at)) || !MSG_ID_PART.test(messageId.slice(at + 1))) {
      throw new ComposeError("invalid_field", "messageId must be dot-atom@dot-atom without angle brackets", "message_id");
    }
  } else {
    if (!MSG_ID_PART.test(opts.messageIdDomain)) throw new ComposeError("invalid_field", "messageIdDomain is not a valid domain", "message_id");
    messageId = `${random()}@${opts.messageIdDomain}`;
    if (!MSG_ID_PART.test(messageId.slice(0, messageId.lastIndexOf("@")))) throw new RangeError("random() produced an unusable Message-ID");
  }

  const headerLines: string[] = [];
  headerLines.push(foldHeader("From", formatAddressHeader([from])));
  if (replyTo.length > 0) headerLines.push(foldHeader("Reply-To", formatAddressHeader(replyTo)));
  if (to.length > 0) headerLines.push(foldHeader("To", formatAddressHeader(to)));
  if (cc.length > 0) headerLines.push(foldHeader("Cc", formatAddressHeader(cc)));
  // RFC 5322 §3.6.3: a message sent only to Bcc recipients may carry an empty group.
  if (to.length === 0 && cc.length === 0) headerLines.push("To: undisclosed-recipients:;");
  if (input.subject !== undefined) {
    if (/[\r\n\0\u2028\u2029]/.test(input.subject)) throw new ComposeError("header_injection", "subject contains CR, LF or NUL", "subject");
    headerLines.push(foldHeader("Subject", encodeUnstructured(input.subject, "Subject")));
  }
  headerLines.push(`Date: ${formatRfc5322Date(now)}`);
  headerLines.push(foldHeader("Message-ID", `<${messageId}>`));
  headerLines.push("MIME-Version: 1.0");

  const seen = new Set<string>();
  for (const [name, value] of Object.entries(input.headers ?? {})) {
    const problem = checkCustomHeader(name, value);
    if (problem) throw new ComposeError(problem.code, problem.message, `headers.${name}`);
    const lower = name.toLowerCase();
    if (seen.has(lower)) throw new ComposeError("invalid_field", `header ${name} given twice`, `headers.${name}`);
    seen.add(lower);
    // Printable ASCII is written as given (it may be structured: URLs, msg-ids, or words the
    // sender already encoded); only non-ASCII values become encoded words.
    headerLines.push(foldHeader(name, encodeUnstructured(value, name, true)));
  }

  const raw = headerLines.join("\r\n") + "\r\n" + bodyHeadersAndRaw(buildTree(input), random) + "\r\n";
  assertLineLengths(raw);
  const size = utf8Length(raw);
  return { raw, messageId, smtputf8, eightBit: size !== raw.length, size };
}

/** Every producer above keeps lines short; this is the last guard for RFC 5322 §2.1.1's 998. */
function assertLineLengths(raw: string): void {
  let start = 0;
  while (start < raw.length) {
    let end = raw.indexOf("\r\n", start);
    if (end < 0) end = raw.length;
    // Characters ≤ octets ≤ 4 × characters, so only long-looking lines need measuring.
    if (end - start > LINE_HARD_LIMIT / 4 && utf8Length(raw.slice(start, end)) > LINE_HARD_LIMIT) {
      throw new RangeError("composed message has a line longer than 998 octets");
    }
    start = end + 2;
  }
}

function buildTree(input: ComposeInput): Part {
  const attachments = input.attachments ?? [];
  const hasHtml = input.html !== undefined;
  const inlineIdx: number[] = [];
  const mixedIdx: number[] = [];
  attachments.forEach((att, i) => {
    const inline = att.content_id !== undefined && att.disposition !== "attachment" && hasHtml;
    (inline ? inlineIdx : mixedIdx).push(i);
  });

  let htmlPart: Part | undefined = hasHtml ? textPart("html", input.html ?? "") : undefined;
  if (htmlPart && inlineIdx.length > 0) {
    htmlPart = multipart("related", [htmlPart, ...inlineIdx.map((i) => attachmentPart(attachments[i]!, i, true))]);
  }
  const textBody = input.text !== undefined ? textPart("plain", input.text) : undefined;
  let body: Part;
  if (textBody && htmlPart) body = multipart("alternative", [textBody, htmlPart]);
  else body = htmlPart ?? textBody ?? textPart("plain", "");

  if (mixedIdx.length === 0) return body;
  return multipart("mixed", [
    body,
    ...mixedIdx.map((i) => {
      const att = attachments[i]!;
      return attachmentPart(att, i, att.disposition === "inline");
    }),
  ]);
}

/** Serialize a part: its headers, a blank line, and its body. */
/** RFC 2046 §5.1.1 bchars, at most 70. */
const BOUNDARY = /^[0-9A-Za-z'()+_,\-./:=?]{1,70}$/;

function bodyHeadersAndRaw(part: Part, random: () => string): string {
  if (!part.children) return [...part.headers, "", part.body ?? ""].join("\r\n");
  const children = part.children.map((c) => bodyHeadersAndRaw(c, random));
  // "=_" cannot occur in quoted-printable or base64 output, and 7bit text is checked here.
  let boundary = "";
  for (let attempt = 0; ; attempt++) {
    boundary = `=_er_${part.subtype}_${random()}`;
    if (!BOUNDARY.test(boundary)) throw new RangeError("random() produced an unusable MIME boundary");
    if (!children.some((c) => c.includes(boundary))) break;
    if (attempt > 8) throw new RangeError("random() keeps producing a boundary that occurs in the content");
  }
  const lines = [foldHeader("Content-Type", `multipart/${part.subtype}; boundary="${boundary}"`), ""];
  for (const child of children) lines.push(`--${boundary}`, child);
  lines.push(`--${boundary}--`);
  return lines.join("\r\n");
}
