-- Edge Relay: Email Routing input (issue 7): forwarding aliases and the inbound log. See migrations/SCHEMA.md.

-- Forwarding aliases: mail that Email Routing hands the Worker for `address` goes through accept to
-- `destinations` (JSON array of addresses), SRS-rewritten and DKIM-signed for the alias's domain, which must be
-- a sender domain of `tenant_id`.
CREATE TABLE aliases (
  -- lowercase address, e.g. team@acme.example
  address TEXT PRIMARY KEY,
  tenant_id TEXT NOT NULL,
  destinations TEXT NOT NULL,
  description TEXT,
  created_at INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
);
CREATE INDEX aliases_tenant ON aliases(tenant_id, address);

-- One row per message the email() handler saw: what it was, what was done with it, and why. Bounces that
-- could not be attributed to a message, delay notices and refused mail have no `events` row, so this is where
-- "nothing is dropped silently" holds for them.
-- kind: bounce | complaint | auto_reply | delivery_report | unknown | unsubscribe | forward | srs_bounce | rejected
CREATE TABLE inbound_messages (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  at INTEGER NOT NULL,
  envelope_from TEXT,
  envelope_to TEXT NOT NULL,
  size_bytes INTEGER,
  kind TEXT NOT NULL,
  -- what the handler did: recorded | duplicate | unattributed | forwarded | rejected | ignored
  outcome TEXT NOT NULL,
  tenant_id TEXT,
  -- our message the report was attributed to, or the message the forward created
  message_id TEXT,
  detail TEXT
);
CREATE INDEX inbound_messages_at ON inbound_messages(at);
CREATE INDEX inbound_messages_tenant ON inbound_messages(tenant_id, id);
