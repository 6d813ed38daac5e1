/**
 * Validation of the JSON body of `POST /v1/messages` into a `ComposeInput` plus the relay's
 * own fields (tags, metadata, send_at, stream).
 *
 * Strict: unknown fields are refused, every string is checked for lone surrogates (a JSON
 * body can carry `\ud800`, which has no UTF-8 form), control characters and line breaks
 * where a header will be written. Errors name the field with a JSON path (`to[2]`,
 * `headers.X-Foo`, `attachments[0].content`) and use a code from `SEND_ERROR_CODES`.
 * Never throws, whatever the input.
 */
import { type AddressInput, type Mailbox, parseAddress } from "./address.js";
import { type AttachmentInput, type ComposeInput, CONTENT_ID_PATTERN, attachmentContentType, checkCustomHeader } from "./compose.js";
import { decodeBase64, hasLoneSurrogate, utf8Length } from "./encoding.js";

/** The closed list of error codes a send request can be refused with. */
export const SEND_ERROR_CODES = [
  "invalid_json",
  "invalid_field",
  "missing_field",
  "unknown_field",
  "invalid_sender",
  "invalid_recipient",
  "too_many_recipients",
  "header_injection",
  "reserved_header",
  "invalid_utf8",
  "too_large",
  "invalid_attachment",
  "invalid_send_at",
] as const;

export type SendErrorCode = (typeof SEND_ERROR_CODES)[number];

export interface SendError {
  code: SendErrorCode;
  message: string;
  /** JSON path of the offending field, e.g. `to[2]` or `headers.X-Foo`; empty for the whole body. */
  field: string;
}

export type SendStream = "transactional" | "broadcast";

/** A validated send request. Addresses are normalised `{ name?, address }` objects. */
export interface SendRequest extends ComposeInput {
  from: { name?: string; address: string };
  to: { name?: string; address: string }[];
  cc: { name?: string; address: string }[];
  bcc: { name?: string; address: string }[];
  reply_to: { name?: string; address: string }[];
  tags: string[];
  metadata: Record<string, string>;
  send_at?: Date;
  stream: SendStream;
  /** The parsed sender mailbox. */
  sender: Mailbox;
  /** Envelope recipients: to, cc and bcc, de-duplicated case-insensitively, in that order. */
  recipients: Mailbox[];
  /** True when any address needs SMTPUTF8. */
  smtputf8: boolean;
  /** Open / click tracking for this message; absent: the tenant's stream or tenant-wide setting applies. */
  track_opens?: boolean;
  track_clicks?: boolean;
  /** Deliver only over TLS with a verified certificate (RFC 8689 REQUIRETLS semantics), else bounce. */
  require_tls?: boolean;
}

export type ValidationResult<T> = { ok: true; value: T } | { ok: false; error: SendError };

export interface SendLimits {
  /** to + cc + bcc. */
  maxRecipients: number;
  maxReplyTo?: number;
  maxSubjectBytes?: number;
  /** Each of text and html. */
  maxBodyBytes?: number;
  maxAttachments?: number;
  /** Total decoded size of all attachments. */
  maxAttachmentBytes?: number;
  maxHeaders?: number;
  maxTags?: number;
  maxTagChars?: number;
  maxMetadataKeys?: number;
  maxMetadataKeyChars?: number;
  maxMetadataValueBytes?: number;
  /** How far ahead send_at may be. */
  maxScheduleDays?: number;
  /** How far in the past send_at may be (clock skew); older times are refused. */
  maxSendAtPastMs?: number;
  /** The clock, for send_at checks. */
  now?: Date;
}

