/**
 * Redaction of stored mail records (issue 21, data minimisation): after a tenant's `redact_after_days`, subjects
 * and addresses in its rows are replaced, in place, by a marker. Mode `redact` writes `[redacted]`; mode `hash`
 * writes `[hmac:<22 base64url chars>]`, a keyed hash (HMAC-SHA256 under REDACTION_HASH_KEY, with the tenant id in
 * the data so two tenants' hashes of one address differ), so support can still answer "was mail sent to x@y?" by
 * hashing the question. Addresses keep their domain (`[redacted]@example.com`): per-domain statistics and
 * troubleshooting still work, and the local part is what names a person. Texts (SMTP replies, report details)
 * have every address in them replaced the same way. The functions here work on rows as they are stored, so a
 * different row layout only changes which fields they are applied to.
 */
import { encodeBase64 } from "../mime/encoding";
import { hmacSha256 } from "../mime/hmac";
import type { LogEntry, RecipientState } from "./messages";

export type RedactMode = "redact" | "hash";
export const REDACT_MODES: readonly RedactMode[] = ["redact", "hash"];

/** The marker of mode `redact`. */
export const REDACTED = "[redacted]";
/** Bytes of the HMAC kept in a `hash` marker: 128 bits, enough that two addresses never share one. */
const HASH_BYTES = 16;
/** Label prefixed to the hashed data, so these MACs never stand in for the relay's other HMAC tokens. */
const LABEL = "redact:v1\n";

/** How one tenant's rows are redacted: the mode, the tenant (part of every hash) and the key of mode `hash`. */
export interface Redactor {
  mode: RedactMode;
  tenantId: string;
  /** REDACTION_HASH_KEY; mode `hash` without a key falls back to `redact` (nothing is kept in the clear). */
  hashKey: string | null;
}

/** Addresses inside free text (SMTP replies, report details); the local part may be UTF-8 (RFC 6531). */
const ADDRESS_IN_TEXT = /[A-Za-z0-9.!#$%&'*+/=?^_`{|}~\u0080-\uffff-]+@([A-Za-z0-9\u0080-\uffff](?:[A-Za-z0-9\u0080-\uffff-]*[A-Za-z0-9\u0080-\uffff])?(?:\.[A-Za-z0-9\u0080-\uffff](?:[A-Za-z0-9\u0080-\uffff-]*[A-Za-z0-9\u0080-\uffff])?)+)/g;

/** True for a value redaction wrote (a marker, or a marked address). No address or accepted subject starts so by accident of the grammar: `[` cannot start a local part. */
export function isRedactedValue(value: string | null | undefined): boolean {
  return typeof value === "string" && (value.startsWith(REDACTED) || value.startsWith("[hmac:"));
}

async function marker(r: Redactor, value: string): Promise<string> {
  if (r.mode !== "hash" || !r.hashKey) return REDACTED;
  const mac = await hmacSha256(r.hashKey, `${LABEL}${r.tenantId}\n${value}`);
  return `[hmac:${encodeBase64(mac.subarray(0, HASH_BYTES)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "")}]`;
}

/**
 * The stored form of an address after redaction: its marker, then `@` and the domain. The hash is of the lowercased
 * address, so a search hashes its query the same way (see `addressSearchForm`).
 */
export async function redactAddress(r: Redactor, address: string): Promise<string> {
  if (isRedactedValue(address)) return address;
  const at = address.lastIndexOf("@");
  const domain = at < 0 ? "" : address.slice(at + 1).toLowerCase();
  return `${await marker(r, address.toLowerCase())}${domain ? `@${domain}` : ""}`;
}

/** What a search by address compares with in a tenant's rows redacted in mode `hash`; null without a key. */
export async function addressSearchForm(hashKey: string | null, tenantId: string, address: string): Promise<string | null> {
  if (!hashKey) return null;
  return redactAddress({ mode: "hash", tenantId, hashKey }, address);
}

/** A subject (or any whole value) after redaction. */
export async function redactValue(r: Redactor, value: string | null): Promise<string | null> {
  if (value === null || value === "" || isRedactedValue(value)) return value;
  return marker(r, value);
}

/** Free text with every address in it redacted (the rest of the text, e.g. an SMTP reply's wording, stays). */
export async function redactText(r: Redactor, text: string | null | undefined): Promise<string | null> {
  if (text === null || text === undefined) return null;
  const found = [...text.matchAll(ADDRESS_IN_TEXT)];
  if (!found.length) return text;
  let out = "";
  let last = 0;
  for (const m of found) {
    out += text.slice(last, m.index) + (await redactAddress(r, m[0]));
    last = m.index! + m[0].length;
  }
  return out + text.slice(last);
}

/** A From header value after redaction: only its address, redacted (the display name names a person too). */
async function redactHeaderFrom(r: Redactor, value: string): Promise<string> {
  if (isRedactedValue(value)) return value;
  const address = [...value.matchAll(ADDRESS_IN_TEXT)][0]?.[0];
  return address ? redactAddress(r, address) : marker(r, value);
}

/** A JSON value with every string in it passed through `redactText`. */
async function redactDeep(r: Redactor, v: unknown): Promise<unknown> {
  if (typeof v === "string") return redactText(r, v);
  if (Array.isArray(v)) return Promise.all(v.map((x) => redactDeep(r, x)));
  if (typeof v === "object" && v !== null) {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) out[k] = await redactDeep(r, x);
    return out;
  }
  return v;
}

/** The personal fields of a `messages` row. */
export interface MessagePersonalFields {
  mail_from: string;
  header_from: string | null;
  subject: string | null;
  rcpts: string;
  log: string | null;
}

/** True when the row was already redacted (its first recipient is marked; every message has one). */
export function isRedactedMessage(row: { rcpts: string | null }): boolean {
  const first = row.rcpts ? (JSON.parse(row.rcpts) as RecipientState[])[0] : undefined;
  return first !== undefined && isRedactedValue(first.a);
}

/** The row's personal fields after redaction: senders and recipients, the subject, replies and report details. */
export async function redactMessageFields(r: Redactor, m: MessagePersonalFields): Promise<MessagePersonalFields> {
  const rcpts = await Promise.all(
    (JSON.parse(m.rcpts || "[]") as RecipientState[]).map(async (x) => ({ ...x, a: await redactAddress(r, x.a), ...(x.t ? { t: (await redactText(r, x.t))! } : {}) })),
  );
  const log = m.log === null ? null : await Promise.all((JSON.parse(m.log) as LogEntry[]).map(async (e) => ({ ...e, ...(e.t ? { t: await redactText(r, e.t) } : {}), ...(e.d !== undefined ? { d: await redactDeep(r, e.d) } : {}) })));
  return {
    mail_from: m.mail_from ? await redactAddress(r, m.mail_from) : m.mail_from,
    header_from: m.header_from === null ? null : await redactHeaderFrom(r, m.header_from),
    subject: await redactValue(r, m.subject),
    rcpts: JSON.stringify(rcpts),
    log: log === null ? null : JSON.stringify(log),
  };
}

/** The personal fields of an `events` row. */
export interface EventPersonalFields {
  recipient: string | null;
  text: string | null;
  data: string | null;
}

/** An event row's personal fields after redaction. */
export async function redactEventFields(r: Redactor, e: EventPersonalFields): Promise<EventPersonalFields> {
  return {
    recipient: e.recipient === null ? null : await redactAddress(r, e.recipient),
    text: await redactText(r, e.text),
    data: await redactText(r, e.data),
  };
}
