/** Admin API (behind ADMIN_TOKEN): tenants, their sender domains and API keys. Routes: admin-routes.ts. */
import { Hono } from "hono";
import { addSenderDomain, createApiKey, createTenant, getTenant, listTenants, removeSenderDomain, updateTenant } from "../store/keys";
import { requireAdmin, type AppEnv } from "./auth";
import { DomainAdd, KeyCreate, TenantCreate, TenantPatch, parseBody } from "./bodies";
import { ApiError } from "./errors";

async function json(req: Request): Promise<Record<string, unknown>> {
  try {
    const v = await req.json();
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    /* fall through to the error below */
  }
  throw new ApiError(400, "invalid_json", "the body must be a JSON object");
}

export const admin = new Hono<AppEnv>();
admin.use("/admin/*", requireAdmin);

admin.post("/admin/tenants", async (c) => {
  const { name, domains, id: givenId } = parseBody(TenantCreate, await json(c.req.raw));
  try {
    const id = await createTenant(c.env.DB, name, domains, givenId);
    return c.json({ id, name, domains }, 201);
  } catch (e) {
    if (String(e).includes("UNIQUE")) throw new ApiError(409, "conflict", "the tenant id or a domain is already taken", "domains");
    throw e;
  }
});

admin.post("/admin/tenants/:id/keys", async (c) => {
  const b = parseBody(KeyCreate, await json(c.req.raw));
  const tenantId = c.req.param("id");
  const exists = await c.env.DB.prepare("SELECT 1 AS ok FROM tenants WHERE id = ?").bind(tenantId).first();
  if (!exists) throw new ApiError(404, "not_found", "no such tenant");
  const { id, key } = await createApiKey(c.env.DB, tenantId, b.name ?? null);
  return c.json({ id, key, note: "store this key now: only its hash is kept" }, 201);
});

admin.delete("/admin/keys/:id", async (c) => {
  const r = await c.env.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL").bind(Date.now(), c.req.param("id")).run();
  if (!r.meta.changes) throw new ApiError(404, "not_found", "no such active key");
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
  return c.json(t);
});

/** Suspend/resume, rename, set the per-minute rate limit (null: unlimited), the default stream or the TLS requirement. */
admin.patch("/admin/tenants/:id", async (c) => {
  const b = parseBody(TenantPatch, await json(c.req.raw));
  const rl = b.rate_limit_per_minute;
  const ok = await updateTenant(c.env.DB, c.req.param("id"), {
    ...(typeof b.name === "string" ? { name: b.name.trim() } : {}),
    ...(typeof b.suspended === "boolean" ? { suspended: b.suspended } : {}),
    ...(rl !== undefined ? { rateLimitPerMinute: rl } : {}),
    ...(b.default_stream !== undefined ? { defaultStream: b.default_stream } : {}),
    ...(typeof b.require_tls === "boolean" ? { requireTls: b.require_tls } : {}),
  });
  if (!ok) throw new ApiError(404, "not_found", "no such tenant");
  return c.json(await getTenant(c.env.DB, c.req.param("id")));
});

admin.post("/admin/tenants/:id/domains", async (c) => {
  const b = parseBody(DomainAdd, await json(c.req.raw));
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
