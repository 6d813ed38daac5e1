/** Admin API (behind ADMIN_TOKEN): tenants, their sender domains and API keys. Routes: admin-routes.ts. */
import { Hono } from "hono";
import { addSenderDomain, createApiKey, createTenant, getTenant, listTenants, removeSenderDomain, updateTenant } from "../store/keys";
import { restartRedaction } from "../store/minimisation";
import { requireAdmin, type AppEnv } from "./auth";
import { DomainAdd, KeyCreate, TenantCreate, TenantPatch, parseBody } from "./bodies";
import { ApiError } from "./errors";
import { readJsonObject } from "./request";
import { deleteUnplacedTenant, revokeApiKey, tenantEraseRequestedAt } from "../store/tenants";
import { placeTenant, ShardError, shardNameOf } from "../store/shards";

export const admin = new Hono<AppEnv>();
admin.use("/admin/*", requireAdmin);

admin.post("/admin/tenants", async (c) => {
  const { name, domains, id: givenId, shard: askedShard } = parseBody(TenantCreate, await readJsonObject(c.req.raw));
  try {
    const id = await createTenant(c.env.DB, name, domains, givenId);
    let shard: string;
    try {
      shard = await placeTenant(c.env, id, name, askedShard);
    } catch (e) {
      // No tenant without a placement: an unknown shard name undoes the tenant (it has no keys or mail yet).
      await deleteUnplacedTenant(c.env.DB, id);
      if (e instanceof ShardError) throw new ApiError(400, "invalid_field", e.message, "shard");
      throw e;
    }
    return c.json({ id, name, domains, shard }, 201);
  } catch (e) {
    if (String(e).includes("UNIQUE")) throw new ApiError(409, "conflict", "the tenant id or a domain is already taken", "domains");
    throw e;
  }
});

admin.post("/admin/tenants/:id/keys", async (c) => {
  const b = parseBody(KeyCreate, await readJsonObject(c.req.raw));
  const tenantId = c.req.param("id");
  const exists = await tenantEraseRequestedAt(c.env.DB, tenantId);
  if (!exists) throw new ApiError(404, "not_found", "no such tenant");
  if (exists.erase_requested_at !== null) throw new ApiError(409, "conflict", "the tenant's data is being erased");
  const { id, key } = await createApiKey(c.env.DB, tenantId, b.name ?? null);
  return c.json({ id, key, note: "store this key now: only its hash is kept" }, 201);
});

admin.delete("/admin/keys/:id", async (c) => {
  if (!(await revokeApiKey(c.env.DB, c.req.param("id")))) throw new ApiError(404, "not_found", "no such active key");
  return c.json({ id: c.req.param("id"), revoked: true });
});

admin.get("/admin/tenants", async (c) => {
  const limitRaw = c.req.query("limit") ?? "100";
  if (!/^\d{1,4}$/.test(limitRaw) || Number(limitRaw) < 1 || Number(limitRaw) > 1000) throw new ApiError(400, "invalid_field", "limit must be 1-1000", "limit");
  const cursor = c.req.query("cursor") ?? null;
  if (cursor !== null && !/^[a-z0-9][a-z0-9-]{0,62}$/.test(cursor)) throw new ApiError(400, "invalid_field", "cursor is not one returned by this endpoint", "cursor");
  const rows = await listTenants(c.env.DB, Number(limitRaw), cursor);
  return c.json({ data: rows, next_cursor: rows.length === Number(limitRaw) ? rows[rows.length - 1]!.id : null });
});

admin.get("/admin/tenants/:id", async (c) => {
  const t = await getTenant(c.env.DB, c.req.param("id"));
  if (!t) throw new ApiError(404, "not_found", "no such tenant");
  return c.json({ ...t, shard: await shardNameOf(c.env, t.id) });
});

/** Suspend/resume, rename, set the per-minute rate limit (null: unlimited), the default stream, the TLS requirement, retention and redaction. */
admin.patch("/admin/tenants/:id", async (c) => {
  const b = parseBody(TenantPatch, await readJsonObject(c.req.raw));
  const rl = b.rate_limit_per_minute;
  const minimisation = minimisationPatch(b, c.var.config().redactionHashKey !== null);
  const current = await getTenant(c.env.DB, c.req.param("id"));
  if (current?.erase_requested_at) throw new ApiError(409, "conflict", "the tenant's data is being erased");
  const ok = await updateTenant(c.env.DB, c.req.param("id"), {
    ...minimisation,
    ...(typeof b.name === "string" ? { name: b.name.trim() } : {}),
    ...(typeof b.suspended === "boolean" ? { suspended: b.suspended } : {}),
    ...(rl !== undefined ? { rateLimitPerMinute: rl } : {}),
    ...(b.default_stream !== undefined ? { defaultStream: b.default_stream } : {}),
    ...(typeof b.require_tls === "boolean" ? { requireTls: b.require_tls } : {}),
  });
  if (!ok) throw new ApiError(404, "not_found", "no such tenant");
  // Older rows may be due now: the redaction walks start again from the tenant's oldest row.
  if (minimisation.redactAfterDays !== undefined || minimisation.redactMode !== undefined) await restartRedaction(c.env.DB, c.req.param("id"));
  return c.json({ ...(await getTenant(c.env.DB, c.req.param("id")))!, shard: await shardNameOf(c.env, c.req.param("id")) });
});

/** Issue 21: `retention_days`, `redact_after_days`, `redact_mode` (ranges checked by the TenantPatch schema). */
function minimisationPatch(
  b: { retention_days?: number | null; redact_after_days?: number | null; redact_mode?: "redact" | "hash" | null },
  hashAvailable: boolean,
): { retentionDays?: number | null; redactAfterDays?: number | null; redactMode?: "redact" | "hash" | null } {
  if (b.redact_mode === "hash" && !hashAvailable) throw new ApiError(400, "invalid_field", 'redact_mode "hash" needs the REDACTION_HASH_KEY secret', "redact_mode");
  return {
    ...(b.retention_days !== undefined ? { retentionDays: b.retention_days } : {}),
    ...(b.redact_after_days !== undefined ? { redactAfterDays: b.redact_after_days } : {}),
    ...(b.redact_mode !== undefined ? { redactMode: b.redact_mode } : {}),
  };
}

admin.post("/admin/tenants/:id/domains", async (c) => {
  const b = parseBody(DomainAdd, await readJsonObject(c.req.raw));
  if (!(await getTenant(c.env.DB, c.req.param("id")))) throw new ApiError(404, "not_found", "no such tenant");
  try {
    await addSenderDomain(c.env.DB, c.req.param("id"), b.domain);
  } catch (e) {
    if (String(e).includes("UNIQUE")) throw new ApiError(409, "conflict", "the domain already belongs to a tenant", "domain");
    throw e;
  }
  return c.json({ tenant_id: c.req.param("id"), domain: b.domain.toLowerCase() }, 201);
});

admin.delete("/admin/tenants/:id/domains/:domain", async (c) => {
  if (!(await removeSenderDomain(c.env.DB, c.req.param("id"), c.req.param("domain")))) throw new ApiError(404, "not_found", "the tenant has no such domain");
  return c.json({ tenant_id: c.req.param("id"), domain: c.req.param("domain").toLowerCase(), removed: true });
});
