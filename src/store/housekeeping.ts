/** Periodic safety nets run by the cron trigger. */
import { recordOutcome, type RecipientStatus } from "./messages";

/**
 * Recipients that are still pending long after the maximum message age (a job lost to a platform failure,
 * for instance) are ended as `expired` so no recipient stays pending forever. A scheduled message's age counts
 * from its send time.
 */
export async function expireAbandonedRecipients(db: D1Database, maxAgeSeconds: number, now = Date.now()): Promise<number> {
  const graceMs = 24 * 3600 * 1000;
  const { results } = await db
    .prepare(
      `SELECT r.message_id, r.idx, r.address, r.attempts, m.tenant_id FROM recipients r JOIN messages m ON m.id = r.message_id
        WHERE r.final_at IS NULL AND r.status IN ('queued', 'deferred') AND COALESCE(m.send_at, m.created_at) < ? LIMIT 500`,
    )
    .bind(now - maxAgeSeconds * 1000 - graceMs)
    .all<{ message_id: string; idx: number; address: string; attempts: number; tenant_id: string }>();
  if (!results.length) return 0;
  const status: RecipientStatus = "expired";
  await db.batch(
    results.flatMap((r) =>
      recordOutcome(db, {
        messageId: r.message_id,
        tenantId: r.tenant_id,
        idx: r.idx,
        address: r.address,
        status,
        at: now,
        attempt: r.attempts,
        text: "no delivery outcome within the maximum message age; ended by housekeeping",
      }),
    ),
  );
  return results.length;
}