/** Defaults, each with where the number comes from. */
export const DEFAULT_SEND_LIMITS: Required<Omit<SendLimits, "now">> = {
  // Postmark and Resend allow 50 recipients per message; the issue asks for 50 in total.
  maxRecipients: 50,
  maxReplyTo: 10,
  // A subject longer than one unfolded header line (998) is never shown whole by any client.
  maxSubjectBytes: 998,
  // 10 MiB per body part, the Postmark message limit.
  maxBodyBytes: 10 * 1024 * 1024,
  // MailChannels documents at most 1000 attachments; 100 is plenty for one message.
  maxAttachments: 100,
  // MailChannels' documented 20 MB total message limit, applied to decoded attachments.
  maxAttachmentBytes: 20 * 1024 * 1024,
  maxHeaders: 50,
  // Postmark: one tag of 1000 chars; Resend/SES: tags of 256 chars. We take 10 of 64, enough for filtering.
  maxTags: 10,
  maxTagChars: 64,
  // Postmark metadata: keys ≤ 20 chars, values ≤ 80; we allow 20 keys of 64 chars with values ≤ 1 KiB.
  maxMetadataKeys: 20,
  maxMetadataKeyChars: 64,
  maxMetadataValueBytes: 1024,
  // Resend and Mailgun Send Later allow scheduling up to 30 days ahead (Mailgun: 3–7 by plan).
  maxScheduleDays: 30,
  // Clients with a slow clock may send a time a little in the past: treat up to 10 minutes as "now".
  maxSendAtPastMs: 10 * 60 * 1000,
};

const TOP_LEVEL_FIELDS = new Set([
  "from",
  "to",
  "cc",
  "bcc",
  "reply_to",
  "subject",
  "text",
  "html",
  "attachments",
  "headers",
  "tags",
  "metadata",
  "send_at",
  "stream",
  "track_opens",
  "track_clicks",
  "require_tls",
]);
const ATTACHMENT_FIELDS = new Set(["filename", "content", "content_type", "content_id", "disposition"]);
const ADDRESS_OBJECT_FIELDS = new Set(["name", "address"]);

/** Thrown internally to unwind to the single catch of a validator (here and in mailchannels.ts). */
export class Refusal {
  constructor(readonly error: SendError) {}
}

export function refuse(code: SendErrorCode, message: string, field: string): never {
  throw new Refusal({ code, message, field });
}

export function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === "object" && value !== null && !Array.isArray(value);
}

/** The request body as a JSON object: decodes a string, refuses anything that is not an object. */
export function jsonObject(input: unknown): Record<string, unknown> {
  let body: unknown = input;
  if (typeof input === "string") {
    try {
      body = JSON.parse(input);
    } catch {
      refuse("invalid_json", "body is not valid JSON", "");
    }
  }
  if (!isRecord(body)) refuse("invalid_json", "body must be a JSON object", "");
  return body;
}

function fieldPath(parent: string, key: string): string {
  // Keys that are not plain identifiers are bracket-quoted so the path stays unambiguous.
  const plain = /^[A-Za-z0-9_-]+$/.test(key) ? key : JSON.stringify(key);
  if (plain.startsWith('"')) return parent === "" ? `[${plain}]` : `${parent}[${plain}]`;
  return parent === "" ? plain : `${parent}.${plain}`;
}

/** Walk a decoded JSON value and refuse the first string (or key) that is not valid Unicode. */
function checkUtf8Deep(value: unknown, path: string, depth: number): void {
  if (depth > 32) refuse("invalid_json", "body is nested too deeply", path);
  if (typeof value === "string") {
    if (hasLoneSurrogate(value)) refuse("invalid_utf8", "string is not valid UTF-8 (unpaired surrogate)", path);
  } else if (Array.isArray(value)) {
    value.forEach((v, i) => checkUtf8Deep(v, `${path}[${i}]`, depth + 1));
  } else if (isRecord(value)) {
    for (const [k, v] of Object.entries(value)) {
      const p = fieldPath(path, k);
      if (hasLoneSurrogate(k)) refuse("invalid_utf8", "field name is not valid UTF-8", path);
      checkUtf8Deep(v, p, depth + 1);
    }
  }
}

function checkKeys(obj: Record<string, unknown>, allowed: Set<string>, path: string): void {
  for (const key of Object.keys(obj)) {
    if (!allowed.has(key)) refuse("unknown_field", `unknown field ${JSON.stringify(key)}`, fieldPath(path, key));
  }
}

