/**
 * The reporting page at /dashboard: server-rendered HTML (hono/html escapes every value), no JavaScript,
 * behind the admin-token session or Cloudflare Access. Reads rollups and indexed tables only.
 */
import { concatBytes } from "../mime/encoding";
import { adminToken, redactionHashKey } from "../config";
import { Hono, type Context } from "hono";
import { html } from "hono/html";
import { consumeRateLimit, rateCount } from "../store/keys";
import { advanceRollups, PAGE_ROLLUP_EVENTS } from "../store/rollups";
import { ALL_TENANTS, listTenants, REPORT_WINDOWS, type ReportWindow, type TenantScope } from "../store/report";
import { addSuppression, removeSuppression, SUPPRESSION_REASONS, SUPPRESSION_SCOPES, type SuppressionReason, type SuppressionScope } from "../store/suppressions";
import { renderPage, sendPage, href, type Html, type Section } from "./layout";
import { destinationsPage } from "./pages/destinations";
import { loginBody } from "./pages/login";
import { messagePage, messagesPage } from "./pages/messages";
import { overviewPage } from "./pages/overview";
import { SUPPRESSION_NOTICES, suppressionsPage, type SuppressionNotice } from "./pages/suppressions";
import { webhooksPage } from "./pages/webhooks";
import { auditPage } from "./pages/audit";
import { reputationPage } from "./pages/reputation";
import {
  closeSession,
  csrfValid,
  isAdminToken,
  loginNonce,
  loginNonceValid,
  openSession,
  requireDashboardSession,
  type DashEnv,
} from "./session";
import { DASHBOARD_CSS } from "./styles";
import { tenantExists } from "../store/tenants";
import { ledgerOf, type LedgerShard } from "../store/shards";
import { across, shardsOf } from "./shards";

const TENANT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;
const ADDRESS = /^[^\s@<>()",;:\\[\]]+@[A-Za-z0-9-]+(\.[A-Za-z0-9-]+)+$/;

function tenantParam(v: string | undefined): TenantScope {
  return v && TENANT_ID.test(v) ? v : ALL_TENANTS;
}

function windowParam(v: string | undefined): ReportWindow {
  return (REPORT_WINDOWS as readonly string[]).includes(v ?? "") ? (v as ReportWindow) : "24h";
}

/** Only paths inside the dashboard are followed after login (no open redirect). */
function safeNext(v: unknown): string {
  return typeof v === "string" && /^\/dashboard(\/|\?|$)/.test(v) && !v.includes("//") && !v.includes("\\") ? v : "/dashboard";
}

function field(form: Record<string, unknown>, name: string): string {
  const v = form[name];
  return typeof v === "string" ? v.trim() : "";
}

async function page(c: Context<DashEnv>, section: Section | null, title: string, body: (tenant: TenantScope) => Promise<Html>, status: 200 | 404 = 200) {
  const tenant = tenantParam(c.req.query("tenant"));
  const [tenants, content] = await Promise.all([listTenants(c.env.DB), body(tenant)]);
  return sendPage(c, renderPage({ title, section, tenant, tenants, csrf: c.get("session").csrf, body: content }), status);
}

export const dashboard = new Hono<DashEnv>();

dashboard.get("/dashboard/assets/app.css", (c) => {
  c.header("content-type", "text/css; charset=utf-8");
  c.header("cache-control", "public, max-age=3600");
  c.header("x-content-type-options", "nosniff");
  return c.body(DASHBOARD_CSS);
});

dashboard.get("/dashboard/login", (c) => {
  const body = loginBody(loginNonce(c), safeNext(c.req.query("next")), null);
  return sendPage(c, renderPage({ title: "Sign in", section: null, tenant: ALL_TENANTS, tenants: [], csrf: null, body }));
});

/** The login form is a nonce, a token and a path: anything larger is not a browser signing in. */
export const MAX_LOGIN_BODY_BYTES = 16 * 1024;
/** Wrong admin tokens per client per minute before the form answers 429 (guessing a 32-byte token is hopeless anyway; this keeps the log and the D1 bill quiet). */
export const MAX_FAILED_LOGINS_PER_MINUTE = 10;

/** Reads a form body of at most `max` bytes; null when it is larger (by Content-Length or while reading). */
async function readSmallForm(req: Request, max: number): Promise<Record<string, string> | null> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (Number.isFinite(declared) && declared > max) return null;
  const chunks: Uint8Array[] = [];
  let total = 0;
  if (req.body) {
    const reader = req.body.getReader();
    for (;;) {
      const { done, value } = await reader.read();
      if (done) break;
      total += value.byteLength;
      if (total > max) {
        await reader.cancel().catch(() => {});
        return null;
      }
      chunks.push(value);
    }
  }
  const bytes = concatBytes(chunks, total);
  const out: Record<string, string> = {};
  try {
    const form = await new Request(req.url, { method: "POST", headers: { "content-type": req.headers.get("content-type") ?? "" }, body: bytes }).formData();
    for (const [k, v] of form) if (typeof v === "string" && !(k in out)) out[k] = v;
  } catch {
    // Not a form: every field is missing, which the handler answers like an expired form.
  }
  return out;
}

