/**
 * Erasing a tenant's data on request (issue 21): every row that belongs to the tenant, in every table, then the
 * tenant itself. The audit trail is kept (it records who asked for the erase; `AUDIT_RETENTION_DAYS` ends it).
 * Work is done in bounded steps (`budget` rows per call, statements of at most `ERASE_STEP_ROWS`), so one
 * invocation never runs long; the admin route does one step and the cron continues until nothing is left.
 *
 * The first step marks the tenant (`erase_requested_at`), suspends it and deletes its API keys first, so nothing
 * new is accepted. Delivery jobs still in the queue find no message row and are dropped without sending
 * (delivery/consumer.ts); parked and scheduled jobs are deleted with the rest. Webhook jobs still in the queue
 * find no endpoint and are dropped without a post and without an attempt row (webhooks/consumer.ts).
 */
import { minimisationCursors } from "./minimisation";
import { forgetCachedApiKeys } from "./keys";

/** Rows one erase statement touches at most. */
export const ERASE_STEP_ROWS = 1_000;
/** Event rows one step scans at most (the feed has no index by tenant). */
const ERASE_EVENT_SCAN_ROWS = 20_000;

/** Every table with rows of a tenant, in the order they are emptied, with how to find its rows (`?1` = tenant id). */
const TENANT_TABLES: readonly { table: string; key: string; where: string }[] = [
  { table: "api_keys", key: "rowid", where: "tenant_id = ?1" },
  { table: "parked_jobs", key: "rowid", where: "tenant_id = ?1" },
  { table: "scheduled_jobs", key: "rowid", where: "json_extract(job, '$.tenantId') = ?1" },
  { table: "idempotency_keys", key: "rowid", where: "tenant_id = ?1" },
  { table: "suppressions", key: "rowid", where: "tenant_id = ?1" },
  { table: "rate_counters", key: "rowid", where: "tenant_id = ?1" },
  { table: "routes", key: "rowid", where: "tenant_id = ?1" },
  { table: "report_rollups", key: "(period, level, tenant_id, bucket, key, type)", where: "tenant_id = ?1" },
  { table: "report_latency", key: "(period, level, tenant_id, bucket, key, le_ms)", where: "tenant_id = ?1" },
  { table: "report_message_tags", key: "(tag, message_id)", where: "tenant_id = ?1" },
  // Endpoints before their attempts: an attempt is recorded only while its endpoint exists (store/webhooks.ts).
  { table: "webhooks", key: "rowid", where: "tenant_id = ?1" },
  { table: "webhook_attempts", key: "rowid", where: "tenant_id = ?1" },
  { table: "aliases", key: "rowid", where: "tenant_id = ?1" },
  { table: "inbound_messages", key: "rowid", where: "tenant_id = ?1" },
  { table: "tracking_settings", key: "(tenant_id, stream)", where: "tenant_id = ?1" },
  { table: "tracking_recipients", key: "(message_id, recipient_idx)", where: "tenant_id = ?1" },
  { table: "tenant_streams", key: "(tenant_id, stream)", where: "tenant_id = ?1" },
  { table: "reputation_events", key: "rowid", where: "tenant_id = ?1" },
  {
    table: "reputation_checks",
    key: "(subject, list)",
    where: "(subject IN (SELECT subject FROM reputation_subjects WHERE tenant_id = ?1) OR subject IN (SELECT domain FROM sender_domains WHERE tenant_id = ?1))",
  },
  { table: "reputation_subjects", key: "subject", where: "tenant_id = ?1" },
  { table: "dmarc_records", key: "rowid", where: "report IN (SELECT id FROM dmarc_reports WHERE tenant_id = ?1)" },
  { table: "dmarc_reports", key: "rowid", where: "tenant_id = ?1" },
  { table: "tls_report_policies", key: "rowid", where: "report IN (SELECT id FROM tls_reports WHERE tenant_id = ?1)" },
  { table: "tls_reports", key: "rowid", where: "tenant_id = ?1" },
  { table: "sender_domains", key: "rowid", where: "tenant_id = ?1" },
];

export interface EraseProgress {
  /** True once nothing of the tenant is left (the tenant row included). */
  done: boolean;
  /** Rows deleted by this step, per table. */
  deleted: Record<string, number>;
  /** R2 objects to delete: bodies of the deleted messages (`prefixes` are listed, for per-recipient bodies). */
  bodyKeys: string[];
  bodyPrefixes: string[];
}

/** Marks the tenant for erasure and suspends it; false when there is no such tenant. Repeating keeps the first time. */
export async function requestErase(db: D1Database, tenantId: string, now = Date.now()): Promise<boolean> {
  const r = await db.prepare("UPDATE tenants SET erase_requested_at = COALESCE(erase_requested_at, ?), suspended = 1 WHERE id = ?").bind(now, tenantId).run();
  forgetCachedApiKeys();
  return (r.meta.changes ?? 0) > 0;
}

/** Tenants whose erase was asked for and is not finished. */
export async function tenantsBeingErased(db: D1Database): Promise<string[]> {
  const { results } = await db.prepare("SELECT id FROM tenants WHERE erase_requested_at IS NOT NULL").all<{ id: string }>();
  return results.map((r) => r.id);
}

