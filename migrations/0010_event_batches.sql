-- Edge Relay: the event feed written per outcome write (issue 16, lean2). See migrations/SCHEMA.md.
--
-- The consumer records the outcomes of all the transactions that ended while its previous write was in flight in
-- one write (group commit), and their events in ONE `events` row per tenant: `batch` holds a JSON array with one
-- object per event: m message id, y type, at (epoch ms), x the index of the attempt's entry in the message's `log`
-- (which holds the recipient index, reply, host, TLS, latency and sequence: stored once, not twice), f feed bits.
-- Such a row takes the ids of its events: its own id is the last of them and the ids before it (one per element,
-- id - length + 1 .. id) are never used by another row, so every event still has its own id, in commit order, and
-- feed cursors and watermarks keep their meaning (see src/store/feed.ts). Rows written before keep `batch` NULL.
-- Existing data needs no change: the column is new and NULL everywhere.
ALTER TABLE events ADD COLUMN batch TEXT;

-- One row per stored event, whichever way it was written: for tests, admin tools and readers that filter on
-- event columns. The relay's range readers join `events` with json_each themselves (store/feed.ts) so they can
-- seek by the row id.
CREATE VIEW event_log AS
SELECT CASE WHEN e.batch IS NULL THEN e.id ELSE e.id - json_array_length(e.batch) + 1 + j.key END AS id,
       e.id AS row_id,
       CASE WHEN e.batch IS NULL THEN e.message_id ELSE json_extract(j.value, '$.m') END AS message_id,
       e.tenant_id AS tenant_id,
       CASE WHEN e.batch IS NULL THEN e.recipient_idx ELSE json_extract(l.value, '$.i') END AS recipient_idx,
       CASE WHEN e.batch IS NULL THEN e.recipient ELSE json_extract(m.rcpts, '$[' || json_extract(l.value, '$.i') || '].a') END AS recipient,
       CASE WHEN e.batch IS NULL THEN e.type ELSE json_extract(j.value, '$.y') END AS type,
       CASE WHEN e.batch IS NULL THEN e.at ELSE json_extract(j.value, '$.at') END AS at,
       CASE WHEN e.batch IS NULL THEN e.attempt ELSE json_extract(l.value, '$.n') END AS attempt,
       CASE WHEN e.batch IS NULL THEN e.code ELSE json_extract(l.value, '$.c') END AS code,
       CASE WHEN e.batch IS NULL THEN e.enhanced ELSE json_extract(l.value, '$.e') END AS enhanced,
       CASE WHEN e.batch IS NULL THEN e.text ELSE json_extract(l.value, '$.t') END AS text,
       CASE WHEN e.batch IS NULL THEN e.host ELSE json_extract(l.value, '$.h') END AS host,
       CASE WHEN e.batch IS NULL THEN e.tls ELSE json_extract(l.value, '$.s') END AS tls,
       CASE WHEN e.batch IS NULL THEN e.latency_ms ELSE json_extract(l.value, '$.l') END AS latency_ms,
       CASE WHEN e.batch IS NULL THEN e.seq ELSE json_extract(l.value, '$.q') END AS seq,
       CASE WHEN e.batch IS NULL THEN e.data ELSE json_extract(l.value, '$.d') END AS data,
       CASE WHEN e.batch IS NULL THEN e.feed ELSE json_extract(j.value, '$.f') END AS feed,
       CASE WHEN e.batch IS NULL THEN e.accepted_at ELSE m.created_at END AS accepted_at
  FROM events e CROSS JOIN json_each(COALESCE(e.batch, '[0]')) j
  LEFT JOIN messages m ON e.batch IS NOT NULL AND m.tenant_id = e.tenant_id AND m.id = json_extract(j.value, '$.m')
  LEFT JOIN json_each(m.log) l ON l.key = json_extract(j.value, '$.x');
