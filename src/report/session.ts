/**
 * Who may see the reporting page. Either Cloudflare Access (when ACCESS_TEAM_DOMAIN and ACCESS_AUD are set, the
 * Access JWT is required) or a login with the admin token that opens a cookie session: the cookie
 * (`__Host-`, HttpOnly, Secure, SameSite=Strict) holds 32 random bytes, D1 stores only their SHA-256, and each
 * session has its own CSRF token that every form posts back.
 */
import { encodeBase64Url } from "../mime/encoding";
import { constantTimeEqual, hmacSha256 } from "../mime/hmac";
import type { Context, MiddlewareHandler } from "hono";
import { deleteCookie, getCookie, setCookie } from "hono/cookie";
import { sha256Hex } from "../store/keys";
import { accessSettings, adminToken, signingSecretSetting } from "../config";
import { verifyAccessJwt } from "./access";

export const SESSION_COOKIE = "__Host-er_session";
export const LOGIN_COOKIE = "__Host-er_login";
/** Sessions last a working day; log in again after. */
export const SESSION_TTL_MS = 12 * 3_600_000;

export interface DashboardSession {
  via: "cookie" | "access";
  csrf: string;
  who: string;
}

export type DashEnv = { Bindings: Env; Variables: { session: DashboardSession } };

export function randomToken(bytes = 32): string {
  const b = crypto.getRandomValues(new Uint8Array(bytes));
  return encodeBase64Url(b);
}

const cookieOptions = (maxAgeS: number) => ({ path: "/", httpOnly: true, secure: true, sameSite: "Strict" as const, maxAge: maxAgeS });

/** True when the presented token is the admin token (compared as hashes, in constant time). */
export async function isAdminToken(env: Env, presented: string): Promise<boolean> {
  const token = adminToken(env);
  if (!token || !presented) return false;
  return constantTimeEqual(await sha256Hex(presented), await sha256Hex(token));
}

/** Opens a session: stores the hash of a new cookie value with a fresh CSRF token, sets the cookie. */
export async function openSession(c: Context<DashEnv>, now = Date.now()): Promise<void> {
  const id = randomToken();
  await c.env.DB.batch([
    c.env.DB.prepare("DELETE FROM dashboard_sessions WHERE expires_at < ?").bind(now),
    c.env.DB.prepare("INSERT INTO dashboard_sessions (id_hash, csrf_token, created_at, expires_at) VALUES (?, ?, ?, ?)").bind(
      await sha256Hex(id),
      randomToken(),
      now,
      now + SESSION_TTL_MS,
    ),
  ]);
  setCookie(c, SESSION_COOKIE, id, cookieOptions(SESSION_TTL_MS / 1000));
}

export async function closeSession(c: Context<DashEnv>): Promise<void> {
  const id = getCookie(c, SESSION_COOKIE);
  if (id) await c.env.DB.prepare("DELETE FROM dashboard_sessions WHERE id_hash = ?").bind(await sha256Hex(id)).run();
  deleteCookie(c, SESSION_COOKIE, { path: "/", secure: true });
}

async function cookieSession(c: Context<DashEnv>, now: number): Promise<DashboardSession | null> {
  const id = getCookie(c, SESSION_COOKIE);
  if (!id || id.length > 100) return null;
  const row = await c.env.DB.prepare("SELECT csrf_token FROM dashboard_sessions WHERE id_hash = ? AND expires_at > ?")
    .bind(await sha256Hex(id), now)
    .first<{ csrf_token: string }>();
  return row ? { via: "cookie", csrf: row.csrf_token, who: "admin" } : null;
}

/** CSRF token of an Access identity: an HMAC of its subject under the deployment's secret. */
async function accessCsrf(env: Env, sub: string): Promise<string> {
  const secret = signingSecretSetting(env) || adminToken(env) || "";
  if (!secret) throw new Error("set SIGNING_SECRET (or ADMIN_TOKEN) to use the reporting page behind Access");
  return encodeBase64Url(await hmacSha256(secret, `dashboard-csrf:${sub}`));
}

/** The request's session, from Access when configured, else from the cookie; null when not signed in. */
export async function currentSession(c: Context<DashEnv>, now = Date.now()): Promise<DashboardSession | null> {
  const access = accessSettings(c.env);
  if (access) {
    const jwt = c.req.header("cf-access-jwt-assertion");
    const id = jwt ? await verifyAccessJwt(jwt, access) : null;
    return id ? { via: "access", csrf: await accessCsrf(c.env, id.sub), who: id.email ?? id.sub } : null;
  }
  return cookieSession(c, now);
}

/**
 * A state-changing request is accepted only from this origin: browsers send Origin on POST; a different one
 * (or Sec-Fetch-Site: cross-site) is a forged cross-site form. SameSite=Strict already withholds the cookie.
 */
export function sameOrigin(c: Context): boolean {
  const origin = c.req.header("origin");
  if (origin && origin !== new URL(c.req.url).origin) return false;
  const site = c.req.header("sec-fetch-site");
  return !site || site === "same-origin" || site === "none";
}

/** The CSRF check of a posted form: same origin and the session's token, compared in constant time. */
export function csrfValid(c: Context<DashEnv>, posted: unknown): boolean {
  return sameOrigin(c) && typeof posted === "string" && constantTimeEqual(posted, c.get("session").csrf);
}

/** Requires a session; sends browsers to the login form otherwise (or explains the Access requirement). */
export const requireDashboardSession: MiddlewareHandler<DashEnv> = async (c, next) => {
  const session = await currentSession(c);
  if (!session) {
    if (accessSettings(c.env)) return c.text("This page is behind Cloudflare Access: sign in through Access.", 403);
    const url = new URL(c.req.url);
    return c.redirect(`/dashboard/login?next=${encodeURIComponent(url.pathname + url.search)}`, 303);
  }
  c.set("session", session);
  await next();
};

export function loginNonce(c: Context<DashEnv>): string {
  const nonce = randomToken(16);
  setCookie(c, LOGIN_COOKIE, nonce, cookieOptions(600));
  return nonce;
}

export function loginNonceValid(c: Context<DashEnv>, posted: unknown): boolean {
  const cookie = getCookie(c, LOGIN_COOKIE);
  return sameOrigin(c) && !!cookie && typeof posted === "string" && constantTimeEqual(cookie, posted);
}
