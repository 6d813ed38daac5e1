/** API keys and tenants in D1. Keys are stored as SHA-256 hashes; the plaintext exists only at creation. */
import { API_KEY_PREFIX } from "../config";
import { newId } from "./ids";

export interface Tenant {
  id: string;
  name: string;
  suspended: boolean;
  rateLimitPerMinute: number | null;
  defaultStream: "transactional" | "broadcast";
}

export interface KeyRecord {
  keyId: string;
  tenant: Tenant;
  revoked: boolean;
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
}

/** Compares two strings in time that depends only on their lengths. */
export function timingSafeEqualText(a: string, b: string): boolean {
  const ea = new TextEncoder().encode(a);
  const eb = new TextEncoder().encode(b);
  let diff = ea.length ^ eb.length;
  const n = Math.max(ea.length, eb.length);
  for (let i = 0; i < n; i++) diff |= (ea[i] ?? 0) ^ (eb[i] ?? 0);
  return diff === 0;
}

/** Makes a new random API key (shown once) for a tenant and stores only its hash. */
export async function createApiKey(db: D1Database, tenantId: string, name: string | null): Promise<{ id: string; key: string }> {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  const key = API_KEY_PREFIX + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
  const id = newId();
  await db
    .prepare("INSERT INTO api_keys (id, tenant_id, key_hash, prefix, name, created_at) VALUES (?, ?, ?, ?, ?, ?)")
    .bind(id, tenantId, await sha256Hex(key), key.slice(0, 10), name, Date.now())
    .run();
  return { id, key };
}

/** Finds the key's record by the hash of the presented key, then confirms with a constant-time comparison. */
export async function findApiKey(db: D1Database, presented: string): Promise<KeyRecord | null> {
  const hash = await sha256Hex(presented);
  const row = await db
    .prepare(
      `SELECT k.id AS key_id, k.key_hash, k.revoked_at, t.id, t.name, t.suspended, t.rate_limit_per_minute, t.default_stream
         FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = ?`,
    )
    .bind(hash)
    .first<{
      key_id: string;
      key_hash: string;
      revoked_at: number | null;
      id: string;
      name: string;
      suspended: number;
      rate_limit_per_minute: number | null;
      default_stream: string;
    }>();
  if (!row || !timingSafeEqualText(row.key_hash, hash)) return null;
  return {
    keyId: row.key_id,
    revoked: row.revoked_at !== null,
    tenant: {
      id: row.id,
      name: row.name,
      suspended: row.suspended === 1,
      rateLimitPerMinute: row.rate_limit_per_minute,
      defaultStream: row.default_stream === "broadcast" ? "broadcast" : "transactional",
    },
  };
}

export async function createTenant(db: D1Database, name: string, domains: string[], id = newId()): Promise<string> {
  const now = Date.now();
  await db.batch([
    db.prepare("INSERT INTO tenants (id, name, created_at) VALUES (?, ?, ?)").bind(id, name, now),
    ...domains.map((d) =>
      db.prepare("INSERT INTO sender_domains (domain, tenant_id, created_at) VALUES (?, ?, ?)").bind(d.toLowerCase(), id, now),
    ),
  ]);
  return id;
}

/** True when the tenant may send from this domain (exact domain match; subdomains must be added on their own). */
export async function tenantOwnsDomain(db: D1Database, tenantId: string, domain: string): Promise<boolean> {
  const row = await db
    .prepare("SELECT 1 AS ok FROM sender_domains WHERE domain = ? AND tenant_id = ?")
    .bind(domain.toLowerCase(), tenantId)
    .first<{ ok: number }>();
  return row !== null;
}
