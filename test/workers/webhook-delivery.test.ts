/** Webhooks: the admin API, signed deliveries verified by a real receiver, and retries of a failing endpoint. */
import { describe, expect, inject, it } from "vitest";
import { verifyWebhook } from "../../src/webhooks/signature";
import { ADMIN_TOKEN, call, createTenantWithKey, env, unique, waitFor } from "./helpers";
import { login } from "./report-support";

const control = () => `http://127.0.0.1:${inject("controlPort")}`;

interface HookRequest {
  headers: Record<string, string>;
  body: string;
  status: number;
  verified: boolean | null;
}

async function receiver(name: string, config: { secret?: string; failTimes?: number }): Promise<void> {
  await fetch(`${control()}/hooks/${name}/config`, { method: "POST", body: JSON.stringify(config) });
}

async function received(name: string): Promise<HookRequest[]> {
  return (await (await fetch(`${control()}/hooks/${name}`)).json()) as HookRequest[];
}

async function createHook(tenantId: string, url: string, events: string[]): Promise<{ id: string; secret: string }> {
  const r = await call("/admin/webhooks", { method: "POST", key: ADMIN_TOKEN, json: { tenant_id: tenantId, url, events } });
  expect(r.status).toBe(201);
  return (await r.json()) as { id: string; secret: string };
}

/** A tenant sending from a fresh domain, with one webhook endpoint at the control server's receiver `name`, configured with its secret. */
async function tenantWithHook(prefix: string, events: string[], config: { failTimes?: number } = {}) {
  const domain = `${unique(prefix)}.example`;
  const { key, tenantId } = await createTenantWithKey([domain]);
  const name = unique("hook");
  const hook = await createHook(tenantId, `${control()}/hooks/${name}`, events);
  await receiver(name, { secret: hook.secret, ...config });
  return { domain, key, tenantId, name, hook };
}

async function send(key: string, from: string, to: string): Promise<string> {
  const r = await call("/v1/messages", { method: "POST", key, json: { from, to: [to], subject: "hook me", text: "x" } });
  expect(r.status).toBe(202);
  return ((await r.json()) as { id: string }).id;
}

describe("webhook admin API", () => {
  it("creates an endpoint and shows its secret once", async () => {
    const { tenantId } = await createTenantWithKey([`${unique("wa")}.example`]);
    const created = await call("/admin/webhooks", {
      method: "POST",
      key: ADMIN_TOKEN,
      json: { tenant_id: tenantId, url: "https://hooks.example/edge-relay", events: ["delivered", "bounced"], description: "CRM" },
    });
    expect(created.status).toBe(201);
    const body = (await created.json()) as { id: string; secret: string; events: string[]; enabled: boolean };
    expect(body.secret).toMatch(/^whsec_[0-9a-f]{64}$/);
    expect(body.events).toEqual(["delivered", "bounced"]);
    expect(body.enabled).toBe(true);

    const list = (await (await call(`/admin/webhooks?tenant_id=${tenantId}`, { key: ADMIN_TOKEN })).json()) as { webhooks: Record<string, unknown>[] };
    expect(list.webhooks).toHaveLength(1);
    expect(JSON.stringify(list)).not.toContain(body.secret);
    const one = await (await call(`/admin/webhooks/${body.id}`, { key: ADMIN_TOKEN })).text();
    expect(one).not.toContain("whsec_");

    const patched = await call(`/admin/webhooks/${body.id}`, { method: "PATCH", key: ADMIN_TOKEN, json: { enabled: false, events: ["*"] } });
    expect(await patched.json()).toMatchObject({ enabled: false, events: ["*"] });
    const rotated = (await (await call(`/admin/webhooks/${body.id}/rotate-secret`, { method: "POST", key: ADMIN_TOKEN })).json()) as { secret: string };
    expect(rotated.secret).not.toBe(body.secret);
    expect((await call(`/admin/webhooks/${body.id}`, { method: "DELETE", key: ADMIN_TOKEN })).status).toBe(200);
    expect((await call(`/admin/webhooks/${body.id}`, { key: ADMIN_TOKEN })).status).toBe(404);
  });

  it("refuses bad URLs, unknown event types, unknown tenants and callers without the admin token", async () => {
    const { tenantId } = await createTenantWithKey([`${unique("wb")}.example`]);
    const post = (json: unknown, key = ADMIN_TOKEN) => call("/admin/webhooks", { method: "POST", key, json });
    expect(await (await post({ tenant_id: tenantId, url: "http://hooks.example/x", events: ["delivered"] })).json()).toMatchObject({ error: { code: "invalid_field", field: "url" } });
    expect(await (await post({ tenant_id: tenantId, url: "https://u:p@hooks.example/x" })).json()).toMatchObject({ error: { field: "url" } });
    expect(await (await post({ tenant_id: tenantId, url: "javascript:alert(1)" })).json()).toMatchObject({ error: { field: "url" } });
    expect(await (await post({ tenant_id: tenantId, url: "https://hooks.example/x", events: ["delivred"] })).json()).toMatchObject({ error: { field: "events" } });
    expect((await post({ tenant_id: "no-such-tenant", url: "https://hooks.example/x" })).status).toBe(404);
    expect((await post({ tenant_id: tenantId, url: "https://hooks.example/x" }, "wrong")).status).toBe(401);
    expect((await call("/admin/webhooks")).status).toBe(401);
  });
});

