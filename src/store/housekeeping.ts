/** Periodic safety nets run by the cron trigger. */
import { idFloor } from "./ids";
import { outcomeStatements, parseRecipients, type RecipientOutcome } from "./messages";

/** How far back the expiry sweep looks past the maximum age (the cron runs every few minutes, so a week is ample). */
const EXPIRY_SWEEP_WINDOW_MS = 7 * 86_400_000;

/**
 * Recipients that are still pending long after the maximum message age (a job lost to a platform failure,
 * for instance, that the re-drive could not send again) are ended as `expired` so no recipient stays pending
 * forever. A scheduled message's age counts from its send time.
 */
export async function expireAbandonedRecipients(db: D1Database, maxAgeSeconds: number, now = Date.now()): Promise<number> {
  const graceMs = 24 * 3600 * 1000;
  const cutoff = now - maxAgeSeconds * 1000 - graceMs;
  const { results } = await db
    .prepare(
      `SELECT tenant_id, id, rcpts FROM messages
        WHERE tenant_id IN (SELECT id FROM tenants) AND id >= ? AND id < ? AND open > 0 AND COALESCE(send_at, created_at) < ? LIMIT 500`,
    )
    .bind(idFloor(cutoff - EXPIRY_SWEEP_WINDOW_MS), idFloor(cutoff + 1), cutoff)
    .all<{ tenant_id: string; id: string; rcpts: string }>();
  const outcomes: RecipientOutcome[][] = results.map((m) =>
    parseRecipients(m.rcpts).flatMap((r, idx) =>
      r.f === undefined || r.f === null
        ? [{ messageId: m.id, tenantId: m.tenant_id, idx, address: r.a, status: "expired" as const, at: now, attempt: r.n ?? 0, text: "no delivery outcome within the maximum message age; ended by housekeeping" }]
        : [],
    ),
  );
  const stmts = outcomes.filter((o) => o.length).flatMap((o) => outcomeStatements(db, o));
  for (let i = 0; i < stmts.length; i += 100) await db.batch(stmts.slice(i, i + 100));
  return outcomes.reduce((n, o) => n + o.length, 0);
}