function optionalString(obj: Record<string, unknown>, key: string, path: string): string | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") refuse("invalid_field", `${key} must be a string`, fieldPath(path, key));
  return value;
}

function optionalBoolean(obj: Record<string, unknown>, key: string): boolean | undefined {
  const value = obj[key];
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "boolean") refuse("invalid_field", `${key} must be true or false`, key);
  return value;
}

function readAddress(value: unknown, path: string, code: "invalid_sender" | "invalid_recipient" | "invalid_field"): Mailbox {
  let input: AddressInput;
  if (typeof value === "string") {
    input = value;
  } else if (isRecord(value)) {
    checkKeys(value, ADDRESS_OBJECT_FIELDS, path);
    if (typeof value.address !== "string") refuse(value.address === undefined ? "missing_field" : code, "address must be a string", `${path}.address`);
    if (value.name !== undefined && value.name !== null && typeof value.name !== "string") refuse("invalid_field", "name must be a string", `${path}.name`);
    input = { address: value.address, name: typeof value.name === "string" ? value.name : undefined };
  } else {
    refuse(code, "address must be a string or an object { name, address }", path);
  }
  if (typeof input === "string" && input.length > 1024) refuse("too_large", "address is too long", path);
  const result = parseAddress(input);
  if (!result.ok) {
    const injection = result.error.reason === "control_character" && /[\r\n\0]/.test(typeof input === "string" ? input : `${input.name ?? ""}${input.address}`);
    refuse(injection ? "header_injection" : code, result.error.message, path);
  }
  return result.value;
}

function readAddressList(body: Record<string, unknown>, key: string, code: "invalid_recipient" | "invalid_field", max: number): Mailbox[] {
  const value = body[key];
  if (value === undefined || value === null) return [];
  const list = Array.isArray(value) ? value : [value];
  if (list.length > max) refuse(key === "reply_to" ? "invalid_field" : "too_many_recipients", `${key} has more than ${max} addresses`, key);
  return list.map((v, i) => readAddress(v, Array.isArray(value) ? `${key}[${i}]` : key, code));
}

function plainMailbox(m: Mailbox): { name?: string; address: string } {
  return m.name !== undefined ? { name: m.name, address: m.address } : { address: m.address };
}

// eslint-disable-next-line no-control-regex
const CONTROL_OR_BREAK = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;

function readBody(body: Record<string, unknown>, key: "text" | "html", maxBytes: number): string | undefined {
  const value = optionalString(body, key, "");
  if (value === undefined) return undefined;
  if (value.includes("\0")) refuse("invalid_field", `${key} contains a NUL character`, key);
  if (value.length > maxBytes || utf8Length(value) > maxBytes) refuse("too_large", `${key} is larger than ${maxBytes} bytes`, key);
  return value;
}

