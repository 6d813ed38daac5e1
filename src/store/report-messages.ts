/** Reads for the reporting page's message search and suppression list. Every query is served by an index. */
import { summariseStatus, type RecipientStatus } from "./messages";
import { ALL_TENANTS, type TenantScope } from "./report";

export type SearchField = "id" | "recipient" | "sender" | "tag" | "status";
export const SEARCH_FIELDS: readonly SearchField[] = ["id", "recipient", "sender", "tag", "status"];
export const SEARCH_LIMIT = 50;

export interface MessageSummary {
  id: string;
  tenantId: string;
  mailFrom: string;
  subject: string | null;
  createdAt: number;
  recipientCount: number;
  firstRecipient: string | null;
  status: string;
}

const SUMMARY_COLUMNS = `m.id, m.tenant_id, m.mail_from, m.subject, m.created_at,
  (SELECT COUNT(*) FROM recipients x WHERE x.message_id = m.id) AS rcpt_count,
  (SELECT x.address FROM recipients x WHERE x.message_id = m.id ORDER BY x.idx LIMIT 1) AS first_rcpt,
  (SELECT group_concat(x.status) FROM recipients x WHERE x.message_id = m.id) AS statuses`;

interface SummaryRow {
  id: string;
  tenant_id: string;
  mail_from: string;
  subject: string | null;
  created_at: number;
  rcpt_count: number;
  first_rcpt: string | null;
  statuses: string | null;
}

function toSummary(r: SummaryRow): MessageSummary {
  return {
    id: r.id,
    tenantId: r.tenant_id,
    mailFrom: r.mail_from,
    subject: r.subject,
    createdAt: r.created_at,
    recipientCount: r.rcpt_count,
    firstRecipient: r.first_rcpt,
    status: summariseStatus((r.statuses ? r.statuses.split(",") : []) as RecipientStatus[]),
  };
}

/** The SQL of a search, exposed so the index test can EXPLAIN it. Bound: ?1 all-tenants flag, ?2 tenant, ?3 term, ?4 limit. */
export function searchSql(field: SearchField | null): string {
  const scoped = "(?1 = 1 OR m.tenant_id = ?2)";
  switch (field) {
    case "id":
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE m.id = ?3 AND ${scoped} LIMIT ?4`;
    case "recipient":
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE m.id IN (
                SELECT r.message_id FROM recipients r WHERE r.address IN (?3, lower(?3)) ORDER BY r.message_id DESC LIMIT 1000
              ) AND ${scoped} ORDER BY m.id DESC LIMIT ?4`;
    case "sender":
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m
               WHERE (m.header_from IN (?3, lower(?3)) OR m.mail_from IN (?3, lower(?3))) AND ${scoped} ORDER BY m.id DESC LIMIT ?4`;
    case "tag":
      return `SELECT ${SUMMARY_COLUMNS} FROM report_message_tags t JOIN messages m ON m.id = t.message_id
               WHERE t.tag = ?3 AND (?1 = 1 OR t.tenant_id = ?2) ORDER BY t.message_id DESC LIMIT ?4`;
    case "status":
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE m.id IN (
                SELECT DISTINCT r.message_id FROM recipients r WHERE r.status = ?3 ORDER BY r.message_id DESC LIMIT 1000
              ) AND ${scoped} ORDER BY m.id DESC LIMIT ?4`;
    case null:
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE ${scoped} ORDER BY m.id DESC LIMIT ?4`;
  }
}

/**
 * Messages matching a search, newest first (message ids are time-ordered). With no field, the newest
 * messages. Recipient and status searches look at the newest 1000 matching recipients.
 */
export async function searchMessages(
  db: D1Database,
  tenant: TenantScope,
  field: SearchField | null,
  term: string,
  limit = SEARCH_LIMIT,
): Promise<MessageSummary[]> {
  const { results } = await db
    .prepare(searchSql(field))
    .bind(tenant === ALL_TENANTS ? 1 : 0, tenant, term.trim(), limit)
    .all<SummaryRow>();
  return results.map(toSummary);
}

export interface SuppressionListRow {
  tenant_id: string;
  address: string;
  scope: string;
  reason: string;
  detail: string | null;
  message_id: string | null;
  created_at: number;
  expires_at: number | null;
}

/** Bound: ?1 all-tenants flag, ?2 tenant, ?3 now, ?4 text the address must contain, or null, ?5 limit. */
export const SUPPRESSIONS_SQL = `SELECT * FROM suppressions
  WHERE (?1 = 1 OR tenant_id = ?2) AND (expires_at IS NULL OR expires_at > ?3)
    AND (?4 IS NULL OR instr(address, ?4) > 0)
  ORDER BY created_at DESC LIMIT ?5`;

/** Live suppressions newest first, optionally only addresses containing `filter`, across tenants or for one. */
export async function listSuppressionsForReport(
  db: D1Database,
  tenant: TenantScope,
  filter: string,
  limit = 200,
  now = Date.now(),
): Promise<SuppressionListRow[]> {
  const f = filter.trim().toLowerCase();
  const { results } = await db
    .prepare(SUPPRESSIONS_SQL)
    .bind(tenant === ALL_TENANTS ? 1 : 0, tenant, now, f || null, limit)
    .all<SuppressionListRow>();
  return results;
}
