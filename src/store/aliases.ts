/** Forwarding aliases in D1: an address Email Routing hands the Worker, and the destinations it forwards to. */

export interface Alias {
  /** Lowercase address of the alias. */
  address: string;
  tenantId: string;
  destinations: string[];
  description: string | null;
  createdAt: number;
  updatedAt: number;
}

interface AliasRow {
  address: string;
  tenant_id: string;
  destinations: string;
  description: string | null;
  created_at: number;
  updated_at: number;
}

function toAlias(r: AliasRow): Alias {
  const parsed: unknown = JSON.parse(r.destinations);
  return {
    address: r.address,
    tenantId: r.tenant_id,
    destinations: Array.isArray(parsed) ? parsed.filter((d): d is string => typeof d === "string") : [],
    description: r.description,
    createdAt: r.created_at,
    updatedAt: r.updated_at,
  };
}

/** The alias for an address (any letter case), or null. */
export async function findAlias(db: D1Database, address: string): Promise<Alias | null> {
  const row = await db.prepare("SELECT * FROM aliases WHERE address = ?").bind(address.toLowerCase()).first<AliasRow>();
  return row ? toAlias(row) : null;
}

/** The alias for an address with whether its tenant is suspended (a missing tenant counts as suspended), or null. */
export async function findAliasForDelivery(db: D1Database, address: string): Promise<(Alias & { tenantSuspended: boolean }) | null> {
  const row = await db
    .prepare("SELECT a.*, COALESCE(t.suspended, 1) AS tenant_suspended FROM aliases a LEFT JOIN tenants t ON t.id = a.tenant_id WHERE a.address = ?")
    .bind(address.toLowerCase())
    .first<AliasRow & { tenant_suspended: number }>();
  return row ? { ...toAlias(row), tenantSuspended: row.tenant_suspended !== 0 } : null;
}

/** Creates an alias; returns false when the address is taken. */
export async function createAlias(db: D1Database, a: { address: string; tenantId: string; destinations: string[]; description: string | null; now?: number }): Promise<boolean> {
  const now = a.now ?? Date.now();
  const r = await db
    .prepare(
      `INSERT INTO aliases (address, tenant_id, destinations, description, created_at, updated_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (address) DO NOTHING`,
    )
    .bind(a.address.toLowerCase(), a.tenantId, JSON.stringify(a.destinations), a.description, now, now)
    .run();
  return (r.meta.changes ?? 0) > 0;
}

/** Replaces an alias's destinations and/or description; returns the updated alias, or null when there is none. */
export async function updateAlias(
  db: D1Database,
  address: string,
  patch: { destinations?: string[]; description?: string | null },
  now = Date.now(),
): Promise<Alias | null> {
  const row = await db
    .prepare(
      `UPDATE aliases SET destinations = COALESCE(?, destinations), description = CASE WHEN ? THEN ? ELSE description END, updated_at = ?
        WHERE address = ? RETURNING *`,
    )
    .bind(
      patch.destinations ? JSON.stringify(patch.destinations) : null,
      patch.description !== undefined ? 1 : 0,
      patch.description ?? null,
      now,
      address.toLowerCase(),
    )
    .first<AliasRow>();
  return row ? toAlias(row) : null;
}

/** Deletes an alias; returns whether it existed. */
export async function deleteAlias(db: D1Database, address: string): Promise<boolean> {
  const r = await db.prepare("DELETE FROM aliases WHERE address = ?").bind(address.toLowerCase()).run();
  return (r.meta.changes ?? 0) > 0;
}

/** A page of aliases ordered by address, optionally of one tenant; `after` is the last address of the previous page. */
export async function listAliases(db: D1Database, opts: { tenantId: string | null; after: string | null; limit: number }): Promise<Alias[]> {
  const { results } = await db
    .prepare("SELECT * FROM aliases WHERE (? IS NULL OR tenant_id = ?) AND (? IS NULL OR address > ?) ORDER BY address LIMIT ?")
    .bind(opts.tenantId, opts.tenantId, opts.after, opts.after, opts.limit)
    .all<AliasRow>();
  return results.map(toAlias);
}
