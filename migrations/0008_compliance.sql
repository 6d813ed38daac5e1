-- Issue 21 (regulated senders): a tenant-wide TLS requirement, the MTA-STS policy cache and the audit trail.
-- See migrations/SCHEMA.md.

-- 1: every message of the tenant is sent as if it carried require_tls (RFC 8689 REQUIRETLS semantics).
ALTER TABLE tenants ADD COLUMN require_tls INTEGER NOT NULL DEFAULT 0;

-- RFC 8461 policies of recipient domains, cached until max_age runs out (one row per domain, rewritten only
-- when the TXT record's id changes or the policy expires). WITHOUT ROWID: the domain is the only key.
CREATE TABLE mta_sts_policies (
  domain TEXT PRIMARY KEY,
  policy_id TEXT NOT NULL,
  mode TEXT NOT NULL,
  mx TEXT NOT NULL,
  max_age INTEGER NOT NULL,
  fetched_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
) WITHOUT ROWID;

-- Who changed what: one row per authenticated mutating admin or tenant-settings request. Listings read newest
-- first by id (the rowid); one index serves a tenant's listing (one index entry per change: changes are rare).
CREATE TABLE audit_log (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  actor TEXT NOT NULL,
  tenant_id TEXT,
  ip TEXT,
  method TEXT NOT NULL,
  path TEXT NOT NULL,
  status INTEGER NOT NULL,
  detail TEXT
);
CREATE INDEX audit_log_tenant ON audit_log(tenant_id, id);
