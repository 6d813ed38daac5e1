-- Edge Relay: the lean ledger (issue 16). See migrations/SCHEMA.md.
--
-- One row per message carries its recipients' states (`rcpts`), a compact log of every attempt and inbound report
-- (`log`), the count of recipients not yet final (`open`), when the ledger expects the next delivery activity
-- (`due_at`, for the re-drive) and, until every recipient is final, what is needed to send it again (`pending`:
-- the delivery jobs without their recipients' states, and the body when it travelled inline in the queue).
-- The primary key (tenant_id, id) serves every per-tenant listing (ids are time-ordered); there is no other index,
-- because every index entry is a billed row written. Lookups by id alone seek once per tenant
-- (`tenant_id IN (SELECT id FROM tenants)`).

CREATE TABLE ledger_messages (
  tenant_id TEXT NOT NULL,
  id TEXT NOT NULL,
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
  send_at INTEGER,
  -- JSON array, one object per recipient index: a address, s status, n attempts, c/e/t last reply code, enhanced
  -- status and text, x next attempt (epoch ms), u updated, f final (epoch ms; absent while pending)
  rcpts TEXT NOT NULL DEFAULT '[]',
  -- JSON array of attempts and reports in order: y type, i recipient index, at, n attempt, c, e, t, h host, s TLS,
  -- l latency ms, q DomainGate sequence number, d data
  log TEXT,
  open INTEGER NOT NULL DEFAULT 0,
  due_at INTEGER,
  -- 1 once the event feed announced the message (its `accepted` event rides on the first outcome event)
  fed INTEGER NOT NULL DEFAULT 0,
  pending TEXT,
  PRIMARY KEY (tenant_id, id)
) WITHOUT ROWID;

-- Existing messages keep their data: recipients become `rcpts`, their attempts and reports the `log`.
INSERT INTO ledger_messages (tenant_id, id, mail_from, header_from, subject, message_id_header, stream, size_bytes, body_key, tags,
                             metadata, created_at, send_at, rcpts, log, open, due_at, fed)
SELECT m.tenant_id, m.id, m.mail_from, m.header_from, m.subject, m.message_id_header, m.stream, m.size_bytes, m.body_key, m.tags,
       m.metadata, m.created_at, m.send_at,
       COALESCE((SELECT json_group_array(json(o)) FROM (
                   SELECT json_patch(json_object('a', r.address, 's', r.status, 'n', r.attempts, 'u', r.updated_at),
                                     json_object('c', r.last_code, 'e', r.last_enhanced, 't', r.last_text, 'x', r.next_attempt_at, 'f', r.final_at)) AS o
                     FROM recipients r WHERE r.message_id = m.id ORDER BY r.idx)), '[]'),
       (SELECT json_group_array(json(o)) FROM (
          SELECT json_patch(json_object('y', e.type, 'i', e.recipient_idx, 'at', e.at),
                            json_object('n', e.attempt, 'c', e.code, 'e', e.enhanced, 't', e.text, 'h', e.host, 's', e.tls,
                                        'l', e.latency_ms, 'q', e.seq, 'd', json(e.data))) AS o
            FROM events e WHERE e.message_id = m.id AND e.type NOT IN ('accepted', 'queued') ORDER BY e.id)
         HAVING COUNT(*) > 0),
       (SELECT COUNT(*) FROM recipients r WHERE r.message_id = m.id AND r.final_at IS NULL),
       (SELECT MAX(COALESCE(r.next_attempt_at, m.send_at, m.created_at)) FROM recipients r WHERE r.message_id = m.id AND r.final_at IS NULL),
       1
  FROM messages m;

DROP TABLE recipients;
DROP TABLE messages;
ALTER TABLE ledger_messages RENAME TO messages;

-- Readers that want one row per recipient (tests, the admin tools) read this view; the relay's own hot paths read
-- `messages.rcpts` by primary key. Driven by `tenants`, so `WHERE message_id = ?` seeks once per tenant instead of
-- reading every message.
CREATE VIEW recipients AS
SELECT m.id AS message_id, m.tenant_id AS tenant_id, CAST(j.key AS INTEGER) AS idx,
       json_extract(j.value, '$.a') AS address,
       lower(substr(json_extract(j.value, '$.a'), instr(json_extract(j.value, '$.a'), '@') + 1)) AS domain,
       json_extract(j.value, '$.s') AS status, COALESCE(json_extract(j.value, '$.n'), 0) AS attempts,
       json_extract(j.value, '$.c') AS last_code, json_extract(j.value, '$.e') AS last_enhanced,
       json_extract(j.value, '$.t') AS last_text, json_extract(j.value, '$.x') AS next_attempt_at,
       json_extract(j.value, '$.u') AS updated_at, json_extract(j.value, '$.f') AS final_at
  FROM tenants t CROSS JOIN messages m ON m.tenant_id = t.id, json_each(m.rcpts) j;

-- The event log becomes the feed of outcomes and reports only: no rows for `accepted` and `queued` (a message's
-- first outcome event says so in `feed`: bit 1 = it also announces the message's `accepted`, bit 2 = its
-- recipient's `queued`, both at `accepted_at`), and no secondary index (readers go by id or by the message row).
-- Rebuilt without AUTOINCREMENT: its sqlite_sequence row is one more billed row per insert. Ids still never go
-- back: retention never deletes the newest row, so the next id is always above every id handed out.
CREATE TABLE ledger_events (
  id INTEGER PRIMARY KEY,
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
  data TEXT,
  feed INTEGER,
  accepted_at INTEGER
);
INSERT INTO ledger_events (id, message_id, tenant_id, recipient_idx, recipient, type, at, attempt, code, enhanced, text, host, tls, latency_ms, seq, data)
SELECT id, message_id, tenant_id, recipient_idx, recipient, type, at, attempt, code, enhanced, text, host, tls, latency_ms, seq, data FROM events;
DROP TABLE events;
ALTER TABLE ledger_events RENAME TO events;

-- Small named values of the ledger's housekeeping (re-drive and rollup cursors), by name.
CREATE TABLE ledger_cursors (
  name TEXT PRIMARY KEY,
  value INTEGER NOT NULL,
  updated_at INTEGER NOT NULL
) WITHOUT ROWID;
