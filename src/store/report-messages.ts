/** Reads for the reporting page's message search and suppression list. Every query is served by an index. */
import { idFloor } from "./ids";
import { summariseStatus, type RecipientStatus } from "./messages";
import { addressSearchForm } from "./redaction";
import { ALL_TENANTS, type TenantScope } from "./report";

export type SearchField = "id" | "recipient" | "sender" | "tag" | "status" | "stream";
export const SEARCH_FIELDS: readonly SearchField[] = ["id", "recipient", "sender", "tag", "status", "stream"];
export const SEARCH_LIMIT = 50;
/** Searches by address: they also compare with the address as rows redacted in mode `hash` hold it (issue 21). */
export const ADDRESS_SEARCH_FIELDS: readonly SearchField[] = ["recipient", "sender"];

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
  json_array_length(m.rcpts) AS rcpt_count, json_extract(m.rcpts, '$[0].a') AS first_rcpt,
  (SELECT group_concat(json_extract(x.value, '$.s')) FROM json_each(m.rcpts) x) AS statuses`;

/** Searches other than by id look at messages accepted this long ago at most (a primary-key range per tenant). */
export const SEARCH_WINDOW_MS = 31 * 86_400_000;

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
 * The SQL of a search (exposed so the index test can EXPLAIN it), for all tenants or one. Bound: ?1 tenant (ignored
 * for all), ?2 term, ?3 limit, ?4 the smallest message id to look at, and for the `ADDRESS_SEARCH_FIELDS` ?5 the term
 * as rows redacted in mode `hash` hold it (or null). Every search walks the primary key
 * (tenant_id, id) newest first and filters the message row (recipients are in `rcpts`): no index to keep up.
 */
export function searchSql(field: SearchField | null, scope: "all" | "tenant"): string {
  const t = scope === "tenant" ? "m.tenant_id = ?1" : "m.tenant_id IN (SELECT id FROM tenants) AND ?1 IS NOT NULL";
  const recent = `${t} AND m.id >= ?4`;
  const page = "ORDER BY m.id DESC LIMIT ?3";
  const inRcpts = (path: string, value: string) => `EXISTS (SELECT 1 FROM json_each(m.rcpts) x WHERE json_extract(x.value, '${path}') IN (${value}))`;
  switch (field) {
    case "id":
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE m.id = ?2 AND ${t} AND ?4 IS NOT NULL LIMIT ?3`;
    case "recipient":
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE ${recent} AND ${inRcpts("$.a", "?2, lower(?2), ?5")} ${page}`;
    case "sender":
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m
               WHERE ${recent} AND (m.header_from IN (?2, lower(?2), ?5) OR m.mail_from IN (?2, lower(?2), ?5)) ${page}`;
    case "tag":
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE ${recent} AND EXISTS (SELECT 1 FROM json_each(COALESCE(m.tags, '[]')) g WHERE g.value = ?2) ${page}`;
    case "status":
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE ${recent} AND ${inRcpts("$.s", "?2")} ${page}`;
    case "stream":
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE ${recent} AND m.stream = lower(?2) ${page}`;
    case null:
      return `SELECT ${SUMMARY_COLUMNS} FROM messages m WHERE ${recent} AND ?2 IS NOT NULL ${page}`;
  }
}

/**
 * Messages matching a search, newest first (message ids are time-ordered). With no field, the newest
 * messages. Recipient and status searches look at the newest 1000 matching recipients. With `hashKey`
 * (REDACTION_HASH_KEY), searches by recipient or sender also find rows redacted in mode `hash`: the term is hashed
 * per tenant, as the redaction pass hashed it.
 */
export async function searchMessages(
  db: D1Database,
  tenant: TenantScope,
  field: SearchField | null,
  term: string,
  hashKey: string | null,
  limit = SEARCH_LIMIT,
  now = Date.now(),
): Promise<MessageSummary[]> {
  const floor = idFloor(now - SEARCH_WINDOW_MS);
  // All tenants: one newest-first walk per tenant, merged here (a walk across tenants would sort the whole window).
  const tenants = tenant === ALL_TENANTS ? (await db.prepare("SELECT id FROM tenants").all<{ id: string }>()).results.map((r) => r.id) : [tenant];
  const sql = searchSql(field, "tenant");
  const q = term.trim();
  const byAddress = field !== null && ADDRESS_SEARCH_FIELDS.includes(field);
  const params = await Promise.all(
    tenants.map(async (t) => (byAddress ? [t, q, limit, floor, await addressSearchForm(hashKey, t, q)] : [t, q, limit, floor])),
  );
  const pages = params.length ? await db.batch<SummaryRow>(params.map((p) => db.prepare(sql).bind(...p))) : [];
  const rows = pages.flatMap((p) => p.results);
  rows.sort((a, b) => (a.id < b.id ? 1 : a.id > b.id ? -1 : 0));
  return rows.slice(0, limit).map(toSummary);
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
