/** API key and admin token checks for the HTTP API. */
import { constantTimeEqual } from "../mime/hmac";
import { adminToken, type RelayConfig } from "../config";
import type { Context, MiddlewareHandler } from "hono";
import { findApiKey, sha256Hex, type Tenant } from "../store/keys";
import { ApiError } from "./errors";

/**
 * `config`: the relay's settings, parsed by the app's first middleware (src/http/app.ts) on first use in a request,
 * so a bad setting fails only the routes that need settings, as it always did. Routes pass it down.
 */
export type AppEnv = { Bindings: Env; Variables: { tenant: Tenant; keyId: string; auditActor: string; config: () => RelayConfig } };

function presentedKey(c: Context): string | null {
  const auth = c.req.header("authorization");
  if (auth) {
    const m = /^Bearer\s+(\S+)\s*$/i.exec(auth);
    return m ? m[1]! : null;
  }
  return c.req.header("x-api-key")?.trim() || null;
}

/** Requires a valid, unrevoked API key of a tenant that is not suspended. */
export const requireApiKey: MiddlewareHandler<AppEnv> = async (c, next) => {
  const key = presentedKey(c);
  if (!key) throw new ApiError(401, "unauthorized", "an API key is required (Authorization: Bearer <key> or X-Api-Key)");
  const record = await findApiKey(c.env.DB, key);
  if (!record) throw new ApiError(401, "unauthorized", "the API key is not valid");
  if (record.revoked) throw new ApiError(401, "key_revoked", "the API key has been revoked");
  if (record.tenant.suspended) throw new ApiError(403, "tenant_suspended", "the account is suspended");
  c.set("tenant", record.tenant);
  c.set("keyId", record.keyId);
  c.set("auditActor", `api-key:${record.prefix} ${record.keyId}`);
  await next();
};

/** Requires the admin token (secret ADMIN_TOKEN); compared as hashes in constant time. */
export const requireAdmin: MiddlewareHandler<AppEnv> = async (c, next) => {
  const expected = adminToken(c.env);
  const key = presentedKey(c);
  if (!expected) throw new ApiError(403, "forbidden", "the admin API is disabled: set the ADMIN_TOKEN secret");
  const expectedHash = await sha256Hex(expected);
  if (!key || !constantTimeEqual(await sha256Hex(key), expectedHash)) {
    throw new ApiError(401, "unauthorized", "the admin token is not valid");
  }
  // The token's id in the audit trail: the start of its hash (names which token without revealing it).
  c.set("auditActor", `admin-token:${expectedHash.slice(0, 12)}`);
  await next();
};
