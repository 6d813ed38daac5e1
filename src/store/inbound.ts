/**
 * D1 side of the email() handler: finding the message and recipient a bounce, complaint or auto-reply belongs
 * to, recording it, and the inbound log.
 *
 * Asynchronous bounces: a recipient the relay already recorded `delivered` (the next hop said 250) can later
 * be returned by a mailbox further down the line. `recordOutcome` never moves a recipient out of a final state
 * (that protects against late duplicate queue outcomes), so this module has its own transition: `delivered`
 * (handed to the next hop; never a queued, deferred or scheduled one) → `bounced`, with the reported status, and an event of type
 * `bounced` whose data says `async: true`. A recipient already `bounced` is left alone and no second event is
 * written, which makes a repeated report (Email Routing retries, our own DSN coming back) a no-op. Complaints
 * and auto-replies are events only: they do not change where a recipient stands.
 */
import { idFloor } from "./ids";
import { MESSAGE_BY_ID, parseRecipients } from "./messages";
import { isRedactedValue, redactAddress, redactText, type Redactor } from "./redaction";
import { addSuppressionStatement, type SuppressionReason } from "./suppressions";

/** One recipient of one of our messages, as attribution finds it. */
export interface RecipientRef {
  messageId: string;
  tenantId: string;
  idx: number;
  address: string;
  status: string;
  stream: string;
}

interface RefRow {
  id: string;
  tenant_id: string;
  stream: string;
  rcpts: string;
}

function refsOf(r: RefRow): RecipientRef[] {
  return parseRecipients(r.rcpts).map((x, idx) => ({ messageId: r.id, tenantId: r.tenant_id, idx, address: x.a, status: x.s, stream: r.stream }));
}

/** Messages are looked up in a time window by primary key (no index on the header or the addresses). */
const REF_SELECT = "SELECT id, tenant_id, stream, rcpts FROM messages";

/** The recipient a (verified) return path names. */
export async function findRecipient(db: D1Database, messageId: string, idx: number): Promise<RecipientRef | null> {
  return (await findRecipientsOfMessage(db, messageId))[idx] ?? null;
}

/** Every recipient of one message. */
export async function findRecipientsOfMessage(db: D1Database, messageId: string): Promise<RecipientRef[]> {
  const row = await db.prepare(`${REF_SELECT} WHERE ${MESSAGE_BY_ID}`).bind(messageId).first<RefRow>();
  return row ? refsOf(row) : [];
}

/** Bounces and reports are looked for among messages accepted this long ago at most. */
export const ATTRIBUTION_SCAN_DAYS = 30;

/**
 * Every recipient of the message(s) with this Message-ID header (without angle brackets), optionally of one
 * tenant: the newest 200 among the messages of the last ATTRIBUTION_SCAN_DAYS (a primary-key range per tenant).
 */
export async function findRecipientsByMessageIdHeader(db: D1Database, messageIdHeader: string, tenantId: string | null, now = Date.now()): Promise<RecipientRef[]> {
  const { results } = await db
    .prepare(
      `${REF_SELECT} WHERE ${tenantId === null ? "tenant_id IN (SELECT id FROM tenants)" : "tenant_id = ?3"} AND id >= ?2 AND message_id_header = ?1
        ORDER BY id DESC LIMIT 200`,
    )
    .bind(messageIdHeader, idFloor(now - ATTRIBUTION_SCAN_DAYS * 86_400_000), ...(tenantId === null ? [] : [tenantId]))
    .all<RefRow>();
  return results.flatMap(refsOf).slice(0, 200);
}

/**
 * Every recipient of the tenant's message(s) with this Message-ID whose From is at `fromDomain`: what a returned
 * original signed by this relay speaks for (its signed From and Message-ID).
 */
