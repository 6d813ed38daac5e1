-- Edge Relay initial schema. See migrations/SCHEMA.md for what each table is for.

CREATE TABLE tenants (
  id TEXT PRIMARY KEY,
  name TEXT NOT NULL,
  suspended INTEGER NOT NULL DEFAULT 0,
  rate_limit_per_minute INTEGER,
  default_stream TEXT NOT NULL DEFAULT 'transactional',
  created_at INTEGER NOT NULL
);

CREATE TABLE sender_domains (
  domain TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  created_at INTEGER NOT NULL
);
CREATE INDEX sender_domains_tenant ON sender_domains(tenant_id);

CREATE TABLE api_keys (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL REFERENCES tenants(id),
  key_hash TEXT NOT NULL UNIQUE,
  prefix TEXT NOT NULL,
  name TEXT,
  created_at INTEGER NOT NULL,
  revoked_at INTEGER
);

CREATE TABLE messages (
  id TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  mail_from TEXT NOT NULL,
  header_from TEXT,
  subject TEXT,
  message_id_header TEXT,
  stream TEXT NOT NULL DEFAULT 'transactional',
  size_bytes INTEGER NOT NULL,
  body_key TEXT,
  tags TEXT,
  metadata TEXT,
  created_at INTEGER NOT NULL,
  send_at INTEGER
);
CREATE INDEX messages_tenant_created ON messages(tenant_id, created_at);
CREATE INDEX messages_header_id ON messages(message_id_header);

CREATE TABLE recipients (
  message_id TEXT NOT NULL REFERENCES messages(id),
  idx INTEGER NOT NULL,
  address TEXT NOT NULL,
  domain TEXT NOT NULL,
  status TEXT NOT NULL,
  attempts INTEGER NOT NULL DEFAULT 0,
  last_code INTEGER,
  last_enhanced TEXT,
  last_text TEXT,
  next_attempt_at INTEGER,
  updated_at INTEGER NOT NULL,
  final_at INTEGER,
  PRIMARY KEY (message_id, idx)
);
CREATE INDEX recipients_address ON recipients(address);
CREATE INDEX recipients_status_next ON recipients(status, next_attempt_at);

CREATE TABLE events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  message_id TEXT NOT NULL,
  tenant_id TEXT,
  recipient_idx INTEGER,
  recipient TEXT,
  type TEXT NOT NULL,
  at INTEGER NOT NULL,
  attempt INTEGER,
  code INTEGER,
  enhanced TEXT,
  text TEXT,
  host TEXT,
  tls INTEGER,
  latency_ms INTEGER,
  seq INTEGER,
  data TEXT
);
CREATE INDEX events_message ON events(message_id, id);
CREATE INDEX events_at ON events(at);
CREATE INDEX events_tenant_at ON events(tenant_id, at);

-- Delivery routes: which next hop serves a recipient domain (most specific match wins, then priority).
CREATE TABLE routes (
  id TEXT PRIMARY KEY,
  tenant_id TEXT,
  match_recipient_domain TEXT NOT NULL DEFAULT '*',
  next_hop_url TEXT NOT NULL,
  priority INTEGER NOT NULL DEFAULT 100,
  created_at INTEGER NOT NULL
);
CREATE INDEX routes_domain ON routes(match_recipient_domain, priority);
