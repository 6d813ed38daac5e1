/**
 * The audit trail (issue 21): one row per authenticated change to the relay's configuration — admin API calls and
 * tenant settings changed with an API key or from the reporting page — with who, when, what and from where.
 * Kept apart from the mail records with its own retention (AUDIT_RETENTION_DAYS).
 */

export interface AuditEntry {
  at: number;
  /** `admin-token:<hash prefix>`, `api-key:<key prefix> <key id>`, `dashboard:access:<email>`, `dashboard:cookie:<who>`. */
  actor: string;
  tenantId: string | null;
  ip: string | null;
  method: string;
  path: string;
  status: number;
  /** The request's parameters with secrets redacted (JSON text), or null. */
  detail: string | null;
}

export interface AuditRow {
  id: number;
  at: string;
  actor: string;
  tenant_id: string | null;
  ip: string | null;
  method: string;
  path: string;
  status: number;
  detail: unknown;
}

export async function recordAudit(db: D1Database, e: AuditEntry): Promise<void> {
  await db
    .prepare("INSERT INTO audit_log (at, actor, tenant_id, ip, method, path, status, detail) VALUES (?, ?, ?, ?, ?, ?, ?, ?)")
    .bind(e.at, e.actor, e.tenantId, e.ip, e.method, e.path, e.status, e.detail)
    .run();
}

/** Newest first, before the cursor (a row id); optionally one tenant's. */
export async function listAudit(db: D1Database, opts: { limit: number; before: number | null; tenantId: string | null }): Promise<AuditRow[]> {
  const { results } = await db
    .prepare(
      `SELECT id, at, actor, tenant_id, ip, method, path, status, detail FROM audit_log
        WHERE (?1 IS NULL OR id < ?1) AND (?2 IS NULL OR tenant_id = ?2) ORDER BY id DESC LIMIT ?3`,
    )
    .bind(opts.before, opts.tenantId, opts.limit)
    .all<{ id: number; at: number; actor: string; tenant_id: string | null; ip: string | null; method: string; path: string; status: number; detail: string | null }>();
  return results.map((r) => ({ ...r, at: new Date(r.at).toISOString(), detail: r.detail === null ? null : (JSON.parse(r.detail) as unknown) }));
}

/** Deletes rows older than the retention; runs from the cron. */
export async function expireAudit(db: D1Database, retentionDays: number, now = Date.now()): Promise<void> {
  await db.prepare("DELETE FROM audit_log WHERE at < ?").bind(now - retentionDays * 86_400_000).run();
}

/** Field names whose values never enter the trail. */
const SECRET_FIELD = /pass|secret|token|private|authorization|signing|credential|^key$|csrf/i;
/** Longest detail kept; a change described by more is cut (the row says so). */
const MAX_DETAIL_CHARS = 4000;

/** A copy of request parameters with secrets replaced: secret-named fields, and passwords inside URLs. */
export function redactDetail(value: unknown, depth = 0): unknown {
  if (depth > 6) return "[nested]";
  if (typeof value === "string") return value.replace(/^([a-z][a-z0-9+.-]*:\/\/[^:@/\s]*):[^@/\s]*@/i, "$1:[redacted]@");
  if (Array.isArray(value)) return value.slice(0, 100).map((v) => redactDetail(v, depth + 1));
  if (typeof value === "object" && value !== null) {
    return Object.fromEntries(Object.entries(value).map(([k, v]) => [k, SECRET_FIELD.test(k) ? "[redacted]" : redactDetail(v, depth + 1)]));
  }
  return value;
}

/** The JSON text kept as a row's detail, bounded. */
export function detailText(value: unknown): string | null {
  if (value === undefined) return null;
  const text = JSON.stringify(redactDetail(value));
  return text.length <= MAX_DETAIL_CHARS ? text : JSON.stringify({ truncated: true, start: text.slice(0, MAX_DETAIL_CHARS) });
}