export async function findRecipientsBySignedOriginal(db: D1Database, messageIdHeader: string, fromDomain: string, tenantId: string, now = Date.now()): Promise<RecipientRef[]> {
  const { results } = await db
    .prepare(`SELECT id, tenant_id, stream, rcpts, header_from FROM messages WHERE tenant_id = ? AND id >= ? AND message_id_header = ? ORDER BY id DESC LIMIT 200`)
    .bind(tenantId, idFloor(now - ATTRIBUTION_SCAN_DAYS * 86_400_000), messageIdHeader)
    .all<RefRow & { header_from: string | null }>();
  const domain = fromDomain.toLowerCase();
  return results.filter((r) => (r.header_from ?? "").toLowerCase().endsWith(`@${domain}`)).flatMap(refsOf).slice(0, 200);
}

/** The tenant's most recent message to `address` (any letter case) accepted after `since` (epoch ms). */
export async function findLatestRecipientByAddress(db: D1Database, tenantId: string, address: string, since: number): Promise<RecipientRef | null> {
  const { results } = await db
    .prepare(
      `${REF_SELECT} WHERE tenant_id = ? AND id >= ? AND created_at > ?
          AND EXISTS (SELECT 1 FROM json_each(rcpts) j WHERE json_extract(j.value, '$.a') = ? COLLATE NOCASE)
        ORDER BY id DESC LIMIT 1`,
    )
    .bind(tenantId, idFloor(since), since, address)
    .all<RefRow>();
  const row = results[0];
  return row ? (refsOf(row).find((r) => r.address.toLowerCase() === address.toLowerCase()) ?? null) : null;
}

/**
 * The tenant owning a sender domain, or the closest parent domain that is one (so `bounces.acme.example` finds
 * the owner of `acme.example`).
 */
export async function tenantOfDomain(db: D1Database, domain: string): Promise<{ tenantId: string; domain: string } | null> {
  const labels = domain.toLowerCase().replace(/\.$/, "").split(".");
  const candidates: string[] = [];
  for (let i = 0; i < labels.length - 1; i++) candidates.push(labels.slice(i).join("."));
  if (!candidates.length) return null;
  const { results } = await db
    .prepare(`SELECT domain, tenant_id FROM sender_domains WHERE domain IN (${candidates.map(() => "?").join(", ")})`)
    .bind(...candidates)
    .all<{ domain: string; tenant_id: string }>();
  for (const c of candidates) {
    const hit = results.find((r) => r.domain === c);
    if (hit) return { tenantId: hit.tenant_id, domain: hit.domain };
  }
  return null;
}

/** What a returned report says about one recipient. */
export interface ReportedFailure {
  /** Enhanced status code, e.g. "5.1.1". */
  status: string;
  replyCode: number | null;
  /** The remote server's reply, or the report's diagnostic text. */
  text: string | null;
  reason: string;
  hard: boolean;
  /** The address the report named (may differ from ours after forwarding). */
  reportedAddress: string;
  remoteMta: string | null;
  /** How the report was matched to the recipient: verp, original-verp, message-id, address. */
  attribution: string;
}

/**
 * Recipients a report may concern: those already handed to a next hop. A queued, deferred or scheduled recipient
 * has not left the relay, so a report naming it is forged or mistaken, and must not cancel it (issue 15).
 * (`sending` is the in-flight state where the ledger records one.)
 */
const HANDED_OFF = "('delivered', 'sending')";

/**
 * The condition for a complaint or auto-reply: the recipient was handed to a next hop (it may since have bounced
 * asynchronously) and its message's log has no entry of this type for it yet (SQL over the message row).
 */
function handedOffOnce(type: "complained" | "auto_replied", idx: number): string {
  const i = Math.trunc(idx);
  return `json_extract(rcpts, '$[${i}].s') IN ('delivered', 'sending', 'bounced') AND ${notLogged(type, i)}`;
}

/**
 * A report about one recipient, recorded only when `condition` (SQL over the message row's `rcpts` and `log`)
 * holds: an event row and the entry in the message's log. The first statement's `changes` says whether it was
 * recorded.
 */
