/** API keys and tenants in D1. Keys are stored as SHA-256 hashes; the plaintext exists only at creation. */
import { constantTimeEqual } from "../mime/hmac";
import { API_KEY_PREFIX } from "../config";
import { newId } from "./ids";

export interface Tenant {
  id: string;
  name: string;
  suspended: boolean;
  rateLimitPerMinute: number | null;
  defaultStream: "transactional" | "broadcast";
  /** All of the tenant's mail leaves over verified TLS only (issue 21, RFC 8689 REQUIRETLS semantics). */
  requireTls: boolean;
}

export interface KeyRecord {
  keyId: string;
  /** The key's first characters, as listed by the admin API (names the key in the audit trail). */
  prefix: string;
  tenant: Tenant;
  revoked: boolean;
}

export async function sha256Hex(text: string): Promise<string> {
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(text));
  return [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
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
  forgetCachedApiKeys();
  return { id, key };
}

/**
 * How long this isolate reuses a key's record (its tenant, suspension and revocation included) before reading it
 * again: one D1 round trip less per request for a busy key (issue 16). A key revoked or a tenant suspended or changed
 * through this isolate is forgotten at once; other isolates may accept a revoked key or a suspended tenant's
 * requests for at most this long (docs/security.md).
 */
export const API_KEY_CACHE_MS = 2_000;
/** Records kept at most: a flood of distinct (invalid) keys cannot grow the isolate's memory without bound. */
const API_KEY_CACHE_ENTRIES = 1_000;
const keyCache = new Map<string, { record: KeyRecord | null; until: number }>();
/** Counts `forgetCachedApiKeys` calls: a read that started before one is not cached (it may predate the change). */
let keyCacheGeneration = 0;

/** Forgets every cached key record: called by every write that revokes a key or changes or suspends a tenant. */
export function forgetCachedApiKeys(): void {
  keyCache.clear();
  keyCacheGeneration++;
}

/**
 * The record of a presented key (null: no such key), from this isolate's cache while it is younger than
 * `API_KEY_CACHE_MS`. Unknown keys are cached too (a key created later is found once the entry expires, or at once
 * when it was created through this isolate), so guessing costs no D1 read per attempt.
 */
export async function findApiKey(db: D1Database, presented: string, now = Date.now()): Promise<KeyRecord | null> {
  const hash = await sha256Hex(presented);
  const hit = keyCache.get(hash);
  if (hit && hit.until > now) return hit.record;
  const generation = keyCacheGeneration;
  const record = await readApiKey(db, hash);
  if (generation !== keyCacheGeneration) return record;
  keyCache.delete(hash);
  if (keyCache.size >= API_KEY_CACHE_ENTRIES) keyCache.delete(keyCache.keys().next().value!);
  keyCache.set(hash, { record, until: now + API_KEY_CACHE_MS });
  return record;
}

