-- Edge Relay: data minimisation per tenant (issue 21). See migrations/SCHEMA.md.
--
-- retention_days: how long the tenant's message history is kept (NULL: MESSAGE_RETENTION_DAYS).
-- redact_after_days / redact_mode: subjects and addresses in the tenant's stored rows are replaced this many days
-- after acceptance by "[redacted]" (mode 'redact') or a keyed hash "[hmac:...]" (mode 'hash'); NULL: never.
-- erase_requested_at: an admin asked for all of the tenant's data to be deleted; the cron finishes the job.
ALTER TABLE tenants ADD COLUMN retention_days INTEGER;
ALTER TABLE tenants ADD COLUMN redact_after_days INTEGER;
ALTER TABLE tenants ADD COLUMN redact_mode TEXT;
ALTER TABLE tenants ADD COLUMN erase_requested_at INTEGER;
