/**
 * The OpenAPI document against the Worker: every route Hono registered is documented (and nothing else is),
 * real responses of the tracking, admin, alias, inbound, webhook and gate routes match their schemas, and a
 * request body that breaks off mid-stream is a clean 400.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { inspectRoutes } from "hono/dev";
import { afterEach, beforeEach, describe, expect, it, vi } from "vitest";
import { app } from "../../src/http/app";
import { OPENAPI_DOCUMENT } from "../../src/http/openapi";
import { checkResponse } from "./api-schema";
import { ADMIN_TOKEN, call, createTenantWithKey, env, unique } from "./helpers";

type Operation = { responses: Record<string, { content?: Record<string, unknown> }> };
const paths = OPENAPI_DOCUMENT.paths as unknown as Record<string, Record<string, Operation>>;

/**
 * Registered paths that are not part of the API document, and why. Nothing else may be missing.
 * - /dashboard and /dashboard/*: the reporting pages, HTML for people behind a session cookie (login form,
 *   CSRF-protected forms, a catch-all 404 page); README's "Reporting" section describes them.
 */
const NOT_API = [/^\/dashboard(\/|$)/];

/** Hono's `/a/:id` as OpenAPI's `/a/{id}`. */
const toTemplate = (path: string) => path.replace(/:([A-Za-z_]+)/g, "{$1}");

function registeredRoutes(): { method: string; path: string }[] {
  const seen = new Set<string>();
  return inspectRoutes(app)
    .filter((r) => !r.isMiddleware)
    .map((r) => ({ method: r.method.toLowerCase(), path: toTemplate(r.path) }))
    .filter((r) => !seen.has(`${r.method} ${r.path}`) && seen.add(`${r.method} ${r.path}`));
}

describe("the OpenAPI document covers the app", () => {
  it("documents every route registered in the app, apart from the commented allow-list", () => {
    const routes = registeredRoutes();
    // Guard against a vacuous pass: the app registers dozens of routes, among them these.
    expect(routes.length).toBeGreaterThan(50);
    for (const r of ["get /t/c/{token}", "put /admin/gates/{destination}/policy", "get /admin/webhooks/{id}/attempts", "get /dashboard"]) {
      expect(routes.map((x) => `${x.method} ${x.path}`)).toContain(r);
    }
    const missing = routes.filter((r) => !NOT_API.some((re) => re.test(r.path)) && !paths[r.path]?.[r.method]).map((r) => `${r.method.toUpperCase()} ${r.path}`);
    expect(missing).toEqual([]);
  });

  it("documents no route the app does not have", () => {
    const registered = new Set(registeredRoutes().map((r) => `${r.method} ${r.path}`));
    const phantom: string[] = [];
    for (const [path, ops] of Object.entries(paths)) {
      for (const method of Object.keys(ops)) if (!registered.has(`${method} ${path}`)) phantom.push(`${method.toUpperCase()} ${path}`);
    }
    expect(phantom).toEqual([]);
  });

  it("serves the same document at /openapi.json, with every $ref resolvable", async () => {
    const res = await call("/openapi.json");
    expect(res.status).toBe(200);
    const served = (await res.json()) as { paths: Record<string, unknown>; components: { schemas: Record<string, unknown> } };
    expect(Object.keys(served.paths).sort()).toEqual(Object.keys(paths).sort());
    const refs = [...JSON.stringify(served).matchAll(/"\$ref":"#\/components\/schemas\/([A-Za-z]+)"/g)].map((m) => m[1]!);
    expect(refs.length).toBeGreaterThan(20);
    expect(refs.filter((r) => !(r in served.components.schemas))).toEqual([]);
  });
});

