/** Searches over messages and events for the API: per tenant, newest first (messages) or oldest first (events). */
import { summariseStatus, type EventRow, type RecipientStatus } from "./messages";

export interface MessageSummary {
  id: string;
  created_at: string;
  send_at: string | null;
  from: string | null;
  subject: string | null;
  message_id: string | null;
  stream: string;
  tags: string[];
  status: string;
  recipients: { address: string; status: RecipientStatus }[];
}

export interface MessageQuery {
  recipient: string | null;
  tag: string | null;
  status: RecipientStatus | null;
  /** Only messages of this stream. */
  stream?: "transactional" | "broadcast" | null;
  since: number | null;
  until: number | null;
  /** Messages with an id below this one (ids are time-ordered). */
  before: string | null;
  limit: number;
}

/** One page of a tenant's messages matching every given filter, newest first. */
export async function listMessages(db: D1Database, tenantId: string, q: MessageQuery): Promise<MessageSummary[]> {
  const rcpt = q.recipient;
  const { results } = await db
    .prepare(
      `SELECT m.id, m.created_at, m.send_at, m.header_from, m.subject, m.message_id_header, m.stream, m.tags,
              (SELECT json_group_array(json_object('address', r.address, 'status', r.status))
                 FROM (SELECT address, status FROM recipients WHERE message_id = m.id ORDER BY idx) r) AS rcpts
         FROM messages m
        WHERE m.tenant_id = ?
          AND (? IS NULL OR m.id < ?)
          AND (? IS NULL OR m.created_at >= ?)
          AND (? IS NULL OR m.created_at < ?)
          AND (? IS NULL OR EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.address IN (?, ?)))
          AND (? IS NULL OR EXISTS (SELECT 1 FROM json_each(m.tags) WHERE json_each.value = ?))
          AND (? IS NULL OR EXISTS (SELECT 1 FROM recipients r WHERE r.message_id = m.id AND r.status = ?))
          AND (? IS NULL OR m.stream = ?)
        ORDER BY m.id DESC LIMIT ?`,
    )
    .bind(
      tenantId,
      q.before,
      q.before,
      q.since,
      q.since,
      q.until,
      q.until,
      rcpt,
      rcpt,
      rcpt?.toLowerCase() ?? null,
      q.tag,
      q.tag,
      q.status,
      q.status,
      q.stream ?? null,
      q.stream ?? null,
      q.limit,
    )
    .all<{
      id: string;
      created_at: number;
      send_at: number | null;
      header_from: string | null;
      subject: string | null;
      message_id_header: string | null;
      stream: string;
      tags: string | null;
      rcpts: string;
    }>();
  return results.map((m) => {
    const recipients = JSON.parse(m.rcpts) as { address: string; status: RecipientStatus }[];
    return {
      id: m.id,
      created_at: new Date(m.created_at).toISOString(),
      send_at: m.send_at === null ? null : new Date(m.send_at).toISOString(),
      from: m.header_from,
      subject: m.subject,
      message_id: m.message_id_header,
      stream: m.stream,
      tags: JSON.parse(m.tags ?? "[]") as string[],
      status: summariseStatus(recipients.map((r) => r.status)),
      recipients,
    };
  });
}

export interface EventView {
  id: number;
  message_id: string;
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
}

export interface EventQuery {
  type: string | null;
  messageId: string | null;
  recipient: string | null;
  /** Only events of messages of this stream. */
  stream?: "transactional" | "broadcast" | null;
  since: number | null;
  /** Events with an id above this one. */
  after: number | null;
  limit: number;
}

/** One page of a tenant's events, oldest first, for polling with the `after` cursor. */
export async function listEvents(db: D1Database, tenantId: string, q: EventQuery): Promise<EventView[]> {
  const { results } = await db
    .prepare(
      `SELECT id, message_id, type, at, recipient, attempt, code, enhanced, text, host, tls, latency_ms FROM events
        WHERE tenant_id = ?
          AND (? IS NULL OR id > ?)
          AND (? IS NULL OR at >= ?)
          AND (? IS NULL OR type = ?)
          AND (? IS NULL OR message_id = ?)
          AND (? IS NULL OR recipient IN (?, ?))
          AND (? IS NULL OR EXISTS (SELECT 1 FROM messages m WHERE m.id = events.message_id AND m.stream = ?))
        ORDER BY id LIMIT ?`,
    )
    .bind(
      tenantId,
      q.after,
      q.after,
      q.since,
      q.since,
      q.type,
      q.type,
      q.messageId,
      q.messageId,
      q.recipient,
      q.recipient,
      q.recipient?.toLowerCase() ?? null,
      q.stream ?? null,
      q.stream ?? null,
      q.limit,
    )
    .all<Omit<EventRow, "tenant_id" | "recipient_idx" | "seq" | "data">>();
  return results.map((e) => ({ ...e, at: new Date(e.at).toISOString(), tls: e.tls === null ? null : e.tls === 1 }));
}
