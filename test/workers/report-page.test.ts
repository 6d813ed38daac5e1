/** The reporting page inside the Workers runtime: login, counts from rollups, search, timeline, forms, escaping. */
import { describe, expect, it } from "vitest";
import { insertMessage, recordOutcome } from "../../src/store/messages";
import { ADMIN_TOKEN, call, createTenantWithKey, env, receivedAt, routedDomain, sinkPort, unique, waitFor } from "./helpers";
import { cookiesOf, login, metric } from "./report-support";

async function sendAndSettle(key: string, from: string, to: string, subject: string, final: string[]): Promise<string> {
  const res = await call("/v1/messages", { method: "POST", key, json: { from, to: [to], subject, text: "hello" } });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  await waitFor(async () => {
    const r = await env.DB.prepare("SELECT status FROM recipients WHERE message_id = ?").bind(id).first<{ status: string }>();
    return r && final.includes(r.status) ? r : undefined;
  }, 20_000, `message ${id} to settle`);
  return id;
}

describe("reporting page: sign-in", () => {
  it("sends a visitor without a session to the login form", async () => {
    const res = await call("/dashboard", { redirect: "manual" });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/dashboard/login?next=%2Fdashboard");
  });

  it("opens an HttpOnly, Secure, SameSite=Strict session for the admin token", async () => {
    const form = await call("/dashboard/login");
    const nonce = /name="nonce" value="([^"]+)"/.exec(await form.text())![1]!;
    const res = await call("/dashboard/login", {
      method: "POST",
      redirect: "manual",
      headers: { cookie: `__Host-er_login=${cookiesOf(form).get("__Host-er_login")}`, "content-type": "application/x-www-form-urlencoded" },
      body: new URLSearchParams({ nonce, token: ADMIN_TOKEN, next: "/dashboard/messages" }).toString(),
    });
    expect(res.status).toBe(303);
    expect(res.headers.get("location")).toBe("/dashboard/messages");
    const set = res.headers.getSetCookie().find((c) => c.startsWith("__Host-er_session="))!;
    expect(set).toMatch(/HttpOnly/i);
    expect(set).toMatch(/Secure/i);
    expect(set).toMatch(/SameSite=Strict/i);
    expect(set).toMatch(/Path=\//);
    const value = set.split(";")[0]!.split("=")[1]!;
    const stored = await env.DB.prepare("SELECT COUNT(*) AS n FROM dashboard_sessions WHERE id_hash = ?").bind(value).first<{ n: number }>();
    expect(stored?.n).toBe(0);
  });

  it("refuses a wrong token, a missing login nonce and an open redirect", async () => {
    const form = await call("/dashboard/login");
    const cookie = `__Host-er_login=${cookiesOf(form).get("__Host-er_login")}`;
    const nonce = /name="nonce" value="([^"]+)"/.exec(await form.text())![1]!;
    const post = (fields: Record<string, string>) =>
      call("/dashboard/login", { method: "POST", redirect: "manual", headers: { cookie, "content-type": "application/x-www-form-urlencoded" }, body: new URLSearchParams(fields).toString() });
    const wrong = await post({ nonce, token: "not-the-token" });
    expect(wrong.status).toBe(403);
    expect(wrong.headers.getSetCookie().some((c) => c.startsWith("__Host-er_session="))).toBe(false);
    expect((await post({ nonce: "forged", token: ADMIN_TOKEN })).status).toBe(400);
    const evil = await post({ nonce, token: ADMIN_TOKEN, next: "//evil.example/" });
    expect(evil.headers.get("location")).toBe("/dashboard");
  });

  it("ends the session on sign out", async () => {
    const s = await login();
    const out = await s.post("/dashboard/logout", { csrf: s.csrf });
    expect(out.status).toBe(303);
    expect((await s.get("/dashboard")).status).toBe(303);
  });

  it("sends pages with a script-free Content-Security-Policy", async () => {
    const s = await login();
    const res = await s.get("/dashboard");
    expect(res.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(res.headers.get("content-security-policy")).not.toContain("script-src");
    expect(res.headers.get("cache-control")).toBe("no-store");
  });
});