/** The client a failed login is counted for: Cloudflare's connecting IP, else one shared bucket. */
function loginClientKey(c: Context<DashEnv>): string {
  return `login:${c.req.header("cf-connecting-ip") ?? "unknown"}`;
}

dashboard.post("/dashboard/login", async (c) => {
  const form = await readSmallForm(c.req.raw, MAX_LOGIN_BODY_BYTES);
  const next = safeNext(form?.next);
  const fail = (message: string, status: 400 | 403 | 413 | 429) =>
    sendPage(c, renderPage({ title: "Sign in", section: null, tenant: ALL_TENANTS, tenants: [], csrf: null, body: loginBody(loginNonce(c), next, message) }), status);
  if (!form) return fail(`The form is larger than ${MAX_LOGIN_BODY_BYTES} bytes.`, 413);
  if (!adminToken(c.env)) return fail("The reporting page is disabled: set the ADMIN_TOKEN secret.", 403);
  const clientKey = loginClientKey(c);
  const failures = await rateCount(c.env.DB, clientKey);
  if (failures >= MAX_FAILED_LOGINS_PER_MINUTE) {
    c.header("retry-after", "60");
    return fail("Too many failed sign-ins from here; wait a minute.", 429);
  }
  if (!loginNonceValid(c, form.nonce)) return fail("The form expired; try again.", 400);
  if (!(await isAdminToken(c.env, field(form, "token")))) {
    await consumeRateLimit(c.env.DB, clientKey, Number.MAX_SAFE_INTEGER, 1);
    return fail("That is not the admin token.", 403);
  }
  await openSession(c);
  return c.redirect(next, 303);
});

// "/dashboard/*" also matches "/dashboard" itself. Only the real asset is public; any other path under
// /dashboard/assets/ needs a session like every page (and then finds the 404 page).
dashboard.use("/dashboard/*", async (c, next) => {
  const p = new URL(c.req.url).pathname;
  if (p === "/dashboard/login" || p === "/dashboard/assets/app.css") return next();
  return requireDashboardSession(c, next);
});

dashboard.post("/dashboard/logout", async (c) => {
  const form = await c.req.parseBody();
  if (!csrfValid(c, form.csrf)) return c.text("invalid form token", 400);
  await closeSession(c);
  return c.redirect("/dashboard/login", 303);
});

/**
 * The ledger shards a page reads (issue 17), after folding in the events each wrote since the last cron run
 * (bounded to one pass, every shard in parallel) so the numbers are current. A shard whose fold fails is left to
 * the page's own reads, which say it did not answer.
 */
async function foldedShards(c: Context<DashEnv>, fold = true): Promise<LedgerShard[]> {
  const shards = await shardsOf(c.env, tenantParam(c.req.query("tenant")));
  if (fold) await across(shards, (db) => advanceRollups(db, 1, Date.now(), PAGE_ROLLUP_EVENTS));
  return shards;
}

dashboard.get("/dashboard", async (c) => {
  const shards = await foldedShards(c);
  const window = windowParam(c.req.query("window"));
  return page(c, "overview", "Overview", (t) => overviewPage(shards, t, window));
});

dashboard.get("/dashboard/destinations", async (c) => {
  const shards = await foldedShards(c);
  const window = windowParam(c.req.query("window"));
  return page(c, "destinations", "Destinations", (t) => destinationsPage(c.env, shards, t, window));
});

