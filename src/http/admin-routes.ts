/**
 * Admin API for delivery routes (behind ADMIN_TOKEN): list, create and delete. A route names a next hop
 * (`smtp://…` upstream, `mx:` direct, `cloudflare:` send_email binding) for a recipient domain, optionally a
 * sender domain and a tenant; rows for the same rule are a failover list (priority, then weight).
 */
import { Hono } from "hono";
import { ConfigError, redactUrlPassword } from "../config";
import { parseRouteTarget } from "../delivery/routes";
import { parsePartialPolicy } from "../gate/policy";
import { newId } from "../store/ids";
import { deleteRoute, insertRoute, listRoutes } from "../store/routes";
import { requireAdmin, type AppEnv } from "./auth";
import { ApiError } from "./errors";
import { readJsonObject } from "./request";
import { isDomainName } from "../mime/domain-name";

function domainField(b: Record<string, unknown>, field: string): string {
  const v = b[field] ?? "*";
  if (typeof v !== "string" || (v !== "*" && !isDomainName(v, { letterTld: true }))) throw new ApiError(400, "invalid_field", `${field} must be a domain or *`, field);
  return v;
}

function intField(b: Record<string, unknown>, field: string, min: number): number | undefined {
  const v = b[field];
  if (v === undefined || v === null) return undefined;
  if (typeof v !== "number" || !Number.isInteger(v) || v < min) throw new ApiError(400, "invalid_field", `${field} must be an integer >= ${min}`, field);
  return v;
}

export const adminRoutes = new Hono<AppEnv>();
adminRoutes.use("/admin/routes", requireAdmin);
adminRoutes.use("/admin/routes/*", requireAdmin);

// Inline SMTP passwords are never shown again (reference a secret with ${SMTP_...} instead).
adminRoutes.get("/admin/routes", async (c) => c.json({ routes: (await listRoutes(c.env.DB)).map((r) => ({ ...r, next_hop_url: redactUrlPassword(r.next_hop_url) })) }));

adminRoutes.post("/admin/routes", async (c) => {
  const b = await readJsonObject(c.req.raw);
  const matchRecipientDomain = domainField(b, "match_recipient_domain");
  const matchSenderDomain = domainField(b, "match_sender_domain");
  if (typeof b.next_hop_url !== "string") throw new ApiError(400, "missing_field", "next_hop_url is required", "next_hop_url");
  try {
    parseRouteTarget(b.next_hop_url);
  } catch (e) {
    if (e instanceof ConfigError) throw new ApiError(400, "invalid_field", e.message.replace("NEXT_HOP_URL", "next_hop_url"), "next_hop_url");
    throw e;
  }
  if (b.tenant_id !== undefined && b.tenant_id !== null && typeof b.tenant_id !== "string") throw new ApiError(400, "invalid_field", "tenant_id must be a string", "tenant_id");
  if (b.name !== undefined && (typeof b.name !== "string" || !/^[a-z0-9][a-z0-9._-]{0,62}$/i.test(b.name))) {
    throw new ApiError(400, "invalid_field", "name must be 1-63 characters of a-z, 0-9, ., _ and -", "name");
  }
  let policy: string | null = null;
  if (b.policy !== undefined && b.policy !== null) {
    const p = parsePartialPolicy(b.policy);
    if (!p.ok) throw new ApiError(400, "invalid_field", p.error, "policy");
    policy = JSON.stringify(p.policy);
  }
  let retry: string | null = null;
  if (b.retry_schedule_seconds !== undefined && b.retry_schedule_seconds !== null) {
    const r = b.retry_schedule_seconds;
    if (!Array.isArray(r) || !r.length || r.some((n) => typeof n !== "number" || !Number.isFinite(n) || n < 0)) {
      throw new ApiError(400, "invalid_field", "retry_schedule_seconds must be a non-empty array of seconds", "retry_schedule_seconds");
    }
    retry = r.join(",");
  }
  const id = newId();
  await insertRoute(c.env.DB, {
    id,
    tenantId: (b.tenant_id as string | undefined) ?? null,
    matchRecipientDomain,
    matchSenderDomain,
    nextHopUrl: b.next_hop_url,
    priority: intField(b, "priority", 0) ?? 100,
    weight: intField(b, "weight", 0) ?? 1,
    name: (b.name as string | undefined) ?? null,
    policy,
    retryScheduleSeconds: retry,
    maxMessageAgeSeconds: intField(b, "max_message_age_seconds", 1) ?? null,
  });
  return c.json({ id }, 201);
});

adminRoutes.delete("/admin/routes/:id", async (c) => {
  if (!(await deleteRoute(c.env.DB, c.req.param("id")))) throw new ApiError(404, "not_found", "no such route");
  return c.json({ id: c.req.param("id"), deleted: true });
});