function conditionalReport(
  db: D1Database,
  ref: RecipientRef,
  type: string,
  at: number,
  fields: { code?: number | null; enhanced?: string | null; text?: string | null; host?: string | null; data: unknown },
  condition: string,
): D1PreparedStatement[] {
  const entry = Object.fromEntries(
    Object.entries({ y: type, i: ref.idx, at, c: fields.code, e: fields.enhanced, t: fields.text, h: fields.host, d: fields.data }).filter(([, v]) => v !== null && v !== undefined),
  );
  return [
    db
      .prepare(
        `INSERT INTO events (message_id, tenant_id, recipient_idx, recipient, type, at, code, enhanced, text, host, data)
         SELECT id, tenant_id, ?, ?, ?, ?, ?, ?, ?, ?, ? FROM messages WHERE tenant_id = ? AND id = ? AND ${condition}`,
      )
      .bind(ref.idx, ref.address, type, at, fields.code ?? null, fields.enhanced ?? null, fields.text ?? null, fields.host ?? null, JSON.stringify(fields.data), ref.tenantId, ref.messageId),
    db
      .prepare(`UPDATE messages SET log = json_insert(COALESCE(log, '[]'), '$[#]', json(?)) WHERE tenant_id = ? AND id = ? AND ${condition}`)
      .bind(JSON.stringify(entry), ref.tenantId, ref.messageId),
  ];
}

/** SQL: the recipient `idx` of the message row has no log entry of `type` yet. */
function notLogged(type: string, idx: number): string {
  return `NOT EXISTS (SELECT 1 FROM json_each(COALESCE(log, '[]')) j WHERE json_extract(j.value, '$.y') = '${type}' AND json_extract(j.value, '$.i') = ${Math.trunc(idx)})`;
}

/**
 * A report about a recipient whose row was already redacted (issue 21) records no address in the clear: its text
 * and reported address are redacted as the row was (mode `redact`: a report has no hash key at hand). The
 * suppression it calls for uses the address the report itself named, when it names one.
 */
async function reportOnRedactedRow(ref: RecipientRef, text: string | null, reported: string): Promise<{ text: string | null; reported: string; suppress: string | null }> {
  if (!isRedactedValue(ref.address)) return { text, reported, suppress: ref.address };
  const r: Redactor = { mode: "redact", tenantId: ref.tenantId, hashKey: null };
  const named = reported.includes("@") && !isRedactedValue(reported) ? reported.toLowerCase() : null;
  return { text: await redactText(r, text), reported: await redactAddress(r, reported), suppress: named };
}

/**
 * Records an asynchronous bounce: the `bounced` event, the recipient moved to `bounced`, and for a hard bounce a
 * suppression of the address (all streams). Returns false when the recipient was already bounced (or never
 * sent), in which case nothing was written.
 */
export async function recordAsyncBounce(db: D1Database, ref: RecipientRef, f: ReportedFailure, at = Date.now()): Promise<boolean> {
  const seen = await reportOnRedactedRow(ref, f.text ? f.text.slice(0, 1000) : null, f.reportedAddress);
  const text = seen.text;
  const r = `'$[${Math.trunc(ref.idx)}]`;
  const condition = `json_extract(rcpts, ${r}.s') IN ${HANDED_OFF}`;
  const data = { async: true, reason: f.reason, hard: f.hard, reported_recipient: seen.reported, attribution: f.attribution };
  const [event] = conditionalReport(db, ref, "bounced", at, { code: f.replyCode, enhanced: f.status || null, text, host: f.remoteMta, data }, condition);
  const entry = Object.fromEntries(
    Object.entries({ y: "bounced", i: ref.idx, at, c: f.replyCode, e: f.status || null, t: text, h: f.remoteMta, d: data }).filter(([, v]) => v !== null && v !== undefined),
  );
  const stillOpen = `(json_extract(rcpts, ${r}.f') IS NULL)`;
  const stmts: D1PreparedStatement[] = [
    event!,
    db
      .prepare(
        `UPDATE messages SET rcpts = json_remove(json_set(rcpts, ${r}.s', 'bounced', ${r}.c', ?4, ${r}.e', ?5, ${r}.t', ?6, ${r}.u', ?7,
                ${r}.f', COALESCE(json_extract(rcpts, ${r}.f'), ?7)), ${r}.x'),
                open = MAX(0, open - ${stillOpen}), due_at = CASE WHEN open - ${stillOpen} <= 0 THEN NULL ELSE due_at END,
                pending = CASE WHEN open - ${stillOpen} <= 0 THEN NULL ELSE pending END,
                log = json_insert(COALESCE(log, '[]'), '$[#]', json(?1))
          WHERE tenant_id = ?2 AND id = ?3 AND ${condition}`,
      )
      .bind(JSON.stringify(entry), ref.tenantId, ref.messageId, f.replyCode, f.status || null, text, at),
  ];
  const [res] = await db.batch(stmts);
  const recorded = (res?.meta.changes ?? 0) > 0;
  if (recorded && f.hard && seen.suppress) {
    await addSuppressionStatement(db, {
      tenantId: ref.tenantId,
      address: seen.suppress,
      scope: "all",
      reason: "hard_bounce",
      detail: [f.replyCode, f.status, seen.text].filter((x) => x !== null && x !== "").join(" ").slice(0, 500) || f.reason,
      messageId: ref.messageId,
      createdAt: at,
    }).run();
  }
  return recorded;
}

