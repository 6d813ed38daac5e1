-- Edge Relay: open and click tracking (issue 11). See migrations/SCHEMA.md.

-- Tracking defaults of a tenant: stream '*' is the tenant-wide default, 'transactional' / 'broadcast' override
-- it for that stream. NULL inherits (stream -> tenant -> off). A send request's own track_opens/track_clicks win.
CREATE TABLE tracking_settings (
  tenant_id TEXT NOT NULL,
  stream TEXT NOT NULL,
  track_opens INTEGER,
  track_clicks INTEGER,
  updated_at INTEGER NOT NULL,
  PRIMARY KEY (tenant_id, stream)
) WITHOUT ROWID;

-- Opens and clicks per recipient: first and last time and totals, human and machine counted apart
-- (machine: Apple Mail Privacy Protection, link scanners, bots; see src/tracking/machine.ts). Events hold the
-- detail; these counters survive event retention and cap nothing.
CREATE TABLE tracking_recipients (
  message_id TEXT NOT NULL,
  recipient_idx INTEGER NOT NULL,
  tenant_id TEXT NOT NULL,
  first_open_at INTEGER,
  last_open_at INTEGER,
  opens INTEGER NOT NULL DEFAULT 0,
  first_machine_open_at INTEGER,
  machine_opens INTEGER NOT NULL DEFAULT 0,
  first_click_at INTEGER,
  last_click_at INTEGER,
  clicks INTEGER NOT NULL DEFAULT 0,
  first_machine_click_at INTEGER,
  machine_clicks INTEGER NOT NULL DEFAULT 0,
  PRIMARY KEY (message_id, recipient_idx)
) WITHOUT ROWID;
-- Per-tenant totals over a time window (GET /v1/tracking/stats).
CREATE INDEX tracking_recipients_tenant ON tracking_recipients(tenant_id, message_id);
