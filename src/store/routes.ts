/** Delivery routes in D1: which next hop serves a recipient domain. */

export interface RouteRow {
  id: string;
  tenant_id: string | null;
  match_recipient_domain: string;
  next_hop_url: string;
  priority: number;
}

/** Routes that may serve a recipient domain for a tenant, best first: exact domain before `*`, then priority. */
export async function findRoutes(db: D1Database, recipientDomain: string, tenantId: string): Promise<RouteRow[]> {
  const { results } = await db
    .prepare(
      `SELECT id, tenant_id, match_recipient_domain, next_hop_url, priority FROM routes
        WHERE match_recipient_domain IN (?, '*') AND (tenant_id IS NULL OR tenant_id = ?)
        ORDER BY match_recipient_domain = '*', tenant_id IS NULL, priority`,
    )
    .bind(recipientDomain.toLowerCase(), tenantId)
    .all<RouteRow>();
  return results;
}

export async function insertRoute(
  db: D1Database,
  r: { id: string; tenantId?: string | null; matchRecipientDomain: string; nextHopUrl: string; priority?: number },
): Promise<void> {
  await db
    .prepare("INSERT INTO routes (id, tenant_id, match_recipient_domain, next_hop_url, priority, created_at) VALUES (?, ?, ?, ?, ?, ?)")
    .bind(r.id, r.tenantId ?? null, r.matchRecipientDomain.toLowerCase(), r.nextHopUrl, r.priority ?? 100, Date.now())
    .run();
}