describe("responses of the newly documented routes match the document", () => {
  it("tracking: settings, stats, a message's counters, and the public endpoints' 404s", async () => {
    const domain = `${unique("oa")}.example`;
    const { key } = await createTenantWithKey([domain]);
    expect((await checkResponse<{ data: unknown[] }>(await call("/v1/tracking/settings", { key }), "GET", "/v1/tracking/settings")).data).toEqual([]);
    const put = await call("/v1/tracking/settings", { method: "PUT", key, json: { stream: "broadcast", track_opens: true, track_clicks: null } });
    expect(put.status).toBe(200);
    const settings = await checkResponse<{ data: { stream: string; track_opens: boolean | null }[] }>(put, "PUT", "/v1/tracking/settings");
    expect(settings.data).toMatchObject([{ stream: "broadcast", track_opens: true, track_clicks: null }]);
    const bad = await call("/v1/tracking/settings", { method: "PUT", key, json: { track_opens: "yes" } });
    expect(bad.status).toBe(400);
    await checkResponse(bad, "PUT", "/v1/tracking/settings");

    const stats = await checkResponse<{ opens: number }>(await call("/v1/tracking/stats", { key }), "GET", "/v1/tracking/stats");
    expect(stats.opens).toBe(0);

    const sent = await call("/v1/messages", { method: "POST", key, json: { from: `a@${domain}`, to: ["r1@sink.example", "r2@sink.example"], subject: "s", text: "t" } });
    const { id } = await checkResponse<{ id: string }>(sent, "POST", "/v1/messages");
    const counters = await checkResponse<{ id: string; recipients: { recipient: string; opens: number }[] }>(await call(`/v1/messages/${id}/tracking`, { key }), "GET", `/v1/messages/${id}/tracking`);
    expect(counters).toMatchObject({ id, recipients: [{ recipient: "r1@sink.example", opens: 0 }, { recipient: "r2@sink.example", opens: 0 }] });
    const other = await createTenantWithKey([`${unique("ob")}.example`]);
    const foreign = await call(`/v1/messages/${id}/tracking`, { key: other.key });
    expect(foreign.status).toBe(404);
    await checkResponse(foreign, "GET", `/v1/messages/${id}/tracking`);

    for (const p of ["/t/o/not-a-token", "/t/c/not-a-token"]) {
      const res = await call(p, { redirect: "manual" });
      expect(res.status, p).toBe(404);
      expect(paths[p.replace("not-a-token", "{token}")]!.get!.responses["404"]!.content).toHaveProperty("text/plain");
    }
  });

  it("admin: routes, gates, inbound log, and the admin token errors", async () => {
    const created = await call("/admin/routes", { method: "POST", key: ADMIN_TOKEN, json: { match_recipient_domain: `${unique("rt")}.example`, next_hop_url: "mx:", name: unique("rt"), priority: 5 } });
    const { id } = await checkResponse<{ id: string }>(created, "POST", "/admin/routes");
    const list = await checkResponse<{ routes: { id: string }[] }>(await call("/admin/routes", { key: ADMIN_TOKEN }), "GET", "/admin/routes");
    expect(list.routes.map((r) => r.id)).toContain(id);
    expect((await checkResponse<{ deleted: boolean }>(await call(`/admin/routes/${id}`, { method: "DELETE", key: ADMIN_TOKEN }), "DELETE", `/admin/routes/${id}`)).deleted).toBe(true);
    const gone = await call(`/admin/routes/${id}`, { method: "DELETE", key: ADMIN_TOKEN });
    expect(gone.status).toBe(404);
    await checkResponse(gone, "DELETE", `/admin/routes/${id}`);

    const dest = `${unique("gate")}.example`;
    const state = await checkResponse<{ destination: string; circuit: string }>(await call(`/admin/gates/${dest}`, { key: ADMIN_TOKEN }), "GET", `/admin/gates/${dest}`);
    expect(state).toMatchObject({ destination: dest, circuit: "closed" });
    const put = await call(`/admin/gates/${dest}/policy`, { method: "PUT", key: ADMIN_TOKEN, json: { ratePerSecond: 2 } });
    expect((await checkResponse<{ override: unknown }>(put, "PUT", `/admin/gates/${dest}/policy`)).override).toEqual({ ratePerSecond: 2 });
    await checkResponse(await call(`/admin/gates/${dest}/reset`, { method: "POST", key: ADMIN_TOKEN }), "POST", `/admin/gates/${dest}/reset`);
    const badGate = await call(`/admin/gates/${encodeURIComponent("bad key!")}`, { key: ADMIN_TOKEN });
    expect(badGate.status).toBe(400);
    await checkResponse(badGate, "GET", "/admin/gates/x");

    await checkResponse(await call("/admin/inbound?limit=5", { key: ADMIN_TOKEN }), "GET", "/admin/inbound");
    const badLimit = await call("/admin/inbound?limit=0", { key: ADMIN_TOKEN });
    expect(badLimit.status).toBe(400);
    await checkResponse(badLimit, "GET", "/admin/inbound");

    for (const [method, path] of [["GET", "/admin/routes"], ["GET", "/admin/inbound"], ["GET", "/admin/webhooks"], ["GET", "/admin/aliases"], ["GET", `/admin/gates/${dest}`]] as const) {
      const res = await call(path, { method, key: "not-the-admin-token" });
      expect(res.status, path).toBe(401);
      await checkResponse(res, method, path);
    }
  });

  it("admin: aliases and webhooks, create to delete", async () => {
    const domain = `${unique("al")}.example`;
    const { tenantId } = await createTenantWithKey([domain]);
    const address = `info@${domain}`;
    const created = await call("/admin/aliases", { method: "POST", key: ADMIN_TOKEN, json: { address, tenant_id: tenantId, destinations: ["someone@sink.example"], description: "desk" } });
    expect(created.status).toBe(201);
    await checkResponse(created, "POST", "/admin/aliases");
    const dup = await call("/admin/aliases", { method: "POST", key: ADMIN_TOKEN, json: { address, tenant_id: tenantId, destinations: ["someone@sink.example"] } });
    expect(dup.status).toBe(409);
    await checkResponse(dup, "POST", "/admin/aliases");
    const page = await checkResponse<{ data: { address: string }[] }>(await call(`/admin/aliases?tenant_id=${tenantId}`, { key: ADMIN_TOKEN }), "GET", "/admin/aliases");
    expect(page.data.map((a) => a.address)).toEqual([address]);
    await checkResponse(await call(`/admin/aliases/${address}`, { key: ADMIN_TOKEN }), "GET", `/admin/aliases/${address}`);
    const patched = await call(`/admin/aliases/${address}`, { method: "PATCH", key: ADMIN_TOKEN, json: { description: null } });
    expect((await checkResponse<{ description: string | null }>(patched, "PATCH", `/admin/aliases/${address}`)).description).toBeNull();
    await checkResponse(await call(`/admin/aliases/${address}`, { method: "DELETE", key: ADMIN_TOKEN }), "DELETE", `/admin/aliases/${address}`);
    const missing = await call(`/admin/aliases/${address}`, { key: ADMIN_TOKEN });
    expect(missing.status).toBe(404);
    await checkResponse(missing, "GET", `/admin/aliases/${address}`);

    const hook = await call("/admin/webhooks", { method: "POST", key: ADMIN_TOKEN, json: { tenant_id: tenantId, url: "https://hooks.example/in", events: ["delivered", "bounced"] } });
    expect(hook.status).toBe(201);
    const { id } = await checkResponse<{ id: string; secret: string }>(hook, "POST", "/admin/webhooks");
    const hooks = await checkResponse<{ webhooks: { id: string }[] }>(await call(`/admin/webhooks?tenant_id=${tenantId}`, { key: ADMIN_TOKEN }), "GET", "/admin/webhooks");
    expect(hooks.webhooks.map((w) => w.id)).toEqual([id]);
    await checkResponse(await call(`/admin/webhooks/${id}`, { key: ADMIN_TOKEN }), "GET", `/admin/webhooks/${id}`);
    const off = await call(`/admin/webhooks/${id}`, { method: "PATCH", key: ADMIN_TOKEN, json: { enabled: false } });
    expect((await checkResponse<{ enabled: boolean }>(off, "PATCH", `/admin/webhooks/${id}`)).enabled).toBe(false);
    const badUrl = await call(`/admin/webhooks/${id}`, { method: "PATCH", key: ADMIN_TOKEN, json: { url: "http://hooks.example/" } });
    expect(badUrl.status).toBe(400);
    await checkResponse(badUrl, "PATCH", `/admin/webhooks/${id}`);
    const rotated = await checkResponse<{ secret: string }>(await call(`/admin/webhooks/${id}/rotate-secret`, { method: "POST", key: ADMIN_TOKEN }), "POST", `/admin/webhooks/${id}/rotate-secret`);
    expect(rotated.secret).toMatch(/^whsec_/);
    expect((await checkResponse<{ attempts: unknown[] }>(await call(`/admin/webhooks/${id}/attempts`, { key: ADMIN_TOKEN }), "GET", `/admin/webhooks/${id}/attempts`)).attempts).toEqual([]);
    await checkResponse(await call(`/admin/webhooks/${id}`, { method: "DELETE", key: ADMIN_TOKEN }), "DELETE", `/admin/webhooks/${id}`);
    const noHook = await call(`/admin/webhooks/${id}/attempts`, { key: ADMIN_TOKEN });
    expect(noHook.status).toBe(404);
    await checkResponse(noHook, "GET", `/admin/webhooks/${id}/attempts`);
  });
});

