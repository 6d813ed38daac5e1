/**
 * Issue 21: the audit trail. Walks the OpenAPI document and calls every mutating admin route and every
 * tenant-settings route with valid credentials: each call must leave a row naming its method and path. Also: who is
 * recorded (admin token id, API key prefix), secrets are redacted, strangers write nothing, and GET /admin/audit
 * pages newest first and filters by tenant.
 */
import { describe, expect, it } from "vitest";
import { AUDITED_PATHS } from "../../src/http/audit";
import { OPENAPI_DOCUMENT } from "../../src/http/openapi";
import { sha256Hex } from "../../src/store/keys";
import { checkResponse } from "./api-schema";
import { ADMIN_TOKEN, call, createTenantWithKey, env, unique } from "./helpers";
import { login } from "./report-support";

const paths = OPENAPI_DOCUMENT.paths as unknown as Record<string, Record<string, unknown>>;
const MUTATING = ["post", "put", "patch", "delete"];

interface Row {
  id: number;
  actor: string;
  tenant_id: string | null;
  method: string;
  path: string;
  status: number;
  detail: string | null;
  ip: string | null;
}

async function rowsFor(method: string, path: string, afterId = 0): Promise<Row[]> {
  const { results } = await env.DB.prepare("SELECT * FROM audit_log WHERE method = ? AND path = ? AND id > ? ORDER BY id").bind(method, path, afterId).all<Row>();
  return results;
}

async function lastId(): Promise<number> {
  return (await env.DB.prepare("SELECT COALESCE(MAX(id), 0) AS id FROM audit_log").first<{ id: number }>())!.id;
}

