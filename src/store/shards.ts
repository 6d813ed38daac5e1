/**
 * Ledger shards (issue 17). The control plane (tenants, keys, domains, routes, aliases, webhooks, settings, the
 * inbound log, audit) lives in `DB`; each tenant's ledger (messages, the event feed with its rollups and
 * watermarks, idempotency keys, tracking counters, suppressions) lives in one of the D1 bindings listed in
 * LEDGER_SHARDS. Placement is
 * recorded in `tenant_shards` (control plane) when the tenant is created; a tenant without a row is on `DB`.
 * Every path finds its database here: `ledgerOf` for one tenant, `ledgerShards` to fan out over all of them.
 */
import { CONTROL_DB_BINDING, ledgerShardNames } from "../config";

export interface LedgerShard {
  name: string;
  db: D1Database;
}

/** A tenant's shard is not (or no longer) one of this Worker's D1 bindings. */
export class ShardError extends Error {}

/** The D1 binding of a shard by name. */
export function shardDb(env: Env, name: string): D1Database {
  return binding(env, name);
}

function binding(env: Env, name: string): D1Database {
  const db = (env as unknown as Record<string, D1Database | undefined>)[name];
  if (!db || typeof db.prepare !== "function") throw new ShardError(`ledger shard ${name} is not a D1 binding of this Worker`);
  return db;
}

/** Every ledger shard, in LEDGER_SHARDS order; `DB` is always among them for tenants placed before shards. */
export function ledgerShards(env: Env): LedgerShard[] {
  const names = ledgerShardNames(env);
  if (!names.includes(CONTROL_DB_BINDING)) names.push(CONTROL_DB_BINDING);
  return names.map((name) => ({ name, db: binding(env, name) }));
}

/** Placement never changes once made, so each isolate reads it once per tenant. */
const placements = new Map<string, string>();

/** The name of the binding that holds the tenant's ledger. */
export async function shardNameOf(env: Env, tenantId: string | null | undefined): Promise<string> {
  if (!tenantId) return CONTROL_DB_BINDING;
  const cached = placements.get(tenantId);
  if (cached) return cached;
  const row = await env.DB.prepare("SELECT shard FROM tenant_shards WHERE tenant_id = ?").bind(tenantId).first<{ shard: string }>();
  const name = row?.shard ?? CONTROL_DB_BINDING;
  if (placements.size > 10_000) placements.clear();
  placements.set(tenantId, name);
  return name;
}

/** The tenant's ledger database. */
export async function ledgerOf(env: Env, tenantId: string | null | undefined): Promise<D1Database> {
  return binding(env, await shardNameOf(env, tenantId));
}

/** Tenants per shard (tenants without a placement row count for DB), the new tenant itself left out. */
async function tenantsPerShard(db: D1Database, except: string): Promise<Map<string, number>> {
  const { results } = await db
    .prepare(
      `SELECT COALESCE(s.shard, ?1) AS shard, COUNT(*) AS n FROM tenants t LEFT JOIN tenant_shards s ON s.tenant_id = t.id
        WHERE t.id <> ?2 GROUP BY 1`,
    )
    .bind(CONTROL_DB_BINDING, except)
    .all<{ shard: string; n: number }>();
  return new Map(results.map((r) => [r.shard, r.n]));
}

/**
 * Places a new tenant: on `requested` when given (it must be a configured shard), else on the shard with the
 * fewest tenants (ties: LEDGER_SHARDS order). A shard other than DB gets the tenant's id in its own `tenants`
 * (lookups by message id seek once per tenant listed there). Returns the shard's name.
 */
