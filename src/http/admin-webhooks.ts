/** Admin API for webhook endpoints (behind ADMIN_TOKEN): /admin/webhooks CRUD, secret rotation, attempts. */
import { Hono } from "hono";
import { loadConfig } from "../config";
import { destinationAllowed } from "../delivery/private-networks";
import { requireAdmin, type AppEnv } from "./auth";
import { ApiError } from "./errors";
import { createWebhook, deleteWebhook, getWebhook, latestAttempts, listWebhooks, newWebhookSecret, updateWebhook, webhookView } from "../store/webhooks";
import { WEBHOOK_EVENT_TYPES } from "../webhooks/events";
import { readJsonObject } from "./request";

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);

/** The address a webhook host stands for when it is a literal (or localhost), for the private-address filter. */
function hostForFilter(hostname: string): string {
  return hostname === "localhost" ? "127.0.0.1" : hostname;
}

/**
 * https only (http for loopback hosts, for local receivers), no credentials in the URL, at most 2048 chars, and
 * never a non-public address (loopback, RFC 1918, link-local and cloud metadata, ULA ...) unless the operator
 * allows it in ALLOW_PRIVATE_DESTINATIONS.
 */
export function checkWebhookUrl(v: unknown, allowPrivate: readonly string[]): string {
  if (typeof v !== "string" || !v) throw new ApiError(400, "missing_field", "url is required", "url");
  let u: URL;
  try {
    u = new URL(v);
  } catch {
    throw new ApiError(400, "invalid_field", "url is not a URL", "url");
  }
  const ok = u.protocol === "https:" || (u.protocol === "http:" && LOOPBACK.has(u.hostname));
  if (!ok || u.username || u.password || v.length > 2048) {
    throw new ApiError(400, "invalid_field", "url must be an https:// URL without credentials (http:// only for localhost)", "url");
  }
  if (!destinationAllowed(hostForFilter(u.hostname), allowPrivate)) {
    throw new ApiError(400, "invalid_field", "url points at a non-public address (loopback, private, link-local or metadata); allow it with ALLOW_PRIVATE_DESTINATIONS", "url");
  }
  return u.toString();
}

export function checkEventTypes(v: unknown): string[] {
  const known: readonly string[] = WEBHOOK_EVENT_TYPES;
  if (!Array.isArray(v) || !v.length || v.some((t) => typeof t !== "string" || (t !== "*" && !known.includes(t)))) {
    throw new ApiError(400, "invalid_field", `events must be a non-empty array of: *, ${known.join(", ")}`, "events");
  }
  return [...new Set(v as string[])];
}

function description(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "string" || v.length > 200) throw new ApiError(400, "invalid_field", "description must be a string of at most 200 characters", "description");
  return v;
}

export const webhookAdmin = new Hono<AppEnv>();
webhookAdmin.use("/admin/webhooks", requireAdmin);
webhookAdmin.use("/admin/webhooks/*", requireAdmin);

webhookAdmin.post("/admin/webhooks", async (c) => {
  const b = await readJsonObject(c.req.raw);
  if (typeof b.tenant_id !== "string") throw new ApiError(400, "missing_field", "tenant_id is required", "tenant_id");
  const tenant = await c.env.DB.prepare("SELECT 1 AS ok FROM tenants WHERE id = ?").bind(b.tenant_id).first();
  if (!tenant) throw new ApiError(404, "not_found", "no such tenant", "tenant_id");
  const row = await createWebhook(c.env.DB, {
    tenantId: b.tenant_id,
    url: checkWebhookUrl(b.url, loadConfig(c.env).allowPrivateDestinations),
    events: checkEventTypes(b.events ?? ["*"]),
    description: description(b.description),
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
  const b = await readJsonObject(c.req.raw);
  if (b.enabled !== undefined && typeof b.enabled !== "boolean") throw new ApiError(400, "invalid_field", "enabled must be true or false", "enabled");
  const changed = await updateWebhook(c.env.DB, c.req.param("id"), {
    ...(b.url !== undefined ? { url: checkWebhookUrl(b.url, loadConfig(c.env).allowPrivateDestinations) } : {}),
    ...(b.events !== undefined ? { events: checkEventTypes(b.events) } : {}),
    ...(b.description !== undefined ? { description: description(b.description) } : {}),
    ...(typeof b.enabled === "boolean" ? { enabled: b.enabled } : {}),
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