/** Reads a key's record by the hash of the presented key, then confirms with a constant-time comparison. */
async function readApiKey(db: D1Database, hash: string): Promise<KeyRecord | null> {
  const row = await db
    .prepare(
      `SELECT k.id AS key_id, k.prefix, k.key_hash, k.revoked_at, t.id, t.name, t.suspended, t.rate_limit_per_minute, t.default_stream, t.require_tls
         FROM api_keys k JOIN tenants t ON t.id = k.tenant_id WHERE k.key_hash = ?`,
    )
    .bind(hash)
    .first<{
      key_id: string;
      prefix: string;
      key_hash: string;
      revoked_at: number | null;
      id: string;
      name: string;
      suspended: number;
      rate_limit_per_minute: number | null;
      default_stream: string;
      require_tls: number | null;
    }>();
  if (!row || !constantTimeEqual(row.key_hash, hash)) return null;
  return {
    keyId: row.key_id,
    prefix: row.prefix,
    revoked: row.revoked_at !== null,
    tenant: {
      id: row.id,
      name: row.name,
      suspended: row.suspended === 1,
      rateLimitPerMinute: row.rate_limit_per_minute,
      defaultStream: row.default_stream === "broadcast" ? "broadcast" : "transactional",
      requireTls: row.require_tls === 1,
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

/** The statement that reads whether a tenant owns a sender domain and whether it was verified (`domainStatusOf`). */
export function tenantDomainStatement(db: D1Database, tenantId: string, domain: string): D1PreparedStatement {
  return db.prepare("SELECT verified_at FROM sender_domains WHERE domain = ? AND tenant_id = ?").bind(domain.toLowerCase(), tenantId);
}

/** A tenant's hold on a sender domain, from the result of `tenantDomainStatement`. */
export function domainStatusOf(result: D1Result): { owned: boolean; verified: boolean } {
  const row = (result.results as { verified_at: number | null }[])[0];
  return { owned: row !== undefined, verified: row !== undefined && row.verified_at !== null };
}

/** Whether the tenant owns the domain, and whether its DNS records were verified (POST /v1/domains/:d/verify). */
export async function tenantDomainStatus(db: D1Database, tenantId: string, domain: string): Promise<{ owned: boolean; verified: boolean }> {
  return domainStatusOf(await tenantDomainStatement(db, tenantId, domain).all());
}

/** Changes a tenant's name, suspension, rate limit or default stream; returns false when there is no such tenant. */
export async function updateTenant(
  db: D1Database,
  id: string,
  patch: {
    name?: string;
    suspended?: boolean;
    rateLimitPerMinute?: number | null;
    defaultStream?: "transactional" | "broadcast";
    requireTls?: boolean;
    retentionDays?: number | null;
    redactAfterDays?: number | null;
    redactMode?: "redact" | "hash" | null;
  },
): Promise<boolean> {
  const sets: string[] = [];
  const values: (string | number | null)[] = [];
  if (patch.name !== undefined) (sets.push("name = ?"), values.push(patch.name));
  if (patch.suspended !== undefined) (sets.push("suspended = ?"), values.push(patch.suspended ? 1 : 0));
  if (patch.rateLimitPerMinute !== undefined) (sets.push("rate_limit_per_minute = ?"), values.push(patch.rateLimitPerMinute));
  if (patch.defaultStream !== undefined) (sets.push("default_stream = ?"), values.push(patch.defaultStream));
  if (patch.requireTls !== undefined) (sets.push("require_tls = ?"), values.push(patch.requireTls ? 1 : 0));
  if (patch.retentionDays !== undefined) (sets.push("retention_days = ?"), values.push(patch.retentionDays));
  if (patch.redactAfterDays !== undefined) (sets.push("redact_after_days = ?"), values.push(patch.redactAfterDays));
  if (patch.redactMode !== undefined) (sets.push("redact_mode = ?"), values.push(patch.redactMode));
  if (!sets.length) return (await getTenant(db, id)) !== null;
  const r = await db.prepare(`UPDATE tenants SET ${sets.join(", ")} WHERE id = ?`).bind(...values, id).run();
  forgetCachedApiKeys();
  return (r.meta.changes ?? 0) > 0;
}

export interface TenantView {
  id: string;
  name: string;
  suspended: boolean;
  rate_limit_per_minute: number | null;
  default_stream: string;
  require_tls: boolean;
  /** Data minimisation (issue 21): days of message history kept (null: MESSAGE_RETENTION_DAYS). */
  retention_days: number | null;
  /** Days after acceptance when subjects and addresses are redacted (null: never), and how. */
  redact_after_days: number | null;
  redact_mode: "redact" | "hash" | null;
  /** Set while an erase of the tenant's data is in progress. */
  erase_requested_at: string | null;
  created_at: string;
  domains: string[];
  keys: { id: string; prefix: string; name: string | null; created_at: string; revoked_at: string | null }[];
}

/** A tenant with its domains and keys (never key hashes). */
export async function getTenant(db: D1Database, id: string): Promise<TenantView | null> {
  const [t, d, k] = await db.batch([
    db.prepare("SELECT * FROM tenants WHERE id = ?").bind(id),
    db.prepare("SELECT domain FROM sender_domains WHERE tenant_id = ? ORDER BY domain").bind(id),
    db.prepare("SELECT id, prefix, name, created_at, revoked_at FROM api_keys WHERE tenant_id = ? ORDER BY created_at").bind(id),
  ]);
  const row = t?.results[0] as
    | {
        id: string;
        name: string;
        suspended: number;
        rate_limit_per_minute: number | null;
        default_stream: string;
        require_tls?: number;
        retention_days?: number | null;
        redact_after_days?: number | null;
        redact_mode?: string | null;
        erase_requested_at?: number | null;
        created_at: number;
      }
    | undefined;
  if (!row) return null;
  const iso = (ms: number) => new Date(ms).toISOString();
  return {
    id: row.id,
    name: row.name,
    suspended: row.suspended === 1,
    rate_limit_per_minute: row.rate_limit_per_minute,
    default_stream: row.default_stream,
    require_tls: row.require_tls === 1,
    retention_days: row.retention_days ?? null,
    redact_after_days: row.redact_after_days ?? null,
    redact_mode: row.redact_after_days === null || row.redact_after_days === undefined ? null : row.redact_mode === "hash" ? "hash" : "redact",
    erase_requested_at: row.erase_requested_at ? iso(row.erase_requested_at) : null,
    created_at: iso(row.created_at),
    domains: ((d?.results ?? []) as { domain: string }[]).map((r) => r.domain),
    keys: ((k?.results ?? []) as { id: string; prefix: string; name: string | null; created_at: number; revoked_at: number | null }[]).map((r) => ({
      id: r.id,
      prefix: r.prefix,
      name: r.name,
      created_at: iso(r.created_at),
      revoked_at: r.revoked_at === null ? null : iso(r.revoked_at),
    })),
  };
}

/** Tenants, oldest first, after the cursor (a tenant id). */
export async function listTenants(db: D1Database, limit: number, after: string | null): Promise<{ id: string; name: string; suspended: boolean }[]> {
  const { results } = await db
    .prepare("SELECT id, name, suspended FROM tenants WHERE (? IS NULL OR id > ?) ORDER BY id LIMIT ?")
    .bind(after, after, limit)
    .all<{ id: string; name: string; suspended: number }>();
  return results.map((r) => ({ id: r.id, name: r.name, suspended: r.suspended === 1 }));
}

/** Adds a sender domain to a tenant; throws on a domain another tenant already owns (UNIQUE). */
export async function addSenderDomain(db: D1Database, tenantId: string, domain: string): Promise<void> {
  await db.prepare("INSERT INTO sender_domains (domain, tenant_id, created_at) VALUES (?, ?, ?)").bind(domain.toLowerCase(), tenantId, Date.now()).run();
}

export async function removeSenderDomain(db: D1Database, tenantId: string, domain: string): Promise<boolean> {
  const r = await db.prepare("DELETE FROM sender_domains WHERE domain = ? AND tenant_id = ?").bind(domain.toLowerCase(), tenantId).run();
  return (r.meta.changes ?? 0) > 0;
}

export interface SenderDomainRow {
  domain: string;
  tenant_id: string;
  created_at: number;
  verified_at: number | null;
  last_check_at: number | null;
  last_check: string | null;
}

export async function getSenderDomain(db: D1Database, tenantId: string, domain: string): Promise<SenderDomainRow | null> {
  return db.prepare("SELECT * FROM sender_domains WHERE domain = ? AND tenant_id = ?").bind(domain.toLowerCase(), tenantId).first<SenderDomainRow>();
}

export async function listSenderDomains(db: D1Database, tenantId: string): Promise<SenderDomainRow[]> {
  const { results } = await db.prepare("SELECT * FROM sender_domains WHERE tenant_id = ? ORDER BY domain").bind(tenantId).all<SenderDomainRow>();
  return results;
}

/** Records the outcome of a DNS check of a sender domain. */
export async function recordDomainCheck(db: D1Database, domain: string, ok: boolean, report: unknown, now = Date.now()): Promise<void> {
  await db
    .prepare("UPDATE sender_domains SET last_check_at = ?, last_check = ?, verified_at = CASE WHEN ? THEN COALESCE(verified_at, ?) ELSE NULL END WHERE domain = ?")
    .bind(now, JSON.stringify(report), ok ? 1 : 0, now, domain.toLowerCase())
    .run();
}

/**
 * Counts `n` sends against the tenant's per-minute limit (fixed one-minute windows) and returns the number of
 * seconds until the window ends when the limit is exceeded, or 0 when the sends are allowed.
 */
export async function consumeRateLimit(db: D1Database, tenantId: string, limitPerMinute: number, n: number, now = Date.now()): Promise<number> {
  const windowStart = now - (now % 60_000);
  const row = await db
    .prepare(
      `INSERT INTO rate_counters (tenant_id, window_start, count) VALUES (?, ?, ?)
       ON CONFLICT (tenant_id, window_start) DO UPDATE SET count = count + excluded.count RETURNING count`,
    )
    .bind(tenantId, windowStart, n)
    .first<{ count: number }>();
  const count = row?.count ?? n;
  if (count <= limitPerMinute) return 0;
  // Refused sends do not count against the next attempt in this window.
  await db.prepare("UPDATE rate_counters SET count = count - ? WHERE tenant_id = ? AND window_start = ?").bind(n, tenantId, windowStart).run();
  return Math.max(1, Math.ceil((windowStart + 60_000 - now) / 1000));
}

/** The count in `key`'s current one-minute window (0 when nothing was counted). */
export async function rateCount(db: D1Database, key: string, now = Date.now()): Promise<number> {
  const row = await db.prepare("SELECT count FROM rate_counters WHERE tenant_id = ? AND window_start = ?").bind(key, now - (now % 60_000)).first<{ count: number }>();
  return row?.count ?? 0;
}

/** Housekeeping: drops rate counters of past windows. */
export async function expireRateCounters(db: D1Database, now = Date.now()): Promise<void> {
  await db.prepare("DELETE FROM rate_counters WHERE window_start < ?").bind(now - 120_000).run();
}
