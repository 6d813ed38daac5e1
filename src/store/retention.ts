/**
 * Retention of the ledger (issue 16): every table that grows with traffic is pruned by the cron in bounded steps.
 * Messages whose recipients are all final go `MESSAGE_RETENTION_DAYS` (or the tenant's `retention_days`, issue 21)
 * after acceptance, with their tracking counters and tag rows; a message still pending is never deleted (housekeeping expires it first). Each step is
 * one statement over at most `PRUNE_STEP_ROWS` rows of a primary-key range, and a run stops after `maxRows` per
 * table, so one run stays well inside D1's 30-second statement limit; the next run continues where it stopped.
 */
import { idFloor } from "./ids";

/** Rows one delete statement touches at most. */
export const PRUNE_STEP_ROWS = 5_000;

export interface LedgerPruneResult {
  messages: number;
  trackingRecipients: number;
  tags: number;
}

/** Deletes up to `maxRows` rows by repeating `step` (which returns how many it deleted) until it deletes fewer than a step. */
async function inSteps(maxRows: number, step: (limit: number) => Promise<number>): Promise<number> {
  let total = 0;
  while (total < maxRows) {
    const limit = Math.min(PRUNE_STEP_ROWS, maxRows - total);
    const n = await step(limit);
    total += n;
    if (n < limit) break;
  }
  return total;
}

/** A tenant's data-minimisation settings (issue 21): null fields fall back to the relay's defaults. */
export interface TenantRetention {
  id: string;
  /** Days of message history kept; null: MESSAGE_RETENTION_DAYS. */
  retentionDays: number | null;
  /** Days after acceptance when subjects and addresses are redacted; null: never. */
  redactAfterDays: number | null;
  redactMode: "redact" | "hash" | null;
}

/** Every tenant's retention settings (the tenants table is small: one row per account). */
export async function tenantRetentions(db: D1Database): Promise<TenantRetention[]> {
  const { results } = await db
    .prepare("SELECT id, retention_days, redact_after_days, redact_mode FROM tenants")
    .all<{ id: string; retention_days: number | null; redact_after_days: number | null; redact_mode: string | null }>();
  return results.map((t) => ({
    id: t.id,
    retentionDays: t.retention_days,
    redactAfterDays: t.redact_after_days,
    redactMode: t.redact_mode === "hash" ? "hash" : t.redact_after_days === null ? null : "redact",
  }));
}

/**
 * Prunes message history older than each tenant's retention (`retention_days`, else `retentionMs`), at most
 * `maxRows` rows per table. Returns the R2 keys of deleted messages that still named a body (normally deleted once
 * every recipient was final; a crash in between leaves one behind), for the caller to delete.
 */
export async function pruneLedger(db: D1Database, retentionMs: number, maxRows: number, now = Date.now()): Promise<LedgerPruneResult & { bodyKeys: string[] }> {
  const floor = idFloor(now - retentionMs);
  const tenants = await tenantRetentions(db);
  const bodyKeys: string[] = [];
  let messages = 0;
  let trackingRecipients = 0;
  for (const t of tenants) {
    const tenantFloor = t.retentionDays === null ? floor : idFloor(now - t.retentionDays * 86_400_000);
    messages += await inSteps(maxRows - messages, async (limit) => {
      const { results } = await db
        .prepare(
          "DELETE FROM messages WHERE tenant_id = ?1 AND id IN (SELECT id FROM messages WHERE tenant_id = ?1 AND id < ?2 AND open = 0 ORDER BY id LIMIT ?3) RETURNING body_key",
        )
        .bind(t.id, tenantFloor, limit)
        .all<{ body_key: string | null }>();
      for (const r of results) if (r.body_key) bodyKeys.push(r.body_key);
      return results.length;
    });
    // Tracking counters by the tenant's index (tenant_id, message_id): a range below the tenant's floor.
    trackingRecipients += await inSteps(maxRows - trackingRecipients, async (limit) => {
      const r = await db
        .prepare(
          "DELETE FROM tracking_recipients WHERE (message_id, recipient_idx) IN (SELECT message_id, recipient_idx FROM tracking_recipients WHERE tenant_id = ? AND message_id < ? ORDER BY message_id LIMIT ?)",
        )
        .bind(t.id, tenantFloor, limit)
        .run();
      return r.meta.changes ?? 0;
    });
    if (messages >= maxRows) break;
  }
  // Tag rows are keyed by tag first: this reads the table, which rows read make cheap.
  const tags = await inSteps(maxRows, async (limit) => {
    const r = await db
      .prepare("DELETE FROM report_message_tags WHERE (tag, message_id) IN (SELECT tag, message_id FROM report_message_tags WHERE message_id < ? LIMIT ?)")
      .bind(floor, limit)
      .run();
    return r.meta.changes ?? 0;
  });
  return { messages, trackingRecipients, tags, bodyKeys };
}
