/** Small control-plane reads and writes on tenants and their keys that the admin routes need. */
import { forgetCachedApiKeys } from "./keys";

/** True when a tenant with this id exists. */
export async function tenantExists(db: D1Database, tenantId: string): Promise<boolean> {
  return (await db.prepare("SELECT 1 AS ok FROM tenants WHERE id = ?").bind(tenantId).first()) !== null;
}

/** Revokes an active API key; false when there is no active key with this id. */
export async function revokeApiKey(db: D1Database, keyId: string, now = Date.now()): Promise<boolean> {
  const r = await db.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL").bind(now, keyId).run();
  forgetCachedApiKeys();
  return r.meta.changes > 0;
}

/** Removes a tenant created a moment ago whose placement failed (it has no keys or mail yet), with its domains. */
export async function deleteUnplacedTenant(db: D1Database, tenantId: string): Promise<void> {
  await db.batch([
    db.prepare("DELETE FROM sender_domains WHERE tenant_id = ?").bind(tenantId),
    db.prepare("DELETE FROM tenants WHERE id = ? AND NOT EXISTS (SELECT 1 FROM tenant_shards WHERE tenant_id = ?1)").bind(tenantId),
  ]);
}

/** The tenant's erase request time (null: none), or null for no such tenant: `{ erase_requested_at }` or null. */
export async function tenantEraseRequestedAt(db: D1Database, tenantId: string): Promise<{ erase_requested_at: number | null } | null> {
  return db.prepare("SELECT erase_requested_at FROM tenants WHERE id = ?").bind(tenantId).first<{ erase_requested_at: number | null }>();
}
