-- Ledger shards (issue 17): which D1 binding holds each tenant's ledger. Written when the tenant is created
-- (least-loaded shard, or the one the admin named); a tenant without a row is on DB, where every ledger was
-- before shards existed. Read once per tenant per isolate (the Worker caches it). On a ledger shard this
-- table stays empty; a shard's `tenants` holds only the ids of its tenants (the seek list of lookups by id).
CREATE TABLE tenant_shards (
  tenant_id TEXT PRIMARY KEY,
  shard TEXT NOT NULL,
  placed_at INTEGER NOT NULL
) WITHOUT ROWID;
