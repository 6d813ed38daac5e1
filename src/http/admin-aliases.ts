/**
 * Admin API for forwarding aliases (behind ADMIN_TOKEN): `/admin/aliases`. An alias is an address at one of a
 * tenant's sender domains; mail Email Routing hands the Worker for it is forwarded to its destinations (see
 * src/inbound/forward.ts). The alias's domain must belong to the tenant, because forwarded mail is SRS-rewritten
 * into and DKIM-signed for that domain.
 */
import { Hono, type Context } from "hono";
import { envelopeAddress } from "../accept/send";
import { loadConfig } from "../config";
import { isSrsAddress } from "../mime/srs";
import { parseAddress } from "../mime/address";
import { isReturnPathAddress } from "../mime/return-path";
import { createAlias, deleteAlias, findAlias, listAliases, updateAlias, type Alias } from "../store/aliases";
import { tenantOfDomain } from "../store/inbound";
import { requireAdmin, type AppEnv } from "./auth";
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

function aliasAddress(v: unknown): { address: string; domain: string } {
  if (typeof v !== "string") throw new ApiError(400, "missing_field", "address is required", "address");
  const r = parseAddress(v.trim());
  if (!r.ok) throw new ApiError(400, "invalid_field", `address: ${r.error.message}`, "address");
  const address = envelopeAddress(r.value).toLowerCase();
  if (isReturnPathAddress(address) || isSrsAddress(address)) throw new ApiError(400, "invalid_field", "address has the shape of a return path or SRS address, which the relay handles itself", "address");
  return { address, domain: r.value.asciiDomain };
}

function destinationList(v: unknown, alias: string, max: number): string[] {
  if (!Array.isArray(v) || v.length === 0) throw new ApiError(400, "missing_field", "destinations must be a non-empty array of addresses", "destinations");
  if (v.length > max) throw new ApiError(422, "too_many_recipients", `at most ${max} destinations`, "destinations");
  const out: string[] = [];
  v.forEach((d: unknown, i) => {
    const r = typeof d === "string" ? parseAddress(d.trim()) : null;
    if (!r || !r.ok) throw new ApiError(400, "invalid_recipient", `destinations[${i}] is not a valid address`, `destinations[${i}]`);
    const address = envelopeAddress(r.value);
    if (address.toLowerCase() === alias) throw new ApiError(400, "invalid_recipient", "an alias cannot forward to itself", `destinations[${i}]`);
    if (!out.some((o) => o.toLowerCase() === address.toLowerCase())) out.push(address);
  });
  return out;
}

function description(v: unknown): string | null {
  if (v === undefined || v === null) return null;
  if (typeof v !== "string" || v.length > 200) throw new ApiError(400, "invalid_field", "description must be a string of at most 200 characters", "description");
  return v;
}

function addressParam(c: Context<AppEnv>): string {
  return (c.req.param("address") ?? "").toLowerCase();
}

export const adminAliases = new Hono<AppEnv>();
adminAliases.use("/admin/aliases", requireAdmin);
adminAliases.use("/admin/aliases/*", requireAdmin);

adminAliases.post("/admin/aliases", async (c) => {
  const b = await readJsonObject(c.req.raw);
  const { address, domain } = aliasAddress(b.address);
  if (typeof b.tenant_id !== "string" || b.tenant_id === "") throw new ApiError(400, "missing_field", "tenant_id is required", "tenant_id");
  const owner = await tenantOfDomain(c.env.DB, domain);
  if (!owner || owner.tenantId !== b.tenant_id) {
    throw new ApiError(403, "sender_domain_not_allowed", `${domain} is not a sender domain of tenant ${b.tenant_id} (add it to the tenant first)`, "address");
  }
  const destinations = destinationList(b.destinations, address, loadConfig(c.env).maxRecipients);
  const created = await createAlias(c.env.DB, { address, tenantId: b.tenant_id, destinations, description: description(b.description) });
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
  const b = await readJsonObject(c.req.raw);
  const patch: { destinations?: string[]; description?: string | null } = {};
  if (b.destinations !== undefined) patch.destinations = destinationList(b.destinations, address, loadConfig(c.env).maxRecipients);
  if (b.description !== undefined) patch.description = description(b.description);
  const alias = await updateAlias(c.env.DB, address, patch);
  if (!alias) throw new ApiError(404, "not_found", "no such alias");
  return c.json(view(alias));
});

adminAliases.delete("/admin/aliases/:address", async (c) => {
  if (!(await deleteAlias(c.env.DB, addressParam(c)))) throw new ApiError(404, "not_found", "no such alias");
  return c.json({ address: addressParam(c), deleted: true });
});
