/**
 * Validation of the JSON body of `POST /v1/messages` into a `ComposeInput` plus the relay's
 * own fields (tags, metadata, send_at, stream). The request is described once, by
 * `sendRequestSchema` (valibot, see body-schema.ts): it validates, and the OpenAPI document's
 * SendRequest is generated from it.
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
import * as v from "valibot";
import { HERE, Refusal, bounded, byKind, fieldPath, isRecord, issueToRefusal, objectMessage, objectOf, refine, says, strictJson } from "./body-schema.js";

export { Refusal, isRecord };

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

export function refuse(code: SendErrorCode, message: string, field: string): never {
  throw new Refusal<SendErrorCode>({ code, message, field });
}

/** A valibot issue of the send schema as the refusal the API documents. */
function issueToError(issue: v.BaseIssue<unknown>): SendError {
  return issueToRefusal(issue, SEND_ERROR_CODES, "invalid_field");
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

// ---------------------------------------------------------------------------------------------------------
// The schema: the one description of the send request. It validates (with the domain checks below as
// refinements), types the result, and is converted into the OpenAPI document (src/http/openapi.ts).
// To add a field: add it to `sendRequestSchema` (in the order it should be checked) and, if it needs a
// domain check, a refinement; the JSON Schema follows.

type AddressCode = "invalid_sender" | "invalid_recipient" | "invalid_field";
type AddressValue = string | { name?: string | null; address: string };

/** A single address as the schema sees it: a string, or `{ name?, address }`. */
function addressSchema(code: AddressCode, isFrom = false) {
  const union = v.union(
    [
      v.pipe(v.string(), v.description("addr@example.com or Name <addr@example.com>")),
      strictJson(
        v.strictObject(
          { address: v.string(says(code, "address must be a string")), name: v.nullish(v.string(says("invalid_field", "name must be a string"))) },
          objectMessage("address must be a string or an object { name, address }", code, { address: "address must be a string" }),
        ),
      ),
    ],
    (issue) =>
      isFrom && (issue.input === undefined || issue.input === null)
        ? says("missing_field", "from is required")
        : isFrom && Array.isArray(issue.input)
          ? says(code, "from must be a single address")
          : says(code, "address must be a string or an object { name, address }"),
  );
  return v.pipe(
    byKind(union, (value) => (typeof value === "string" ? 0 : isRecord(value) ? 1 : -1)),
    refine((value: AddressValue) => parseMailbox(value, HERE, code)),
  );
}

function parseMailbox(value: AddressValue, path: string, code: AddressCode): Mailbox {
  const input: AddressInput = typeof value === "string" ? value : { address: value.address, name: value.name ?? undefined };
  if (typeof input === "string" && input.length > 1024) refuse("too_large", "address is too long", path);
  const result = parseAddress(input);
  if (!result.ok) {
    const injection = result.error.reason === "control_character" && /[\r\n\0]/.test(typeof input === "string" ? input : `${input.name ?? ""}${input.address}`);
    refuse(injection ? "header_injection" : code, result.error.message, path);
  }
  return result.value;
}

/** to, cc, bcc and reply_to: one address or a list of them; a list longer than `max` is refused before its items are read. */
function addressListSchema(key: "to" | "cc" | "bcc" | "reply_to", max: number, description?: string) {
  const code = key === "reply_to" ? "invalid_field" : "invalid_recipient";
  const tooMany = says(key === "reply_to" ? "invalid_field" : "too_many_recipients", `${key} has more than ${max} addresses`);
  const union = byKind(v.union([bounded(v.array(addressSchema(code)), max, tooMany), addressSchema(code)]), (value) => (Array.isArray(value) ? 0 : 1));
  const normalised = v.pipe(union, v.transform((value): Mailbox[] => (Array.isArray(value) ? value : [value])));
  return v.nullish(description === undefined ? normalised : v.pipe(normalised, v.description(description)), () => []);
}

// eslint-disable-next-line no-control-regex
const CONTROL_OR_BREAK = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;

function checkSubject(subject: string, maxBytes: number): string {
  if (/[\r\n\0\u2028\u2029]/.test(subject)) refuse("header_injection", "subject contains CR, LF or NUL", "subject");
  if (CONTROL_OR_BREAK.test(subject.replace(/\t/g, " "))) refuse("invalid_field", "subject contains a control character", "subject");
  if (utf8Length(subject) > maxBytes) refuse("too_large", `subject is longer than ${maxBytes} bytes`, "subject");
  return subject;
}

function bodySchema(key: "text" | "html", maxBytes: number) {
  return v.nullish(
    v.pipe(
      v.string(says("invalid_field", `${key} must be a string`)),
      refine((value: string) => {
        if (value.includes("\0")) refuse("invalid_field", `${key} contains a NUL character`, key);
        if (value.length > maxBytes || utf8Length(value) > maxBytes) refuse("too_large", `${key} is larger than ${maxBytes} bytes`, key);
        return value;
      }),
    ),
  );
}

/** A string field of an object that may be given as null (absent) but not as another type. */
function nullableString(key: string) {
  return v.nullish(v.string(says("invalid_field", `${key} must be a string`)));
}

function requiredString(key: string, what: string) {
  return v.string((issue) => (issue.input === null ? says("missing_field", `attachment ${key} is required`) : says("invalid_field", `${what} must be a string`)));
}

const attachmentSchema = strictJson(
  v.strictObject(
    {
      filename: requiredString("filename", "filename"),
      content: v.pipe(requiredString("content", "content"), v.metadata({ contentEncoding: "base64" })),
      content_type: nullableString("content_type"),
      content_id: nullableString("content_id"),
      disposition: v.nullish(v.picklist(["attachment", "inline"], says("invalid_attachment", 'disposition must be "attachment" or "inline"'))),
    },
    objectMessage("attachment must be an object", "invalid_attachment", { filename: "attachment filename is required", content: "attachment content is required" }),
  ),
);
type AttachmentValue = v.InferOutput<typeof attachmentSchema>;

function checkAttachments(items: AttachmentValue[], limits: Required<Omit<SendLimits, "now">>): AttachmentInput[] {
  let total = 0;
  const contentIds = new Set<string>();
  return items.map((item, i): AttachmentInput => {
    const path = `attachments[${i}]`;
    const { filename, content } = item;
    if (filename.trim() === "" || CONTROL_OR_BREAK.test(filename) || /[/\\]/.test(filename)) {
      refuse(/[\r\n\0]/.test(filename) ? "header_injection" : "invalid_attachment", "filename is empty or contains a control character or path separator", `${path}.filename`);
    }
    if (utf8Length(filename) > 255) refuse("invalid_attachment", "filename is longer than 255 bytes", `${path}.filename`);
    // Cheap bound before decoding: base64 is 4/3 of the bytes.
    if (content.length > (limits.maxAttachmentBytes / 3) * 4 + 4 * 1024) refuse("too_large", "attachment is too large", `${path}.content`);
    const bytes = decodeBase64(content);
    if (!bytes) refuse("invalid_attachment", "content is not valid base64", `${path}.content`);
    total += bytes.length;
    if (total > limits.maxAttachmentBytes) refuse("too_large", `attachments are larger than ${limits.maxAttachmentBytes} bytes in total`, `${path}.content`);
    const contentType = item.content_type ?? undefined;
    if (contentType !== undefined) {
      if (!/^[A-Za-z0-9!#$&^_.+-]{1,64}\/[A-Za-z0-9!#$&^_.+-]{1,64}$/.test(contentType)) {
        refuse(/[\r\n\0]/.test(contentType) ? "header_injection" : "invalid_attachment", "content_type must be type/subtype", `${path}.content_type`);
      }
      if (contentType.toLowerCase().startsWith("multipart/")) refuse("invalid_attachment", "content_type may not be multipart", `${path}.content_type`);
    }
    const contentId = item.content_id ?? undefined;
    if (contentId !== undefined) {
      if (!CONTENT_ID_PATTERN.test(contentId)) {
        refuse(/[\r\n\0]/.test(contentId) ? "header_injection" : "invalid_attachment", "content_id must be 1-250 ASCII characters without angle brackets or spaces", `${path}.content_id`);
      }
      if (contentIds.has(contentId)) refuse("invalid_attachment", "content_id is used twice", `${path}.content_id`);
      contentIds.add(contentId);
    }
    const att: AttachmentInput = { filename, content, content_type: attachmentContentType(filename, contentType) };
    if (contentId !== undefined) att.content_id = contentId;
    if (item.disposition !== undefined && item.disposition !== null) att.disposition = item.disposition;
    return att;
  });
}

function checkHeaders(value: Record<string, unknown>, max: number): Record<string, string> {
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

function checkTags(value: string[], limits: Required<Omit<SendLimits, "now">>): string[] {
  const tags: string[] = [];
  value.forEach((tag, i) => {
    const path = `tags[${i}]`;
    if (tag.length === 0 || [...tag].length > limits.maxTagChars) refuse("invalid_field", `tag must be 1-${limits.maxTagChars} characters`, path);
    if (CONTROL_OR_BREAK.test(tag)) refuse("invalid_field", "tag contains a control character", path);
    if (!tags.includes(tag)) tags.push(tag);
  });
  return tags;
}

function checkMetadata(value: Record<string, unknown>, limits: Required<Omit<SendLimits, "now">>): Record<string, string> {
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

function checkSendAt(value: string, limits: Required<Omit<SendLimits, "now">>, now: Date): Date {
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

function optionalBoolean(key: string, description: string) {
  return v.nullish(v.pipe(v.boolean(says("invalid_field", `${key} must be true or false`)), v.description(description)));
}

/**
 * The send request (`POST /v1/messages`, each message of a batch, and what `/tx/v1/send` is translated into),
 * with the limits in force. Fields are checked in the order they appear here; the first problem is reported.
 */
export function sendRequestSchema(limits: Required<Omit<SendLimits, "now">> = DEFAULT_SEND_LIMITS, clock: () => Date = () => new Date()) {
  return v.strictObject(
    {
      from: addressSchema("invalid_sender", true),
      to: addressListSchema("to", limits.maxRecipients),
      cc: addressListSchema("cc", limits.maxRecipients),
      bcc: addressListSchema("bcc", limits.maxRecipients, "Envelope only: never written into the headers."),
      reply_to: addressListSchema("reply_to", limits.maxReplyTo),
      subject: v.nullish(v.pipe(v.string(says("invalid_field", "subject must be a string")), refine((s: string) => checkSubject(s, limits.maxSubjectBytes)))),
      text: bodySchema("text", limits.maxBodyBytes),
      html: bodySchema("html", limits.maxBodyBytes),
      attachments: v.nullish(
        v.pipe(
          bounded(v.array(attachmentSchema, says("invalid_field", "attachments must be an array")), limits.maxAttachments, says("too_large", `more than ${limits.maxAttachments} attachments`)),
          refine((items: AttachmentValue[]) => checkAttachments(items, limits)),
        ),
        () => [],
      ),
      headers: v.nullish(
        v.pipe(
          objectOf(v.record(v.string(), v.string(), says("invalid_field", "headers must be an object of strings"))),
          v.description("Custom headers; addressing, trace, MIME and authentication headers are reserved."),
          refine((value: Record<string, string>) => checkHeaders(value, limits.maxHeaders)),
        ),
        () => ({}),
      ),
      tags: v.nullish(
        v.pipe(
          bounded(v.array(v.string(says("invalid_field", "tag must be a string")), says("invalid_field", "tags must be an array of strings")), limits.maxTags, says("too_large", `more than ${limits.maxTags} tags`)),
          refine((value: string[]) => checkTags(value, limits)),
        ),
        () => [],
      ),
      metadata: v.nullish(
        v.pipe(
          objectOf(v.record(v.string(), v.string(), says("invalid_field", "metadata must be an object of strings"))),
          refine((value: Record<string, string>) => checkMetadata(value, limits)),
        ),
        () => ({}),
      ),
      send_at: v.nullish(
        v.pipe(
          v.string(says("invalid_send_at", "send_at must be an RFC 3339 date-time string with an offset")),
          v.metadata({ format: "date-time", description: `Scheduled send, up to ${limits.maxScheduleDays} days ahead.` }),
          refine((value: string) => checkSendAt(value, limits, clock())),
        ),
      ),
      stream: v.nullish(
        v.pipe(
          v.picklist(["transactional", "broadcast"], says("invalid_field", 'stream must be "transactional" or "broadcast"')),
          v.description("broadcast adds List-Unsubscribe (one-click) and needs exactly one recipient."),
        ),
        "transactional",
      ),
      track_opens: optionalBoolean("track_opens", "Open tracking pixel in the HTML part; absent or null: the tenant's stream or tenant-wide setting (default off)."),
      track_clicks: optionalBoolean("track_clicks", "Rewrite HTML links to signed tracking redirects; absent or null: the tenant's stream or tenant-wide setting (default off)."),
      require_tls: optionalBoolean(
        "require_tls",
        "RFC 8689 REQUIRETLS semantics: deliver only over TLS with a verified certificate, else bounce (5.7.10). The tenant's require_tls policy applies to all its mail.",
      ),
    },
    objectMessage("body must be a JSON object", "invalid_json", { from: "from is required" }),
  );
}

/**
 * Validate a decoded JSON body (or a JSON string) as a send request. Returns the normalised
 * request or the first problem found. Never throws.
 */
export function validateSendRequest(body: unknown, limits: Partial<SendLimits> = {}): ValidationResult<SendRequest> {
  try {
    return { ok: true, value: validateOrThrow(body, limits) };
  } catch (e) {
    if (e instanceof Refusal) return { ok: false, error: e.error as SendError };
    // Anything else is a bug here, but bad input must still never become a 500.
    return { ok: false, error: { code: "invalid_field", message: "request could not be validated", field: "" } };
  }
}

type SendSchema = ReturnType<typeof sendRequestSchema>;
type SendEntries = SendSchema["entries"];
const ADDRESS_FIELDS = ["from", "to", "cc", "bcc", "reply_to"] as const satisfies readonly (keyof SendEntries)[];
const CONTENT_FIELDS = ["subject", "text", "html"] as const satisfies readonly (keyof SendEntries)[];
type LaterField = Exclude<keyof SendEntries, (typeof ADDRESS_FIELDS)[number] | (typeof CONTENT_FIELDS)[number]>;

/** The schema split into its three stages, built once per set of limits; `now` is the clock of the current parse. */
function compileSchema(limits: Required<Omit<SendLimits, "now">>) {
  const compiled = {
    now: new Date(),
    schema: undefined as unknown as SendSchema,
    addresses: undefined as unknown as v.ObjectSchema<Pick<SendEntries, (typeof ADDRESS_FIELDS)[number]>, SendSchema["message"]>,
    content: undefined as unknown as v.ObjectSchema<Pick<SendEntries, (typeof CONTENT_FIELDS)[number]>, SendSchema["message"]>,
    later: undefined as unknown as v.ObjectSchema<Pick<SendEntries, LaterField>, SendSchema["message"]>,
  };
  const schema = sendRequestSchema(limits, () => compiled.now);
  const part = <K extends keyof SendEntries>(keys: readonly K[]) => v.object(Object.fromEntries(keys.map((k) => [k, schema.entries[k]])) as Pick<SendEntries, K>, schema.message);
  const later = (Object.keys(schema.entries) as (keyof SendEntries)[]).filter((k): k is LaterField => !(ADDRESS_FIELDS as readonly string[]).includes(k) && !(CONTENT_FIELDS as readonly string[]).includes(k));
  compiled.schema = schema;
  compiled.addresses = part(ADDRESS_FIELDS);
  compiled.content = part(CONTENT_FIELDS);
  compiled.later = part(later);
  return compiled;
}

/** Compiled schemas by limits: the limits come from configuration, so there are only ever a few. */
const compiledSchemas = new Map<string, ReturnType<typeof compileSchema>>();

function compiledSchema(limits: Required<Omit<SendLimits, "now">>): ReturnType<typeof compileSchema> {
  const key = JSON.stringify(limits);
  let compiled = compiledSchemas.get(key);
  if (!compiled) {
    if (compiledSchemas.size >= 16) compiledSchemas.clear();
    compiled = compileSchema(limits);
    compiledSchemas.set(key, compiled);
  }
  return compiled;
}

function validateOrThrow(input: unknown, given: Partial<SendLimits>): SendRequest {
  const limits: Required<Omit<SendLimits, "now">> = { ...DEFAULT_SEND_LIMITS };
  for (const [k, v] of Object.entries(given)) {
    if (v !== undefined && k !== "now") (limits as Record<string, unknown>)[k] = v;
  }
  const now = given.now ?? new Date();
  const body = jsonObject(input);
  checkUtf8Deep(body, "", 0);
  const compiled = compiledSchema(limits);
  const schema = compiled.schema;
  // Unknown top-level fields are reported before anything else, as in every object of the request.
  for (const key of Object.keys(body)) {
    if (!Object.hasOwn(schema.entries, key)) refuse("unknown_field", `unknown field ${JSON.stringify(key)}`, fieldPath("", key));
  }
  // The fields are read in three stages so that the checks across fields come where the documented order
  // puts them: the addresses, then "at least one recipient"; the subject and bodies, then "text or html".
  const stage = <S extends v.GenericSchema>(part: S): v.InferOutput<S> => {
    const parsed = v.safeParse(part, body, { abortEarly: true });
    if (!parsed.success) throw new Refusal(issueToError(parsed.issues[0]!));
    return parsed.output;
  };
  compiled.now = now;
  const { from: sender, to, cc, bcc, reply_to: replyTo } = stage(compiled.addresses);
  const total = to.length + cc.length + bcc.length;
  if (total === 0) refuse("missing_field", "at least one recipient (to, cc or bcc) is required", "to");
  if (total > limits.maxRecipients) refuse("too_many_recipients", `more than ${limits.maxRecipients} recipients in to, cc and bcc together`, "to");
  const { subject, text, html } = stage(compiled.content);
  if ((text ?? undefined) === undefined && (html ?? undefined) === undefined) refuse("missing_field", "text or html is required", "text");
  const rest = stage(compiled.later);
  const { attachments, headers, tags, metadata, send_at: sendAt, stream } = rest;

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
    stream,
    sender,
    recipients,
    smtputf8: [sender, ...to, ...cc, ...bcc, ...replyTo].some((m) => m.utf8),
  };
  if (subject !== undefined && subject !== null) result.subject = subject;
  if (text !== undefined && text !== null) result.text = text;
  if (html !== undefined && html !== null) result.html = html;
  if (sendAt !== undefined && sendAt !== null) result.send_at = sendAt;
  for (const key of ["track_opens", "track_clicks", "require_tls"] as const) {
    const flag = rest[key];
    if (flag !== undefined && flag !== null) result[key] = flag;
  }
  return result;
}

function plainMailbox(m: Mailbox): { name?: string; address: string } {
  return m.name !== undefined ? { name: m.name, address: m.address } : { address: m.address };
}
