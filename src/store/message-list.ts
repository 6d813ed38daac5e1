/** Searches over messages and events for the API: per tenant, newest first (messages) or oldest first (events). */
import { FEED_AT, FEED_COLUMNS, FEED_FROM, FEED_ID, FEED_MESSAGE_ID, FEED_ORDER, FEED_RECIPIENT, FEED_TYPE, firstRowAfter } from "./feed";
import { idFloor } from "./ids";
import { parseRecipients, summariseStatus, type EventRow, type RecipientStatus } from "./messages";
import { isRedactedValue } from "./redaction";
import { eventDetail, type EventDetail } from "./event-detail";

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
  /** Subjects and addresses were redacted (issue 21). */
  redacted: boolean;
  recipients: { address: string; status: RecipientStatus }[];
}

export interface MessageQuery {
  recipient: string | null;
  /** The recipient as it reads in rows redacted in mode `hash` (store/redaction.ts `addressSearchForm`). */
  recipientHashed?: string | null;
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
      `SELECT m.id, m.created_at, m.send_at, m.header_from, m.subject, m.message_id_header, m.stream, m.tags, m.rcpts
         FROM messages m
        WHERE m.tenant_id = ?1
          AND (?2 IS NULL OR m.id < ?2)
          AND (?3 IS NULL OR (m.id >= ?4 AND m.created_at >= ?3))
          AND (?5 IS NULL OR m.created_at < ?5)
          AND (?6 IS NULL OR EXISTS (SELECT 1 FROM json_each(m.rcpts) x WHERE json_extract(x.value, '$.a') IN (?6, ?7, ?12)))
          AND (?8 IS NULL OR EXISTS (SELECT 1 FROM json_each(m.tags) WHERE json_each.value = ?8))
          AND (?9 IS NULL OR EXISTS (SELECT 1 FROM json_each(m.rcpts) x WHERE json_extract(x.value, '$.s') = ?9))
          AND (?10 IS NULL OR m.stream = ?10)
        ORDER BY m.id DESC LIMIT ?11`,
    )
    .bind(
      tenantId,
      q.before,
      q.since,
      q.since === null ? null : idFloor(q.since - ID_CLOCK_SKEW_MS),
      q.until,
      rcpt,
      rcpt?.toLowerCase() ?? null,
      q.tag,
      q.status,
      q.stream ?? null,
      q.limit,
      q.recipientHashed ?? null,
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
    const recipients = parseRecipients(m.rcpts).map((r) => ({ address: r.a, status: r.s }));
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
      redacted: isRedactedValue(recipients[0]?.address),
      recipients,
    };
  });
}

/** Ids are made from the accepting isolate's clock; a `since` bound on ids allows this much skew. */
const ID_CLOCK_SKEW_MS = 60_000;

export type EventView = {
  id: number;
  message_id: string;
  type: string;
  at: string;
  recipient: string | null;
  /** The event's addresses were redacted (issue 21). */
  redacted: boolean;
} & EventDetail;

export interface EventQuery {
  type: string | null;
  messageId: string | null;
  recipient: string | null;
  /** The recipient as it reads in rows redacted in mode `hash`. */
  recipientHashed?: string | null;
  /** Only events of messages of this stream. */
  stream?: "transactional" | "broadcast" | null;
  since: number | null;
  /** Events with an id above this one. */
  after: number | null;
  limit: number;
}

/**
 * One page of a tenant's events, oldest first, for polling with the `after` cursor (a feed id, see store/feed.ts).
 * The log has no secondary index: this walks rows by id from the cursor and filters them.
 */
export async function listEvents(db: D1Database, tenantId: string, q: EventQuery): Promise<EventView[]> {
  const { results } = await db
    .prepare(
      `SELECT ${FEED_COLUMNS} FROM ${FEED_FROM}
        WHERE e.tenant_id = ?1
          AND (?2 IS NULL OR (e.id >= ?3 AND ${FEED_ID} > ?2))
          AND (?4 IS NULL OR ${FEED_AT} >= ?4)
          AND (?5 IS NULL OR ${FEED_TYPE} = ?5)
          AND (?6 IS NULL OR ${FEED_MESSAGE_ID} = ?6)
          AND (?7 IS NULL OR ${FEED_RECIPIENT} IN (?7, ?8, ?11))
          AND (?9 IS NULL OR EXISTS (SELECT 1 FROM messages m WHERE m.tenant_id = e.tenant_id AND m.id = ${FEED_MESSAGE_ID} AND m.stream = ?9))
        ORDER BY ${FEED_ORDER} LIMIT ?10`,
    )
    .bind(
      tenantId,
      q.after,
      q.after === null ? null : firstRowAfter(q.after),
      q.since,
      q.type,
      q.messageId,
      q.recipient,
      q.recipient?.toLowerCase() ?? null,
      q.stream ?? null,
      q.limit,
      q.recipientHashed ?? null,
    )
    .all<Omit<EventRow, "tenant_id" | "recipient_idx" | "seq" | "data">>();
  return results.map((e) => ({
    id: e.id,
    message_id: e.message_id,
    type: e.type,
    at: new Date(e.at).toISOString(),
    recipient: e.recipient,
    ...eventDetail(e),
    redacted: isRedactedValue(e.recipient),
  }));
}