/** What a complaint report says. */
export interface ReportedComplaint {
  feedbackType: string;
  reportedAddress: string;
  attribution: string;
  /** The suppression to add, if the feedback type calls for one. */
  suppress: { reason: SuppressionReason; scope: "all" | "broadcast" } | null;
}

/**
 * Records a complaint: a `complained` event (once per recipient) and, when asked, a suppression. The recipient's
 * status does not change. Returns false for a repeated complaint.
 */
export async function recordComplaint(db: D1Database, ref: RecipientRef, c: ReportedComplaint, at = Date.now()): Promise<boolean> {
  const seen = await reportOnRedactedRow(ref, null, c.reportedAddress);
  const [event] = await db.batch(
    conditionalReport(
      db,
      ref,
      "complained",
      at,
      { text: `feedback-type: ${c.feedbackType}`, data: { feedback_type: c.feedbackType, reported_recipient: seen.reported, attribution: c.attribution } },
      handedOffOnce("complained", ref.idx),
    ),
  );
  const recorded = (event?.meta.changes ?? 0) > 0;
  if (recorded && c.suppress && seen.suppress) {
    await addSuppressionStatement(db, {
      tenantId: ref.tenantId,
      address: seen.suppress,
      scope: c.suppress.scope,
      reason: c.suppress.reason,
      detail: `feedback report (${c.feedbackType})`,
      messageId: ref.messageId,
      createdAt: at,
    }).run();
  }
  return recorded;
}

/** What a delay warning says about one recipient. */
/** What a delay warning says of one recipient: a reported failure that is not final, so neither hard nor soft. */
export type ReportedDelay = Omit<ReportedFailure, "hard">;

/** A repeated warning (Email Routing retry, the same notice twice) within this window writes no second event. */
export const DELAY_EVENT_DEDUP_MS = 60 * 60 * 1000;

/**
 * Records a delay warning (a remote MTA still holds the message and keeps trying) as a `delayed` event. It never
 * changes the recipient's status or adds a suppression. One event per recipient per DELAY_EVENT_DEDUP_MS, and only
 * while the recipient is handed off (`HANDED_OFF`: a warning about mail that never left is forged or mistaken; one
 * after a bounce says nothing new). Returns whether it was written.
 */
