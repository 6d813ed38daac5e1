/** Reads for the reporting page's message search and suppression list. Every query is served by an index. */
import { summariseStatus, type RecipientStatus } from "./messages";
import { ALL_TENANTS, type TenantScope } from "./report";

export type SearchField = "id" | "recipient" | "sender" | "tag" | "status" | "stream";
export const SEARCH_FIELDS: readonly SearchField[] = ["id", "recipient", "sender", "tag", "status", "stream"];
export const SEARCH_LIMIT = 50;

export interface MessageSummary {
  id: string;
  tenantId: string;
  /** The From header's address, as the sender wrote it (null only for rows written without one). */
  headerFrom: string | null;
  /** The envelope sender (return path): with VERP a bounce+… address, so the list shows `headerFrom`. */
  mailFrom: string;
  subject: string | null;
  createdAt: number;
  recipientCount: number;
  firstRecipient: string | null;
  status: string;
}

const SUMMARY_COLUMNS = `m.id, m.tenant_id, m.header_from, m.mail_from, m.subject, m.created_at,
  (SELECT COUNT(*) FROM recipients x WHERE x.message_id = m.id) AS rcpt_count,
  (SELECT x.address FROM recipients x WHERE x.message_id = m.id ORDER BY x.idx LIMIT 1) AS first_rcpt,
  (SELECT group_concat(x.status) FROM recipients x WHERE x.message_id = m.id) AS statuses`;

interface SummaryRow {
  id: string;
  tenant_id: string;
  header_from: string | null;
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
    headerFrom: r.header_from,
    mailFrom: r.mail_from,
    subject: r.subject,
    createdAt: r.created_at,
    recipientCount: r.rcpt_count,
    firstRecipient: r.first_rcpt,
    status: summariseStatus((r.statuses ? r.statuses.split(",") : []) as RecipientStatus[]),
  };
}

/**
 * The SQL of a search (exposed so the index test can EXPLAIN it), for all tenants or one: separate statements
 * so each uses its own index. Bound: ?1 tenant (ignored for all), ?2 term, ?3 limit.
 */
export function searchSql(field: SearchField | null, scope: "all" | "tenant"): string {
  const t = (alias: string) => (scope === "tenant" ? `${alias}.tenant_id = ?1` : "?1 IS NOT NULL");
  switch (field) {
    case "id":
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE m.id = ?2 AND ${t("m")} LIMIT ?3`;
    case "recipient":
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE m.id IN (
                SELECT r.message_id FROM recipients r WHERE r.address IN (?2, lower(?2)) ORDER BY r.message_id DESC LIMIT 1000
              ) AND ${t("m")} ORDER BY m.id DESC LIMIT ?3`;
    case "sender":
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m
               WHERE (m.header_from IN (?2, lower(?2)) OR m.mail_from IN (?2, lower(?2))) AND ${t("m")} ORDER BY m.id DESC LIMIT ?3`;
    case "tag":
      return `SELECT ${SUMMARY_COLUMNS} FROM report_message_tags g JOIN messages m ON m.id = g.message_id
               WHERE g.tag = ?2 AND ${t("g")} ORDER BY g.message_id DESC LIMIT ?3`;
    case "status":
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE m.id IN (
                SELECT DISTINCT r.message_id FROM recipients r WHERE r.status = ?2 ORDER BY r.message_id DESC LIMIT 1000
              ) AND ${t("m")} ORDER BY m.id DESC LIMIT ?3`;
    case "stream":
      // Indexes messages(tenant_id, stream, id) and messages(stream, id) (0007).
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE m.stream = lower(?2) AND ${t("m")} ORDER BY m.id DESC LIMIT ?3`;
    case null:
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE ${t("m")} AND ?2 IS NOT NULL ORDER BY m.id DESC LIMIT ?3`;
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
    .prepare(searchSql(field, tenant === ALL_TENANTS ? "all" : "tenant"))
    .bind(tenant, term.trim(), limit)
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

/** Suppressions SQL for all tenants or one. Bound: ?1 tenant (ignored for all), ?2 now, ?3 text the address must contain or null, ?4 limit. */
export function suppressionsSql(scope: "all" | "tenant"): string {
  return `SELECT * FROM suppressions
  WHERE ${scope === "tenant" ? "tenant_id = ?1" : "?1 IS NOT NULL"} AND (expires_at IS NULL OR expires_at > ?2)
    AND (?3 IS NULL OR instr(address, ?3) > 0)
  ORDER BY created_at DESC LIMIT ?4`;
}

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
    .prepare(suppressionsSql(tenant === ALL_TENANTS ? "all" : "tenant"))
    .bind(tenant, now, f || null, limit)
    .all<SuppressionListRow>();
  return results;
}
