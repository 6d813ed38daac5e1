/**
 * Admin API for the inbound log (behind ADMIN_TOKEN): `GET /admin/inbound` lists what the email() handler did
 * with each message it saw — reports it could not attribute, refused mail, forwards — newest first.
 */
import { Hono } from "hono";
import { listInboundLog } from "../store/inbound";
import { requireAdmin, type AppEnv } from "./auth";
import { limitParam, stringParam } from "./request";

export const adminInbound = new Hono<AppEnv>();
adminInbound.use("/admin/inbound", requireAdmin);

adminInbound.get("/admin/inbound", async (c) => {
  const limit = limitParam(c);
  const cursor = stringParam(c, "cursor", /^\d{1,15}$/, "a cursor returned by this endpoint");
  const page = await listInboundLog(c.env.DB, {
    tenantId: stringParam(c, "tenant_id", /^[a-z0-9][a-z0-9-]{0,62}$/, "a tenant id"),
    kind: stringParam(c, "kind", /^[a-z_]{1,20}$/, "an inbound kind"),
    outcome: stringParam(c, "outcome", /^[a-z_]{1,20}$/, "an outcome"),
    before: cursor === null ? null : Number(cursor),
    limit,
  });
  return c.json({
    data: page.map((r) => ({ ...r, at: new Date(r.at).toISOString() })),
    next_cursor: page.length === limit ? String(page[page.length - 1]!.id) : null,
  });
});
