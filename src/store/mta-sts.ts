/** `mta_sts_policies`: the D1 cache of fetched MTA-STS policies (RFC 8461), one row per policy domain. */

export interface StoredMtaStsPolicy {
  policy: { id: string; mode: "enforce" | "testing" | "none"; mx: string[]; maxAgeSeconds: number };
  expiresAt: number;
}

export async function loadMtaStsPolicy(db: D1Database, domain: string): Promise<StoredMtaStsPolicy | null> {
  const row = await db
    .prepare("SELECT policy_id, mode, mx, max_age, expires_at FROM mta_sts_policies WHERE domain = ?")
    .bind(domain)
    .first<{ policy_id: string; mode: StoredMtaStsPolicy["policy"]["mode"]; mx: string; max_age: number; expires_at: number }>();
  if (!row) return null;
  return { policy: { id: row.policy_id, mode: row.mode, mx: JSON.parse(row.mx) as string[], maxAgeSeconds: row.max_age }, expiresAt: row.expires_at };
}

export async function saveMtaStsPolicy(db: D1Database, domain: string, cached: StoredMtaStsPolicy, fetchedAt: number): Promise<void> {
  await db
    .prepare(
      `INSERT INTO mta_sts_policies (domain, policy_id, mode, mx, max_age, fetched_at, expires_at) VALUES (?, ?, ?, ?, ?, ?, ?)
       ON CONFLICT (domain) DO UPDATE SET policy_id = excluded.policy_id, mode = excluded.mode, mx = excluded.mx,
         max_age = excluded.max_age, fetched_at = excluded.fetched_at, expires_at = excluded.expires_at`,
    )
    .bind(domain, cached.policy.id, cached.policy.mode, JSON.stringify(cached.policy.mx), cached.policy.maxAgeSeconds, fetchedAt, cached.expiresAt)
    .run();
}