/** A body stream that sends `head`, then fails the way workerd's request body does when the client goes away. */
function brokenBody(head: string): ReadableStream<Uint8Array> {
  let sent = false;
  return new ReadableStream<Uint8Array>({
    pull(controller) {
      if (sent) return controller.error(new Error("Network connection lost."));
      sent = true;
      controller.enqueue(new TextEncoder().encode(head));
    },
  });
}

/** A body stream that sends `head` and ends, as a dropped upload may look on paths that report it as an early end. */
function shortBody(head: string): ReadableStream<Uint8Array> {
  return new ReadableStream<Uint8Array>({
    start(controller) {
      controller.enqueue(new TextEncoder().encode(head));
      controller.close();
    },
  });
}

type ErrorBody = { error: { code: string; field?: string } };

describe("a request body that breaks off mid-stream", () => {
  const unhandled: unknown[] = [];
  const onUnhandled = (e: PromiseRejectionEvent) => unhandled.push(e.reason);
  let consoleError: ReturnType<typeof vi.spyOn>;
  beforeEach(() => {
    unhandled.length = 0;
    addEventListener("unhandledrejection", onUnhandled);
    consoleError = vi.spyOn(console, "error");
  });
  afterEach(() => {
    removeEventListener("unhandledrejection", onUnhandled);
    consoleError.mockRestore();
  });

  /**
   * The app itself, in this isolate: the handler's reader sees the stream's error as workerd's request body
   * raises it. (Through `exports.default.fetch` the error stays on the caller's side of the pipe.)
   */
  async function direct(path: string, key: string, headers: Record<string, string>, body: ReadableStream<Uint8Array>): Promise<Response> {
    const ctx = createExecutionContext();
    const res = await app.fetch(new Request(`https://relay.test${path}`, { method: "POST", headers: { authorization: `Bearer ${key}`, ...headers }, body }), env, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  }

  it("a failing read is a 400 invalid_field (field body) on /v1/messages/raw and /v1/messages, with nothing uncaught or logged and nothing stored", async () => {
    const domain = `${unique("br")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const raw = await direct("/v1/messages/raw", key, { "content-type": "message/rfc822", "x-envelope-to": "r@sink.example" }, brokenBody(`From: a@${domain}\r\nTo: r@sink.example\r\nSubject: cut\r\n\r\nthe first part of the bo`));
    expect(raw.status).toBe(400);
    expect((await checkResponse<ErrorBody>(raw, "POST", "/v1/messages/raw")).error).toMatchObject({ code: "invalid_field", field: "body" });

    const json = await direct("/v1/messages", key, { "content-type": "application/json" }, brokenBody(`{"from":"a@${domain}","to":["r@sink.example"],"subj`));
    expect(json.status).toBe(400);
    expect((await checkResponse<ErrorBody>(json, "POST", "/v1/messages")).error).toMatchObject({ code: "invalid_field", field: "body" });

    // Let any stray rejection surface before looking.
    await new Promise((r) => setTimeout(r, 50));
    expect(unhandled).toEqual([]);
    expect(consoleError).not.toHaveBeenCalled();
    expect((await checkResponse<{ data: unknown[] }>(await call("/v1/messages", { key }), "GET", "/v1/messages")).data).toEqual([]);
  });

  it("a body that ends before its Content-Length is refused, never sent truncated", async () => {
    const domain = `${unique("bs")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const head = `From: a@${domain}\r\nTo: r@sink.example\r\nSubject: cut\r\n\r\nthe first part`;
    const res = await call("/v1/messages/raw", {
      method: "POST",
      key,
      headers: { "content-type": "message/rfc822", "x-envelope-to": "r@sink.example", "content-length": "5000" },
      body: shortBody(head),
    });
    expect(res.status).toBe(400);
    const body = await checkResponse<ErrorBody & { error: { message: string } }>(res, "POST", "/v1/messages/raw");
    expect(body.error).toMatchObject({ code: "invalid_field", field: "body" });
    expect(body.error.message).toContain(`${new TextEncoder().encode(head).byteLength} of the 5000 bytes`);
    expect((await checkResponse<{ data: unknown[] }>(await call("/v1/messages", { key }), "GET", "/v1/messages")).data).toEqual([]);
    expect(consoleError).not.toHaveBeenCalled();

    // The same body with its true length is accepted: the check is on the length, not the stream.
    const ok = await call("/v1/messages/raw", { method: "POST", key, headers: { "content-type": "message/rfc822", "x-envelope-to": "r@sink.example" }, body: head });
    expect(ok.status).toBe(202);
  });
});
