/** Delivery routes in D1: which next hops serve a (tenant, sender domain, recipient domain). */

export interface RouteRow {
  id: string;
  tenant_id: string | null;
  match_recipient_domain: string;
  match_sender_domain: string;
  next_hop_url: string;
  priority: number;
  weight: number;
  name: string | null;
  policy: string | null;
  retry_schedule_seconds: string | null;
  max_message_age_seconds: number | null;
}

const COLUMNS = `id, tenant_id, match_recipient_domain, match_sender_domain, next_hop_url, priority, weight, name, policy,
  retry_schedule_seconds, max_message_age_seconds`;

/**
 * Routes that may serve a message, most specific rule set first: exact recipient domain before `*`, exact
 * sender domain before `*`, tenant-specific before global, then priority. Only the rows of the most specific
 * rule set are used (see `selectRouteSet`); the rest are returned for diagnostics.
 */
export async function findRoutes(db: D1Database, recipientDomain: string, tenantId: string, senderDomain = ""): Promise<RouteRow[]> {
  const { results } = await db
    .prepare(
      `SELECT ${COLUMNS} FROM routes
        WHERE match_recipient_domain IN (?, '*') AND match_sender_domain IN (?, '*') AND (tenant_id IS NULL OR tenant_id = ?)
        ORDER BY match_recipient_domain = '*', match_sender_domain = '*', tenant_id IS NULL, priority, id`,
    )
    .bind(recipientDomain.toLowerCase(), senderDomain.toLowerCase(), tenantId)
    .all<RouteRow>();
  return results;
}

/** Every route, for the admin listing. */
export async function listRoutes(db: D1Database): Promise<RouteRow[]> {
  const { results } = await db.prepare(`SELECT ${COLUMNS} FROM routes ORDER BY match_recipient_domain, priority, id`).all<RouteRow>();
  return results;
}

export interface NewRoute {
  id: string;
  tenantId?: string | null;
  matchRecipientDomain: string;
  matchSenderDomain?: string;
  nextHopUrl: string;
  priority?: number;
  weight?: number;
  name?: string | null;
  /** JSON of a partial gate policy. */
  policy?: string | null;
  retryScheduleSeconds?: string | null;
  maxMessageAgeSeconds?: number | null;
}

export async function insertRoute(db: D1Database, r: NewRoute): Promise<void> {
  await db
    .prepare(
      `INSERT INTO routes (id, tenant_id, match_recipient_domain, match_sender_domain, next_hop_url, priority, weight, name, policy,
                           retry_schedule_seconds, max_message_age_seconds, created_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
    )
    .bind(
      r.id,
      r.tenantId ?? null,
      r.matchRecipientDomain.toLowerCase(),
      (r.matchSenderDomain ?? "*").toLowerCase(),
      r.nextHopUrl,
      r.priority ?? 100,
      r.weight ?? 1,
      r.name ?? null,
      r.policy ?? null,
      r.retryScheduleSeconds ?? null,
      r.maxMessageAgeSeconds ?? null,
      Date.now(),
    )
    .run();
}

export async function deleteRoute(db: D1Database, id: string): Promise<boolean> {
  const r = await db.prepare("DELETE FROM routes WHERE id = ?").bind(id).run();
  return r.meta.changes > 0;
}