function readAttachments(body: Record<string, unknown>, limits: Required<Omit<SendLimits, "now">>): AttachmentInput[] {
  const value = body.attachments;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) refuse("invalid_field", "attachments must be an array", "attachments");
  if (value.length > limits.maxAttachments) refuse("too_large", `more than ${limits.maxAttachments} attachments`, "attachments");
  let total = 0;
  const contentIds = new Set<string>();
  return value.map((item, i): AttachmentInput => {
    const path = `attachments[${i}]`;
    if (!isRecord(item)) refuse("invalid_attachment", "attachment must be an object", path);
    checkKeys(item, ATTACHMENT_FIELDS, path);
    const filename = optionalString(item, "filename", path);
    if (filename === undefined) refuse("missing_field", "attachment filename is required", `${path}.filename`);
    if (filename.trim() === "" || CONTROL_OR_BREAK.test(filename) || /[/\\]/.test(filename)) {
      refuse(/[\r\n\0]/.test(filename) ? "header_injection" : "invalid_attachment", "filename is empty or contains a control character or path separator", `${path}.filename`);
    }
    if (utf8Length(filename) > 255) refuse("invalid_attachment", "filename is longer than 255 bytes", `${path}.filename`);
    const content = optionalString(item, "content", path);
    if (content === undefined) refuse("missing_field", "attachment content is required", `${path}.content`);
    // Cheap bound before decoding: base64 is 4/3 of the bytes.
    if (content.length > (limits.maxAttachmentBytes / 3) * 4 + 4 * 1024) refuse("too_large", "attachment is too large", `${path}.content`);
    const bytes = decodeBase64(content);
    if (!bytes) refuse("invalid_attachment", "content is not valid base64", `${path}.content`);
    total += bytes.length;
    if (total > limits.maxAttachmentBytes) refuse("too_large", `attachments are larger than ${limits.maxAttachmentBytes} bytes in total`, `${path}.content`);
    const contentType = optionalString(item, "content_type", path);
    if (contentType !== undefined) {
      if (!/^[A-Za-z0-9!#$&^_.+-]{1,64}\/[A-Za-z0-9!#$&^_.+-]{1,64}$/.test(contentType)) {
        refuse(/[\r\n\0]/.test(contentType) ? "header_injection" : "invalid_attachment", "content_type must be type/subtype", `${path}.content_type`);
      }
      if (contentType.toLowerCase().startsWith("multipart/")) refuse("invalid_attachment", "content_type may not be multipart", `${path}.content_type`);
    }
    const contentId = optionalString(item, "content_id", path);
    if (contentId !== undefined) {
      if (!CONTENT_ID_PATTERN.test(contentId)) {
        refuse(/[\r\n\0]/.test(contentId) ? "header_injection" : "invalid_attachment", "content_id must be 1-250 ASCII characters without angle brackets or spaces", `${path}.content_id`);
      }
      if (contentIds.has(contentId)) refuse("invalid_attachment", "content_id is used twice", `${path}.content_id`);
      contentIds.add(contentId);
    }
    const disposition = optionalString(item, "disposition", path);
    if (disposition !== undefined && disposition !== "attachment" && disposition !== "inline") {
      refuse("invalid_attachment", 'disposition must be "attachment" or "inline"', `${path}.disposition`);
    }
    const att: AttachmentInput = { filename, content, content_type: attachmentContentType(filename, contentType) };
    if (contentId !== undefined) att.content_id = contentId;
    if (disposition !== undefined) att.disposition = disposition;
    return att;
  });
}

function readHeaders(body: Record<string, unknown>, max: number): Record<string, string> {
  const value = body.headers;
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) refuse("invalid_field", "headers must be an object of strings", "headers");
  const entries = Object.entries(value);
  if (entries.length > max) refuse("too_large", `more than ${max} headers`, "headers");
  const seen = new Set<string>();
  const out: [string, string][] = [];
  for (const [name, v] of entries) {
    const path = `headers.${name}`;
    if (typeof v !== "string") refuse("invalid_field", "header value must be a string", path);
    const problem = checkCustomHeader(name, v);
    if (problem) refuse(problem.code, problem.message, path);
    const lower = name.toLowerCase();
    if (seen.has(lower)) refuse("invalid_field", `header ${name} given twice (names are case-insensitive)`, path);
    seen.add(lower);
    out.push([name, v]);
  }
  // Object.fromEntries defines own properties, so a "__proto__" key cannot touch the prototype.
  return Object.fromEntries(out);
}

function readTags(body: Record<string, unknown>, limits: Required<Omit<SendLimits, "now">>): string[] {
  const value = body.tags;
  if (value === undefined || value === null) return [];
  if (!Array.isArray(value)) refuse("invalid_field", "tags must be an array of strings", "tags");
  if (value.length > limits.maxTags) refuse("too_large", `more than ${limits.maxTags} tags`, "tags");
  const tags: string[] = [];
  value.forEach((tag, i) => {
    const path = `tags[${i}]`;
    if (typeof tag !== "string") refuse("invalid_field", "tag must be a string", path);
    if (tag.length === 0 || [...tag].length > limits.maxTagChars) refuse("invalid_field", `tag must be 1-${limits.maxTagChars} characters`, path);
    if (CONTROL_OR_BREAK.test(tag)) refuse("invalid_field", "tag contains a control character", path);
    if (!tags.includes(tag)) tags.push(tag);
  });
  return tags;
}

