-- Delivery engine (issue 4): richer routes. See migrations/SCHEMA.md.
-- A route row is one candidate next hop. Rows that match the same message form its failover list: lowest
-- `priority` first, weighted random (`weight`) among rows of equal priority.
ALTER TABLE routes ADD COLUMN match_sender_domain TEXT NOT NULL DEFAULT '*';
-- Name of the hop (upstream relays are gated per name: "upstream:<name>"); defaults to the route id.
ALTER TABLE routes ADD COLUMN name TEXT;
ALTER TABLE routes ADD COLUMN weight INTEGER NOT NULL DEFAULT 1;
-- JSON of a partial DomainGate policy (rate, connections, messages per connection, quota) for this hop.
ALTER TABLE routes ADD COLUMN policy TEXT;
-- Per-route overrides of RETRY_SCHEDULE_SECONDS (comma-separated) and MAX_MESSAGE_AGE_SECONDS.
ALTER TABLE routes ADD COLUMN retry_schedule_seconds TEXT;
ALTER TABLE routes ADD COLUMN max_message_age_seconds INTEGER;
CREATE INDEX routes_sender ON routes(match_sender_domain);
