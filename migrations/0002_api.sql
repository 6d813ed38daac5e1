-- Edge Relay: send API tables (issue 5) and deliverability state (issue 6). See migrations/SCHEMA.md.

-- Addresses a tenant must not mail. Written at accept-time checks, by the API, by one-click unsubscribe,
-- and by the delivery engine / inbound handler on hard bounces and complaints.
CREATE TABLE suppressions (
  tenant_id TEXT NOT NULL,
  -- lowercase address
  address TEXT NOT NULL,
  -- 'transactional' | 'broadcast' | 'all'
  scope TEXT NOT NULL,
  -- 'hard_bounce' | 'complaint' | 'unsubscribe' | 'manual' | 'soft_bounce' ...
  reason TEXT NOT NULL,
  -- what caused it: a message id, an SMTP reply, a note
  detail TEXT,
  message_id TEXT,
  created_at INTEGER NOT NULL,
  -- epoch ms; NULL = never expires
  expires_at INTEGER,
  PRIMARY KEY (tenant_id, address, scope)
);
CREATE INDEX suppressions_tenant_created ON suppressions(tenant_id, created_at);

-- Idempotency-Key: the first response to (tenant, key), kept 24h.
CREATE TABLE idempotency_keys (
  tenant_id TEXT NOT NULL,
  key TEXT NOT NULL,
  -- route + SHA-256 of the request body
  request_hash TEXT NOT NULL,
  status INTEGER,
  response TEXT,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, key)
);
CREATE INDEX idempotency_keys_expires ON idempotency_keys(expires_at);

-- Per-tenant request counters for the per-minute rate limit (fixed one-minute windows).
CREATE TABLE rate_counters (
  tenant_id TEXT NOT NULL,
  window_start INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, window_start)
);

-- Delivery jobs of messages scheduled further ahead than a Queue delay allows (12 h); the cron enqueues them.
CREATE TABLE scheduled_jobs (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id TEXT NOT NULL,
  release_at INTEGER NOT NULL,
  job TEXT NOT NULL
);
CREATE INDEX scheduled_jobs_release ON scheduled_jobs(release_at);

-- Domain verification state (POST /v1/domains/:domain/verify).
ALTER TABLE sender_domains ADD COLUMN verified_at INTEGER;
ALTER TABLE sender_domains ADD COLUMN last_check_at INTEGER;
ALTER TABLE sender_domains ADD COLUMN last_check TEXT;

-- Listing and search: GET /v1/messages?recipient=&tag=&status=&since= and GET /v1/events.
CREATE INDEX recipients_message_status ON recipients(message_id, status);
CREATE INDEX messages_tenant_id ON messages(tenant_id, id);
