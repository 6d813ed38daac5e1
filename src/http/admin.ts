/** Admin API (behind ADMIN_TOKEN): tenants, API keys and routes. */
import { Hono } from "hono";
import { parseNextHop, ConfigError } from "../config";
import { newId } from "../store/ids";
import { createApiKey, createTenant } from "../store/keys";
import { insertRoute } from "../store/routes";
import { requireAdmin, type AppEnv } from "./auth";
import { ApiError } from "./errors";

const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;

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
  const b = await json(c.req.raw);
  const name = typeof b.name === "string" && b.name.trim() ? b.name.trim() : null;
  if (!name) throw new ApiError(400, "missing_field", "name is required", "name");
  const domains = b.domains ?? [];
  if (!Array.isArray(domains) || domains.some((d) => typeof d !== "string" || !DOMAIN.test(d))) {
    throw new ApiError(400, "invalid_field", "domains must be an array of domain names", "domains");
  }
  if (b.id !== undefined && (typeof b.id !== "string" || !/^[a-z0-9][a-z0-9-]{0,62}$/.test(b.id))) {
    throw new ApiError(400, "invalid_field", "id must be 1-63 characters of a-z, 0-9 and -", "id");
  }
  try {
    const id = await createTenant(c.env.DB, name, domains as string[], b.id as string | undefined);
    return c.json({ id, name, domains }, 201);
  } catch (e) {
    if (String(e).includes("UNIQUE")) throw new ApiError(409, "conflict", "the tenant id or a domain is already taken", "domains");
    throw e;
  }
});

admin.post("/admin/tenants/:id/keys", async (c) => {
  const b = await json(c.req.raw);
  const tenantId = c.req.param("id");
  const exists = await c.env.DB.prepare("SELECT 1 AS ok FROM tenants WHERE id = ?").bind(tenantId).first();
  if (!exists) throw new ApiError(404, "not_found", "no such tenant");
  const { id, key } = await createApiKey(c.env.DB, tenantId, typeof b.name === "string" ? b.name : null);
  return c.json({ id, key, note: "store this key now: only its hash is kept" }, 201);
});

admin.delete("/admin/keys/:id", async (c) => {
  const r = await c.env.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ? AND revoked_at IS NULL").bind(Date.now(), c.req.param("id")).run();
  if (!r.meta.changes) throw new ApiError(404, "not_found", "no such active key");
  return c.json({ id: c.req.param("id"), revoked: true });
});

admin.post("/admin/routes", async (c) => {
  const b = await json(c.req.raw);
  const match = typeof b.match_recipient_domain === "string" ? b.match_recipient_domain : "*";
  if (match !== "*" && !DOMAIN.test(match)) throw new ApiError(400, "invalid_field", "match_recipient_domain must be a domain or *", "match_recipient_domain");
  if (typeof b.next_hop_url !== "string") throw new ApiError(400, "missing_field", "next_hop_url is required", "next_hop_url");
  try {
    parseNextHop(b.next_hop_url);
  } catch (e) {
    if (e instanceof ConfigError) throw new ApiError(400, "invalid_field", e.message.replace("NEXT_HOP_URL", "next_hop_url"), "next_hop_url");
    throw e;
  }
  const id = newId();
  await insertRoute(c.env.DB, {
    id,
    tenantId: typeof b.tenant_id === "string" ? b.tenant_id : null,
    matchRecipientDomain: match,
    nextHopUrl: b.next_hop_url,
    priority: typeof b.priority === "number" ? b.priority : 100,
  });
  return c.json({ id }, 201);
});