dashboard.get("/dashboard/messages", async (c) => {
  // The tag index is filled by the rollup: fold in the newest events first so fresh messages are found.
  const shards = await foldedShards(c, c.req.query("field") === "tag");
  return page(c, "messages", "Messages", (t) => messagesPage(shards, t, c.req.query("field") ?? "", c.req.query("q") ?? "", () => redactionHashKey(c.env)));
});

dashboard.get("/dashboard/messages/:id", async (c) => {
  const tenant = tenantParam(c.req.query("tenant"));
  const body = await messagePage(c.env, await foldedShards(c, false), tenant, c.req.param("id"));
  if (!body) return page(c, "messages", "Not found", async () => html`<h1>No such message</h1><p><a href="${href("/dashboard/messages", tenant)}">Search messages</a></p>`, 404);
  return page(c, "messages", "Message", async () => body);
});

dashboard.get("/dashboard/suppressions", (c) => {
  const n = c.req.query("notice");
  const notice = n && n in SUPPRESSION_NOTICES ? (n as SuppressionNotice) : null;
  return page(c, "suppressions", "Suppressions", async (t) =>
    suppressionsPage(await foldedShards(c, false), t, await listTenants(c.env.DB), c.req.query("q") ?? "", c.get("session").csrf, notice),
  );
});

function backToSuppressions(c: Context<DashEnv>, form: Record<string, unknown>, notice: SuppressionNotice) {
  return c.redirect(href("/dashboard/suppressions", tenantParam(field(form, "tenant") || undefined), { notice }), 303);
}

dashboard.post("/dashboard/suppressions", async (c) => {
  const form = await c.req.parseBody();
  if (!csrfValid(c, form.csrf)) return backToSuppressions(c, form, "csrf");
  const tenantId = field(form, "tenant_id");
  const address = field(form, "address").toLowerCase();
  const scope = field(form, "scope") as SuppressionScope;
  const reason = (field(form, "reason") || "manual") as SuppressionReason;
  const known = TENANT_ID.test(tenantId) && (await tenantExists(c.env.DB, tenantId));
  if (!known || address.length > 320 || !ADDRESS.test(address) || !SUPPRESSION_SCOPES.includes(scope) || !SUPPRESSION_REASONS.includes(reason)) {
    return backToSuppressions(c, form, "invalid");
  }
  const detail = field(form, "detail").slice(0, 200) || "added on the reporting page";
  await addSuppression(await ledgerOf(c.env, tenantId), { tenantId, address, scope, reason, detail });
  return backToSuppressions(c, form, "added");
});

dashboard.post("/dashboard/suppressions/remove", async (c) => {
  const form = await c.req.parseBody();
  if (!csrfValid(c, form.csrf)) return backToSuppressions(c, form, "csrf");
  const scope = field(form, "scope") as SuppressionScope;
  if (!TENANT_ID.test(field(form, "tenant_id")) || !SUPPRESSION_SCOPES.includes(scope)) return backToSuppressions(c, form, "invalid");
  await removeSuppression(await ledgerOf(c.env, field(form, "tenant_id")), field(form, "tenant_id"), field(form, "address"), scope);
  return backToSuppressions(c, form, "removed");
});

dashboard.get("/dashboard/webhooks", (c) => page(c, "webhooks", "Webhooks", (t) => webhooksPage(c.env.DB, t)));
dashboard.get("/dashboard/audit", (c) => page(c, "audit", "Audit trail", (t) => auditPage(c.env.DB, t)));

dashboard.get("/dashboard/reputation", (c) => page(c, "reputation", "Reputation", (t) => reputationPage(c.env, t)));

dashboard.all("/dashboard/*", (c) =>
  page(c, null, "Not found", async () => html`<h1>Not found</h1><p><a href="/dashboard">Back to the overview</a></p>`, 404),
);

dashboard.onError((err, c) => {
  console.error("dashboard error", err);
  c.header("content-security-policy", "default-src 'none'; style-src 'self'");
  return c.html(html`<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Error · Edge Relay</title><link rel="stylesheet" href="/dashboard/assets/app.css"></head><body><main><h1>Something went wrong</h1><p>The error was logged. <a href="/dashboard">Back to the overview</a></p></main></body></html>`, 500);
});
