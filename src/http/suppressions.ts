/**
 * Suppression list API: GET /v1/suppressions (paged), POST /v1/suppressions (bulk add, up to 1000),
 * DELETE /v1/suppressions/:address (optionally ?scope=). And the one-click unsubscribe endpoint of RFC 8058:
 * POST /unsubscribe/:token adds the recipient to the tenant's broadcast suppressions.
 */
import { Hono } from "hono";
import { signingSecret } from "../config";
import { verifyUnsubscribeToken } from "../mime/deliverability";
import {
  SUPPRESSION_SCOPES,
  addSuppression,
  addSuppressionStatement,
  expiryFor,
  listSuppressions,
  removeSuppression,
  type SuppressionRow,
  type SuppressionScope,
} from "../store/suppressions";
import { requireApiKey, type AppEnv } from "./auth";
import { SuppressionAdd, parseBody } from "./bodies";
import { ApiError } from "./errors";
import { limitParam, readJsonBody, stringParam } from "./request";
import { ledgerOf } from "../store/shards";

export { MAX_SUPPRESSIONS_PER_REQUEST } from "./bodies";

function view(r: SuppressionRow) {
  return {
    address: r.address,
    scope: r.scope,
    reason: r.reason,
    detail: r.detail,
    message_id: r.message_id,
    created_at: new Date(r.created_at).toISOString(),
    expires_at: r.expires_at === null ? null : new Date(r.expires_at).toISOString(),
  };
}

function encodeCursor(r: SuppressionRow): string {
  return btoa(JSON.stringify([r.created_at, r.address, r.scope])).replace(/=+$/, "");
}

function decodeCursor(v: string | null): { createdAt: number; address: string; scope: string } | null {
  if (v === null) return null;
  try {
    const [createdAt, address, scope] = JSON.parse(atob(v)) as unknown[];
    if (typeof createdAt === "number" && typeof address === "string" && typeof scope === "string") return { createdAt, address, scope };
  } catch {
    /* refused below */
  }
  throw new ApiError(400, "invalid_field", "cursor is not one returned by this endpoint", "cursor");
}

export const suppressions = new Hono<AppEnv>();

suppressions.get("/v1/suppressions", requireApiKey, async (c) => {
  const limit = limitParam(c, 100, 1000);
  const address = stringParam(c, "address", /^[^\s<>]{3,320}$/, "an address");
  const rows = await listSuppressions(await ledgerOf(c.env, c.get("tenant").id), c.get("tenant").id, {
    limit,
    cursor: decodeCursor(stringParam(c, "cursor", /^[A-Za-z0-9+/]{1,600}$/, "a cursor returned by this endpoint")),
    ...(address ? { address } : {}),
  });
  return c.json({ data: rows.map(view), next_cursor: rows.length === limit ? encodeCursor(rows[rows.length - 1]!) : null });
});

suppressions.post("/v1/suppressions", requireApiKey, async (c) => {
  const { value } = await readJsonBody(c.req.raw, 1024 * 1024);
  // The bare list is taken for { suppressions: [...] }.
  const body = parseBody(SuppressionAdd, Array.isArray(value) ? { suppressions: value } : value, { too_large: 413, invalid_recipient: 422 });
  const tenantId = c.get("tenant").id;
  const now = Date.now();
  const entries = body.suppressions.map((e) => {
    const expiresAt = e.expires_at === undefined ? expiryFor(e.reason, now) : e.expires_at === null ? null : Date.parse(e.expires_at);
    return { tenantId, address: e.address, scope: e.scope, reason: e.reason, detail: e.detail ?? null, createdAt: now, expiresAt };
  });
  const ledger = await ledgerOf(c.env, tenantId);
  await ledger.batch(entries.map((e) => addSuppressionStatement(ledger, e)));
  return c.json({ added: entries.length, data: entries.map((e) => ({ address: e.address.toLowerCase(), scope: e.scope, reason: e.reason, expires_at: e.expiresAt === null ? null : new Date(e.expiresAt).toISOString() })) }, 201);
});

suppressions.delete("/v1/suppressions/:address", requireApiKey, async (c) => {
  const address = c.req.param("address");
  const scope = stringParam(c, "scope", /^[a-z]{1,20}$/, "a scope");
  if (scope !== null && !SUPPRESSION_SCOPES.includes(scope as SuppressionScope)) throw new ApiError(400, "invalid_field", `scope must be one of ${SUPPRESSION_SCOPES.join(", ")}`, "scope");
  const removed = await removeSuppression(await ledgerOf(c.env, c.get("tenant").id), c.get("tenant").id, address, (scope as SuppressionScope | null) ?? undefined);
  if (!removed) throw new ApiError(404, "not_found", "the address is not on the suppression list");
  return c.json({ address: address.toLowerCase(), removed });
});

async function unsubscribe(env: Env, token: string): Promise<{ recipient: string } | null> {
  const secret = signingSecret(env);
  if (!secret) return null;
  const payload = await verifyUnsubscribeToken(token, secret);
  if (!payload) return null;
  await addSuppression(await ledgerOf(env, payload.sender), {
    tenantId: payload.sender,
    address: payload.recipient,
    scope: "broadcast",
    reason: "unsubscribe",
    detail: "one-click unsubscribe (RFC 8058)",
    messageId: payload.messageId ?? null,
  });
  return { recipient: payload.recipient };
}

/** RFC 8058: the mailbox provider POSTs `List-Unsubscribe=One-Click` to the URL; no login, no confirmation. */
suppressions.post("/unsubscribe/:token", async (c) => {
  const done = await unsubscribe(c.env, c.req.param("token"));
  if (!done) throw new ApiError(404, "not_found", "this unsubscribe link is not valid");
  return c.json({ unsubscribed: true });
});

/** A person following the link in a browser gets a one-button page that POSTs to the same URL. */
suppressions.get("/unsubscribe/:token", (c) => {
  return c.html(
    `<!doctype html><html><head><meta charset="utf-8"><title>Unsubscribe</title></head><body>` +
      `<form method="post"><p>Stop receiving these emails?</p><button type="submit" name="List-Unsubscribe" value="One-Click">Unsubscribe</button></form>` +
      `</body></html>`,
  );
});
