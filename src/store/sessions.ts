/** Reporting page sessions (`dashboard_sessions`): the SHA-256 of the cookie value, its CSRF token and expiry. */

/** Stores a new session and drops expired ones in the same batch. */
export async function insertDashboardSession(db: D1Database, idHash: string, csrfToken: string, now: number, expiresAt: number): Promise<void> {
  await db.batch([
    db.prepare("DELETE FROM dashboard_sessions WHERE expires_at < ?").bind(now),
    db.prepare("INSERT INTO dashboard_sessions (id_hash, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?)").bind(idHash, csrfToken, now, expiresAt),
  ]);
}

export async function deleteDashboardSession(db: D1Database, idHash: string): Promise<void> {
  await db.prepare("DELETE FROM dashboard_sessions WHERE id_hash = ?").bind(idHash).run();
}

/** The CSRF token of a live session, or null when there is none (unknown or expired). */
export async function dashboardSessionCsrf(db: D1Database, idHash: string, now: number): Promise<string | null> {
  const row = await db.prepare("SELECT csrf_token FROM dashboard_sessions WHERE id_hash = ? AND expires_at > ?").bind(idHash, now).first<{ csrf_token: string }>();
  return row?.csrf_token ?? null;
}
