/**
 * Request plumbing shared by the API routes: bounded JSON bodies, Idempotency-Key replay, the per-tenant rate
 * limit, and query parameter parsing. Every refusal is an ApiError with a field name.
 */
import type { Context } from "hono";
import { readBodyLimited } from "../accept/raw";
import { claimIdempotencyKey, completeIdempotencyKey, releaseIdempotencyKey } from "../store/idempotency";
import { consumeRateLimit, sha256Hex } from "../store/keys";
import type { AppEnv } from "./auth";
import { ApiError } from "./errors";

/** JSON bodies carry base64 attachments (4/3 of the bytes) plus the JSON around them. */
export function maxJsonBytes(maxMessageBytes: number): number {
  return Math.ceil((maxMessageBytes * 4) / 3) + 1024 * 1024;
}

/** Reads a JSON request body: 415 unless Content-Type is JSON, 413 above the limit, 400 for bad UTF-8 or JSON. */
/** The body of an admin request as a JSON object; 400 invalid_json for anything else. */
export async function readJsonObject(req: Request): Promise<Record<string, unknown>> {
  try {
    const v: unknown = await req.json();
    if (typeof v === "object" && v !== null && !Array.isArray(v)) return v as Record<string, unknown>;
  } catch {
    // reported below
  }
  throw new ApiError(400, "invalid_json", "the body must be a JSON object");
}

export async function readJsonBody(req: Request, maxBytes: number): Promise<{ value: unknown; bytes: Uint8Array }> {
  const type = req.headers.get("content-type") ?? "";
  if (!/^application\/json\s*(;|$)/i.test(type)) throw new ApiError(415, "unsupported_media_type", "send JSON with Content-Type: application/json");
  const bytes = await readBodyLimited(req, maxBytes);
  let text: string;
  try {
    text = new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    throw new ApiError(400, "invalid_utf8", "the request body is not valid UTF-8");
  }
  try {
    return { value: JSON.parse(text), bytes };
  } catch {
    throw new ApiError(400, "invalid_json", "the request body is not valid JSON");
  }
}

const IDEMPOTENCY_KEY = /^[\x21-\x7e]{1,255}$/;

/**
 * Runs `handler` at most once per Idempotency-Key: the same key with the same request returns the first
 * (successful) response for 24 hours; with a different request, 409. Failed requests release the key.
 */
export async function idempotent(c: Context<AppEnv>, body: Uint8Array, handler: () => Promise<Response>): Promise<Response> {
  const key = c.req.header("idempotency-key");
  if (key === undefined) return handler();
  if (!IDEMPOTENCY_KEY.test(key)) throw new ApiError(400, "invalid_field", "Idempotency-Key must be 1-255 printable ASCII characters", "Idempotency-Key");
  const tenantId = c.get("tenant").id;
  const digest = await crypto.subtle.digest("SHA-256", body);
  const bodyHash = [...new Uint8Array(digest)].map((b) => b.toString(16).padStart(2, "0")).join("");
  const requestHash = await sha256Hex(`${c.req.method} ${new URL(c.req.url).pathname}${new URL(c.req.url).search}\n${bodyHash}`);
  const claim = await claimIdempotencyKey(c.env.DB, tenantId, key, requestHash);
  if (claim.state === "conflict") throw new ApiError(409, "idempotency_conflict", "this Idempotency-Key was used with a different request", "Idempotency-Key");
  if (claim.state === "in_progress") throw new ApiError(409, "idempotency_conflict", "a request with this Idempotency-Key is still in progress", "Idempotency-Key");
  if (claim.state === "replay") {
    return new Response(claim.body, { status: claim.status, headers: { "content-type": "application/json", "idempotent-replayed": "true" } });
  }
  let res: Response;
  try {
    res = await handler();
  } catch (e) {
    await releaseIdempotencyKey(c.env.DB, tenantId, key);
    throw e;
  }
  if (res.status >= 200 && res.status < 300) {
    const text = await res.clone().text();
    await completeIdempotencyKey(c.env.DB, tenantId, key, res.status, text);
  } else {
    await releaseIdempotencyKey(c.env.DB, tenantId, key);
  }
  return res;
}

/** Counts `n` messages against the tenant's per-minute limit; 429 with Retry-After when over it. */
export async function enforceRateLimit(c: Context<AppEnv>, n: number): Promise<void> {
  const limit = c.get("tenant").rateLimitPerMinute;
  if (limit === null || limit <= 0) return;
  // The limit counts recipients (issue 15): a request with more than the whole minute's allowance never fits.
  if (n > limit) throw new ApiError(429, "rate_limited", `this request has ${n} recipients; this account may send to ${limit} recipients per minute: split it`);
  const retryAfter = await consumeRateLimit(c.env.DB, c.get("tenant").id, limit, n);
  if (retryAfter > 0) {
    throw new ApiError(429, "rate_limited", `this account may send to ${limit} recipients per minute`, undefined, { "retry-after": String(retryAfter) });
  }
}

/** `limit` query parameter: 1..max, default `fallback`. */
export function limitParam(c: Context<AppEnv>, fallback = 50, max = 100): number {
  const v = c.req.query("limit");
  if (v === undefined) return fallback;
  if (!/^\d{1,4}$/.test(v) || Number(v) < 1 || Number(v) > max) throw new ApiError(400, "invalid_field", `limit must be an integer from 1 to ${max}`, "limit");
  return Number(v);
}

/** A time query parameter as epoch ms: RFC 3339 or epoch milliseconds. */
export function timeParam(c: Context<AppEnv>, name: string): number | null {
  const v = c.req.query(name);
  if (v === undefined || v === "") return null;
  if (/^\d{1,15}$/.test(v)) return Number(v);
  if (/^\d{4}-\d{2}-\d{2}(T\d{2}:\d{2}(:\d{2}(\.\d{1,9})?)?(Z|[+-]\d{2}:\d{2}))?$/.test(v)) {
    const t = Date.parse(v);
    if (!Number.isNaN(t)) return t;
  }
  throw new ApiError(400, "invalid_field", `${name} must be an RFC 3339 date-time or epoch milliseconds`, name);
}

/** A string query parameter checked against a pattern. */
export function stringParam(c: Context<AppEnv>, name: string, pattern: RegExp, what: string): string | null {
  const v = c.req.query(name);
  if (v === undefined || v === "") return null;
  if (!pattern.test(v)) throw new ApiError(400, "invalid_field", `${name} must be ${what}`, name);
  return v;
}
