/**
 * The suppression list in D1: addresses a tenant must not mail, per scope (transactional, broadcast, or all),
 * with a reason and an expiry that depends on the reason. Checked at accept; written by the API, one-click
 * unsubscribe, and the delivery engine / inbound handler on hard bounces and complaints.
 */

export type SuppressionScope = "transactional" | "broadcast" | "all";
export type SuppressionReason = "hard_bounce" | "soft_bounce" | "complaint" | "unsubscribe" | "manual";
export const SUPPRESSION_SCOPES: readonly SuppressionScope[] = ["transactional", "broadcast", "all"];
export const SUPPRESSION_REASONS: readonly SuppressionReason[] = ["hard_bounce", "soft_bounce", "complaint", "unsubscribe", "manual"];

const DAY_MS = 86_400_000;
/**
 * Default lifetime per reason. Hard bounces expire after 90 days (mailboxes get recreated; SES and Postmark let
 * such entries age out or be reactivated), soft bounces after 1 day (repeated temporary failures), complaints
 * and unsubscribes never (the recipient asked), manual entries never.
 */
export const SUPPRESSION_TTL_MS: Record<SuppressionReason, number | null> = {
  hard_bounce: 90 * DAY_MS,
  soft_bounce: DAY_MS,
  complaint: null,
  unsubscribe: null,
  manual: null,
};

export interface Suppression {
  tenantId: string;
  address: string;
  scope: SuppressionScope;
  reason: string;
  detail?: string | null;
  messageId?: string | null;
  createdAt?: number;
  /** Epoch ms; undefined = by reason (SUPPRESSION_TTL_MS), null = never. */
  expiresAt?: number | null;
}

export interface SuppressionRow {
  tenant_id: string;
  address: string;
  scope: SuppressionScope;
  reason: string;
  detail: string | null;
  message_id: string | null;
  created_at: number;
  expires_at: number | null;
}

/** Expiry for a reason, from `at`; null when entries for that reason never expire. */
export function expiryFor(reason: string, at: number): number | null {
  const ttl = SUPPRESSION_TTL_MS[reason as SuppressionReason];
  return ttl === undefined || ttl === null ? null : at + ttl;
}

/** Statement that adds (or refreshes) one suppression; run it alone or inside a `db.batch()`. */
export function addSuppressionStatement(db: D1Database, s: Suppression): D1PreparedStatement {
  const at = s.createdAt ?? Date.now();
  const expires = s.expiresAt === undefined ? expiryFor(s.reason, at) : s.expiresAt;
  return db
    .prepare(
      `INSERT INTO suppressions (tenant_id, address, scope, reason, detail, message_id, created_at, expires_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (tenant_id, address, scope) DO UPDATE SET reason = excluded.reason, detail = excluded.detail,
         message_id = excluded.message_id, created_at = excluded.created_at, expires_at = excluded.expires_at`,
    )
    .bind(s.tenantId, s.address.toLowerCase(), s.scope, s.reason, s.detail ?? null, s.messageId ?? null, at, expires);
}

/** Adds (or refreshes) one suppression entry. */
export async function addSuppression(db: D1Database, s: Suppression): Promise<void> {
  await addSuppressionStatement(db, s).run();
}

/**
 * The statements that find which of `addresses` are suppressed for this tenant in `scope` (entries of that scope
 * or of scope `all` that have not expired): one per 90 addresses (D1 allows at most 100 bound parameters).
 * `suppressedAddresses` reads their results.
 */
export function suppressedStatements(
  db: D1Database,
  tenantId: string,
  addresses: readonly string[],
  scope: "transactional" | "broadcast",
  now = Date.now(),
): D1PreparedStatement[] {
  const lower = [...new Set(addresses.map((a) => a.toLowerCase()))];
  const stmts: D1PreparedStatement[] = [];
  for (let i = 0; i < lower.length; i += 90) {
    const chunk = lower.slice(i, i + 90);
    stmts.push(
      db
        .prepare(
          `SELECT address FROM suppressions WHERE tenant_id = ? AND scope IN (?, 'all') AND (expires_at IS NULL OR expires_at > ?)
             AND address IN (${chunk.map(() => "?").join(", ")})`,
        )
        .bind(tenantId, scope, now, ...chunk),
    );
  }
  return stmts;
}

/** The suppressed addresses (lowercase) in the results of `suppressedStatements`. */
export function suppressedAddresses(results: D1Result[]): Set<string> {
  return new Set(results.flatMap((r) => (r.results as { address: string }[]).map((x) => x.address)));
}

/**
 * The subset of `addresses` (returned lowercase) suppressed for this tenant in `scope` — entries of that scope
 * or of scope `all` that have not expired. One D1 round trip.
 */
export async function findSuppressed(
  db: D1Database,
  tenantId: string,
  addresses: readonly string[],
  scope: "transactional" | "broadcast",
  now = Date.now(),
): Promise<Set<string>> {
  const stmts = suppressedStatements(db, tenantId, addresses, scope, now);
  return stmts.length ? suppressedAddresses(await db.batch(stmts)) : new Set();
}

/** Removes entries for an address (one scope, or every scope); returns how many were removed. */
export async function removeSuppression(db: D1Database, tenantId: string, address: string, scope?: SuppressionScope): Promise<number> {
  const r = scope
    ? await db.prepare("DELETE FROM suppressions WHERE tenant_id = ? AND address = ? AND scope = ?").bind(tenantId, address.toLowerCase(), scope).run()
    : await db.prepare("DELETE FROM suppressions WHERE tenant_id = ? AND address = ?").bind(tenantId, address.toLowerCase()).run();
  return r.meta.changes ?? 0;
}

/** A page of live entries, newest first; `cursor` is the opaque value returned as `next`. */
export async function listSuppressions(
  db: D1Database,
  tenantId: string,
  opts: { limit: number; cursor?: { createdAt: number; address: string; scope: string } | null; address?: string; now?: number },
): Promise<SuppressionRow[]> {
  const now = opts.now ?? Date.now();
  const c = opts.cursor ?? null;
  const { results } = await db
    .prepare(
      `SELECT * FROM suppressions WHERE tenant_id = ? AND (expires_at IS NULL OR expires_at > ?)
         AND (? IS NULL OR address = ?)
         AND (? IS NULL OR created_at < ? OR (created_at = ? AND (address || ' ' || scope) > ?))
       ORDER BY created_at DESC, address || ' ' || scope ASC LIMIT ?`,
    )
    .bind(
      tenantId,
      now,
      opts.address ?? null,
      opts.address?.toLowerCase() ?? null,
      c ? c.createdAt : null,
      c ? c.createdAt : null,
      c ? c.createdAt : null,
      c ? `${c.address} ${c.scope}` : null,
      opts.limit,
    )
    .all<SuppressionRow>();
  return results;
}
