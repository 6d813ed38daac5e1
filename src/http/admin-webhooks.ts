/** Admin API for webhook endpoints (behind ADMIN_TOKEN): /admin/webhooks CRUD, secret rotation, attempts. */
import { Hono } from "hono";
import { requireAdmin, type AppEnv } from "./auth";
import { parseBody, webhookBodies } from "./bodies";
import { ApiError } from "./errors";
import { createWebhook, deleteWebhook, getWebhook, latestAttempts, listWebhooks, newWebhookSecret, updateWebhook, webhookView } from "../store/webhooks";
import { readJsonObject } from "./request";
import { tenantExists } from "../store/tenants";
import { ledgerOf } from "../store/shards";
import { startEmissionWatermark } from "../store/webhook-emission";

export const webhookAdmin = new Hono<AppEnv>();
webhookAdmin.use("/admin/webhooks", requireAdmin);
webhookAdmin.use("/admin/webhooks/*", requireAdmin);

webhookAdmin.post("/admin/webhooks", async (c) => {
  const b = parseBody(webhookBodies(c.var.config().allowPrivateDestinations).WebhookCreate, await readJsonObject(c.req.raw));
  const tenant = await tenantExists(c.env.DB, b.tenant_id);
  if (!tenant) throw new ApiError(404, "not_found", "no such tenant", "tenant_id");
  // Emission follows each shard's own feed: start the tenant's shard at its newest event (DB: createWebhook does).
  await startEmissionWatermark(await ledgerOf(c.env, b.tenant_id));
  const row = await createWebhook(c.env.DB, {
    tenantId: b.tenant_id,
    url: b.url,
    events: b.events,
    description: b.description ?? null,
  });
  return c.json({ ...webhookView(row), secret: row.secret, note: "store this secret now: it is not shown again" }, 201);
});

webhookAdmin.get("/admin/webhooks", async (c) => {
  const rows = await listWebhooks(c.env.DB, c.req.query("tenant_id") ?? null);
  return c.json({ webhooks: rows.map(webhookView) });
});

webhookAdmin.get("/admin/webhooks/:id", async (c) => {
  const row = await getWebhook(c.env.DB, c.req.param("id"));
  if (!row) throw new ApiError(404, "not_found", "no such webhook");
  return c.json(webhookView(row));
});

webhookAdmin.patch("/admin/webhooks/:id", async (c) => {
  const b = parseBody(webhookBodies(c.var.config().allowPrivateDestinations).WebhookPatch, await readJsonObject(c.req.raw));
  const changed = await updateWebhook(c.env.DB, c.req.param("id"), {
    ...(b.url !== undefined ? { url: b.url } : {}),
    ...(b.events !== undefined ? { events: b.events } : {}),
    ...(b.description !== undefined ? { description: b.description } : {}),
    ...(b.enabled !== undefined ? { enabled: b.enabled } : {}),
  });
  if (!changed) throw new ApiError(404, "not_found", "no such webhook");
  return c.json(webhookView((await getWebhook(c.env.DB, c.req.param("id")))!));
});

webhookAdmin.post("/admin/webhooks/:id/rotate-secret", async (c) => {
  const secret = newWebhookSecret();
  if (!(await updateWebhook(c.env.DB, c.req.param("id"), { secret }))) throw new ApiError(404, "not_found", "no such webhook");
  return c.json({ id: c.req.param("id"), secret, note: "store this secret now: it is not shown again" });
});

webhookAdmin.delete("/admin/webhooks/:id", async (c) => {
  if (!(await deleteWebhook(c.env.DB, c.req.param("id")))) throw new ApiError(404, "not_found", "no such webhook");
  return c.json({ id: c.req.param("id"), deleted: true });
});

webhookAdmin.get("/admin/webhooks/:id/attempts", async (c) => {
  const row = await getWebhook(c.env.DB, c.req.param("id"));
  if (!row) throw new ApiError(404, "not_found", "no such webhook");
  const attempts = await latestAttempts(c.env.DB, { webhookId: row.id }, 100);
  return c.json({
    attempts: attempts.map((a) => ({
      delivery_id: a.delivery_id,
      event_type: a.event_type,
      message_id: a.message_id,
      attempt: a.attempt,
      outcome: a.outcome,
      status_code: a.status_code,
      error: a.error,
      duration_ms: a.duration_ms,
      at: new Date(a.at).toISOString(),
    })),
  });
});