export async function recordDelayWarning(db: D1Database, ref: RecipientRef, d: ReportedDelay, at = Date.now()): Promise<boolean> {
  const since = Math.floor(at - DELAY_EVENT_DEDUP_MS);
  const seen = await reportOnRedactedRow(ref, d.text ? d.text.slice(0, 1000) : null, d.reportedAddress);
  const i = Math.trunc(ref.idx);
  const condition = `json_extract(rcpts, '$[${i}].s') IN ${HANDED_OFF}
    AND NOT EXISTS (SELECT 1 FROM json_each(COALESCE(log, '[]')) j WHERE json_extract(j.value, '$.y') = 'delayed'
      AND json_extract(j.value, '$.i') = ${i} AND json_extract(j.value, '$.at') > ${since})`;
  const [event] = await db.batch(
    conditionalReport(
      db,
      ref,
      "delayed",
      at,
      {
        code: d.replyCode,
        enhanced: d.status || null,
        text: seen.text,
        host: d.remoteMta,
        data: { reason: d.reason, reported_recipient: seen.reported, attribution: d.attribution },
      },
      condition,
    ),
  );
  return (event?.meta.changes ?? 0) > 0;
}

/** Records an automatic reply (vacation, out of office ...) as an `auto_replied` event, once per recipient. */
export async function recordAutoReply(db: D1Database, ref: RecipientRef, a: { reason: string; from: string; subject: string | null; attribution: string }, at = Date.now()): Promise<boolean> {
  const [event] = await db.batch(
    conditionalReport(
      db,
      ref,
      "auto_replied",
      at,
      { text: a.subject ? a.subject.slice(0, 300) : null, data: { reason: a.reason, from: a.from, attribution: a.attribution } },
      handedOffOnce("auto_replied", ref.idx),
    ),
  );
  return (event?.meta.changes ?? 0) > 0;
}

export type InboundKind = "bounce" | "delay_notice" | "complaint" | "auto_reply" | "delivery_report" | "unknown" | "unsubscribe" | "forward" | "srs_bounce" | "rejected" | "dmarc_report" | "tls_report";
export type InboundOutcome = "recorded" | "duplicate" | "unattributed" | "unverified" | "forwarded" | "rejected" | "ignored";

export interface InboundLogEntry {
  at?: number;
  envelopeFrom: string | null;
  envelopeTo: string;
  sizeBytes: number | null;
  kind: InboundKind;
  outcome: InboundOutcome;
  tenantId?: string | null;
  messageId?: string | null;
  detail?: string | null;
}

/** Appends one row to the inbound log. */
export async function logInbound(db: D1Database, e: InboundLogEntry): Promise<void> {
  await db
    .prepare(
      `INSERT INTO inbound_messages (at, envelope_from, envelope_to, size_bytes, kind, outcome, tenant_id, message_id, detail)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(e.at ?? Date.now(), e.envelopeFrom, e.envelopeTo, e.sizeBytes, e.kind, e.outcome, e.tenantId ?? null, e.messageId ?? null, e.detail ? e.detail.slice(0, 1000) : null)
    .run();
}

/** Deletes up to `limit` inbound log rows older than `before` (epoch ms); returns how many went. */
export async function pruneInboundLog(db: D1Database, before: number, limit = 5000): Promise<number> {
  const r = await db.prepare("DELETE FROM inbound_messages WHERE id IN (SELECT id FROM inbound_messages WHERE at < ? ORDER BY id LIMIT ?)").bind(before, limit).run();
  return r.meta.changes ?? 0;
}

export interface InboundLogRow {
  id: number;
  at: number;
  envelope_from: string | null;
  envelope_to: string;
  size_bytes: number | null;
  kind: string;
  outcome: string;
  tenant_id: string | null;
  message_id: string | null;
  detail: string | null;
}

/** A page of the inbound log, newest first; `before` is the last id of the previous page. */
export async function listInboundLog(
  db: D1Database,
  opts: { tenantId: string | null; kind: string | null; outcome: string | null; before: number | null; limit: number },
): Promise<InboundLogRow[]> {
  const { results } = await db
    .prepare(
      `SELECT * FROM inbound_messages WHERE (? IS NULL OR tenant_id = ?) AND (? IS NULL OR kind = ?) AND (? IS NULL OR outcome = ?)
         AND (? IS NULL OR id < ?) ORDER BY id DESC LIMIT ?`,
    )
    .bind(opts.tenantId, opts.tenantId, opts.kind, opts.kind, opts.outcome, opts.outcome, opts.before, opts.before, opts.limit)
    .all<InboundLogRow>();
  return results;
}
