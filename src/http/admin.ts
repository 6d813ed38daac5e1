/** Admin API (behind ADMIN_TOKEN): tenants, their sender domains and API keys. Routes: admin-routes.ts. */
import { Hono } from "hono";
import { addSenderDomain, createApiKey, createTenant, getTenant, listTenants, removeSenderDomain, updateTenant } from "../store/keys";
import { loadConfig } from "../config";
import { restartRedaction } from "../store/minimisation";
import { requireAdmin, type AppEnv } from "./auth";
import { ApiError } from "./errors";
import { readJsonObject } from "./request";
import { isDomainName } from "../mime/domain-name";

export const admin = new Hono<AppEnv>();
admin.use("/admin/*", requireAdmin);

admin.post("/admin/tenants", async (c) => {
  const b = await readJsonObject(c.req.raw);
  const name = typeof b.name === "string" && b.name.trim() ? b.name.trim() : null;
  if (!name) throw new ApiError(400, "missing_field", "name is required", "name");
  const domains = b.domains ?? [];
  if (!Array.isArray(domains) || domains.some((d) => typeof d !== "string" || !isDomainName(d, { letterTld: true }))) {
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
  const b = await readJsonObject(c.req.raw);
  const tenantId = c.req.param("id");
  const exists = await c.env.DB.prepare("SELECT erase_requested_at FROM tenants WHERE id = ?").bind(tenantId).first<{ erase_requested_at: number | null }>();
  if (!exists) throw new ApiError(404, "not_found", "no such tenant");
  if (exists.erase_requested_at !== null) throw new ApiError(409, "conflict", "the tenant's data is being erased");
  const { id, key } = await createApiKey(c.env.DB, tenantId, typeof b.name === "string" ? b.name : null);
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

/** Suspend/resume, rename, set the per-minute rate limit (null: unlimited), the default stream, the TLS requirement, retention and redaction. */
admin.patch("/admin/tenants/:id", async (c) => {
  const b = await readJsonObject(c.req.raw);
  for (const k of Object.keys(b)) {
    if (!["name", "suspended", "rate_limit_per_minute", "default_stream", "require_tls", ...MINIMISATION_FIELDS].includes(k)) throw new ApiError(400, "unknown_field", `unknown field ${JSON.stringify(k)}`, k);
  }
  if (b.name !== undefined && (typeof b.name !== "string" || !b.name.trim() || b.name.length > 200 || /[\x00-\x1f]/.test(b.name))) throw new ApiError(400, "invalid_field", "name must be 1-200 characters", "name");
  if (b.suspended !== undefined && typeof b.suspended !== "boolean") throw new ApiError(400, "invalid_field", "suspended must be a boolean", "suspended");
  const rl = b.rate_limit_per_minute;
  if (rl !== undefined && rl !== null && (typeof rl !== "number" || !Number.isInteger(rl) || rl < 1 || rl > 1_000_000)) {
    throw new ApiError(400, "invalid_field", "rate_limit_per_minute must be an integer from 1 to 1000000, or null for no limit", "rate_limit_per_minute");
  }
  if (b.default_stream !== undefined && b.default_stream !== "transactional" && b.default_stream !== "broadcast") throw new ApiError(400, "invalid_field", 'default_stream must be "transactional" or "broadcast"', "default_stream");
  if (b.require_tls !== undefined && typeof b.require_tls !== "boolean") throw new ApiError(400, "invalid_field", "require_tls must be a boolean", "require_tls");
  const minimisation = minimisationPatch(b, loadConfig(c.env).redactionHashKey !== null);
  const current = await getTenant(c.env.DB, c.req.param("id"));
  if (current?.erase_requested_at) throw new ApiError(409, "conflict", "the tenant's data is being erased");
  const ok = await updateTenant(c.env.DB, c.req.param("id"), {
    ...minimisation,
    ...(typeof b.name === "string" ? { name: b.name.trim() } : {}),
    ...(typeof b.suspended === "boolean" ? { suspended: b.suspended } : {}),
    ...(rl !== undefined ? { rateLimitPerMinute: rl as number | null } : {}),
    ...(b.default_stream !== undefined ? { defaultStream: b.default_stream as "transactional" | "broadcast" } : {}),
    ...(typeof b.require_tls === "boolean" ? { requireTls: b.require_tls } : {}),
  });
  if (!ok) throw new ApiError(404, "not_found", "no such tenant");
  // Older rows may be due now: the redaction walks start again from the tenant's oldest row.
  if (minimisation.redactAfterDays !== undefined || minimisation.redactMode !== undefined) await restartRedaction(c.env.DB, c.req.param("id"));
  return c.json(await getTenant(c.env.DB, c.req.param("id")));
});

/** Days are whole days up to ten years. */
const MAX_DAYS = 3650;
const MINIMISATION_FIELDS = ["retention_days", "redact_after_days", "redact_mode"];

/** Issue 21: `retention_days` (1-3650, null: the relay's default), `redact_after_days` (0-3650, null: never), `redact_mode`. */
function minimisationPatch(
  b: Record<string, unknown>,
  hashAvailable: boolean,
): { retentionDays?: number | null; redactAfterDays?: number | null; redactMode?: "redact" | "hash" | null } {
  const days = (field: string, min: number) => {
    const v = b[field];
    if (v === undefined || v === null) return v;
    if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > MAX_DAYS) {
      throw new ApiError(400, "invalid_field", `${field} must be an integer from ${min} to ${MAX_DAYS}, or null for the default`, field);
    }
    return v;
  };
  const retentionDays = days("retention_days", 1);
  const redactAfterDays = days("redact_after_days", 0);
  const mode = b.redact_mode;
  if (mode !== undefined && mode !== null && mode !== "redact" && mode !== "hash") throw new ApiError(400, "invalid_field", 'redact_mode must be "redact" or "hash"', "redact_mode");
  if (mode === "hash" && !hashAvailable) throw new ApiError(400, "invalid_field", 'redact_mode "hash" needs the REDACTION_HASH_KEY secret', "redact_mode");
  return {
    ...(retentionDays !== undefined ? { retentionDays } : {}),
    ...(redactAfterDays !== undefined ? { redactAfterDays } : {}),
    ...(mode !== undefined ? { redactMode: mode as "redact" | "hash" | null } : {}),
  };
}

admin.post("/admin/tenants/:id/domains", async (c) => {
  const b = await readJsonObject(c.req.raw);
  if (typeof b.domain !== "string" || !isDomainName(b.domain, { letterTld: true })) throw new ApiError(400, "invalid_field", "domain must be a domain name", "domain");
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
