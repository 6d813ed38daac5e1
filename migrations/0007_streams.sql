-- Edge Relay: streams and priority (issue 12). See migrations/SCHEMA.md.

-- Per tenant and stream ('transactional' | 'broadcast'): paused (its delivery jobs are parked until resume) and
-- limits applied at delivery through a DomainGate keyed tenant:<id>:<stream> (NULL: no limit).
CREATE TABLE tenant_streams (
  tenant_id TEXT NOT NULL,
  stream TEXT NOT NULL,
  paused_at INTEGER,
  rate_per_second REAL,
  quota_per_day INTEGER,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, stream)
) WITHOUT ROWID;

-- Delivery jobs of a paused stream, in the order the consumer met them (id); resume releases them in that order.
CREATE TABLE parked_jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL,
  stream TEXT NOT NULL,
  job TEXT NOT NULL,
  parked_at INTEGER NOT NULL
);
CREATE INDEX parked_jobs_stream ON parked_jobs(tenant_id, stream, id);

-- GET /v1/messages?stream= and the reporting page's search by stream (newest first within a tenant's stream, and
-- across tenants).
CREATE INDEX messages_tenant_stream ON messages(tenant_id, stream, id);
CREATE INDEX messages_stream ON messages(stream, id);