async function deleteRows(db: D1Database, table: string, key: string, where: string, tenantId: string, limit: number): Promise<number> {
  const columns = key.replace(/^\(|\)$/g, "");
  const r = await db.prepare(`DELETE FROM ${table} WHERE ${where} AND ${key} IN (SELECT ${columns} FROM ${table} WHERE ${where} LIMIT ?2)`).bind(tenantId, limit).run();
  return r.meta.changes ?? 0;
}

/** Deletes a batch of the tenant's messages; returns how many, with what R2 objects they leave behind. */
async function deleteMessages(db: D1Database, tenantId: string, limit: number, out: EraseProgress): Promise<number> {
  const { results } = await db
    .prepare("DELETE FROM messages WHERE tenant_id = ?1 AND id IN (SELECT id FROM messages WHERE tenant_id = ?1 ORDER BY id LIMIT ?2) RETURNING id, body_key, open")
    .bind(tenantId, limit)
    .all<{ id: string; body_key: string | null; open: number }>();
  for (const m of results) {
    if (m.body_key) out.bodyKeys.push(m.body_key);
    // Per-recipient bodies (VERP with differing bodies) exist only while recipients are pending.
    if (m.open > 0) out.bodyPrefixes.push(`bodies/${m.id}/`);
  }
  return results.length;
}

/**
 * Deletes the tenant's feed rows, scanning from a cursor. The newest row of the feed is not deleted but emptied of
 * everything that names the tenant (its id must stay so ids never go back; see migrations/0009_ledger.sql).
 */
async function deleteEvents(db: D1Database, tenantId: string, now: number): Promise<{ deleted: number; finished: boolean }> {
  const name = `erase:events:${tenantId}`;
  const from = (await db.prepare("SELECT value FROM ledger_cursors WHERE name = ?").bind(name).first<{ value: number }>())?.value ?? 0;
  const window = "SELECT id FROM events WHERE id > ?1 ORDER BY id LIMIT ?2";
  const [del, blank, last] = await db.batch([
    db.prepare(`DELETE FROM events WHERE id IN (${window}) AND tenant_id = ?3 AND id < (SELECT MAX(id) FROM events)`).bind(from, ERASE_EVENT_SCAN_ROWS, tenantId),
    db
      .prepare(
        `UPDATE events SET message_id = '', tenant_id = NULL, recipient_idx = NULL, recipient = NULL, type = 'erased', text = NULL, host = NULL,
                data = NULL, feed = 0, accepted_at = NULL WHERE id = (SELECT MAX(id) FROM events) AND tenant_id = ?1`,
      )
      .bind(tenantId),
    db.prepare(`SELECT MAX(id) AS last, COUNT(*) AS n FROM (${window})`).bind(from, ERASE_EVENT_SCAN_ROWS),
  ]);
  const { last: lastId, n: scanned } = (last!.results?.[0] ?? { last: null, n: 0 }) as { last: number | null; n: number };
  if (lastId !== null) {
    await db
      .prepare("INSERT INTO ledger_cursors (name, value, updated_at) VALUES (?, ?, ?) ON CONFLICT (name) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at")
      .bind(name, lastId, now)
      .run();
  }
  return { deleted: (del!.meta.changes ?? 0) + (blank!.meta.changes ?? 0), finished: scanned < ERASE_EVENT_SCAN_ROWS };
}

/**
 * One bounded step of erasing a tenant: at most `budget` rows (plus one scan of the event feed). Returns whether
 * everything is gone; call again (or let the cron) until it is.
 */
export async function eraseTenantStep(db: D1Database, tenantId: string, budget: number, now = Date.now()): Promise<EraseProgress> {
  const out: EraseProgress = { done: false, deleted: {}, bodyKeys: [], bodyPrefixes: [] };
  let left = budget;
  const count = (table: string, n: number) => {
    if (n) out.deleted[table] = (out.deleted[table] ?? 0) + n;
    left -= n;
  };
  for (const t of TENANT_TABLES) {
    for (;;) {
      const limit = Math.min(ERASE_STEP_ROWS, left);
      if (limit <= 0) return out;
      const n = await deleteRows(db, t.table, t.key, t.where, tenantId, limit);
      count(t.table, n);
      if (n < limit) break;
    }
  }
  for (;;) {
    const limit = Math.min(ERASE_STEP_ROWS, left);
    if (limit <= 0) return out;
    const n = await deleteMessages(db, tenantId, limit, out);
    count("messages", n);
    if (n < limit) break;
  }
  const events = await deleteEvents(db, tenantId, now);
  count("events", events.deleted);
  if (!events.finished) return out;
  // Last: the tenant's own cursors and the tenant. Ids of erased messages stay unique (newId is time-ordered and random).
  const names = [...minimisationCursors(tenantId), `erase:events:${tenantId}`];
  const [, gone] = await db.batch([
    db.prepare(`DELETE FROM ledger_cursors WHERE name IN (${names.map(() => "?").join(",")})`).bind(...names),
    db.prepare("DELETE FROM tenants WHERE id = ?").bind(tenantId),
  ]);
  count("tenants", gone!.meta.changes ?? 0);
  out.done = true;
  return out;
}
