-- Edge Relay: reporting page and webhooks (issue 8). See migrations/SCHEMA.md.

-- Event counts rolled up from `events` by time bucket, so the reporting page never scans raw events.
-- period: 300 (5-minute buckets, kept 2 days, for the 1h window) or 3600 (hourly, kept forever).
-- level: 'total' (key ''), 'domain' (key = recipient domain) or 'route' (key = next hop host:port).
-- tenant_id '*' holds the sum over all tenants (tenant ids never contain '*').
CREATE TABLE report_rollups (
  period INTEGER NOT NULL,
  level TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  bucket INTEGER NOT NULL,
  key TEXT NOT NULL,
  type TEXT NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (period, level, tenant_id, bucket, key, type)
) WITHOUT ROWID;

-- Histogram of accept-to-delivery time of delivered recipients, same dimensions as report_rollups;
-- le_ms is the bucket's upper bound in milliseconds. Medians and 95th percentiles are read from it.
CREATE TABLE report_latency (
  period INTEGER NOT NULL,
  level TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  bucket INTEGER NOT NULL,
  key TEXT NOT NULL,
  le_ms INTEGER NOT NULL,
  count INTEGER NOT NULL,
  PRIMARY KEY (period, level, tenant_id, bucket, key, le_ms)
) WITHOUT ROWID;

-- How far the rollup has read `events` (by event id). D1 runs one write at a time, so ids commit in order
-- and a watermark never skips an event.
CREATE TABLE report_watermarks (
  name TEXT PRIMARY KEY,
  last_event_id INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
INSERT INTO report_watermarks (name, last_event_id, updated_at) VALUES ('rollup', 0, 0);

-- Message tags, one row per (message, tag), filled by the rollup from messages.tags: search by tag.
CREATE TABLE report_message_tags (
  tag TEXT NOT NULL,
  message_id TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  PRIMARY KEY (tag, message_id)
) WITHOUT ROWID;

-- Search by sender (From header or envelope sender), and by recipient status newest first (message ids are
-- time-ordered); oldest pending recipient.
CREATE INDEX report_messages_header_from ON messages(header_from, id);
CREATE INDEX report_messages_mail_from ON messages(mail_from, id);
CREATE INDEX report_recipients_status_message ON recipients(status, message_id);
-- The suppression list across all tenants, newest first.
CREATE INDEX report_suppressions_created ON suppressions(created_at);

-- Reporting page sessions: the SHA-256 of the cookie value, and the CSRF token of the session's forms.
CREATE TABLE dashboard_sessions (
  id_hash TEXT PRIMARY KEY,
  csrf_token TEXT NOT NULL,
  created_at INTEGER NOT NULL,
  expires_at INTEGER NOT NULL
);
CREATE INDEX dashboard_sessions_expires ON dashboard_sessions(expires_at);

-- Webhook endpoints per tenant. event_types: JSON array of event types, or ["*"].
-- The secret signs deliveries (HMAC-SHA256); the API shows it once, at creation or rotation.
CREATE TABLE webhooks (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  url TEXT NOT NULL,
  event_types TEXT NOT NULL,
  secret TEXT NOT NULL,
  description TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL,
  disabled_at INTEGER
);
CREATE INDEX webhooks_tenant ON webhooks(tenant_id);

-- One row per POST attempt of a webhook delivery, for the page and GET /admin/webhooks/:id/attempts.
-- outcome: 'delivered' | 'retrying' | 'failed' (gave up) | 'dropped' (endpoint deleted or disabled).
CREATE TABLE webhook_attempts (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  webhook_id TEXT NOT NULL,
  tenant_id TEXT NOT NULL,
  delivery_id TEXT NOT NULL,
  event_type TEXT NOT NULL,
  message_id TEXT,
  attempt INTEGER NOT NULL,
  outcome TEXT NOT NULL,
  status_code INTEGER,
  error TEXT,
  duration_ms INTEGER,
  at INTEGER NOT NULL
);
CREATE INDEX webhook_attempts_webhook ON webhook_attempts(webhook_id, id);
CREATE INDEX webhook_attempts_tenant ON webhook_attempts(tenant_id, id);
CREATE INDEX webhook_attempts_at ON webhook_attempts(at);
