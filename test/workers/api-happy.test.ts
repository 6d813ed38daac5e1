/** Send API happy paths: every route, with responses checked against the OpenAPI document. */
import { describe, expect, it } from "vitest";
import { inject } from "vitest";
import { releaseScheduledJobs } from "../../src/accept/scheduled";
import { admin } from "../../src/http/admin";
import { domains } from "../../src/http/domains";
import { mailchannels } from "../../src/http/mailchannels";
import { messages } from "../../src/http/messages";
import { OPENAPI_DOCUMENT, openapi } from "../../src/http/openapi";
import { suppressions } from "../../src/http/suppressions";
import { checkResponse } from "./api-schema";
import { ADMIN_TOKEN, call, createTenantWithKey, env, receivedAt, sinkPort, unique, waitFor } from "./helpers";

type SendResult = { id: string; status: string; message_id: string; recipients: { address: string; status: string }[] };
const control = () => `http://127.0.0.1:${inject("controlPort")}`;

async function arrivedWith(text: string) {
  return waitFor(async () => (await receivedAt(sinkPort())).find((m) => m.raw.includes(text)), 15_000, `message containing ${text}`);
}

/** The unfolded header section. */
function headerSection(raw: string): string {
  return raw.slice(0, raw.indexOf("\r\n\r\n")).replace(/\r\n[ \t]+/g, " ");
}

async function send(key: string, json: unknown, headers: Record<string, string> = {}) {
  const res = await call("/v1/messages", { method: "POST", key, json, headers });
  return { res, body: await checkResponse<SendResult>(res, "POST", "/v1/messages") };
}

