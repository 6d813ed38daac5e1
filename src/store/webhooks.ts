/** Webhook endpoints and their delivery attempts in D1. */
import { newId } from "./ids";

export interface WebhookRow {
  id: string;
  tenant_id: string;
  url: string;
  event_types: string;
  secret: string;
  description: string | null;
  created_at: number;
  updated_at: number;
  disabled_at: number | null;
}

/** A webhook as the API and the page show it: never with its secret. */
export interface WebhookView {
  id: string;
  tenant_id: string;
  url: string;
  events: string[];
  description: string | null;
  enabled: boolean;
  created_at: string;
  updated_at: string;
}

export function webhookView(r: WebhookRow): WebhookView {
  return {
    id: r.id,
    tenant_id: r.tenant_id,
    url: r.url,
    events: parseEventTypes(r.event_types),
    description: r.description,
    enabled: r.disabled_at === null,
    created_at: new Date(r.created_at).toISOString(),
    updated_at: new Date(r.updated_at).toISOString(),
  };
}

export function parseEventTypes(json: string): string[] {
  try {
    const v: unknown = JSON.parse(json);
    return Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
  } catch {
    return [];
  }
}

/** A new signing secret: 32 random bytes, hex, with a prefix secret scanners can find. */
export function newWebhookSecret(): string {
  const bytes = crypto.getRandomValues(new Uint8Array(32));
  return "whsec_" + [...bytes].map((b) => b.toString(16).padStart(2, "0")).join("");
}

export async function createWebhook(
  db: D1Database,
  w: { tenantId: string; url: string; events: string[]; description: string | null },
  now = Date.now(),
): Promise<WebhookRow> {
  const row: WebhookRow = {
    id: newId(now),
    tenant_id: w.tenantId,
    url: w.url,
    event_types: JSON.stringify(w.events),
    secret: newWebhookSecret(),
    description: w.description,
    created_at: now,
    updated_at: now,
    disabled_at: null,
  };
  await db.batch([
    db
      .prepare(
        `INSERT INTO webhooks (id, tenant_id, url, event_types, secret, description, created_at, updated_at, disabled_at)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, NULL)`,
      )
      .bind(row.id, row.tenant_id, row.url, row.event_types, row.secret, row.description, now, now),
    // The first endpoint starts webhook emission at the newest event: history is not replayed to it.
    db
      .prepare("INSERT OR IGNORE INTO report_watermarks (name, last_event_id, updated_at) SELECT 'webhooks', COALESCE(MAX(id), 0), ? FROM events")
      .bind(now),
  ]);
  return row;
}

export async function getWebhook(db: D1Database, id: string): Promise<WebhookRow | null> {
  return db.prepare("SELECT * FROM webhooks WHERE id = ?").bind(id).first<WebhookRow>();
}

/** Endpoints, all or one tenant's, newest first. */
export async function listWebhooks(db: D1Database, tenantId: string | null): Promise<WebhookRow[]> {
  const { results } = await db
    .prepare("SELECT * FROM webhooks WHERE (?1 IS NULL OR tenant_id = ?1) ORDER BY created_at DESC LIMIT 500")
    .bind(tenantId)
    .all<WebhookRow>();
  return results;
}

/** Enabled endpoints of these tenants (for emission). */
export async function enabledWebhooksOf(db: D1Database, tenantIds: string[]): Promise<WebhookRow[]> {
  if (!tenantIds.length) return [];
  const { results } = await db
    .prepare(`SELECT * FROM webhooks WHERE tenant_id IN (${tenantIds.map(() => "?").join(", ")}) AND disabled_at IS NULL`)
    .bind(...tenantIds)
    .all<WebhookRow>();
  return results;
}

