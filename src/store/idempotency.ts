/**
 * Idempotency keys in D1: the first response to (tenant, Idempotency-Key) is kept for 24 hours and replayed
 * for a repeat of the same request; a different request under the same key is a conflict. A row without a
 * response is a request still in progress (or one that failed, which releases the key).
 */

/** Stripe, Postmark and SES-style APIs keep idempotency keys for 24 hours. */
export const IDEMPOTENCY_TTL_MS = 24 * 3600 * 1000;
/** A claim without a response after this long belongs to an invocation that died; the key may be claimed again. */
export const IDEMPOTENCY_ABANDONED_MS = 2 * 60 * 1000;

export type IdempotencyClaim =
  | { state: "claimed" }
  | { state: "replay"; status: number; body: string }
  | { state: "conflict" }
  | { state: "in_progress" };

/** Claims the key for this request, or says why not. `requestHash` covers the route and the body. */
export async function claimIdempotencyKey(db: D1Database, tenantId: string, key: string, requestHash: string, now = Date.now()): Promise<IdempotencyClaim> {
  // An expired entry, or a claim abandoned by an invocation that died, no longer counts.
  await db
    .prepare("DELETE FROM idempotency_keys WHERE tenant_id = ? AND key = ? AND (expires_at <= ? OR (status IS NULL AND created_at <= ?))")
    .bind(tenantId, key, now, now - IDEMPOTENCY_ABANDONED_MS)
    .run();
  const inserted = await db
    .prepare(
      `INSERT INTO idempotency_keys (tenant_id, key, request_hash, created_at, expires_at) VALUES (?, ?, ?, ?, ?)
       ON CONFLICT (tenant_id, key) DO NOTHING`,
    )
    .bind(tenantId, key, requestHash, now, now + IDEMPOTENCY_TTL_MS)
    .run();
  if (inserted.meta.changes) return { state: "claimed" };
  const row = await db
    .prepare("SELECT request_hash, status, response FROM idempotency_keys WHERE tenant_id = ? AND key = ?")
    .bind(tenantId, key)
    .first<{ request_hash: string; status: number | null; response: string | null }>();
  if (!row) return claimIdempotencyKey(db, tenantId, key, requestHash, now);
  if (row.request_hash !== requestHash) return { state: "conflict" };
  if (row.status === null || row.response === null) return { state: "in_progress" };
  return { state: "replay", status: row.status, body: row.response };
}

/** Stores the response of a claimed key. */
export async function completeIdempotencyKey(db: D1Database, tenantId: string, key: string, status: number, body: string): Promise<void> {
  await db.prepare("UPDATE idempotency_keys SET status = ?, response = ? WHERE tenant_id = ? AND key = ?").bind(status, body, tenantId, key).run();
}

/** Releases a claimed key whose request failed before it produced a response worth replaying. */
export async function releaseIdempotencyKey(db: D1Database, tenantId: string, key: string): Promise<void> {
  await db.prepare("DELETE FROM idempotency_keys WHERE tenant_id = ? AND key = ? AND status IS NULL").bind(tenantId, key).run();
}

/** Housekeeping: drops expired keys; returns how many. */
export async function expireIdempotencyKeys(db: D1Database, now = Date.now()): Promise<number> {
  const r = await db.prepare("DELETE FROM idempotency_keys WHERE expires_at <= ?").bind(now).run();
  return r.meta.changes ?? 0;
}