describe("POST /v1/messages", () => {
  it("composes every field into MIME, keeps Bcc out of the headers, and delivers to every envelope recipient", async () => {
    const domain = `${unique("h")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const marker = unique("marker");
    const png = btoa(String.fromCharCode(137, 80, 78, 71, 13, 10, 26, 10, 0, 1, 2, 3));
    const { res, body } = await send(key, {
      from: { name: "Ünïcode Sender", address: `app@${domain}` },
      to: ["a@sink.example", { name: "B", address: "b@sink.example" }],
      cc: ["c@sink.example"],
      bcc: ["hidden@sink.example"],
      reply_to: "support@" + domain,
      subject: `Grüße ${marker}`,
      text: "plain body",
      html: "<p>html body <img src=\"cid:logo\"></p>",
      attachments: [
        { filename: "logo.png", content: png, content_id: "logo" },
        { filename: "report.txt", content: btoa("report"), content_type: "text/plain" },
      ],
      headers: { "X-Campaign": marker },
      tags: ["welcome"],
      metadata: { user: "42" },
    });
    expect(res.status).toBe(202);
    expect(body.status).toBe("accepted");
    expect(body.message_id).toMatch(new RegExp(`@${domain.replace(/\./g, "\\.")}$`));
    expect(body.recipients.map((r) => r.status)).toEqual(["queued", "queued", "queued", "queued"]);

    const arrived = await waitFor(async () => {
      const all = (await receivedAt(sinkPort())).filter((m) => m.raw.includes(marker));
      return all.length === 4 ? all : undefined;
    }, 15_000, "four deliveries (one per recipient under VERP)");
    expect(arrived.flatMap((m) => m.rcptTo).sort()).toEqual(["a@sink.example", "b@sink.example", "c@sink.example", "hidden@sink.example"]);
    const head = headerSection(arrived[0]!.raw);
    expect(head).not.toMatch(/^bcc:/im);
    expect(arrived[0]!.raw).not.toContain("hidden@sink.example");
    expect(head).toMatch(/^Subject: =\?utf-8\?/im);
    expect(head).toContain(`Message-ID: <${body.message_id}>`);
    expect(head).toMatch(/^Date: /m);
    expect(head).toMatch(/^MIME-Version: 1\.0/m);
    expect(head).toMatch(/^Received: by relay\.edge-relay\.local \(Edge Relay\) with HTTPS id /m);
    expect(head).toMatch(/^Feedback-ID: [^:]+:transactional:welcome:relay\.edge-relay\.local/m);
    expect(head).toContain(`X-Campaign: ${marker}`);
    expect(head).toMatch(/^Reply-To: support@/m);
    expect(head).not.toMatch(/^List-Unsubscribe/m);
    expect(arrived[0]!.raw).toContain("multipart/mixed");
    expect(arrived[0]!.raw).toContain("multipart/related");
    expect(arrived[0]!.raw).toContain("Content-ID: <logo>");
    // Each recipient has its own return path on the bounce domain.
    expect(new Set(arrived.map((m) => m.mailFrom)).size).toBe(4);
    for (const m of arrived) expect(m.mailFrom).toMatch(new RegExp(`^bounce\\+${body.id}-\\d-[a-z2-7]{10}@bounces\\.${domain.replace(/\./g, "\\.")}$`));
  });

  it("schedules a message for later with send_at", async () => {
    const domain = `${unique("sch")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const later = new Date(Date.now() + 2 * 86_400_000).toISOString();
    const { res, body } = await send(key, { from: `a@${domain}`, to: ["x@sink.example"], subject: "later", text: "t", send_at: later });
    expect(res.status).toBe(202);
    expect(body.status).toBe("scheduled");
    const row = await env.DB.prepare("SELECT release_at FROM scheduled_jobs WHERE message_id = ?").bind(body.id).first<{ release_at: number }>();
    expect(row?.release_at).toBe(Date.parse(later));
    const msg = await call(`/v1/messages/${body.id}`, { key });
    const view = await checkResponse<{ status: string }>(msg, "GET", `/v1/messages/${body.id}`);
    expect(view.status).toBe("queued");
    // The cron releases it to the Queue once its send time is within a Queue delay (12 h), and not before.
    expect(await releaseScheduledJobs(env, Date.parse(later) - 13 * 3600_000)).toBe(0);
    expect(await releaseScheduledJobs(env, Date.parse(later) - 3600_000)).toBe(1);
    const left = await env.DB.prepare("SELECT COUNT(*) AS n FROM scheduled_jobs WHERE message_id = ?").bind(body.id).first<{ n: number }>();
    expect(left?.n).toBe(0);
  });

  it("replays the first response for a repeated Idempotency-Key and refuses a different body with 409", async () => {
    const domain = `${unique("idem")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    const idem = unique("key");
    const json = { from: `a@${domain}`, to: ["x@sink.example"], subject: "once", text: "t" };
    const first = await send(key, json, { "idempotency-key": idem });
    const second = await send(key, json, { "idempotency-key": idem });
    expect(second.res.status).toBe(202);
    expect(second.body.id).toBe(first.body.id);
    expect(second.res.headers.get("idempotent-replayed")).toBe("true");
    const other = await call("/v1/messages", { method: "POST", key, json: { ...json, subject: "twice" }, headers: { "idempotency-key": idem } });
    expect(other.status).toBe(409);
    expect((await checkResponse<{ error: { code: string } }>(other, "POST", "/v1/messages")).error.code).toBe("idempotency_conflict");
    const n = await env.DB.prepare("SELECT COUNT(*) AS n FROM messages WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>();
    expect(n?.n).toBe(1);
  });
});

describe("suppressions", () => {
  it("adds in bulk, marks suppressed recipients at accept with an event, lists and removes", async () => {
    const domain = `${unique("sup")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const blocked = `${unique("blocked")}@sink.example`;
    const add = await call("/v1/suppressions", {
      method: "POST",
      key,
      json: { suppressions: [{ address: blocked.toUpperCase(), reason: "complaint" }, { address: "bounced@sink.example", reason: "hard_bounce", scope: "transactional" }] },
    });
    expect(add.status).toBe(201);
    const added = await checkResponse<{ data: { expires_at: string | null }[] }>(add, "POST", "/v1/suppressions");
    expect(added.data[0]!.expires_at).toBeNull();
    expect(Date.parse(added.data[1]!.expires_at!)).toBeGreaterThan(Date.now() + 80 * 86_400_000);

    const { body } = await send(key, { from: `a@${domain}`, to: [blocked, "ok@sink.example"], subject: "s", text: "t" });
    expect(body.recipients).toEqual([
      { address: blocked, status: "suppressed" },
      { address: "ok@sink.example", status: "queued" },
    ]);
    const view = await (await call(`/v1/messages/${body.id}`, { key })).json() as { events: { type: string; recipient: string | null }[] };
    expect(view.events).toContainEqual(expect.objectContaining({ type: "suppressed", recipient: blocked }));

    const list = await call("/v1/suppressions?limit=1", { key });
    const page = await checkResponse<{ data: { address: string }[]; next_cursor: string | null }>(list, "GET", "/v1/suppressions");
    expect(page.data).toHaveLength(1);
    expect(page.next_cursor).not.toBeNull();
    const page2 = await checkResponse<{ data: { address: string }[] }>(await call(`/v1/suppressions?limit=1&cursor=${encodeURIComponent(page.next_cursor!)}`, { key }), "GET", "/v1/suppressions");
    expect([page.data[0]!.address, page2.data[0]!.address].sort()).toEqual(["bounced@sink.example", blocked.toLowerCase()].sort());

    const del = await call(`/v1/suppressions/${encodeURIComponent(blocked)}`, { method: "DELETE", key });
    expect(del.status).toBe(200);
    await checkResponse(del, "DELETE", "/v1/suppressions/x");
    const again = await send(key, { from: `a@${domain}`, to: [blocked], subject: "s", text: "t" });
    expect(again.body.recipients[0]!.status).toBe("queued");
  });

  it("adds one-click unsubscribe headers to broadcast mail; the POST suppresses broadcast mail only", async () => {
    const domain = `${unique("bc")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const rcpt = `${unique("reader")}@sink.example`;
    const marker = unique("news");
    const { body } = await send(key, { from: `news@${domain}`, to: [rcpt], subject: marker, text: "news", stream: "broadcast", tags: ["weekly"] });
    expect(body.status).toBe("accepted");
    const arrived = await arrivedWith(marker);
    const head = headerSection(arrived.raw);
    const m = /^List-Unsubscribe: <(https:\/\/relay\.test\/unsubscribe\/[^>]+)>, <mailto:unsubscribe@bounces\.[^?]+\?subject=unsubscribe%20[^>]+>$/m.exec(head);
    expect(m, head).not.toBeNull();
    expect(head).toMatch(/^List-Unsubscribe-Post: List-Unsubscribe=One-Click$/m);
    expect(head).toMatch(/^Feedback-ID: [^:]+:broadcast:weekly:/m);

    const url = new URL(m![1]!);
    const page = await call(url.pathname);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-type")).toContain("text/html");
    const unsub = await call(url.pathname, { method: "POST", headers: { "content-type": "application/x-www-form-urlencoded" }, body: "List-Unsubscribe=One-Click" });
    expect(unsub.status).toBe(200);
    await checkResponse(unsub, "POST", url.pathname);

    const next = await send(key, { from: `news@${domain}`, to: [rcpt], subject: "again", text: "x", stream: "broadcast" });
    expect(next.body.recipients[0]!.status).toBe("suppressed");
    const transactional = await send(key, { from: `news@${domain}`, to: [rcpt], subject: "receipt", text: "x" });
    expect(transactional.body.recipients[0]!.status).toBe("queued");
  });
});

describe("batch, raw and MailChannels", () => {
  it("accepts a batch with per-message results", async () => {
    const domain = `${unique("batch")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const res = await call("/v1/messages/batch", {
      method: "POST",
      key,
      json: {
        messages: [
          { from: `a@${domain}`, to: ["one@sink.example"], subject: "1", text: "1" },
          { from: `a@${domain}`, to: ["not an address"], subject: "2", text: "2" },
          { from: `a@other-${domain}`, to: ["three@sink.example"], subject: "3", text: "3" },
          { from: `a@${domain}`, to: ["four@sink.example"], subject: "4", text: "4" },
        ],
      },
    });
    expect(res.status).toBe(200);
    const body = await checkResponse<{ accepted: number; failed: number; results: { index: number; status: string; error?: { code: string; field?: string; status: number } }[] }>(res, "POST", "/v1/messages/batch");
    expect(body.accepted).toBe(2);
    expect(body.failed).toBe(2);
    expect(body.results.map((r) => r.status)).toEqual(["accepted", "failed", "failed", "accepted"]);
    expect(body.results[1]!.error).toMatchObject({ code: "invalid_recipient", field: "to[0]", status: 422 });
    expect(body.results[2]!.error).toMatchObject({ code: "sender_domain_not_allowed", status: 403 });
  });

  it("accepts a raw message with the envelope in headers, strips Bcc, adds Message-ID, keeps the body", async () => {
    const domain = `${unique("raw")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const marker = unique("rawmark");
    const raw = [`From: "Raw Sender" <app@${domain}>`, "To: someone@sink.example", "Bcc: secret@sink.example", `Subject: ${marker}`, "", "line one", ".dot line", ""].join("\n");
    const res = await call("/v1/messages/raw", {
      method: "POST",
      key,
      headers: { "content-type": "message/rfc822", "x-envelope-to": "someone@sink.example, secret@sink.example", "x-envelope-from": `bounces@${domain}`, "x-client-helo": "app01.internal", "x-client-protocol": "ESMTPSA" },
      body: raw,
    });
    expect(res.status).toBe(202);
    const body = await checkResponse<SendResult>(res, "POST", "/v1/messages/raw");
    expect(body.recipients).toEqual([
      { address: "someone@sink.example", status: "queued" },
      { address: "secret@sink.example", status: "queued" },
    ]);
    const arrived = await arrivedWith(marker);
    const head = headerSection(arrived.raw);
    expect(head).not.toMatch(/^Bcc:/im);
    expect(head).toContain(`Message-ID: <${body.message_id}>`);
    expect(head).toMatch(/^Received: from app01\.internal by relay\.edge-relay\.local \(Edge Relay\) with ESMTPSA id /m);
    expect(arrived.raw).toContain("\r\n\r\nline one\r\n.dot line\r\n");
    const view = await checkResponse<{ mail_from: string; header_from: string }>(await call(`/v1/messages/${body.id}`, { key }), "GET", `/v1/messages/${body.id}`);
    expect(view.header_from).toBe(`app@${domain}`);
    expect(view.mail_from).toMatch(/^bounce\+/);
  });

  it("accepts a MailChannels request body from their documentation unchanged; dry-run returns the message", async () => {
    const domain = `${unique("mc")}.example`;
    const { key } = await createTenantWithKey([domain]);
    // docs.mailchannels.com "Send an Email" example, with the addresses moved to our test domains.
    const body = {
      personalizations: [{ to: [{ email: "test@sink.example", name: "Test Recipient" }] }],
      from: { email: `sender@${domain}`, name: "Sender Name" },
      subject: "Testing Email API",
      content: [
        { type: "text/plain", value: "Hi! This is a test." },
        { type: "text/html", value: "<p>Hi! This is a test.</p>" },
      ],
    };
    const dry = await call("/tx/v1/send?dry-run=true", { method: "POST", headers: { "x-api-key": key }, json: body });
    expect(dry.status).toBe(200);
    const dryBody = await checkResponse<{ data: string[] }>(dry, "POST", "/tx/v1/send");
    expect(dryBody.data[0]).toContain("Subject: Testing Email API");
    expect(dryBody.data[0]).toContain("multipart/alternative");
    const n0 = await env.DB.prepare("SELECT COUNT(*) AS n FROM messages WHERE header_from = ?").bind(`sender@${domain}`).first<{ n: number }>();
    expect(n0?.n).toBe(0);

    const res = await call("/tx/v1/send", { method: "POST", headers: { "x-api-key": key }, json: body });
    expect(res.status).toBe(202);
    const sent = await checkResponse<{ results: { index: number; message_id: string; status: string }[] }>(res, "POST", "/tx/v1/send");
    expect(sent.results).toHaveLength(1);
    expect(sent.results[0]).toMatchObject({ index: 0, status: "sent" });
  });

  it("accepts the MailChannels example from Cloudflare's Workers announcement byte for byte", async () => {
    // The tenant owns example.com, so the body needs no edits at all.
    const { key } = await createTenantWithKey(["example.com"]);
    const body = `{
      "personalizations": [{ "to": [{ "email": "test@example.com", "name": "Test Recipient" }] }],
      "from": { "email": "sender@example.com", "name": "Workers - MailChannels integration" },
      "subject": "Look! No servers",
      "content": [{ "type": "text/plain", "value": "And no email service accounts and all for free too!" }]
    }`;
    const res = await call("/tx/v1/send", { method: "POST", headers: { "content-type": "application/json", "x-api-key": key }, body });
    expect(res.status, await res.clone().text()).toBe(202);
    const sent = await checkResponse<{ results: { message_id: string; recipients: { address: string }[] }[] }>(res, "POST", "/tx/v1/send");
    expect(sent.results[0]!.recipients).toEqual([{ address: "test@example.com", status: "queued" }]);
    const view = await checkResponse<{ subject: string; header_from: string }>(await call(`/v1/messages/${sent.results[0]!.message_id}`, { key }), "GET", "/v1/messages/x");
    expect(view).toMatchObject({ subject: "Look! No servers", header_from: "sender@example.com" });
  });
});

describe("read side", () => {
  it("searches messages by recipient, tag and status with cursor pagination, and pages events", async () => {
    const domain = `${unique("q")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const rcpt = `${unique("who")}@sink.example`;
    const ids: string[] = [];
    for (let i = 0; i < 3; i++) {
      const { body } = await send(key, { from: `a@${domain}`, to: [rcpt], subject: `q${i}`, text: "t", tags: i === 1 ? ["special"] : ["plain"] });
      ids.push(body.id);
    }
    const all = await checkResponse<{ data: { id: string }[]; next_cursor: string | null }>(await call(`/v1/messages?recipient=${encodeURIComponent(rcpt)}&limit=2`, { key }), "GET", "/v1/messages");
    expect(all.data.map((m) => m.id)).toEqual([ids[2], ids[1]]);
    const rest = await checkResponse<{ data: { id: string }[]; next_cursor: string | null }>(await call(`/v1/messages?recipient=${encodeURIComponent(rcpt)}&limit=2&cursor=${all.next_cursor}`, { key }), "GET", "/v1/messages");
    expect(rest.data.map((m) => m.id)).toEqual([ids[0]]);
    expect(rest.next_cursor).toBeNull();
    const tagged = await checkResponse<{ data: { id: string }[] }>(await call(`/v1/messages?tag=special`, { key }), "GET", "/v1/messages");
    expect(tagged.data.map((m) => m.id)).toEqual([ids[1]]);
    const since = await checkResponse<{ data: { id: string }[] }>(await call(`/v1/messages?since=${new Date(Date.now() + 60_000).toISOString()}`, { key }), "GET", "/v1/messages");
    expect(since.data).toEqual([]);
    await waitFor(async () => {
      const d = await checkResponse<{ data: { id: string }[] }>(await call(`/v1/messages?status=delivered&recipient=${encodeURIComponent(rcpt)}`, { key }), "GET", "/v1/messages");
      return d.data.length === 3 ? d : undefined;
    }, 15_000, "three delivered");

    const ev = await checkResponse<{ data: { id: number; type: string; message_id: string }[]; next_cursor: string | null }>(await call(`/v1/events?message_id=${ids[0]}&limit=2`, { key }), "GET", "/v1/events");
    expect(ev.data.map((e) => e.type)).toEqual(["accepted", "queued"]);
    const ev2 = await checkResponse<{ data: { type: string }[] }>(await call(`/v1/events?message_id=${ids[0]}&cursor=${ev.next_cursor}`, { key }), "GET", "/v1/events");
    expect(ev2.data.map((e) => e.type)).toEqual(["delivered"]);
  });

  it("documents every route of the send API, the domain, suppression, MailChannels and admin routers", () => {
    const routers = { messages, mailchannels, suppressions, domains, openapi, admin };
    const documented = OPENAPI_DOCUMENT.paths as Record<string, Record<string, unknown>>;
    const missing: string[] = [];
    for (const [name, router] of Object.entries(routers)) {
      for (const r of router.routes) {
        if (r.method === "ALL") continue; // middleware
        const path = r.path.replace(/:([A-Za-z_]+)/g, "{$1}");
        if (!documented[path]?.[r.method.toLowerCase()]) missing.push(`${name}: ${r.method} ${path}`);
      }
    }
    expect(missing).toEqual([]);
  });

  it("serves the OpenAPI document describing every route", async () => {
    const res = await call("/openapi.json");
    expect(res.status).toBe(200);
    const doc = (await res.json()) as { openapi: string; paths: Record<string, unknown> };
    expect(doc.openapi).toBe("3.1.0");
    for (const p of ["/v1/messages", "/v1/messages/batch", "/v1/messages/raw", "/v1/messages/{id}", "/v1/events", "/v1/suppressions", "/tx/v1/send", "/v1/domains/{domain}/dns", "/v1/domains/{domain}/verify", "/unsubscribe/{token}"]) {
      expect(doc.paths[p], p).toBeDefined();
    }
  });
});

describe("domains and admin", () => {
  it("a send without stream goes out on the tenant's default stream", async () => {
    const domain = `${unique("ds")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    await call(`/admin/tenants/${tenantId}`, { method: "PATCH", key: ADMIN_TOKEN, json: { default_stream: "broadcast" } });
    const { body } = await send(key, { from: `a@${domain}`, to: ["x@sink.example"], subject: "s", text: "t" });
    const view = await checkResponse<{ stream: string }>(await call(`/v1/messages/${body.id}`, { key }), "GET", `/v1/messages/${body.id}`);
    expect(view.stream).toBe("broadcast");
    const explicit = await send(key, { from: `a@${domain}`, to: ["x@sink.example"], subject: "s", text: "t", stream: "transactional" });
    const view2 = await checkResponse<{ stream: string }>(await call(`/v1/messages/${explicit.body.id}`, { key }), "GET", `/v1/messages/${explicit.body.id}`);
    expect(view2.stream).toBe("transactional");
  });

  it("lists the DNS records to publish and verifies them over DNS-over-HTTPS", async () => {
    const domain = `${unique("dns")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const list = await checkResponse<{ data: { domain: string; verified: boolean }[] }>(await call("/v1/domains", { key }), "GET", "/v1/domains");
    expect(list.data).toEqual([expect.objectContaining({ domain, verified: false })]);
    const dns = await checkResponse<{ records: { purpose: string; type: string; name: string; value: string; priority?: number; required: boolean }[] }>(
      await call(`/v1/domains/${domain}/dns`, { key }),
      "GET",
      "/v1/domains/x/dns",
    );
    expect(dns.records.some((r) => r.purpose === "bounce-mx" && r.name === `bounces.${domain}`)).toBe(true);
    const before = await checkResponse<{ verified: boolean }>(await call(`/v1/domains/${domain}/verify`, { method: "POST", key }), "POST", "/v1/domains/x/verify");
    expect(before.verified).toBe(false);

    // Publish every record in the DoH stub, then verify again.
    const byName = new Map<string, { type: string; data: string[] }>();
    for (const r of dns.records) {
      const k = `${r.name}|${r.type}`;
      const entry = byName.get(k) ?? { type: r.type, data: [] };
      entry.data.push(r.type === "MX" ? `${r.priority} ${r.value}.` : `"${r.value}"`);
      byName.set(k, entry);
    }
    for (const [k, e] of byName) {
      const name = k.split("|")[0]!;
      await fetch(`${control()}/dns`, {
        method: "POST",
        body: JSON.stringify({ name, type: e.type, entry: { Status: 0, Answer: e.data.map((data) => ({ name, type: e.type === "MX" ? 15 : 16, TTL: 60, data })) } }),
      });
    }
    const after = await checkResponse<{ verified: boolean; results: { status: string; record: { name: string } }[] }>(await call(`/v1/domains/${domain}/verify`, { method: "POST", key }), "POST", "/v1/domains/x/verify");
    expect(after.results.filter((r) => r.status !== "ok")).toEqual([]);
    expect(after.verified).toBe(true);
    const listed = await checkResponse<{ data: { verified: boolean }[] }>(await call("/v1/domains", { key }), "GET", "/v1/domains");
    expect(listed.data[0]!.verified).toBe(true);
  });

  it("manages tenants: list, get, suspend and resume, rate limit, domains", async () => {
    const domain = `${unique("adm")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    const admin = { key: ADMIN_TOKEN };
    const got = await checkResponse<{ domains: string[]; keys: unknown[] }>(await call(`/admin/tenants/${tenantId}`, admin), "GET", `/admin/tenants/${tenantId}`);
    expect(got.domains).toEqual([domain]);
    expect(got.keys).toHaveLength(1);
    expect(JSON.stringify(got)).not.toContain("key_hash");
    const listed = await checkResponse<{ data: { id: string }[] }>(await call(`/admin/tenants?limit=1000`, admin), "GET", "/admin/tenants");
    expect(listed.data.map((t) => t.id)).toContain(tenantId);

    const second = `${unique("adm2")}.example`;
    const add = await call(`/admin/tenants/${tenantId}/domains`, { method: "POST", ...admin, json: { domain: second } });
    expect(add.status).toBe(201);
    await checkResponse(add, "POST", `/admin/tenants/${tenantId}/domains`);
    expect((await send(key, { from: `a@${second}`, to: ["x@sink.example"], subject: "s", text: "t" })).res.status).toBe(202);
    const rm = await call(`/admin/tenants/${tenantId}/domains/${second}`, { method: "DELETE", ...admin });
    await checkResponse(rm, "DELETE", `/admin/tenants/${tenantId}/domains/${second}`);
    expect((await call("/v1/messages", { method: "POST", key, json: { from: `a@${second}`, to: ["x@sink.example"], subject: "s", text: "t" } })).status).toBe(403);

    const patched = await call(`/admin/tenants/${tenantId}`, { method: "PATCH", ...admin, json: { suspended: true, rate_limit_per_minute: 5 } });
    const t = await checkResponse<{ suspended: boolean; rate_limit_per_minute: number }>(patched, "PATCH", `/admin/tenants/${tenantId}`);
    expect(t).toMatchObject({ suspended: true, rate_limit_per_minute: 5 });
    expect((await call("/v1/messages", { method: "POST", key, json: { from: `a@${domain}`, to: ["x@sink.example"], subject: "s", text: "t" } })).status).toBe(403);
    await call(`/admin/tenants/${tenantId}`, { method: "PATCH", ...admin, json: { suspended: false, rate_limit_per_minute: null } });
    expect((await send(key, { from: `a@${domain}`, to: ["x@sink.example"], subject: "s", text: "t" })).res.status).toBe(202);
  });
});
