/** Security paths: the relay is never open, keys and tenants are enforced on every route, tenants are isolated. */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import PostalMime from "postal-mime";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import worker from "../../src/index";
import { recordDomainCheck } from "../../src/store/keys";
import { checkResponse } from "./api-schema";
import { ADMIN_TOKEN, call, createTenantWithKey, env, receivedAt, sinkPort, unique, waitFor } from "./helpers";

type ErrorBody = { error: { code: string; field?: string } };
const ROUTES: [string, string][] = [
  ["POST", "/v1/messages"],
  ["POST", "/v1/messages/batch"],
  ["POST", "/v1/messages/raw"],
  ["POST", "/tx/v1/send"],
  ["GET", "/v1/messages"],
  ["GET", "/v1/messages/abc"],
  ["GET", "/v1/events"],
  ["GET", "/v1/suppressions"],
  ["POST", "/v1/suppressions"],
  ["DELETE", "/v1/suppressions/a@b.example"],
  ["GET", "/v1/domains"],
  ["GET", "/v1/domains/x.example/dns"],
  ["POST", "/v1/domains/x.example/verify"],
];

async function expectError(res: Response, method: string, path: string, status: number, code: string): Promise<void> {
  expect(res.status, `${method} ${path}`).toBe(status);
  const body = await checkResponse<ErrorBody>(res, method, path);
  expect(body.error.code, `${method} ${path}`).toBe(code);
}

