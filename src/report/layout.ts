/** The page frame of the reporting page: head, navigation, tenant filter; every value escaped by html``. */
import type { Context } from "hono";
import { html } from "hono/html";
import type { DashEnv } from "./session";

export type Html = ReturnType<typeof html>;

export type Section = "overview" | "destinations" | "messages" | "suppressions" | "webhooks";
const NAV: { id: Section; label: string; path: string }[] = [
  { id: "overview", label: "Overview", path: "/dashboard" },
  { id: "destinations", label: "Destinations", path: "/dashboard/destinations" },
  { id: "messages", label: "Messages", path: "/dashboard/messages" },
  { id: "suppressions", label: "Suppressions", path: "/dashboard/suppressions" },
  { id: "webhooks", label: "Webhooks", path: "/dashboard/webhooks" },
];

/** The page's Content-Security-Policy: no scripts at all, styles only from our stylesheet, forms only to us. */
export const DASHBOARD_CSP =
  "default-src 'none'; style-src 'self'; img-src 'self' data:; form-action 'self'; frame-ancestors 'none'; base-uri 'none'";

/** A link within the page that keeps the tenant filter. */
export function href(path: string, tenant: string, params: Record<string, string | undefined> = {}): string {
  const q = new URLSearchParams();
  if (tenant !== "*") q.set("tenant", tenant);
  for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== "") q.set(k, v);
  const s = q.toString();
  return s ? `${path}?${s}` : path;
}

export interface PageInput {
  title: string;
  section: Section | null;
  tenant: string;
  tenants: { id: string; name: string }[];
  csrf: string | null;
  body: Html;
}

export function renderPage(p: PageInput): Html {
  const nav = NAV.map(
    (n) => html`<li><a href="${href(n.path, p.tenant)}" ${p.section === n.id ? html`aria-current="page"` : ""}>${n.label}</a></li>`,
  );
  const tenantFilter = p.csrf
    ? html`<form class="inline" id="tenant-filter" method="get" action="" aria-label="Tenant filter">
        <label>Tenant
          <select name="tenant">
            <option value="*" ${p.tenant === "*" ? "selected" : ""}>All tenants</option>
            ${p.tenants.map((t) => html`<option value="${t.id}" ${p.tenant === t.id ? "selected" : ""}>${t.name} (${t.id})</option>`)}
          </select></label>
        <button class="secondary" type="submit">Apply</button>
      </form>
      <form class="inline" method="post" action="/dashboard/logout">
        <input type="hidden" name="csrf" value="${p.csrf}">
        <button class="secondary" type="submit">Sign out</button>
      </form>`
    : "";
  return html`<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="referrer" content="same-origin">
<title>${p.title} · Edge Relay</title>
<link rel="stylesheet" href="/dashboard/assets/app.css">
</head>
<body>
<a class="skip" href="#main">Skip to content</a>
<header class="top"><div class="bar">
  <a class="brand" href="${href("/dashboard", p.tenant)}"><span class="logo" aria-hidden="true"></span>Edge Relay</a>
  ${p.csrf ? html`<nav class="main" aria-label="Sections"><ul>${nav}</ul></nav>` : ""}
  <span class="spacer"></span>
  ${tenantFilter}
</div></header>
<main id="main">
${p.body}
</main>
</body>
</html>`;
}

/** Sends a page with the security headers every page of the dashboard carries. */
export function sendPage(c: Context<DashEnv>, page: Html, status: 200 | 400 | 403 | 404 | 413 | 429 = 200) {
  c.header("content-security-policy", DASHBOARD_CSP);
  c.header("x-content-type-options", "nosniff");
  c.header("referrer-policy", "same-origin");
  c.header("cache-control", "no-store");
  return c.html(page, status);
}
