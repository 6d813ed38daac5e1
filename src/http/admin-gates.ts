/**
 * Admin API for DomainGates (behind ADMIN_TOKEN): read a destination's live state (rate, connections,
 * backoff, circuit, sequence), set or clear its policy override, and reset its backoff. The destination is a
 * gate key: a recipient domain, `provider:google`, `upstream:<route name>` or `cloudflare:<binding>`.
 */
import { Hono } from "hono";
import { GatePolicyPatch, parseBody } from "./bodies";
import { requireAdmin, type AppEnv } from "./auth";
import { ApiError } from "./errors";

const KEY = /^[a-z0-9][a-z0-9.:_-]{0,252}$/;

function gate(env: Env, raw: string) {
  const key = decodeURIComponent(raw).toLowerCase();
  if (!KEY.test(key)) throw new ApiError(400, "invalid_field", "destination must be a domain or a gate key like provider:google", "destination");
  return { key, stub: env.DOMAIN_GATE.get(env.DOMAIN_GATE.idFromName(key)) };
}

export const adminGates = new Hono<AppEnv>();
adminGates.use("/admin/gates/*", requireAdmin);

adminGates.get("/admin/gates/:destination", async (c) => {
  const { key, stub } = gate(c.env, c.req.param("destination"));
  const state = await stub.state();
  return c.json({ ...state, destination: key });
});

adminGates.put("/admin/gates/:destination/policy", async (c) => {
  const { key, stub } = gate(c.env, c.req.param("destination"));
  let b: unknown;
  try {
    b = await c.req.json();
  } catch {
    throw new ApiError(400, "invalid_json", "the body must be a JSON policy object or null");
  }
  return c.json(await stub.setOverride(key, parseBody(GatePolicyPatch, b)));
});

adminGates.post("/admin/gates/:destination/reset", async (c) => {
  const { stub } = gate(c.env, c.req.param("destination"));
  return c.json(await stub.resetBackoff());
});