describe("webhook deliveries", () => {
  it("POSTs each subscribed event as JSON with a signature the receiver verifies", async () => {
    const { domain, key, tenantId, name, hook } = await tenantWithHook("wh", ["accepted", "queued"]);
    const id = await send(key, `a@${domain}`, `r@${unique("d")}.example`);
    const reqs = await waitFor(async () => {
      const r = await received(name);
      return r.length >= 2 ? r : undefined;
    }, 20_000, "two webhook posts");
    const payloads = reqs.map((r) => JSON.parse(r.body) as { id: string; event_id: number; type: string; message_id: string; tenant_id: string; recipient: string | null });
    expect(payloads.map((p) => p.type).sort()).toEqual(["accepted", "queued"]);
    for (const [i, r] of reqs.entries()) {
      expect(r.verified).toBe(true);
      expect(r.status).toBe(200);
      expect(r.headers["content-type"]).toBe("application/json");
      expect(r.headers["edge-relay-event"]).toBe(payloads[i]!.type);
      expect(r.headers["edge-relay-delivery"]).toBe(payloads[i]!.id);
      expect(payloads[i]).toMatchObject({ message_id: id, tenant_id: tenantId });
      expect(await verifyWebhook(hook.secret, r.body, r.headers["edge-relay-signature"]!)).toBe(true);
      expect(await verifyWebhook(hook.secret, r.body.replace(`"tenant_id":"${tenantId}"`, `"tenant_id":"someone-else"`), r.headers["edge-relay-signature"]!)).toBe(false);
      expect(await verifyWebhook("whsec_wrong", r.body, r.headers["edge-relay-signature"]!)).toBe(false);
    }
    const attempts = await waitFor(async () => {
      const { results } = await env.DB.prepare("SELECT outcome, status_code FROM webhook_attempts WHERE webhook_id = ?").bind(hook.id).all<{ outcome: string; status_code: number }>();
      return results.length >= 2 ? results : undefined;
    }, 10_000, "attempts recorded");
    expect(attempts.every((a) => a.outcome === "delivered" && a.status_code === 200)).toBe(true);
  });

  it("does not send events of other tenants or types the endpoint did not subscribe to", async () => {
    const domain = `${unique("wo")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    const other = await createTenantWithKey([`${unique("wp")}.example`]);
    const name = unique("quiet");
    await createHook(other.tenantId, `${control()}/hooks/${name}`, ["*"]);
    const mine = unique("mine");
    const hookMine = await createHook(tenantId, `${control()}/hooks/${mine}`, ["complained"]);
    await receiver(mine, { secret: hookMine.secret });
    await send(key, `a@${domain}`, `r@${unique("d")}.example`);
    // Wait until this message's events have been through emission, then nothing arrived at either endpoint.
    await waitFor(async () => {
      const w = await env.DB.prepare("SELECT last_event_id AS w, (SELECT MAX(id) FROM events) AS top FROM report_watermarks WHERE name = 'webhooks'").first<{ w: number; top: number }>();
      return w && w.w >= w.top ? w : undefined;
    }, 20_000, "emission to catch up");
    expect(await received(name)).toEqual([]);
    expect(await received(mine)).toEqual([]);
  });

  it("retries a failing endpoint with the same delivery id until it answers 2xx", async () => {
    const { domain, key, tenantId, name, hook } = await tenantWithHook("wr", ["accepted"], { failTimes: 2 });
    await send(key, `a@${domain}`, `r@${unique("d")}.example`);
    const reqs = await waitFor(async () => {
      const r = await received(name);
      return r.some((x) => x.status === 200) ? r : undefined;
    }, 30_000, "a successful retry");
    expect(reqs.map((r) => r.status)).toEqual([500, 500, 200]);
    expect(new Set(reqs.map((r) => r.headers["edge-relay-delivery"])).size).toBe(1);
    expect(reqs.map((r) => r.headers["edge-relay-attempt"])).toEqual(["1", "2", "3"]);
    expect(reqs.every((r) => r.verified)).toBe(true);
    const attempts = await waitFor(async () => {
      const { results } = await env.DB.prepare("SELECT attempt, outcome, status_code FROM webhook_attempts WHERE webhook_id = ? ORDER BY id").bind(hook.id).all();
      return results.length >= 3 ? results : undefined;
    }, 10_000, "three attempts recorded");
    expect(attempts).toEqual([
      { attempt: 1, outcome: "retrying", status_code: 500 },
      { attempt: 2, outcome: "retrying", status_code: 500 },
      { attempt: 3, outcome: "delivered", status_code: 200 },
    ]);
  });
});

describe("webhook deliveries that never succeed", () => {
  it("gives up after the retries, records the failure, and shows the attempts on the page", async () => {
    const { domain, key, tenantId, name, hook } = await tenantWithHook("wf", ["accepted"], { failTimes: 1000 });
    await send(key, `a@${domain}`, `r@${unique("d")}.example`);
    // wrangler.toml allows 10 retries; with 1 s delays in tests the dead-letter queue takes it after ~11 attempts.
    const failed = await waitFor(async () => {
      const r = await env.DB.prepare("SELECT outcome, error FROM webhook_attempts WHERE webhook_id = ? AND outcome = 'failed'").bind(hook.id).first<{ outcome: string; error: string }>();
      return r ?? undefined;
    }, 45_000, "the delivery to be given up");
    expect(failed.error).toContain("exhausted its retries");
    const posts = await received(name);
    expect(posts.length).toBe(11);
    expect(posts.every((p) => p.status === 500 && p.verified)).toBe(true);

    const s = await login();
    const page = await (await s.get(`/dashboard/webhooks?tenant=${tenantId}`)).text();
    expect(page).toContain(`${control()}/hooks/${name}`);
    expect(page).toMatch(/badge bad">failed</);
    expect(page).toMatch(/badge warn">retrying</);
    expect(page).toContain("HTTP 500");
  });

  it("drops deliveries for an endpoint disabled after the event", async () => {
    const { domain, key, tenantId, name, hook } = await tenantWithHook("wd", ["accepted"], { failTimes: 1 });
    await send(key, `a@${domain}`, `r@${unique("d")}.example`);
    await waitFor(async () => ((await received(name)).length ? true : undefined), 20_000, "the first attempt");
    await call(`/admin/webhooks/${hook.id}`, { method: "PATCH", key: ADMIN_TOKEN, json: { enabled: false } });
    const dropped = await waitFor(async () => {
      const r = await env.DB.prepare("SELECT outcome, error FROM webhook_attempts WHERE webhook_id = ? AND outcome = 'dropped'").bind(hook.id).first<{ error: string }>();
      return r ?? undefined;
    }, 20_000, "the retry to be dropped");
    expect(dropped.error).toBe("endpoint disabled");
    expect((await received(name)).length).toBe(1);
  });
});