function readMetadata(body: Record<string, unknown>, limits: Required<Omit<SendLimits, "now">>): Record<string, string> {
  const value = body.metadata;
  if (value === undefined || value === null) return {};
  if (!isRecord(value)) refuse("invalid_field", "metadata must be an object of strings", "metadata");
  const entries = Object.entries(value);
  if (entries.length > limits.maxMetadataKeys) refuse("too_large", `more than ${limits.maxMetadataKeys} metadata keys`, "metadata");
  const out: [string, string][] = [];
  for (const [key, v] of entries) {
    const path = fieldPath("metadata", key);
    if (key.length === 0 || key.length > limits.maxMetadataKeyChars || !/^[A-Za-z0-9_.:-]+$/.test(key)) {
      refuse("invalid_field", `metadata keys must be 1-${limits.maxMetadataKeyChars} characters of A-Z a-z 0-9 _ . : -`, path);
    }
    if (typeof v !== "string") refuse("invalid_field", "metadata value must be a string", path);
    if (utf8Length(v) > limits.maxMetadataValueBytes) refuse("too_large", `metadata value is longer than ${limits.maxMetadataValueBytes} bytes`, path);
    if (CONTROL_OR_BREAK.test(v)) refuse("invalid_field", "metadata value contains a control character", path);
    out.push([key, v]);
  }
  return Object.fromEntries(out);
}

/** RFC 3339 date-time with a mandatory offset, e.g. 2026-12-01T09:00:00Z or 2026-12-01T10:00:00+01:00. */
const RFC3339 = /^(\d{4})-(\d{2})-(\d{2})[Tt ](\d{2}):(\d{2}):(\d{2})(\.\d{1,9})?([Zz]|[+-]\d{2}:\d{2})$/;

function readSendAt(body: Record<string, unknown>, limits: Required<Omit<SendLimits, "now">>, now: Date): Date | undefined {
  const value = body.send_at;
  if (value === undefined || value === null) return undefined;
  if (typeof value !== "string") refuse("invalid_send_at", "send_at must be an RFC 3339 date-time string with an offset", "send_at");
  const match = RFC3339.exec(value);
  const date = match ? new Date(value.replace(" ", "T")) : null;
  if (!match || !date || Number.isNaN(date.getTime())) refuse("invalid_send_at", "send_at must be an RFC 3339 date-time with an offset, e.g. 2026-12-01T09:00:00Z", "send_at");
  // Date accepts 2026-02-31 and rolls over; refuse calendar dates that do not exist.
  const [, y, mo, d] = match;
  const probe = new Date(Date.UTC(Number(y), Number(mo) - 1, Number(d)));
  if (probe.getUTCMonth() !== Number(mo) - 1 || probe.getUTCDate() !== Number(d)) refuse("invalid_send_at", "send_at is not a real calendar date", "send_at");
  const ahead = date.getTime() - now.getTime();
  if (ahead > limits.maxScheduleDays * 86_400_000) refuse("invalid_send_at", `send_at is more than ${limits.maxScheduleDays} days ahead`, "send_at");
  if (ahead < -limits.maxSendAtPastMs) refuse("invalid_send_at", "send_at is in the past", "send_at");
  return date;
}

/**
 * Validate a decoded JSON body (or a JSON string) as a send request. Returns the normalised
 * request or the first problem found. Never throws.
 */
export function validateSendRequest(body: unknown, limits: Partial<SendLimits> = {}): ValidationResult<SendRequest> {
  try {
    return { ok: true, value: validateOrThrow(body, limits) };
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, error: e.error };
    // Anything else is a bug here, but bad input must still never become a 500.
    return { ok: false, error: { code: "invalid_field", message: "request could not be validated", field: "" } };
  }
}

