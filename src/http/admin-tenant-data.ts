/**
 * Erasing a tenant's data on request (issue 21): `POST /admin/tenants/:id/erase` with `{"confirm": "<tenant id>"}`.
 * The first call marks and suspends the tenant and does one bounded step; the cron continues (or the caller calls
 * again) until every row is gone. 202 while rows remain, 200 once the tenant itself is gone. The audit row of
 * each call is kept. Logic: store/erase.ts.
 */
import { Hono } from "hono";
import { eraseStep } from "../delivery/minimisation";
import { requestErase } from "../store/erase";
import { requireAdmin, type AppEnv } from "./auth";
import { TenantErase, parseBody } from "./bodies";
import { ApiError } from "./errors";
import { readJsonBody } from "./request";

export const adminTenantData = new Hono<AppEnv>();
adminTenantData.use("/admin/tenants/:id/erase", requireAdmin);

/** A small body: only the confirmation. */
const MAX_BODY_BYTES = 1024;

adminTenantData.post("/admin/tenants/:id/erase", async (c) => {
  const id = c.req.param("id");
  const { value } = await readJsonBody(c.req.raw, MAX_BODY_BYTES);
  const { confirm } = parseBody(TenantErase, value);
  if (confirm !== id) throw new ApiError(400, "invalid_field", "confirm must repeat the tenant id: erasing cannot be undone", "confirm");
  if (!(await requestErase(c.env.DB, id))) throw new ApiError(404, "not_found", "no such tenant");
  const step = await eraseStep(c.env, id);
  const body = { tenant_id: id, status: step.done ? "erased" : "erasing", deleted: step.deleted, r2_objects_deleted: step.bodies };
  return c.json(body, step.done ? 200 : 202);
});