describe("reporting page: what happened", () => {
  it("shows the tenant's counts, rates and destinations from the rollups", async () => {
    const domain = `${unique("rp")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    const { port, domain: rcptDomain } = await routedDomain({ rules: [{ stage: "rcpt", match: "nobody", code: 550, message: "5.1.1 no such user" }] }, "dst");
    await sendAndSettle(key, `a@${domain}`, `x@${rcptDomain}`, "one", ["delivered"]);
    await sendAndSettle(key, `a@${domain}`, `y@${rcptDomain}`, "two", ["delivered"]);
    await sendAndSettle(key, `a@${domain}`, `nobody@${rcptDomain}`, "three", ["bounced"]);
    // The bounce may bring a DSN to the sender (another message of this tenant): wait until every recipient settled.
    const truth = await waitFor(async () => {
      const r = await env.DB.prepare(
        `SELECT (SELECT COUNT(*) FROM messages WHERE tenant_id = ?1) AS accepted,
                (SELECT COUNT(*) FROM recipients r JOIN messages m ON m.id = r.message_id WHERE m.tenant_id = ?1 AND r.status = 'delivered') AS delivered,
                (SELECT COUNT(*) FROM recipients r JOIN messages m ON m.id = r.message_id WHERE m.tenant_id = ?1 AND r.final_at IS NULL) AS pending`,
      ).bind(tenantId).first<{ accepted: number; delivered: number; pending: number }>();
      // Outcomes are recorded as each transaction ends (issue 16), a moment before the DSN is accepted: settled
      // means no recipient pending and no new message for a while.
      await new Promise((res) => setTimeout(res, 1500));
      const again = await env.DB.prepare("SELECT COUNT(*) AS n FROM messages WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>();
      return r && r.pending === 0 && again?.n === r.accepted ? r : undefined;
    }, 20_000, "every recipient final");
    const s = await login();
    const page = await (await s.get(`/dashboard?tenant=${tenantId}&window=1h`)).text();
    expect(truth.accepted).toBeGreaterThanOrEqual(3);
    expect(metric(page, "accepted")).toBe(truth.accepted);
    expect(metric(page, "delivered")).toBe(truth.delivered);
    expect(metric(page, "bounced")).toBe(1);
    expect(metric(page, "deferred")).toBe(0);
    // delivery rate delivered/(delivered+bounced), under the 95% threshold
    expect(page).toContain(`${((truth.delivered / (truth.delivered + 1)) * 100).toFixed(1)}%`);
    expect(page).toContain("over threshold");
    expect(page).toMatch(/<svg viewBox="0 0 720 220" role="img"/);
    const day = await (await s.get(`/dashboard?tenant=${tenantId}&window=24h`)).text();
    expect(metric(day, "delivered")).toBe(truth.delivered);
    const dest = await (await s.get(`/dashboard/destinations?tenant=${tenantId}`)).text();
    expect(dest).toContain(rcptDomain);
    expect(dest).toContain(`127.0.0.1:${port}`);
    expect((await receivedAt(port)).length).toBe(2);
  });

  it("finds a message by id, recipient, sender, tag and status, and shows its timeline", async () => {
    const domain = `${unique("sr")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    const rcpt = `${unique("who")}@sink.example`;
    const id = await sendAndSettle(key, `s@${domain}`, rcpt, "find me", ["delivered"]);
    const s = await login();
    for (const [field, q] of [["id", id], ["recipient", rcpt], ["sender", `s@${domain}`], ["status", "delivered"]] as const) {
      const page = await (await s.get(`/dashboard/messages?tenant=${tenantId}&field=${field}&q=${encodeURIComponent(q)}`)).text();
      expect(page, field).toContain(`/dashboard/messages/${id}`);
    }
    const other = await (await s.get(`/dashboard/messages?tenant=${tenantId}&field=recipient&q=nobody%40else.example`)).text();
    expect(other).toContain("No messages match");
    const msg = await (await s.get(`/dashboard/messages/${id}`)).text();
    expect(msg).toContain("find me");
    expect(msg).toMatch(/st-accepted[\s\S]*st-queued[\s\S]*st-delivered/);
    expect(msg).toContain(`next hop 127.0.0.1:${sinkPort()}`);
    expect(msg).toMatch(/250/);
    expect((await s.get(`/dashboard/messages/nosuchmessage`)).status).toBe(404);
  });

  it("finds messages by tag through the rollup's tag index", async () => {
    const { tenantId } = await createTenantWithKey([`${unique("tg")}.example`]);
    const id = unique("m").padEnd(21, "0").slice(0, 21);
    const tag = unique("campaign");
    await env.DB.batch(
      insertMessage(env.DB, {
        id, tenantId, mailFrom: "a@tag.example", headerFrom: "a@tag.example", subject: "tagged", messageIdHeader: `<${id}@x>`,
        stream: "transactional", sizeBytes: 10, bodyKey: null, tags: [tag, "other"], metadata: {}, createdAt: Date.now(), sendAt: null,
        recipients: [{ idx: 0, address: "t@tag.example", domain: "tag.example", status: "queued" }],
      }),
    );
    const s = await login();
    const page = await (await s.get(`/dashboard/messages?field=tag&q=${tag}`)).text();
    expect(page).toContain(`/dashboard/messages/${id}`);
  });

  it("adds and removes a suppression through the forms, and refuses a forged form", async () => {
    const { tenantId } = await createTenantWithKey([`${unique("sp")}.example`]);
    const address = `${unique("blocked")}@example.net`;
    const s = await login();
    const forged = await s.post("/dashboard/suppressions", { csrf: "forged", tenant_id: tenantId, address, scope: "all", reason: "manual" });
    expect(forged.headers.get("location")).toContain("notice=csrf");
    const crossSite = await s.post("/dashboard/suppressions", { csrf: s.csrf, tenant_id: tenantId, address, scope: "all", reason: "manual" }, { origin: "https://evil.example" });
    expect(crossSite.headers.get("location")).toContain("notice=csrf");
    const none = await env.DB.prepare("SELECT COUNT(*) AS n FROM suppressions WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>();
    expect(none?.n).toBe(0);

    const added = await s.post("/dashboard/suppressions", { csrf: s.csrf, tenant: tenantId, tenant_id: tenantId, address, scope: "all", reason: "manual", detail: "asked by phone" });
    expect(added.status).toBe(303);
    expect(added.headers.get("location")).toBe(`/dashboard/suppressions?tenant=${tenantId}&notice=added`);
    expect((await (await s.get(added.headers.get("location")!)).text())).toContain("Suppression added.");
    const list = await (await s.get(`/dashboard/suppressions?tenant=${tenantId}&q=blocked`)).text();
    expect(list).toContain(address);
    expect(list).toContain("asked by phone");
    const row = await env.DB.prepare("SELECT reason, scope FROM suppressions WHERE tenant_id = ? AND address = ?").bind(tenantId, address).first();
    expect(row).toEqual({ reason: "manual", scope: "all" });

    const bad = await s.post("/dashboard/suppressions", { csrf: s.csrf, tenant_id: tenantId, address: "not an address", scope: "all" });
    expect(bad.headers.get("location")).toContain("notice=invalid");

    await s.post("/dashboard/suppressions/remove", { csrf: s.csrf, tenant_id: tenantId, address, scope: "all" });
    const gone = await env.DB.prepare("SELECT COUNT(*) AS n FROM suppressions WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>();
    expect(gone?.n).toBe(0);
  });

  it("shows queue health: the deferred backlog and the oldest pending recipient", async () => {
    const { port, domain: rcptDomain } = await routedDomain({ rules: [{ stage: "rcpt", code: 451, message: "4.7.1 greylisted, come back later" }] }, "slow");
    const domain = `${unique("qh")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    await sendAndSettle(key, `q@${domain}`, `late@${rcptDomain}`, "deferred one", ["deferred"]);
    const s = await login();
    const page = await (await s.get(`/dashboard?tenant=${tenantId}`)).text();
    expect(metric(page, "queue-deferred")).toBeGreaterThanOrEqual(1);
    expect(page).toContain(`late@${rcptDomain}`);
    expect(page).toContain("greylisted");
  });
});

describe("reporting page: escaping", () => {
  it("escapes subjects, addresses, tags and SMTP replies full of HTML on every page", async () => {
    const { tenantId } = await createTenantWithKey([`${unique("xss")}.example`]);
    const evil = `<script>alert("x")</script>'"><img src=x onerror=alert(1)>`;
    const evilAddress = `"><script>alert(1)</script>@evil.example`;
    const id = unique("x").padEnd(21, "0").slice(0, 21);
    const now = Date.now();
    await env.DB.batch([
      ...insertMessage(env.DB, {
        id, tenantId, mailFrom: `${evil}@evil.example`, headerFrom: evil, subject: evil, messageIdHeader: `<${evil}>`,
        stream: "transactional", sizeBytes: 1, bodyKey: null, tags: [evil], metadata: {}, createdAt: now, sendAt: null,
        recipients: [{ idx: 0, address: evilAddress, domain: "evil.example", status: "queued" }],
      }),
      // The ledger's own writer records the deferral (event, recipient state and log entry in the message row).
      ...recordOutcome(env.DB, { messageId: id, tenantId, idx: 0, address: evilAddress, status: "deferred", at: now, attempt: 1, code: 451, text: evil, host: `<b>${evil}</b>` }),
      env.DB.prepare("INSERT INTO suppressions (tenant_id, address, scope, reason, detail, created_at) VALUES (?, ?, 'all', 'manual', ?, ?)").bind(tenantId, evilAddress, evil, now),
    ]);
    const s = await login();
    const pages = [
      `/dashboard?tenant=${tenantId}`,
      `/dashboard/destinations?tenant=${tenantId}`,
      `/dashboard/messages?tenant=${tenantId}`,
      `/dashboard/messages?tenant=${tenantId}&field=tag&q=${encodeURIComponent(evil)}`,
      `/dashboard/messages/${id}`,
      `/dashboard/suppressions?tenant=${tenantId}&q=${encodeURIComponent(evil)}`,
      `/dashboard/suppressions?tenant=${tenantId}`,
    ];
    for (const p of pages) {
      const res = await s.get(p);
      expect(res.status, p).toBe(200);
      const body = await res.text();
      expect(body, p).not.toContain("<script>");
      expect(body, p).not.toContain("<img");
      expect(body, p).not.toContain("<b>");
    }
    const msg = await (await s.get(`/dashboard/messages/${id}`)).text();
    expect(msg).toContain("&lt;script&gt;alert(&quot;x&quot;)&lt;/script&gt;&#39;&quot;&gt;&lt;img src=x onerror=alert(1)&gt;");
    expect(msg).toContain("&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@evil.example");
    const sup = await (await s.get(`/dashboard/suppressions?tenant=${tenantId}`)).text();
    expect(sup).toContain('name="address" value="&quot;&gt;&lt;script&gt;alert(1)&lt;/script&gt;@evil.example"');
  });
});