function validateOrThrow(input: unknown, given: Partial<SendLimits>): SendRequest {
  const limits: Required<Omit<SendLimits, "now">> = { ...DEFAULT_SEND_LIMITS };
  for (const [k, v] of Object.entries(given)) {
    if (v !== undefined && k !== "now") (limits as Record<string, unknown>)[k] = v;
  }
  const now = given.now ?? new Date();
  const body = jsonObject(input);
  checkUtf8Deep(body, "", 0);
  checkKeys(body, TOP_LEVEL_FIELDS, "");

  if (body.from === undefined || body.from === null) refuse("missing_field", "from is required", "from");
  if (Array.isArray(body.from)) refuse("invalid_sender", "from must be a single address", "from");
  const sender = readAddress(body.from, "from", "invalid_sender");

  const to = readAddressList(body, "to", "invalid_recipient", limits.maxRecipients);
  const cc = readAddressList(body, "cc", "invalid_recipient", limits.maxRecipients);
  const bcc = readAddressList(body, "bcc", "invalid_recipient", limits.maxRecipients);
  const replyTo = readAddressList(body, "reply_to", "invalid_field", limits.maxReplyTo);
  const total = to.length + cc.length + bcc.length;
  if (total === 0) refuse("missing_field", "at least one recipient (to, cc or bcc) is required", "to");
  if (total > limits.maxRecipients) refuse("too_many_recipients", `more than ${limits.maxRecipients} recipients in to, cc and bcc together`, "to");

  const subject = optionalString(body, "subject", "");
  if (subject !== undefined) {
    if (/[\r\n\0\u2028\u2029]/.test(subject)) refuse("header_injection", "subject contains CR, LF or NUL", "subject");
    if (CONTROL_OR_BREAK.test(subject.replace(/\t/g, " "))) refuse("invalid_field", "subject contains a control character", "subject");
    if (utf8Length(subject) > limits.maxSubjectBytes) refuse("too_large", `subject is longer than ${limits.maxSubjectBytes} bytes`, "subject");
  }
  const text = readBody(body, "text", limits.maxBodyBytes);
  const html = readBody(body, "html", limits.maxBodyBytes);
  if (text === undefined && html === undefined) refuse("missing_field", "text or html is required", "text");
  const attachments = readAttachments(body, limits);
  const headers = readHeaders(body, limits.maxHeaders);
  const tags = readTags(body, limits);
  const metadata = readMetadata(body, limits);
  const sendAt = readSendAt(body, limits, now);
  const streamValue = body.stream ?? "transactional";
  if (streamValue !== "transactional" && streamValue !== "broadcast") refuse("invalid_field", 'stream must be "transactional" or "broadcast"', "stream");
  const trackOpens = optionalBoolean(body, "track_opens");
  const trackClicks = optionalBoolean(body, "track_clicks");
  const requireTls = optionalBoolean(body, "require_tls");

  const recipients: Mailbox[] = [];
  const seen = new Set<string>();
  for (const m of [...to, ...cc, ...bcc]) {
    const key = m.address.toLowerCase();
    if (!seen.has(key)) {
      seen.add(key);
      recipients.push(m);
    }
  }
  const result: SendRequest = {
    from: plainMailbox(sender),
    to: to.map(plainMailbox),
    cc: cc.map(plainMailbox),
    bcc: bcc.map(plainMailbox),
    reply_to: replyTo.map(plainMailbox),
    attachments,
    headers,
    tags,
    metadata,
    stream: streamValue,
    sender,
    recipients,
    smtputf8: [sender, ...to, ...cc, ...bcc, ...replyTo].some((m) => m.utf8),
  };
  if (subject !== undefined) result.subject = subject;
  if (text !== undefined) result.text = text;
  if (html !== undefined) result.html = html;
  if (sendAt !== undefined) result.send_at = sendAt;
  if (trackOpens !== undefined) result.track_opens = trackOpens;
  if (trackClicks !== undefined) result.track_clicks = trackClicks;
  if (requireTls !== undefined) result.require_tls = requireTls;
  return result;
}

