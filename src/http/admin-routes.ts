/**
 * Admin API for delivery routes (behind ADMIN_TOKEN): list, create and delete. A route names a next hop
 * (`smtp://…` upstream, `mx:` direct, `cloudflare:` send_email binding) for a recipient domain, optionally a
 * sender domain and a tenant; rows for the same rule are a failover list (priority, then weight).
 */
import { Hono } from "hono";
import { redactUrlPassword } from "../config";
import { newId } from "../store/ids";
import { deleteRoute, insertRoute, listRoutes } from "../store/routes";
import { requireAdmin, type AppEnv } from "./auth";
import { RouteRequest, parseBody } from "./bodies";
import { ApiError } from "./errors";
import { readJsonObject } from "./request";

export const adminRoutes = new Hono<AppEnv>();
adminRoutes.use("/admin/routes", requireAdmin);
adminRoutes.use("/admin/routes/*", requireAdmin);

// Inline SMTP passwords are never shown again (reference a secret with ${SMTP_...} instead).
adminRoutes.get("/admin/routes", async (c) => c.json({ routes: (await listRoutes(c.env.DB)).map((r) => ({ ...r, next_hop_url: redactUrlPassword(r.next_hop_url) })) }));

adminRoutes.post("/admin/routes", async (c) => {
  const b = parseBody(RouteRequest, await readJsonObject(c.req.raw));
  const id = newId();
  await insertRoute(c.env.DB, {
    id,
    tenantId: b.tenant_id ?? null,
    matchRecipientDomain: b.match_recipient_domain,
    matchSenderDomain: b.match_sender_domain,
    nextHopUrl: b.next_hop_url,
    priority: b.priority ?? 100,
    weight: b.weight ?? 1,
    name: b.name ?? null,
    policy: b.policy ? JSON.stringify(b.policy) : null,
    retryScheduleSeconds: b.retry_schedule_seconds ? b.retry_schedule_seconds.join(",") : null,
    maxMessageAgeSeconds: b.max_message_age_seconds ?? null,
  });
  return c.json({ id }, 201);
});

adminRoutes.delete("/admin/routes/:id", async (c) => {
  if (!(await deleteRoute(c.env.DB, c.req.param("id")))) throw new ApiError(404, "not_found", "no such route");
  return c.json({ id: c.req.param("id"), deleted: true });
});
