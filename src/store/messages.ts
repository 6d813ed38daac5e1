/**
 * The mail record in D1 (the lean ledger, issue 16): one `messages` row per message carries its recipients'
 * states, a compact log of every attempt and report, and what is needed to send it again until it is done;
 * `events` holds outcomes and reports as the feed for webhooks, rollups and `/v1/events`. All SQL for the mail
 * record lives here. Rows written per single-recipient message delivered at first attempt: the message row
 * (insert), its update in place, and one `delivered` event, which also announces `accepted` and `queued` (see
 * `feed` in migrations/0008_ledger.sql): three rows, no index entries.
 */
import { isRedactedValue } from "./redaction";
import type { EventDetail } from "./event-detail";

export type RecipientStatus = "queued" | "deferred" | "delivered" | "bounced" | "expired" | "suppressed" | "failed";
/** `delayed`: a remote MTA warned that it still holds the message and keeps trying (never changes the recipient's status). */
export type EventType = RecipientStatus | "accepted" | "complained" | "opened" | "clicked" | "auto_replied" | "waiting" | "delayed";
export const FINAL_STATUSES: readonly RecipientStatus[] = ["delivered", "bounced", "expired", "suppressed", "failed"];

/** `events.feed` bits: this event also announces the message's `accepted` (1) and its recipient's `queued` (2). */
export const FEED_ACCEPTED = 1;
export const FEED_QUEUED = 2;

/** Matches a message by id alone: one primary-key seek per tenant (the key is (tenant_id, id)). */
export const MESSAGE_BY_ID = "tenant_id IN (SELECT id FROM tenants) AND id = ?";

export interface NewMessage {
  id: string;
  tenantId: string;
  mailFrom: string;
  headerFrom: string;
  subject: string | null;
  messageIdHeader: string;
  stream: string;
  sizeBytes: number;
  bodyKey: string | null;
  tags: string[];
  metadata: Record<string, string>;
  createdAt: number;
  sendAt: number | null;
  recipients: { idx: number; address: string; domain: string; status: RecipientStatus }[];
  /** What the re-drive needs to send the message again (see `PendingWork`), JSON; null when nothing is pending. */
  pending?: string | null;
}

/** One recipient's state inside `messages.rcpts` (short keys: the row is stored once per message). */
export interface RecipientState {
  a: string;
  s: RecipientStatus;
  n?: number;
  c?: number | null;
  e?: string | null;
  t?: string | null;
  x?: number | null;
  u: number;
  f?: number | null;
}

/** One entry of `messages.log`: an attempt's outcome or an inbound report. */
export interface LogEntry {
  y: string;
  i?: number | null;
  at: number;
  n?: number | null;
  c?: number | null;
  e?: string | null;
  t?: string | null;
  h?: string | null;
  s?: number | null;
  l?: number | null;
  q?: number | null;
  d?: unknown;
}

/** What an attempt learnt from the next hop: its reply, where it went, how, and how long it took. */
export interface AttemptDetail {
  code?: number | null;
  enhanced?: string | null;
  text?: string | null;
  host?: string | null;
  tls?: boolean | null;
  latencyMs?: number | null;
  seq?: number | null;
}

export interface EventRecord extends AttemptDetail {
  messageId: string;
  tenantId?: string | null;
  recipientIdx?: number | null;
  recipient?: string | null;
  type: EventType;
  at: number;
  attempt?: number | null;
  data?: unknown;
}

/** A row of the `events` table as D1 returns it (`id` is the logical feed id once expanded, see `FEED_SQL`). */
export interface EventRow {
  id: number;
  message_id: string;
  tenant_id: string | null;
  recipient_idx: number | null;
  recipient: string | null;
  type: string;
  at: number;
  attempt: number | null;
  code: number | null;
  enhanced: string | null;
  text: string | null;
  host: string | null;
  tls: number | null;
  latency_ms: number | null;
  seq: number | null;
  data: string | null;
}

/** Drops null and undefined fields: absent keys cost no bytes in the row. */
function compact<T extends object>(o: T): T {
  return Object.fromEntries(Object.entries(o).filter(([, v]) => v !== null && v !== undefined)) as T;
}