export async function updateWebhook(
  db: D1Database,
  id: string,
  patch: { url?: string; events?: string[]; description?: string | null; enabled?: boolean; secret?: string },
  now = Date.now(),
): Promise<boolean> {
  const r = await db
    .prepare(
      `UPDATE webhooks SET url = COALESCE(?2, url), event_types = COALESCE(?3, event_types),
              description = CASE WHEN ?4 = 1 THEN ?5 ELSE description END,
              disabled_at = CASE WHEN ?6 IS NULL THEN disabled_at WHEN ?6 = 1 THEN NULL ELSE COALESCE(disabled_at, ?8) END,
              secret = COALESCE(?7, secret), updated_at = ?8
        WHERE id = ?1`,
    )
    .bind(
      id,
      patch.url ?? null,
      patch.events ? JSON.stringify(patch.events) : null,
      patch.description !== undefined ? 1 : 0,
      patch.description ?? null,
      patch.enabled === undefined ? null : patch.enabled ? 1 : 0,
      patch.secret ?? null,
      now,
    )
    .run();
  return (r.meta.changes ?? 0) > 0;
}

export async function deleteWebhook(db: D1Database, id: string): Promise<boolean> {
  const r = await db.prepare("DELETE FROM webhooks WHERE id = ?").bind(id).run();
  return (r.meta.changes ?? 0) > 0;
}

export type AttemptOutcome = "delivered" | "retrying" | "failed" | "dropped";

export interface WebhookAttempt {
  webhookId: string;
  tenantId: string;
  deliveryId: string;
  eventType: string;
  messageId: string | null;
  attempt: number;
  outcome: AttemptOutcome;
  statusCode: number | null;
  error: string | null;
  durationMs: number | null;
  at: number;
}

export function insertAttempt(db: D1Database, a: WebhookAttempt): D1PreparedStatement {
  // Only while the endpoint exists: an erase deletes the tenant's endpoints before their attempts (store/erase.ts),
  // so a job still queued, or one in flight while the erase ran, writes nothing of the tenant back.
  return db
    .prepare(
      `INSERT INTO webhook_attempts (webhook_id, tenant_id, delivery_id, event_type, message_id, attempt, outcome, status_code, error, duration_ms, at)
       SELECT ?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11 WHERE EXISTS (SELECT 1 FROM webhooks WHERE id = ?1)`,
    )
    .bind(a.webhookId, a.tenantId, a.deliveryId, a.eventType, a.messageId, a.attempt, a.outcome, a.statusCode, a.error, a.durationMs, a.at);
}

export interface AttemptRow {
  id: number;
  webhook_id: string;
  tenant_id: string;
  delivery_id: string;
  event_type: string;
  message_id: string | null;
  attempt: number;
  outcome: AttemptOutcome;
  status_code: number | null;
  error: string | null;
  duration_ms: number | null;
  at: number;
}

/** The latest attempts, newest first: of one endpoint, or of one tenant's endpoints, or of all. */
export async function latestAttempts(
  db: D1Database,
  scope: { webhookId?: string; tenantId?: string | null },
  limit = 50,
): Promise<AttemptRow[]> {
  const stmt = scope.webhookId
    ? db.prepare("SELECT * FROM webhook_attempts WHERE webhook_id = ? ORDER BY id DESC LIMIT ?").bind(scope.webhookId, limit)
    : scope.tenantId
      ? db.prepare("SELECT * FROM webhook_attempts WHERE tenant_id = ? ORDER BY id DESC LIMIT ?").bind(scope.tenantId, limit)
      : db.prepare("SELECT * FROM webhook_attempts ORDER BY id DESC LIMIT ?").bind(limit);
  const { results } = await stmt.all<AttemptRow>();
  return results;
}

/** Every enabled endpoint (id, tenant, subscribed types), for relay-wide events such as reputation listings. */
export async function allEnabledWebhooks(db: D1Database): Promise<Pick<WebhookRow, "id" | "tenant_id" | "event_types">[]> {
  const { results } = await db.prepare("SELECT id, tenant_id, event_types FROM webhooks WHERE disabled_at IS NULL").all<Pick<WebhookRow, "id" | "tenant_id" | "event_types">>();
  return results;
}