async function count(tenantId: string): Promise<number> {
  return (await env.DB.prepare("SELECT COUNT(*) AS n FROM messages WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>())!.n;
}

describe("open-relay guard", () => {
  it("every route needs a key: none or unknown -> 401", async () => {
    for (const [method, path] of ROUTES) {
      await expectError(await call(path, { method, ...(method === "GET" || method === "DELETE" ? {} : { json: {} }) }), method, path, 401, "unauthorized");
      await expectError(await call(path, { method, headers: { "x-api-key": "er_guess" } }), method, path, 401, "unauthorized");
    }
  });

  it("a key for domain A cannot send as domain B through any door -> 403, nothing queued", async () => {
    const a = `${unique("a")}.example`;
    const { key, tenantId } = await createTenantWithKey([a]);
    const b = `${unique("b")}.example`;
    await createTenantWithKey([b]);
    const msg = { from: `ceo@${b}`, to: ["x@sink.example"], subject: "s", text: "t" };
    const check = async (res: Response, method: string, path: string, field?: string) => {
      expect(res.status).toBe(403);
      const body = await checkResponse<ErrorBody>(res, method, path);
      expect(body.error.code).toBe("sender_domain_not_allowed");
      if (field) expect(body.error.field).toBe(field);
    };
    await check(await call("/v1/messages", { method: "POST", key, json: msg }), "POST", "/v1/messages", "from");
    // Look-alike and parent/child domains are different domains.
    await check(await call("/v1/messages", { method: "POST", key, json: { ...msg, from: `x@sub.${a}` } }), "POST", "/v1/messages", "from");
    await check(await call("/v1/messages", { method: "POST", key, json: { ...msg, from: `x@${a}.evil.example` } }), "POST", "/v1/messages", "from");
    const raw = (from: string, envFrom?: string) =>
      call("/v1/messages/raw", {
        method: "POST",
        key,
        headers: { "content-type": "message/rfc822", "x-envelope-to": "x@sink.example", ...(envFrom ? { "x-envelope-from": envFrom } : {}) },
        body: `From: ${from}\r\nSubject: s\r\n\r\nbody\r\n`,
      });
    await check(await raw(`Boss <boss@${b}>`), "POST", "/v1/messages/raw", "from");
    await check(await raw(`app@${a}`, `bounce@${b}`), "POST", "/v1/messages/raw", "envelope_from");
    await check(await raw(`"app@${a}" <boss@${b}>`), "POST", "/v1/messages/raw", "from");
    const mc = { personalizations: [{ to: [{ email: "x@sink.example" }] }], from: { email: `ceo@${b}` }, subject: "s", content: [{ type: "text/plain", value: "t" }] };
    await check(await call("/tx/v1/send", { method: "POST", key, json: mc }), "POST", "/tx/v1/send", "personalizations[0].from");
    const batch = await call("/v1/messages/batch", { method: "POST", key, json: [msg] });
    expect(((await batch.json()) as { results: { error?: { code: string } }[] }).results[0]!.error?.code).toBe("sender_domain_not_allowed");
    expect(await count(tenantId)).toBe(0);
  });

  it("a MailChannels request may not sign with a DKIM domain it does not own", async () => {
    const a = `${unique("dk")}.example`;
    const { key, tenantId } = await createTenantWithKey([a]);
    const mc = {
      personalizations: [{ to: [{ email: "x@sink.example" }], dkim_domain: "bank.example", dkim_selector: "s1", dkim_private_key: "MC4CAQAwBQYDK2VwBCIEIE" }],
      from: { email: `app@${a}` },
      subject: "s",
      content: [{ type: "text/plain", value: "t" }],
    };
    const res = await call("/tx/v1/send", { method: "POST", key, json: mc });
    expect(res.status).toBe(403);
    expect(((await res.json()) as ErrorBody).error.field).toBe("personalizations[0].dkim_domain");
    expect(await count(tenantId)).toBe(0);
  });

  it("a revoked key -> 401 key_revoked; a suspended tenant -> 403 tenant_suspended", async () => {
    const a = `${unique("rv")}.example`;
    const { key, keyId, tenantId } = await createTenantWithKey([a]);
    const msg = { from: `x@${a}`, to: ["x@sink.example"], subject: "s", text: "t" };
    const revoke = await call(`/admin/keys/${keyId}`, { method: "DELETE", key: ADMIN_TOKEN });
    await checkResponse(revoke, "DELETE", `/admin/keys/${keyId}`);
    for (const [method, path] of ROUTES) await expectError(await call(path, { method, key, ...(method === "POST" ? { json: msg } : {}) }), method, path, 401, "key_revoked");

    const k2 = await call(`/admin/tenants/${tenantId}/keys`, { method: "POST", key: ADMIN_TOKEN, json: { name: "second" } });
    const { key: key2 } = await checkResponse<{ key: string }>(k2, "POST", `/admin/tenants/${tenantId}/keys`);
    expect((await call("/v1/messages", { method: "POST", key: key2, json: msg })).status).toBe(202);
    await call(`/admin/tenants/${tenantId}`, { method: "PATCH", key: ADMIN_TOKEN, json: { suspended: true } });
    for (const [method, path] of ROUTES) await expectError(await call(path, { method, key: key2, ...(method === "POST" ? { json: msg } : {}) }), method, path, 403, "tenant_suspended");
    expect(await count(tenantId)).toBe(1);
  });

  it("a tenant over its rate limit gets 429 with Retry-After; batches count every message", async () => {
    const a = `${unique("rl")}.example`;
    const { key, tenantId } = await createTenantWithKey([a]);
    await call(`/admin/tenants/${tenantId}`, { method: "PATCH", key: ADMIN_TOKEN, json: { rate_limit_per_minute: 3 } });
    const msg = { from: `x@${a}`, to: ["x@sink.example"], subject: "s", text: "t" };
    const statuses: number[] = [];
    for (let i = 0; i < 3; i++) statuses.push((await call("/v1/messages", { method: "POST", key, json: msg })).status);
    // The window may roll over between requests; then all three are still allowed.
    expect(statuses).toEqual([202, 202, 202]);
    const over = await call("/v1/messages", { method: "POST", key, json: msg });
    if (over.status === 202) return; // a new minute began exactly here; the counting is covered by the batch below
    await expectError(over, "POST", "/v1/messages", 429, "rate_limited");
    expect(Number(over.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(await count(tenantId)).toBe(3);
  });

  it("a batch larger than the remaining allowance is refused whole", async () => {
    const a = `${unique("rb")}.example`;
    const { key, tenantId } = await createTenantWithKey([a]);
    await call(`/admin/tenants/${tenantId}`, { method: "PATCH", key: ADMIN_TOKEN, json: { rate_limit_per_minute: 2 } });
    const msg = { from: `x@${a}`, to: ["x@sink.example"], subject: "s", text: "t" };
    await expectError(await call("/v1/messages/batch", { method: "POST", key, json: [msg, msg, msg] }), "POST", "/v1/messages/batch", 429, "rate_limited");
    expect(await count(tenantId)).toBe(0);
  });

  it("the admin API needs the admin token, and API keys are not admin tokens", async () => {
    const { key } = await createTenantWithKey([`${unique("ad")}.example`]);
    for (const [method, path] of [["POST", "/admin/tenants"], ["GET", "/admin/tenants"], ["GET", "/admin/tenants/x"], ["PATCH", "/admin/tenants/x"], ["DELETE", "/admin/keys/x"], ["POST", "/admin/tenants/x/domains"]] as const) {
      await expectError(await call(path, { method, key, ...(method === "GET" || method === "DELETE" ? {} : { json: {} }) }), method, path, 401, "unauthorized");
      await expectError(await call(path, { method, ...(method === "GET" || method === "DELETE" ? {} : { json: {} }) }), method, path, 401, "unauthorized");
    }
  });
});

describe("tenant isolation", () => {
  it("one tenant cannot read, search, suppress-list or inspect another's messages and domains", async () => {
    const a = `${unique("ia")}.example`;
    const b = `${unique("ib")}.example`;
    const ta = await createTenantWithKey([a]);
    const tb = await createTenantWithKey([b]);
    const sent = await call("/v1/messages", { method: "POST", key: ta.key, json: { from: `x@${a}`, to: ["secret@sink.example"], subject: "private", text: "t", tags: ["iso"] } });
    const { id } = (await sent.json()) as { id: string };
    await call("/v1/suppressions", { method: "POST", key: ta.key, json: { suppressions: [{ address: "only-a@sink.example" }] } });
    await expectError(await call(`/v1/messages/${id}`, { key: tb.key }), "GET", "/v1/messages/x", 404, "not_found");
    const search = (await (await call("/v1/messages?tag=iso", { key: tb.key })).json()) as { data: unknown[] };
    expect(search.data).toEqual([]);
    const events = (await (await call(`/v1/events?message_id=${id}`, { key: tb.key })).json()) as { data: unknown[] };
    expect(events.data).toEqual([]);
    const sup = (await (await call("/v1/suppressions", { key: tb.key })).json()) as { data: unknown[] };
    expect(sup.data).toEqual([]);
    await expectError(await call(`/v1/suppressions/only-a@sink.example`, { method: "DELETE", key: tb.key }), "DELETE", "/v1/suppressions/x", 404, "not_found");
    await expectError(await call(`/v1/domains/${a}/dns`, { key: tb.key }), "GET", "/v1/domains/x/dns", 404, "not_found");
    // B's suppression of the same address does not affect A.
    await call("/v1/suppressions", { method: "POST", key: tb.key, json: { suppressions: [{ address: "shared@sink.example" }] } });
    const r = (await (await call("/v1/messages", { method: "POST", key: ta.key, json: { from: `x@${a}`, to: ["shared@sink.example"], subject: "s", text: "t" } })).json()) as { recipients: { status: string }[] };
    expect(r.recipients[0]!.status).toBe("queued");
  });

  it("Idempotency-Keys are per tenant", async () => {
    const a = `${unique("ka")}.example`;
    const b = `${unique("kb")}.example`;
    const ta = await createTenantWithKey([a]);
    const tb = await createTenantWithKey([b]);
    const k = unique("shared-key");
    const ra = (await (await call("/v1/messages", { method: "POST", key: ta.key, json: { from: `x@${a}`, to: ["x@sink.example"], subject: "s", text: "t" }, headers: { "idempotency-key": k } })).json()) as { id: string };
    const resB = await call("/v1/messages", { method: "POST", key: tb.key, json: { from: `x@${b}`, to: ["x@sink.example"], subject: "s", text: "t" }, headers: { "idempotency-key": k } });
    expect(resB.status).toBe(202);
    expect(((await resB.json()) as { id: string }).id).not.toBe(ra.id);
  });
});

describe("From and Sender of raw messages (issue 15, finding 1)", () => {
  const rawSend = (key: string, rcpt: string, headers: string) =>
    call("/v1/messages/raw", {
      method: "POST",
      key,
      headers: { "content-type": "message/rfc822", "x-envelope-to": rcpt },
      body: `${headers}\r\nTo: ${rcpt}\r\nSubject: s\r\n\r\nbody\r\n`,
    });

  it("refuses every From that a mail reader could show as another tenant's domain; nothing is queued", async () => {
    const a = `${unique("fa")}.example`;
    const b = `${unique("fb")}.example`;
    const { key, tenantId } = await createTenantWithKey([a]);
    await createTenantWithKey([b]);
    const attacks = [
      `ceo@${b} (<x@${a}>)`,
      `ceo@${b}, <x@${a}>`,
      `x: ceo@${b};`,
      `x: ceo@${b}, <x@${a}>;`,
      `(c (d) <ceo@${b}>) x@${a}`,
      `<@${b}:x@${a}>`,
      `ceo@${b} <x@${a}>`,
      `=?utf-8?q?ceo=40${b}_<ceo@${b}>?=`,
      `<x@${a}>, ceo@${b}`,
    ];
    for (const from of attacks) {
      const res = await rawSend(key, "x@sink.example", `From: ${from}`);
      expect([403, 422], from).toContain(res.status);
      const body = await checkResponse<ErrorBody>(res, "POST", "/v1/messages/raw");
      expect(["invalid_sender", "sender_domain_not_allowed"], from).toContain(body.error.code);
      expect(body.error.field, from).toBe("from");
    }
    // Sender is shown as "on behalf of": it must be the tenant's too, and there is at most one.
    const sender = await rawSend(key, "x@sink.example", `From: x@${a}\r\nSender: ceo@${b}`);
    await expectError(sender, "POST", "/v1/messages/raw", 403, "sender_domain_not_allowed");
    const senders = await rawSend(key, "x@sink.example", `From: x@${a}\r\nSender: y@${a}\r\nSender: y@${a}`);
    await expectError(senders, "POST", "/v1/messages/raw", 422, "invalid_sender");
    const senderList = await rawSend(key, "x@sink.example", `From: x@${a}\r\nSender: y@${a}, ceo@${b}`);
    await expectError(senderList, "POST", "/v1/messages/raw", 422, "invalid_sender");
    expect(await count(tenantId)).toBe(0);
  });

  it("accepts the legitimate forms, and postal-mime reads the delivered From as the address accept checked", async () => {
    const a = `${unique("fg")}.example`;
    const { key } = await createTenantWithKey([a]);
    const forms = [
      `x@${a}`,
      `"Doe, Jane" <x@${a}>`,
      `"ceo@bank.example" <x@${a}>`,
      `=?utf-8?q?Caf=C3=A9_Team?= <x@${a}>`,
      `x@${a} (Support)`,
      `(Support) Support Team <x@${a}>`,
    ];
    for (const from of forms) {
      const rcpt = `${unique("r")}@sink.example`;
      const res = await rawSend(key, rcpt, `From: ${from}\r\nSender: ops@${a}`);
      expect(res.status, from).toBe(202);
      const copy = await waitFor(async () => (await receivedAt(sinkPort())).find((m) => m.rcptTo.includes(rcpt)), 20_000, `delivery to ${rcpt}`);
      const parsed = await PostalMime.parse(copy.raw);
      expect(parsed.from?.address, from).toBe(`x@${a}`);
      expect(parsed.sender?.address, from).toBe(`ops@${a}`);
    }
  });
});

describe("rate limit and dry runs (issue 15, finding 4)", () => {
  it("dry runs count against the limit, and carry neither the relay's DKIM signature nor tracking tokens", async () => {
    const domain = `${unique("dr")}.signed.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    await call(`/admin/tenants/${tenantId}`, { method: "PATCH", key: ADMIN_TOKEN, json: { rate_limit_per_minute: 3 } });
    expect((await call("/v1/tracking/settings", { method: "PUT", key, json: { track_clicks: true, track_opens: true } })).status).toBe(200);
    const body = {
      personalizations: [{ to: [{ email: "someone@sink.example" }] }],
      from: { email: `app@${domain}` },
      subject: "dry",
      content: [{ type: "text/html", value: '<p>Hi <a href="https://example.com/offer">offer</a></p>' }],
    };
    const statuses: number[] = [];
    let first: string | null = null;
    for (let i = 0; i < 10; i++) {
      const res = await call("/tx/v1/send?dry-run=true", { method: "POST", key, json: body });
      statuses.push(res.status);
      if (res.status === 200 && first === null) first = ((await res.json()) as { data: string[] }).data[0]!;
    }
    // Three a minute: even across a minute boundary at most six of ten are answered.
    expect(statuses.filter((s) => s === 200).length).toBeLessThanOrEqual(6);
    expect(statuses).toContain(429);
    expect(first).not.toBeNull();
    expect(first).not.toMatch(/^DKIM-Signature:/im);
    expect(first).toContain("https://example.com/offer");
    expect(first).not.toMatch(/\/t\/(c|o)\//);
    expect(await count(tenantId)).toBe(0);
  });

  it("the limit counts recipients: a message to four recipients does not fit a limit of three", async () => {
    const a = `${unique("rr")}.example`;
    const { key, tenantId } = await createTenantWithKey([a]);
    await call(`/admin/tenants/${tenantId}`, { method: "PATCH", key: ADMIN_TOKEN, json: { rate_limit_per_minute: 3 } });
    const to = ["a", "b", "c", "d"].map((l) => `${l}@sink.example`);
    await expectError(await call("/v1/messages", { method: "POST", key, json: { from: `x@${a}`, to, subject: "s", text: "t" } }), "POST", "/v1/messages", 429, "rate_limited");
    const raw = await call("/v1/messages/raw", {
      method: "POST",
      key,
      headers: { "content-type": "message/rfc822", "x-envelope-to": to.join(", ") },
      body: `From: x@${a}\r\nSubject: s\r\n\r\nbody\r\n`,
    });
    await expectError(raw, "POST", "/v1/messages/raw", 429, "rate_limited");
    const mc = { personalizations: [{ to: to.map((email) => ({ email })) }], from: { email: `x@${a}` }, subject: "s", content: [{ type: "text/plain", value: "t" }] };
    await expectError(await call("/tx/v1/send", { method: "POST", key, json: mc }), "POST", "/tx/v1/send", 429, "rate_limited");
    await expectError(await call("/v1/messages/batch", { method: "POST", key, json: [{ from: `x@${a}`, to: to.slice(0, 2), subject: "s", text: "t" }, { from: `x@${a}`, to: to.slice(2), subject: "s", text: "t" }] }), "POST", "/v1/messages/batch", 429, "rate_limited");
    expect(await count(tenantId)).toBe(0);
    expect((await call("/v1/messages", { method: "POST", key, json: { from: `x@${a}`, to: to.slice(0, 3), subject: "s", text: "t" } })).status).toBe(202);
  });
});

describe("dashboard login, assets, route secrets, broadcast unsubscribe (issue 15, finding 5)", () => {
  const loginForm = async (ip: string) => {
    const form = await call("/dashboard/login");
    const cookie = `__Host-er_login=${/__Host-er_login=([^;]+)/.exec(form.headers.getSetCookie().join("\n"))![1]}`;
    const nonce = /name="nonce" value="([^"]+)"/.exec(await form.text())![1]!;
    return (fields: Record<string, string>, extra = "") =>
      call("/dashboard/login", {
        method: "POST",
        redirect: "manual",
        headers: { cookie, "content-type": "application/x-www-form-urlencoded", "cf-connecting-ip": ip },
        body: new URLSearchParams({ nonce, ...fields }).toString() + extra,
      });
  };

  it("refuses a login body over 16 KiB without parsing it", async () => {
    const post = await loginForm("192.0.2.10");
    const big = await post({ token: ADMIN_TOKEN }, `&pad=${"x".repeat(48 * 1024)}`);
    expect(big.status).toBe(413);
    expect(big.headers.getSetCookie().some((c) => c.startsWith("__Host-er_session="))).toBe(false);
  });

  it("answers 429 after ten wrong tokens from one client, even to the right one; other clients are not affected", async () => {
    const post = await loginForm("192.0.2.11");
    const minute = () => Math.floor(Date.now() / 60_000);
    const started = minute();
    for (let i = 0; i < 10; i++) expect((await post({ token: `wrong-${i}` })).status).toBe(403);
    const blocked = await post({ token: ADMIN_TOKEN });
    if (minute() !== started) return; // a new minute began during the attempts: the count started over
    expect(blocked.status).toBe(429);
    expect(blocked.headers.get("retry-after")).toBe("60");
    const other = await loginForm("192.0.2.12");
    expect((await other({ token: ADMIN_TOKEN })).status).toBe(303);
  });

  it("serves only the real asset without a session; other paths under /dashboard/assets/ need one", async () => {
    expect((await call("/dashboard/assets/app.css")).status).toBe(200);
    for (const p of ["/dashboard/assets/x", "/dashboard/assets/../messages", "/dashboard/assets/app.css/x"]) {
      const res = await call(p, { redirect: "manual" });
      expect(res.status, p).toBe(303);
      expect(res.headers.get("location"), p).toMatch(/^\/dashboard\/login/);
    }
  });

  it("never shows an inline SMTP password of a route: not in GET /admin/routes, not in a 400", async () => {
    const domain = `${unique("rt")}.example`;
    const created = await call("/admin/routes", { method: "POST", key: ADMIN_TOKEN, json: { match_recipient_domain: domain, next_hop_url: "smtp+starttls://relay-user:hunter2%40x@127.0.0.1:2525" } });
    expect(created.status).toBe(201);
    const list = await call("/admin/routes", { key: ADMIN_TOKEN });
    const text = await list.text();
    expect(text).toContain(domain);
    expect(text).not.toContain("hunter2");
    expect(text).toContain("smtp+starttls://relay-user:***@127.0.0.1:2525");
    const bad = await call("/admin/routes", { method: "POST", key: ADMIN_TOKEN, json: { match_recipient_domain: domain, next_hop_url: "ftp://relay-user:hunter2@127.0.0.1:2525" } });
    expect(bad.status).toBe(400);
    expect(await bad.text()).not.toContain("hunter2");
  });

  it("refuses broadcast mail whose existing DKIM signature covers List-Unsubscribe or Feedback-ID", async () => {
    const a = `${unique("bu")}.example`;
    const { key, tenantId } = await createTenantWithKey([a]);
    for (const h of ["from:subject:list-unsubscribe", "from:list-unsubscribe-post", "from:feedback-id"]) {
      const res = await call("/v1/messages/raw", {
        method: "POST",
        key,
        headers: { "content-type": "message/rfc822", "x-envelope-to": "reader@sink.example", "x-stream": "broadcast" },
        body: `DKIM-Signature: v=1; a=rsa-sha256; d=${a}; s=s1; c=relaxed/relaxed; h=${h}; bh=x; b=y\r\nFrom: news@${a}\r\nSubject: s\r\n\r\nbody\r\n`,
      });
      expect(res.status, h).toBe(422);
      expect(((await res.json()) as ErrorBody & { error: { message: string } }).error.message, h).toMatch(/existing DKIM signature covers/);
    }
    expect(await count(tenantId)).toBe(0);
  });
});

describe("sending only from verified domains (issue 15, finding 8)", () => {
  // The workers test env sets REQUIRE_VERIFIED_DOMAINS=false (its domains have no DNS); these requests run the
  // Worker with the deployed default instead.
  const deployed = { ...env, REQUIRE_VERIFIED_DOMAINS: undefined } as unknown as Env;
  const callDeployed = async (path: string, init: RequestInit & { json?: unknown; key: string }) => {
    const headers = new Headers(init.headers);
    headers.set("authorization", `Bearer ${init.key}`);
    if (init.json !== undefined) headers.set("content-type", "application/json");
    const ctx = createExecutionContext();
    const req = new Request(`https://relay.test${path}`, { ...init, headers, body: init.json !== undefined ? JSON.stringify(init.json) : init.body }) as Parameters<typeof worker.fetch>[0];
    const res = await worker.fetch(req, deployed, ctx);
    await waitOnExecutionContext(ctx);
    return res;
  };

  it("is the default: an unverified domain is refused on every door until POST /v1/domains/:d/verify marked it", async () => {
    expect(loadConfig(deployed).requireVerifiedDomains).toBe(true);
    expect(loadConfig(env).requireVerifiedDomains).toBe(false);
    const a = `${unique("uv")}.example`;
    const { key, tenantId } = await createTenantWithKey([a]);
    const msg = { from: `x@${a}`, to: ["x@sink.example"], subject: "s", text: "t" };
    const refusedWith = async (res: Response, field: string) => {
      expect(res.status).toBe(403);
      expect(((await res.json()) as ErrorBody).error).toMatchObject({ code: "sender_domain_not_verified", field });
    };
    await refusedWith(await callDeployed("/v1/messages", { method: "POST", key, json: msg }), "from");
    await refusedWith(
      await callDeployed("/v1/messages/raw", { method: "POST", key, headers: { "content-type": "message/rfc822", "x-envelope-to": "x@sink.example" }, body: `From: x@${a}\r\nSubject: s\r\n\r\nb\r\n` }),
      "from",
    );
    const mc = { personalizations: [{ to: [{ email: "x@sink.example" }] }], from: { email: `x@${a}` }, subject: "s", content: [{ type: "text/plain", value: "t" }] };
    await refusedWith(await callDeployed("/tx/v1/send", { method: "POST", key, json: mc }), "personalizations[0].from");
    expect(await count(tenantId)).toBe(0);
    // What the verify endpoint records when every DNS record checks out.
    await recordDomainCheck(env.DB, a, true, []);
    expect((await callDeployed("/v1/messages", { method: "POST", key, json: msg })).status).toBe(202);
    // Another tenant's domain stays "not allowed", verified or not.
    const b = `${unique("uw")}.example`;
    await createTenantWithKey([b]);
    await recordDomainCheck(env.DB, b, true, []);
    await refusedWith403(await callDeployed("/v1/messages", { method: "POST", key, json: { ...msg, from: `x@${b}` } }));
  });

  async function refusedWith403(res: Response) {
    expect(res.status).toBe(403);
    expect(((await res.json()) as ErrorBody).error.code).toBe("sender_domain_not_allowed");
  }
});
