/**
 * Retention of the ledger (issue 16): every table that grows with traffic is pruned by the cron in bounded steps.
 * Messages whose recipients are all final go `MESSAGE_RETENTION_DAYS` after acceptance, with their tracking
 * counters and tag rows; a message still pending is never deleted (housekeeping expires it first). Each step is
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

/** Prunes message history older than `retentionMs`, at most `maxRows` rows per table. */
export async function pruneLedger(db: D1Database, retentionMs: number, maxRows: number, now = Date.now()): Promise<LedgerPruneResult> {
  const floor = idFloor(now - retentionMs);
  const { results: tenants } = await db.prepare("SELECT id FROM tenants").all<{ id: string }>();
  let messages = 0;
  for (const t of tenants) {
    messages += await inSteps(maxRows - messages, async (limit) => {
      const r = await db
        .prepare("DELETE FROM messages WHERE tenant_id = ?1 AND id IN (SELECT id FROM messages WHERE tenant_id = ?1 AND id < ?2 AND open = 0 ORDER BY id LIMIT ?3)")
        .bind(t.id, floor, limit)
        .run();
      return r.meta.changes ?? 0;
    });
    if (messages >= maxRows) break;
  }
  // Tracking counters are keyed by message id first: a primary-key range.
  const trackingRecipients = await inSteps(maxRows, async (limit) => {
    const r = await db
      .prepare("DELETE FROM tracking_recipients WHERE (message_id, recipient_idx) IN (SELECT message_id, recipient_idx FROM tracking_recipients WHERE message_id < ? ORDER BY message_id LIMIT ?)")
      .bind(floor, limit)
      .run();
    return r.meta.changes ?? 0;
  });
  // Tag rows are keyed by tag first: this reads the table, which rows read make cheap.
  const tags = await inSteps(maxRows, async (limit) => {
    const r = await db
      .prepare("DELETE FROM report_message_tags WHERE (tag, message_id) IN (SELECT tag, message_id FROM report_message_tags WHERE message_id < ? LIMIT ?)")
      .bind(floor, limit)
      .run();
    return r.meta.changes ?? 0;
  });
  return { messages, trackingRecipients, tags };
}