export async function placeTenant(env: Env, tenantId: string, name: string, requested?: string, now = Date.now()): Promise<string> {
  const names = ledgerShardNames(env);
  let shard: string;
  if (requested !== undefined) {
    if (!names.includes(requested)) throw new ShardError(`shard must be one of ${names.join(", ")}`);
    shard = requested;
  } else {
    const load = await tenantsPerShard(env.DB, tenantId);
    shard = names.reduce((best, n) => ((load.get(n) ?? 0) < (load.get(best) ?? 0) ? n : best), names[0]!);
  }
  if (shard !== CONTROL_DB_BINDING) {
    await binding(env, shard).prepare("INSERT OR IGNORE INTO tenants (id, name, created_at) VALUES (?, ?, ?)").bind(tenantId, name, now).run();
  }
  await env.DB.prepare("INSERT INTO tenant_shards (tenant_id, shard, placed_at) VALUES (?, ?, ?)").bind(tenantId, shard, now).run();
  placements.set(tenantId, shard);
  return shard;
}

/** Placement of tenants for the admin API: tenant id → shard name (only tenants with a row). */
export async function placementsOf(db: D1Database, tenantIds: readonly string[]): Promise<Map<string, string>> {
  if (!tenantIds.length) return new Map();
  const { results } = await db
    .prepare(`SELECT tenant_id, shard FROM tenant_shards WHERE tenant_id IN (${tenantIds.map(() => "?").join(", ")})`)
    .bind(...tenantIds)
    .all<{ tenant_id: string; shard: string }>();
  return new Map(results.map((r) => [r.tenant_id, r.shard]));
}

/**
 * Runs `fn` on every shard in parallel. A failing shard does not stop the others: every shard runs, then the
 * first failure is thrown (naming the shard) so the caller's invocation still reports it.
 */
export async function onEveryShard<T>(env: Env, fn: (shard: LedgerShard) => Promise<T>): Promise<T[]> {
  const shards = ledgerShards(env);
  const settled = await Promise.allSettled(shards.map((s) => fn(s)));
  const failed = settled.findIndex((r) => r.status === "rejected");
  if (failed >= 0) {
    for (const [i, r] of settled.entries()) if (r.status === "rejected") console.error(`ledger shard ${shards[i]!.name}:`, r.reason);
    throw new Error(`ledger shard ${shards[failed]!.name} failed`, { cause: (settled[failed] as PromiseRejectedResult).reason });
  }
  return settled.map((r) => (r as PromiseFulfilledResult<T>).value);
}

/** Like onEveryShard, but a failing shard only drops out of the answer (for pages that show what they can). */
export async function fromEveryShard<T>(env: Env, fn: (shard: LedgerShard) => Promise<T>): Promise<{ values: T[]; failed: string[] }> {
  const shards = ledgerShards(env);
  const settled = await Promise.allSettled(shards.map((s) => fn(s)));
  const values: T[] = [];
  const failed: string[] = [];
  settled.forEach((r, i) => {
    if (r.status === "fulfilled") values.push(r.value);
    else {
      console.error(`ledger shard ${shards[i]!.name}:`, r.reason);
      failed.push(shards[i]!.name);
    }
  });
  return { values, failed };
}

/**
 * Looks a message up on every shard in parallel (an id from a tracking link or a bounce names no tenant) and
 * answers the first hit with its shard. Not found while a shard failed: that shard's error is thrown, since the
 * message may be there (the caller then fails temporarily rather than calling it unknown).
 */
export async function findOnShards<T>(
  env: Env,
  fn: (db: D1Database) => Promise<T | null>,
  shards: readonly LedgerShard[] = ledgerShards(env),
): Promise<{ value: T; shard: LedgerShard } | null> {
  const settled = await Promise.allSettled(shards.map((s) => fn(s.db)));
  for (const [i, r] of settled.entries()) if (r.status === "fulfilled" && r.value !== null) return { value: r.value, shard: shards[i]! };
  const failed = settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  if (failed) throw failed.reason;
  return null;
}

/** Drops an erased tenant's placement (issue 21: no row may name the tenant once its data is erased). */
export async function forgetPlacement(env: Env, tenantId: string): Promise<void> {
  await env.DB.prepare("DELETE FROM tenant_shards WHERE tenant_id = ?").bind(tenantId).run();
  placements.delete(tenantId);
}
