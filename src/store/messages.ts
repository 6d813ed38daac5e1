/** Messages, recipients and events in D1: all SQL for the mail record lives here. */

export type RecipientStatus = "queued" | "deferred" | "delivered" | "bounced" | "expired" | "suppressed" | "failed";
export type EventType = RecipientStatus | "accepted" | "complained" | "opened" | "clicked" | "auto_replied" | "waiting";
export const FINAL_STATUSES: readonly RecipientStatus[] = ["delivered", "bounced", "expired", "suppressed", "failed"];

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

/** A row of the `events` table as D1 returns it. */
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

export function insertEvent(db: D1Database, e: EventRecord): D1PreparedStatement {
  return db
    .prepare(
      `INSERT INTO events (message_id, tenant_id, recipient_idx, recipient, type, at, attempt, code, enhanced, text, host, tls, latency_ms, seq, data)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
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
    );
}

/** Statements that record an accepted message, its recipients and their first events (run them in one batch). */
export function insertMessage(db: D1Database, m: NewMessage): D1PreparedStatement[] {
  const stmts: D1PreparedStatement[] = [
    db
      .prepare(
        `INSERT INTO messages (id, tenant_id, mail_from, header_from, subject, message_id_header, stream, size_bytes, body_key, tags, metadata, created_at, send_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(
        m.id,
        m.tenantId,
        m.mailFrom,
        m.headerFrom,
        m.subject,
        m.messageIdHeader,
        m.stream,
        m.sizeBytes,
        m.bodyKey,
        JSON.stringify(m.tags),
        JSON.stringify(m.metadata),
        m.createdAt,
        m.sendAt,
      ),
    insertEvent(db, { messageId: m.id, tenantId: m.tenantId, type: "accepted", at: m.createdAt }),
  ];
  for (const r of m.recipients) {
    const final = r.status === "suppressed" ? m.createdAt : null;
    stmts.push(
      db
        .prepare(
          `INSERT INTO recipients (message_id, idx, address, domain, status, updated_at, final_at) VALUES (?, ?, ?, ?, ?, ?, ?)`,
        )
        .bind(m.id, r.idx, r.address, r.domain, r.status, m.createdAt, final),
      insertEvent(db, {
        messageId: m.id,
        tenantId: m.tenantId,
        recipientIdx: r.idx,
        recipient: r.address,
        type: r.status,
        at: m.createdAt,
      }),
    );
  }
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
}

/**
 * Statements that record a delivery outcome for one recipient. A recipient in a final state never leaves it
 * (Queues deliver at least once, so a late duplicate outcome must not overwrite `delivered`).
 */
export function recordOutcome(db: D1Database, o: RecipientOutcome): D1PreparedStatement[] {
  const final = FINAL_STATUSES.includes(o.status);
  return [
    insertEvent(db, {
      messageId: o.messageId,
      tenantId: o.tenantId,
      recipientIdx: o.idx,
      recipient: o.address,
      type: o.status,
      at: o.at,
      attempt: o.attempt,
      code: o.code,
      enhanced: o.enhanced,
      text: o.text,
      host: o.host,
      tls: o.tls,
      latencyMs: o.latencyMs,
      seq: o.seq,
    }),
    db
      .prepare(
        `UPDATE recipients SET status = ?, attempts = MAX(attempts, ?), last_code = ?, last_enhanced = ?, last_text = ?,
                next_attempt_at = ?, updated_at = ?, final_at = ?
          WHERE message_id = ? AND idx = ? AND final_at IS NULL`,
      )
      .bind(
        o.status,
        o.attempt,
        o.code ?? null,
        o.enhanced ?? null,
        o.text ?? null,
        o.nextAttemptAt ?? null,
        o.at,
        final ? o.at : null,
        o.messageId,
        o.idx,
      ),
  ];
}

export interface MessageView {
  id: string;
  tenant_id: string;
  mail_from: string;
  header_from: string | null;
  subject: string | null;
  message_id_header: string | null;
  stream: string;
  size_bytes: number;
  tags: string[];
  metadata: Record<string, string>;
  created_at: string;
  status: string;
  recipients: {
    address: string;
    status: RecipientStatus;
    attempts: number;
    last_code: number | null;
    last_enhanced: string | null;
    last_text: string | null;
    updated_at: string;
  }[];
  events: {
    type: string;
    at: string;
    recipient: string | null;
    attempt: number | null;
    code: number | null;
    enhanced: string | null;
    text: string | null;
    host: string | null;
    tls: boolean | null;
    latency_ms: number | null;
    seq: number | null;
  }[];
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

/** A message with its recipients and timeline, scoped to a tenant (null tenant: admin view). */
export async function getMessage(db: D1Database, id: string, tenantId: string | null): Promise<MessageView | null> {
  const [msg, rcpts, events] = await db.batch([
    db.prepare("SELECT * FROM messages WHERE id = ? AND (? IS NULL OR tenant_id = ?)").bind(id, tenantId, tenantId),
    db.prepare("SELECT * FROM recipients WHERE message_id = ? ORDER BY idx").bind(id),
    db.prepare("SELECT * FROM events WHERE message_id = ? ORDER BY id").bind(id),
  ]);
  const m = msg?.results[0] as Record<string, unknown> | undefined;
  if (!m) return null;
  const recipients = (rcpts?.results ?? []) as Record<string, unknown>[];
  const iso = (ms: unknown) => new Date(Number(ms)).toISOString();
  return {
    id: String(m.id),
    tenant_id: String(m.tenant_id),
    mail_from: String(m.mail_from),
    header_from: (m.header_from as string | null) ?? null,
    subject: (m.subject as string | null) ?? null,
    message_id_header: (m.message_id_header as string | null) ?? null,
    stream: String(m.stream),
    size_bytes: Number(m.size_bytes),
    tags: JSON.parse(String(m.tags ?? "[]")) as string[],
    metadata: JSON.parse(String(m.metadata ?? "{}")) as Record<string, string>,
    created_at: iso(m.created_at),
    status: summariseStatus(recipients.map((r) => r.status as RecipientStatus)),
    recipients: recipients.map((r) => ({
      address: String(r.address),
      status: r.status as RecipientStatus,
      attempts: Number(r.attempts),
      last_code: (r.last_code as number | null) ?? null,
      last_enhanced: (r.last_enhanced as string | null) ?? null,
      last_text: (r.last_text as string | null) ?? null,
      updated_at: iso(r.updated_at),
    })),
    events: ((events?.results ?? []) as Record<string, unknown>[]).map((e) => ({
      type: String(e.type),
      at: iso(e.at),
      recipient: (e.recipient as string | null) ?? null,
      attempt: (e.attempt as number | null) ?? null,
      code: (e.code as number | null) ?? null,
      enhanced: (e.enhanced as string | null) ?? null,
      text: (e.text as string | null) ?? null,
      host: (e.host as string | null) ?? null,
      tls: e.tls === null || e.tls === undefined ? null : e.tls === 1,
      latency_ms: (e.latency_ms as number | null) ?? null,
      seq: (e.seq as number | null) ?? null,
    })),
  };
}