export function insertEvent(db: D1Database, e: EventRecord, feed = 0, acceptedAt: number | null = null): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO events (message_id, tenant_id, recipient_idx, recipient, type, at, attempt, code, enhanced, text, host, tls, latency_ms, seq, data, feed, accepted_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(
      e.messageId,
      e.tenantId ?? null,
      e.recipientIdx ?? null,
      e.recipient ?? null,
      e.type,
      e.at,
      e.attempt ?? null,
      e.code ?? null,
      e.enhanced ?? null,
      e.text ?? null,
      e.host ?? null,
      e.tls === undefined || e.tls === null ? null : e.tls ? 1 : 0,
      e.latencyMs ?? null,
      e.seq ?? null,
      e.data === undefined ? null : JSON.stringify(e.data),
      feed || null,
      acceptedAt,
    );
}

/** A message's log holds at most this many entries; tracking hits beyond it stay in the event log only. */
export const MAX_LOG_ENTRIES = 500;

/**
 * Appends an event (an open, a click) to its message's log, so the message's timeline shows it: one row written.
 * The recipient's state does not change.
 */
export function appendToLog(db: D1Database, e: EventRecord): D1PreparedStatement {
  const entry = compact({ y: e.type, i: e.recipientIdx ?? null, at: e.at, t: e.text ?? null, d: e.data ?? null });
  return db
    .prepare(
      `UPDATE messages SET log = json_insert(COALESCE(log, '[]'), '$[#]', json(?))
        WHERE tenant_id = ? AND id = ? AND json_array_length(COALESCE(log, '[]')) < ${MAX_LOG_ENTRIES}`,
    )
    .bind(JSON.stringify(entry), e.tenantId ?? null, e.messageId);
}

/**
 * Statements that record an accepted message: one row. Recipients suppressed at accept get their `suppressed`
 * event at once (the first of them also announces `accepted`); queued recipients get no row of their own.
 */