describe("audit trail", () => {
  it("records every mutating admin and tenant-settings route of the OpenAPI document", async () => {
    const { key } = await createTenantWithKey([`${unique("aud")}.example`]);
    const routes: { method: string; template: string }[] = [];
    for (const [template, ops] of Object.entries(paths)) {
      for (const method of Object.keys(ops)) {
        if (MUTATING.includes(method) && AUDITED_PATHS.some((re) => re.test(template.replace(/\{[^}]+\}/g, "x")))) routes.push({ method: method.toUpperCase(), template });
      }
    }
    // Guard against a vacuous pass: the admin API has many mutating routes, tenant settings a few.
    expect(routes.length).toBeGreaterThan(20);
    expect(routes.some((r) => r.template.startsWith("/v1/"))).toBe(true);
    const missing: string[] = [];
    for (const r of routes) {
      const path = r.template.replace(/\{[^}]+\}/g, () => unique("p"));
      const admin = r.template.startsWith("/admin/");
      const since = await lastId();
      const res = await call(path, { method: r.method, key: admin ? ADMIN_TOKEN : key, json: {} });
      await res.arrayBuffer();
      const rows = await rowsFor(r.method, path, since);
      if (rows.length !== 1 || rows[0]!.status !== res.status || !rows[0]!.actor.startsWith(admin ? "admin-token:" : "api-key:er_")) missing.push(`${r.method} ${r.template} (${res.status}, ${rows.length} rows)`);
    }
    expect(missing).toEqual([]);
  });

  it("says who, what and from where; redacts secrets; records nothing for a stranger; lists newest first by tenant", async () => {
    const domain = `${unique("who")}.example`;
    const created = await call("/admin/tenants", { method: "POST", key: ADMIN_TOKEN, json: { name: "Audit Hospital", domains: [domain] }, headers: { "cf-connecting-ip": "203.0.113.7" } });
    expect(created.status).toBe(201);
    const tenantId = ((await created.json()) as { id: string }).id;
    const [row] = await rowsFor("POST", "/admin/tenants").then((rows) => rows.filter((r) => r.detail?.includes(domain)));
    expect(row).toMatchObject({ actor: `admin-token:${(await sha256Hex(ADMIN_TOKEN)).slice(0, 12)}`, ip: "203.0.113.7", status: 201 });

    const routeDomain = `${unique("rd")}.example`;
    const route = await call("/admin/routes", { method: "POST", key: ADMIN_TOKEN, json: { match_recipient_domain: routeDomain, next_hop_url: "smtp+starttls://relay-user:hunter2-secret@smtp.example:587", tenant_id: tenantId } });
    expect(route.status).toBe(201);
    const routeRow = (await rowsFor("POST", "/admin/routes")).find((r) => r.detail?.includes(routeDomain))!;
    expect(routeRow.detail).not.toContain("hunter2-secret");
    expect(routeRow.detail).toContain("relay-user:[redacted]@smtp.example");
    expect(routeRow.tenant_id).toBe(tenantId);

    await call(`/admin/tenants/${tenantId}`, { method: "PATCH", key: ADMIN_TOKEN, json: { require_tls: true } });
    const keyRes = await call(`/admin/tenants/${tenantId}/keys`, { method: "POST", key: ADMIN_TOKEN, json: { name: "ops" } });
    const { key, id: keyId } = (await keyRes.json()) as { key: string; id: string };
    const del = await call(`/v1/suppressions/${encodeURIComponent(`gone@${routeDomain}`)}`, { method: "DELETE", key });
    await del.arrayBuffer();
    const byKey = await rowsFor("DELETE", `/v1/suppressions/${encodeURIComponent(`gone@${routeDomain}`)}`);
    expect(byKey.map((r) => [r.actor, r.tenant_id])).toEqual([[`api-key:${key.slice(0, 10)} ${keyId}`, tenantId]]);

    const before = ((await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log").first<{ n: number }>())!).n;
    expect((await call(`/admin/tenants/${tenantId}`, { method: "PATCH", key: "wrong-token", json: { suspended: true } })).status).toBe(401);
    expect((await call("/v1/tracking/settings", { method: "PUT", key: "er_wrong", json: {} })).status).toBe(401);
    expect(((await env.DB.prepare("SELECT COUNT(*) AS n FROM audit_log").first<{ n: number }>())!).n).toBe(before);

    const listed = await call(`/admin/audit?tenant_id=${tenantId}&limit=2`, { key: ADMIN_TOKEN });
    const page1 = await checkResponse<{ data: { id: number; path: string; detail: unknown }[]; next_cursor: string | null }>(listed, "GET", "/admin/audit");
    expect(page1.data.map((r) => r.path)).toEqual([`/v1/suppressions/${encodeURIComponent(`gone@${routeDomain}`)}`, `/admin/tenants/${tenantId}/keys`]);
    const page2 = (await (await call(`/admin/audit?tenant_id=${tenantId}&limit=2&cursor=${page1.next_cursor}`, { key: ADMIN_TOKEN })).json()) as { data: { path: string; detail: unknown }[] };
    expect(page2.data.map((r) => r.path)).toEqual([`/admin/tenants/${tenantId}`, "/admin/routes"]);
    expect(page2.data[0]!.detail).toEqual({ body: { require_tls: true } });
    expect((await call("/admin/audit?limit=0", { key: ADMIN_TOKEN })).status).toBe(400);
    expect((await call("/admin/audit", { key: "nope" })).status).toBe(401);
  });

  it("records the reporting page's suppression changes with the session's identity, and lists them on the page, escaped", async () => {
    const { tenantId } = await createTenantWithKey([`${unique("pg")}.example`]);
    const address = `<b>${unique("x")}</b>@example.net`.replace(/[<>]/g, "");
    const s = await login();
    const added = await s.post("/dashboard/suppressions", { csrf: s.csrf, tenant_id: tenantId, address, scope: "all", reason: "manual", detail: "<script>alert(1)</script>" });
    expect(added.status).toBe(303);
    const [row] = (await rowsFor("POST", "/dashboard/suppressions")).filter((r) => r.detail?.includes(address));
    expect(row!.actor).toMatch(/^dashboard:cookie:/);
    expect(row!.tenant_id).toBe(tenantId);
    expect(row!.detail).not.toContain(s.csrf);
    const page = await (await s.get(`/dashboard/audit?tenant=${tenantId}`)).text();
    expect(page).toContain("POST /dashboard/suppressions");
    expect(page).toContain(address);
    expect(page).not.toContain("<script>alert(1)</script>");
  });
});
