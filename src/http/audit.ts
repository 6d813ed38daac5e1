/**
 * The audit trail at the HTTP layer (issue 21): one middleware in front of every route that changes the relay's
 * configuration — the admin API (`/admin/*`) and tenant settings (`/v1/suppressions`, `/v1/domains/*`,
 * `/v1/tracking/settings`, the reporting page's suppression forms) — records each authenticated POST, PUT,
 * PATCH or DELETE after it ran: who (admin token id, API key prefix and id, Access or session identity), when,
 * what (method, path, status, parameters with secrets redacted) and from which IP. Requests that fail
 * authentication change nothing and write nothing (strangers cannot fill the table). `GET /admin/audit` lists it.
 */
import { Hono, type Context, type MiddlewareHandler } from "hono";
import { detailText, listAudit, recordAudit } from "../store/audit";
import { requireAdmin, type AppEnv } from "./auth";
import { ApiError } from "./errors";

/** Paths whose changes are audited; sending mail and recipients' unsubscribes are not configuration changes. */
export const AUDITED_PATHS: readonly RegExp[] = [/^\/admin\//, /^\/v1\/suppressions(\/|$)/, /^\/v1\/domains\//, /^\/v1\/tracking\/settings$/, /^\/dashboard\/suppressions(\/|$)/];
const MUTATING = new Set(["POST", "PUT", "PATCH", "DELETE"]);
/** Request bodies read for the detail; admin bodies are small, a larger one is noted by size only. */
const MAX_AUDITED_BODY_BYTES = 64 * 1024;

/** The request's parameters: its JSON or form body and query string. */
async function requestParams(req: Request): Promise<unknown> {
  const url = new URL(req.url);
  const query = url.search ? Object.fromEntries(url.searchParams) : undefined;
  const length = Number(req.headers.get("content-length") ?? "0");
  let body: unknown;
  if (req.body && length > MAX_AUDITED_BODY_BYTES) {
    body = { body_bytes: length };
  } else if (req.body) {
    const text = await req.clone().text();
    const type = req.headers.get("content-type") ?? "";
    if (/^application\/x-www-form-urlencoded/i.test(type)) body = Object.fromEntries(new URLSearchParams(text));
    else if (text) {
      try {
        body = JSON.parse(text) as unknown;
      } catch {
        body = { unparsed_bytes: text.length };
      }
    }
  }
  if (query === undefined && body === undefined) return undefined;
  return { ...(query ? { query } : {}), ...(body !== undefined ? { body } : {}) };
}

function actorOf(c: Context<AppEnv>): string | undefined {
  const actor = c.get("auditActor");
  if (actor) return actor;
  // The reporting page's session (cookie login with the admin token, or a Cloudflare Access identity).
  const session = (c as unknown as Context<{ Variables: { session?: { via: string; who: string } } }>).get("session");
  return session ? `dashboard:${session.via}:${session.who}` : undefined;
}

function tenantOf(c: Context<AppEnv>, params: unknown): string | null {
  const inPath = /^\/admin\/tenants\/([^/]+)/.exec(c.req.path)?.[1];
  if (inPath) return decodeURIComponent(inPath);
  const tenant = c.get("tenant");
  if (tenant) return tenant.id;
  const body = (params as { body?: Record<string, unknown> } | undefined)?.body;
  return typeof body?.tenant_id === "string" ? body.tenant_id.slice(0, 64) : null;
}

/** The middleware: mount once, before the routes. */
export const auditTrail: MiddlewareHandler<AppEnv> = async (c, next) => {
  if (!MUTATING.has(c.req.method) || !AUDITED_PATHS.some((re) => re.test(c.req.path))) return next();
  const params = await requestParams(c.req.raw);
  await next();
  const actor = actorOf(c);
  if (!actor) return;
  try {
    await recordAudit(c.env.DB, {
      at: Date.now(),
      actor: actor.slice(0, 200),
      tenantId: tenantOf(c, params),
      ip: c.req.header("cf-connecting-ip") ?? null,
      method: c.req.method,
      path: c.req.path.slice(0, 500),
      status: c.res.status,
      detail: detailText(params),
    });
  } catch (e) {
    // The change is made; failing the response now would make the client repeat it. Loud, not silent.
    console.error("audit: could not record", c.req.method, c.req.path, e);
  }
};

export const adminAudit = new Hono<AppEnv>();
adminAudit.use("/admin/*", requireAdmin);

adminAudit.get("/admin/audit", async (c) => {
  const limitRaw = c.req.query("limit") ?? "100";
  if (!/^\d{1,4}$/.test(limitRaw) || Number(limitRaw) < 1 || Number(limitRaw) > 1000) throw new ApiError(400, "invalid_field", "limit must be 1-1000", "limit");
  const cursor = c.req.query("cursor") ?? null;
  if (cursor !== null && !/^\d{1,15}$/.test(cursor)) throw new ApiError(400, "invalid_field", "cursor is not one returned by this endpoint", "cursor");
  const tenantId = c.req.query("tenant_id") ?? null;
  if (tenantId !== null && !/^[A-Za-z0-9_-]{1,64}$/.test(tenantId)) throw new ApiError(400, "invalid_field", "tenant_id is not a tenant id", "tenant_id");
  const limit = Number(limitRaw);
  const rows = await listAudit(c.env.DB, { limit, before: cursor === null ? null : Number(cursor), tenantId });
  return c.json({ data: rows, next_cursor: rows.length === limit ? String(rows[rows.length - 1]!.id) : null });
});
