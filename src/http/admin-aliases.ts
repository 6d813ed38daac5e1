/**
 * Admin API for forwarding aliases (behind ADMIN_TOKEN): `/admin/aliases`. An alias is an address at one of a
 * tenant's sender domains; mail Email Routing hands the Worker for it is forwarded to its destinations (see
 * src/inbound/forward.ts). The alias's domain must belong to the tenant, because forwarded mail is SRS-rewritten
 * into and DKIM-signed for that domain.
 */
import { Hono, type Context } from "hono";
import { createAlias, deleteAlias, findAlias, listAliases, updateAlias, type Alias } from "../store/aliases";
import { tenantOfDomain } from "../store/inbound";
import { requireAdmin, type AppEnv } from "./auth";
import { aliasBodies, parseBody } from "./bodies";
import { ApiError } from "./errors";
import { limitParam, stringParam, readJsonObject } from "./request";

function view(a: Alias) {
  return {
    address: a.address,
    tenant_id: a.tenantId,
    destinations: a.destinations,
    description: a.description,
    created_at: new Date(a.createdAt).toISOString(),
    updated_at: new Date(a.updatedAt).toISOString(),
  };
}

function addressParam(c: Context<AppEnv>): string {
  return (c.req.param("address") ?? "").toLowerCase();
}

export const adminAliases = new Hono<AppEnv>();
adminAliases.use("/admin/aliases", requireAdmin);
adminAliases.use("/admin/aliases/*", requireAdmin);

adminAliases.post("/admin/aliases", async (c) => {
  const b = parseBody(aliasBodies(c.var.config().maxRecipients).AliasCreate, await readJsonObject(c.req.raw), { too_many_recipients: 422 });
  const { address, domain } = b.address;
  const owner = await tenantOfDomain(c.env.DB, domain);
  if (!owner || owner.tenantId !== b.tenant_id) {
    throw new ApiError(403, "sender_domain_not_allowed", `${domain} is not a sender domain of tenant ${b.tenant_id} (add it to the tenant first)`, "address");
  }
  const created = await createAlias(c.env.DB, { address, tenantId: b.tenant_id, destinations: b.destinations, description: b.description ?? null });
  if (!created) throw new ApiError(409, "conflict", "an alias with this address exists", "address");
  const alias = await findAlias(c.env.DB, address);
  return c.json(view(alias!), 201);
});

adminAliases.get("/admin/aliases", async (c) => {
  const limit = limitParam(c);
  const page = await listAliases(c.env.DB, {
    tenantId: stringParam(c, "tenant_id", /^[a-z0-9][a-z0-9-]{0,62}$/, "a tenant id"),
    after: stringParam(c, "cursor", /^[^\s<>]{3,320}$/, "a cursor returned by this endpoint"),
    limit,
  });
  return c.json({ data: page.map(view), next_cursor: page.length === limit ? page[page.length - 1]!.address : null });
});

adminAliases.get("/admin/aliases/:address", async (c) => {
  const alias = await findAlias(c.env.DB, addressParam(c));
  if (!alias) throw new ApiError(404, "not_found", "no such alias");
  return c.json(view(alias));
});

adminAliases.patch("/admin/aliases/:address", async (c) => {
  const address = addressParam(c);
  const b = parseBody(aliasBodies(c.var.config().maxRecipients, address).AliasPatch, await readJsonObject(c.req.raw), { too_many_recipients: 422 });
  const patch: { destinations?: string[]; description?: string | null } = {};
  if (b.destinations !== undefined) patch.destinations = b.destinations;
  if (b.description !== undefined) patch.description = b.description;
  const alias = await updateAlias(c.env.DB, address, patch);
  if (!alias) throw new ApiError(404, "not_found", "no such alias");
  return c.json(view(alias));
});

adminAliases.delete("/admin/aliases/:address", async (c) => {
  if (!(await deleteAlias(c.env.DB, addressParam(c)))) throw new ApiError(404, "not_found", "no such alias");
  return c.json({ address: addressParam(c), deleted: true });
});