export function insertMessage(db: D1Database, m: NewMessage): D1PreparedStatement[] {
  const rcpts: RecipientState[] = m.recipients.map((r) => compact({ a: r.address, s: r.status, u: m.createdAt, f: r.status === "suppressed" ? m.createdAt : null }));
  const suppressed = m.recipients.filter((r) => r.status === "suppressed");
  const open = m.recipients.length - suppressed.length;
  const stmts: D1PreparedStatement[] = [
    db
      .prepare(
        `INSERT INTO messages (tenant_id, id, mail_from, header_from, subject, message_id_header, stream, size_bytes, body_key, tags, metadata,
                               created_at, send_at, rcpts, open, due_at, fed, pending)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(
        m.tenantId,
        m.id,
        m.mailFrom,
        m.headerFrom,
        m.subject,
        m.messageIdHeader,
        m.stream,
        m.sizeBytes,
        m.bodyKey,
        m.tags.length ? JSON.stringify(m.tags) : null,
        Object.keys(m.metadata).length ? JSON.stringify(m.metadata) : null,
        m.createdAt,
        m.sendAt,
        JSON.stringify(rcpts),
        open,
        open ? (m.sendAt ?? m.createdAt) : null,
        suppressed.length ? 1 : 0,
        open ? (m.pending ?? null) : null,
      ),
  ];
  suppressed.forEach((r, i) =>
    stmts.push(
      insertEvent(
        db,
        { messageId: m.id, tenantId: m.tenantId, recipientIdx: r.idx, recipient: r.address, type: "suppressed", at: m.createdAt },
        i === 0 ? FEED_ACCEPTED : 0,
        m.createdAt,
      ),
    ),
  );
  return stmts;
}

export interface RecipientOutcome extends AttemptDetail {
  messageId: string;
  tenantId?: string | null;
  idx: number;
  address: string;
  status: RecipientStatus;
  at: number;
  attempt: number;
  nextAttemptAt?: number | null;
  data?: unknown;
}

/** D1 caps bound parameters per statement at 100: recipients per outcome update. */
const RECIPIENTS_PER_UPDATE = 20;

const isFinal = (s: RecipientStatus) => FINAL_STATUSES.includes(s);

/**
 * Statements that record outcomes (of one or more messages, from one or more transactions): per tenant one
 * `events` row holding the events of the recipients still pending (see migrations/0010_event_batches.sql), then
 * one update in place of each message row. A recipient in a final state never leaves it (Queues deliver at least
 * once, so a late duplicate outcome must not overwrite `delivered`), and a duplicate outcome writes no event.
 * The statements belong in one `db.batch` (see `outcomeStatementCount` for its size).
 */
export function outcomeStatements(db: D1Database, outcomes: RecipientOutcome[]): D1PreparedStatement[] {
  const stmts: D1PreparedStatement[] = [];
  const byTenant = new Map<string, RecipientOutcome[]>();
  for (const o of outcomes) if (o.tenantId) byTenant.set(o.tenantId, [...(byTenant.get(o.tenantId) ?? []), o]);
  for (const [tenant, list] of byTenant) stmts.push(eventBatchRow(db, tenant, list));
  for (const group of outcomesByMessage(outcomes)) {
    for (let i = 0; i < group.length; i += RECIPIENTS_PER_UPDATE) {
      const chunk = group.slice(i, i + RECIPIENTS_PER_UPDATE);
      // Without a tenant (outcomes recorded before jobs carried one): an event row per outcome, found by id alone.
      if (!chunk[0]!.tenantId) stmts.push(...chunk.map((o, k) => legacyEventRow(db, o, k === 0)));
      stmts.push(messageUpdate(db, chunk));
    }
  }
  return stmts;
}

/** How many statements `outcomeStatements` makes for these outcomes (to fill a `db.batch` without splitting it). */
export function outcomeStatementCount(outcomes: RecipientOutcome[]): number {
  const tenants = new Set(outcomes.filter((o) => o.tenantId).map((o) => o.tenantId)).size;
  const updates = outcomesByMessage(outcomes).reduce((n, g) => n + Math.ceil(g.length / RECIPIENTS_PER_UPDATE) + (g[0]!.tenantId ? 0 : g.length), 0);
  return tenants + updates;
}

const rcptField = (idx: string, key: string) => `json_extract(m.rcpts, '$[' || ${idx} || '].${key}')`;

/**
 * One `events` row for a tenant's outcomes: an element per recipient still pending, in order, that names the
 * message, the type and time (for filters that need no join) and the index of the attempt's entry in the message's
 * log (`x`), where its reply, host, TLS, latency and sequence live (written once, not twice: bytes per message,
 * issue 16); with feed bits (`accepted` on the message's first event while it was not announced, `queued` on a
 * recipient's first attempt). `messageUpdate` appends exactly the pending outcomes' log entries in this order, in
 * the same transaction. The row takes the ids just above the newest row's (one per element) and is not written
 * when no recipient is pending.
 */
function eventBatchRow(db: D1Database, tenantId: string, outcomes: RecipientOutcome[]): D1PreparedStatement {
  const input = outcomes.map((o) => ({ m: o.messageId, i: o.idx, y: o.status, at: o.at }));
  const idx = "json_extract(i.value, '$.i')";
  const nth = "ROW_NUMBER() OVER (PARTITION BY m.id ORDER BY i.key)";
  const feed = `NULLIF((CASE WHEN m.fed = 0 AND ${nth} = 1 THEN ${FEED_ACCEPTED} ELSE 0 END)
                      | (CASE WHEN COALESCE(${rcptField(idx, "n")}, 0) = 0 THEN ${FEED_QUEUED} ELSE 0 END), 0)`;
  const at = "json_extract(i.value, '$.at')";
  // An element is [message id, type, ms after the row's at (its earliest), log index, feed bits]: no keys, and a
  // short time (bytes per message, issue 16; migrations/0011_compact_events.sql). MAX(id) alone (not inside
  // COALESCE) is one seek to the end of the rowid tree, not a scan; CROSS JOIN keeps the input the outer loop (a
  // primary-key seek per element, never a walk over the tenant's messages).
  return db
    .prepare(
      `INSERT INTO events (id, message_id, tenant_id, type, at, batch)
       SELECT COALESCE((SELECT MAX(id) FROM events), 0) + COUNT(*), '', ?1, 'batch', MIN(x.at), json_group_array(json(x.ev))
         FROM (SELECT CASE WHEN f IS NULL THEN json_array(mid, y, at - MIN(at) OVER (), lx) ELSE json_array(mid, y, at - MIN(at) OVER (), lx, f) END AS ev, at, k
                 FROM (SELECT m.id AS mid, json_extract(i.value, '$.y') AS y, ${at} AS at,
                              COALESCE(json_array_length(m.log), 0) + ${nth} - 1 AS lx, ${feed} AS f, i.key AS k
                         FROM json_each(?2) i CROSS JOIN messages m ON m.tenant_id = ?1 AND m.id = json_extract(i.value, '$.m')
                        WHERE ${rcptField(idx, "f")} IS NULL)
                ORDER BY k) x
       HAVING COUNT(*) > 0`,
    )
    .bind(tenantId, JSON.stringify(input));
}

/** An event row of its own for an outcome without a tenant (the message is found by id alone). */
function legacyEventRow(db: D1Database, o: RecipientOutcome, first: boolean): D1PreparedStatement {
  const pendingOf = `json_extract(rcpts, '$[${o.idx}].f') IS NULL`;
  const feed = `(CASE WHEN fed = 0 AND ${first ? 1 : 0} THEN ${FEED_ACCEPTED} ELSE 0 END) | (CASE WHEN COALESCE(json_extract(rcpts, '$[${o.idx}].n'), 0) = 0 THEN ${FEED_QUEUED} ELSE 0 END)`;
  return db
    .prepare(
      `INSERT INTO events (message_id, tenant_id, recipient_idx, recipient, type, at, attempt, code, enhanced, text, host, tls, latency_ms, seq, data, feed, accepted_at)
       SELECT id, tenant_id, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, NULLIF(${feed}, 0), created_at FROM messages WHERE ${MESSAGE_BY_ID} AND ${pendingOf}`,
    )
    .bind(o.idx, o.address, o.status, o.at, o.attempt, o.code ?? null, o.enhanced ?? null, o.text ?? null, o.host ?? null, tlsBit(o.tls), o.latencyMs ?? null, o.seq ?? null, o.data === undefined ? null : JSON.stringify(o.data), o.messageId);
}

/** The update in place of one message row for up to RECIPIENTS_PER_UPDATE of its outcomes. */
function messageUpdate(db: D1Database, outcomes: RecipientOutcome[]): D1PreparedStatement {
  const first = outcomes[0]!;
  const tenant = first.tenantId ?? null;
  const pendingOf = (idx: number) => `json_extract(rcpts, '$[${idx}].f') IS NULL`;
  const params: unknown[] = [];
  const p = (v: unknown) => {
    params.push(v);
    return `?${params.length}`;
  };
  const setRcpts = outcomes
    .map((o) => `'$[${o.idx}]', json(CASE WHEN ${pendingOf(o.idx)} THEN ${p(JSON.stringify(stateOf(o)))} ELSE json_extract(rcpts, '$[${o.idx}]') END)`)
    .join(", ");
  // Only pending recipients' entries are appended (in order: the event rows point at them by index); a duplicate
  // outcome's goes to '$[0]', which exists (the recipient is final, so its outcome is logged) and is left as it is.
  const entries = outcomes.map((o) => `CASE WHEN ${pendingOf(o.idx)} THEN '$[#]' ELSE '$[0]' END, json(${p(JSON.stringify(logEntryOf(o)))})`).join(", ");
  const closing = outcomes.filter((o) => isFinal(o.status)).map((o) => `(${pendingOf(o.idx)})`);
  const openAfter = closing.length ? `open - (${closing.join(" + ")})` : "open";
  const next = Math.max(...outcomes.map((o) => o.nextAttemptAt ?? o.at));
  const sql = `UPDATE messages SET rcpts = json_set(rcpts, ${setRcpts}), log = json_insert(COALESCE(log, '[]'), ${entries}),
      open = MAX(0, ${openAfter}), due_at = CASE WHEN ${openAfter} <= 0 THEN NULL ELSE MAX(COALESCE(due_at, 0), ${p(next)}) END,
      pending = CASE WHEN ${openAfter} <= 0 THEN NULL ELSE pending END, fed = 1
    WHERE ${tenant === null ? `tenant_id IN (SELECT id FROM tenants) AND id = ${p(first.messageId)}` : `tenant_id = ${p(tenant)} AND id = ${p(first.messageId)}`}
      AND (${outcomes.map((o) => pendingOf(o.idx)).join(" OR ")})`;
  return db.prepare(sql).bind(...params);
}

function tlsBit(tls: boolean | null | undefined): number | null {
  return tls === undefined || tls === null ? null : tls ? 1 : 0;
}

/** An outcome's SMTP reply (code, enhanced status, text) as stored in a recipient's state and log entry. */
function replyOf(o: RecipientOutcome): { c: number | null; e: string | null; t: string | null } {
  return { c: o.code ?? null, e: o.enhanced ?? null, t: o.text ?? null };
}

function stateOf(o: RecipientOutcome): RecipientState {
  // A delivered recipient's last reply is its log's last entry: not stored twice (bytes per message, issue 16).
  const delivered = o.status === "delivered";
  return compact({
    a: o.address,
    s: o.status,
    n: o.attempt,
    ...(delivered ? { c: null, e: null, t: null } : replyOf(o)),
    x: o.nextAttemptAt ?? null,
    u: o.at,
    f: isFinal(o.status) ? o.at : null,
  });
}

function logEntryOf(o: RecipientOutcome): LogEntry {
  return compact({
    y: o.status,
    i: o.idx,
    at: o.at,
    n: o.attempt,
    ...replyOf(o),
    h: o.host ?? null,
    s: tlsBit(o.tls),
    l: o.latencyMs ?? null,
    q: o.seq ?? null,
    d: o.data ?? null,
  });
}

/** Statements that record one recipient's outcome (see `outcomeStatements`). */
export function recordOutcome(db: D1Database, o: RecipientOutcome): D1PreparedStatement[] {
  return outcomeStatements(db, [o]);
}

/** Groups outcomes by message, in first-seen order, for `outcomeStatements`. */
export function outcomesByMessage(outcomes: RecipientOutcome[]): RecipientOutcome[][] {
  const groups = new Map<string, RecipientOutcome[]>();
  for (const o of outcomes) {
    const k = `${o.tenantId ?? ""}|${o.messageId}`;
    const list = groups.get(k) ?? [];
    list.push(o);
    groups.set(k, list);
  }
  return [...groups.values()];
}

/** The envelope and header fields a message row and its API view share, by the same names and types. */
interface MessageEnvelopeFields {
  mail_from: string;
  header_from: string | null;
  subject: string | null;
  message_id_header: string | null;
  stream: string;
  size_bytes: number;
}

export interface MessageView extends MessageEnvelopeFields {
  id: string;
  tenant_id: string;
  tags: string[];
  metadata: Record<string, string>;
  created_at: string;
  status: string;
  /** Subjects and addresses were redacted (issue 21, store/redaction.ts). */
  redacted: boolean;
  recipients: {
    address: string;
    status: RecipientStatus;
    attempts: number;
    last_code: number | null;
    last_enhanced: string | null;
    last_text: string | null;
    updated_at: string;
  }[];
  events: ({ type: string; at: string; recipient: string | null } & EventDetail & { seq: number | null })[];
}

/** Overall message status: the least advanced recipient state, so "delivered" means every recipient was. */
export function summariseStatus(statuses: RecipientStatus[]): string {
  if (statuses.length === 0) return "accepted";
  const order: RecipientStatus[] = ["queued", "deferred", "failed", "expired", "bounced", "suppressed", "delivered"];
  const pending = statuses.filter((s) => !FINAL_STATUSES.includes(s));
  if (pending.length) return pending.includes("deferred") ? "deferred" : "queued";
  const distinct = [...new Set(statuses)];
  if (distinct.length === 1) return distinct[0]!;
  return distinct.includes("delivered") ? "partially_delivered" : order.find((s) => distinct.includes(s))!;
}

/** A `messages` row as D1 returns it. */
export interface MessageRow extends MessageEnvelopeFields {
  tenant_id: string;
  id: string;
  body_key: string | null;
  tags: string | null;
  metadata: string | null;
  created_at: number;
  send_at: number | null;
  rcpts: string;
  log: string | null;
  open: number;
  due_at: number | null;
  pending: string | null;
}

export function parseRecipients(rcpts: string | null): RecipientState[] {
  return rcpts ? (JSON.parse(rcpts) as RecipientState[]) : [];
}

export function parseLog(log: string | null): LogEntry[] {
  return log ? (JSON.parse(log) as LogEntry[]) : [];
}

/** A message's row, scoped to a tenant (null tenant: any). */
export async function getMessageRow(db: D1Database, id: string, tenantId: string | null): Promise<MessageRow | null> {
  const stmt =
    tenantId === null
      ? db.prepare(`SELECT * FROM messages WHERE ${MESSAGE_BY_ID}`).bind(id)
      : db.prepare("SELECT * FROM messages WHERE tenant_id = ? AND id = ?").bind(tenantId, id);
  return stmt.first<MessageRow>();
}

/** The timeline of a message: accepted, each recipient queued (or suppressed) at accept, then its log in order. */
export function timelineOf(m: MessageRow): MessageView["events"] {
  const iso = (ms: number) => new Date(ms).toISOString();
  const rcpts = parseRecipients(m.rcpts);
  const blank = { attempt: null, code: null, enhanced: null, text: null, host: null, tls: null, latency_ms: null, seq: null };
  const atAccept = rcpts.map((r) => ({ ...blank, type: r.s === "suppressed" && r.f === m.created_at ? "suppressed" : "queued", at: iso(m.created_at), recipient: r.a }));
  const logged = parseLog(m.log).map((e) => ({
    type: e.y,
    at: iso(e.at),
    recipient: e.i === null || e.i === undefined ? null : (rcpts[e.i]?.a ?? null),
    attempt: e.n ?? null,
    code: e.c ?? null,
    enhanced: e.e ?? null,
    text: e.t ?? null,
    host: e.h ?? null,
    tls: e.s === null || e.s === undefined ? null : e.s === 1,
    latency_ms: e.l ?? null,
    seq: e.q ?? null,
  }));
  return [{ ...blank, type: "accepted", at: iso(m.created_at), recipient: null }, ...atAccept, ...logged];
}

/** A message with its recipients and timeline, scoped to a tenant (null tenant: admin view). */
export async function getMessage(db: D1Database, id: string, tenantId: string | null): Promise<MessageView | null> {
  const m = await getMessageRow(db, id, tenantId);
  if (!m) return null;
  const iso = (ms: unknown) => new Date(Number(ms)).toISOString();
  const rcpts = parseRecipients(m.rcpts);
  const log = parseLog(m.log);
  // The last reply of a recipient whose state does not carry it (delivered): its last logged outcome.
  const lastReply = (idx: number, r: RecipientState) =>
    r.c !== undefined || r.e !== undefined || r.t !== undefined ? r : (log.filter((e) => e.i === idx && e.y === r.s).pop() ?? r);
  return {
    id: m.id,
    tenant_id: m.tenant_id,
    mail_from: m.mail_from,
    header_from: m.header_from ?? null,
    subject: m.subject ?? null,
    message_id_header: m.message_id_header ?? null,
    stream: m.stream,
    size_bytes: Number(m.size_bytes),
    tags: JSON.parse(m.tags ?? "[]") as string[],
    metadata: JSON.parse(m.metadata ?? "{}") as Record<string, string>,
    created_at: iso(m.created_at),
    status: summariseStatus(rcpts.map((r) => r.s)),
    redacted: isRedactedValue(rcpts[0]?.a),
    recipients: rcpts.map((r, idx) => {
      const last = lastReply(idx, r);
      return {
        address: r.a,
        status: r.s,
        attempts: r.n ?? 0,
        last_code: last.c ?? null,
        last_enhanced: last.e ?? null,
        last_text: last.t ?? null,
        updated_at: iso(r.u),
      };
    }),
    events: timelineOf(m),
  };
}
