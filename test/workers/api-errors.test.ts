/** Send API error paths: each refusal has the documented status, a closed error code and the field named. */
import { describe, expect, it } from "vitest";
import { checkResponse } from "./api-schema";
import { call, createTenantWithKey, env, unique } from "./helpers";

type ErrorBody = { error: { code: string; message: string; field?: string } };

async function refused(res: Response, method: string, path: string, status: number, code: string, field?: string): Promise<ErrorBody> {
  expect(res.status, await res.clone().text()).toBe(status);
  const body = await checkResponse<ErrorBody>(res, method, path);
  expect(body.error.code).toBe(code);
  if (field !== undefined) expect(body.error.field).toBe(field);
  return body;
}

async function messageCount(tenantId: string): Promise<number> {
  return (await env.DB.prepare("SELECT COUNT(*) AS n FROM messages WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>())!.n;
}

describe("POST /v1/messages refusals", () => {
  it("answers each kind of bad input with its status, code and field, and queues nothing", async () => {
    const domain = `${unique("e")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    const ok = { from: `a@${domain}`, to: ["x@sink.example"], subject: "s", text: "t" };
    const cases: [unknown, number, string, string | undefined][] = [
      [{ ...ok, to: ["x@sink.example", "bad address"] }, 422, "invalid_recipient", "to[1]"],
      [{ ...ok, from: "nobody" }, 422, "invalid_sender", "from"],
      [{ ...ok, subject: "hi\r\nBcc: victim@example.com" }, 400, "header_injection", "subject"],
      [{ ...ok, headers: { "X-Ok": "a\nb" } }, 400, "header_injection", "headers.X-Ok"],
      [{ ...ok, headers: { "DKIM-Signature": "v=1" } }, 422, "reserved_header", "headers.DKIM-Signature"],
      [{ ...ok, headers: { Bcc: "x@y.example" } }, 422, "reserved_header", "headers.Bcc"],
      [{ ...ok, surprise: 1 }, 400, "unknown_field", "surprise"],
      [{ ...ok, to: "x@sink.example", cc: Array.from({ length: 50 }, (_, i) => `c${i}@sink.example`) }, 422, "too_many_recipients", "to"],
      [{ ...ok, subject: "\ud800" }, 400, "invalid_utf8", "subject"],
      [{ ...ok, send_at: "tomorrow" }, 422, "invalid_send_at", "send_at"],
      [{ ...ok, attachments: [{ filename: "a.txt", content: "!!!" }] }, 422, "invalid_attachment", "attachments[0].content"],
      [{ ...ok, text: undefined }, 400, "missing_field", "text"],
      [{ ...ok, subject: "x".repeat(2000) }, 422, "too_large", "subject"],
      [{ ...ok, stream: "marketing" }, 400, "invalid_field", "stream"],
      [{ ...ok, stream: "broadcast", to: ["a@sink.example", "b@sink.example"] }, 422, "too_many_recipients", "to"],
      [[ok], 400, "invalid_json", undefined],
    ];
    for (const [json, status, code, field] of cases) {
      await refused(await call("/v1/messages", { method: "POST", key, json }), "POST", "/v1/messages", status, code, field);
    }
    await refused(await call("/v1/messages", { method: "POST", key, headers: { "content-type": "text/plain" }, body: JSON.stringify(ok) }), "POST", "/v1/messages", 415, "unsupported_media_type");
    await refused(
      await call("/v1/messages", { method: "POST", key, headers: { "content-type": "application/json" }, body: new Uint8Array([0x7b, 0x22, 0xff, 0xfe, 0x22, 0x7d]) }),
      "POST",
      "/v1/messages",
      400,
      "invalid_utf8",
    );
    await refused(await call("/v1/messages", { method: "POST", key, json: ok, headers: { "idempotency-key": "bad key with spaces" } }), "POST", "/v1/messages", 400, "invalid_field", "Idempotency-Key");
    expect(await messageCount(tenantId)).toBe(0);
  });

  it("refuses a text body above the per-part limit with 422 and a body above the request limit with 413, reading no further", async () => {
    const domain = `${unique("big")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    const big = "a".repeat(10 * 1024 * 1024 + 1);
    await refused(await call("/v1/messages", { method: "POST", key, json: { from: `a@${domain}`, to: ["x@sink.example"], subject: "s", text: big } }), "POST", "/v1/messages", 422, "too_large", "text");
    // A streamed body without Content-Length that never ends within the limit: refused once the limit is passed.
    let sent = 0;
    const chunk = new Uint8Array(1024 * 1024).fill(0x20);
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += chunk.byteLength;
        if (sent > 200 * 1024 * 1024) controller.close();
        else controller.enqueue(chunk);
      },
    });
    const res = await call("/v1/messages", { method: "POST", key, headers: { "content-type": "application/json" }, body: stream, duplex: "half" } as RequestInit);
    await refused(res, "POST", "/v1/messages", 413, "too_large");
    expect(sent).toBeLessThan(60 * 1024 * 1024);
    expect(await messageCount(tenantId)).toBe(0);
  });
});

describe("POST /v1/messages/raw refusals", () => {
  it("names the envelope field or recipient, refuses non-messages and oversize bodies", async () => {
    const domain = `${unique("re")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    const msg = `From: a@${domain}\r\nTo: x@sink.example\r\nSubject: s\r\n\r\nbody\r\n`;
    const raw = (headers: Record<string, string>, body: BodyInit = msg) => call("/v1/messages/raw", { method: "POST", key, headers: { "content-type": "message/rfc822", ...headers }, body });
    const P = "/v1/messages/raw";
    await refused(await raw({}), "POST", P, 400, "missing_field", "to");
    await refused(await raw({ "x-envelope-to": "x@sink.example, not-an-address" }), "POST", P, 422, "invalid_recipient", "to[1]");
    await refused(await raw({ "x-envelope-to": "x@sink.example", "x-envelope-from": "bad@@x" }), "POST", P, 422, "invalid_sender", "envelope_from");
    await refused(await raw({ "x-envelope-to": "x@sink.example", "content-type": "text/plain" }), "POST", P, 415, "unsupported_media_type");
    await refused(await raw({ "x-envelope-to": "x@sink.example" }, "just some text without headers\r\n"), "POST", P, 422, "invalid_field", "body");
    await refused(await raw({ "x-envelope-to": "x@sink.example" }, `To: x@sink.example\r\n\r\nno from\r\n`), "POST", P, 422, "invalid_sender", "from");
    await refused(await raw({ "x-envelope-to": "x@sink.example" }, `From: a@${domain}, b@${domain}\r\n\r\ntwo\r\n`), "POST", P, 422, "invalid_sender", "from");
    await refused(await raw({ "x-envelope-to": "x@sink.example" }, new Uint8Array([...new TextEncoder().encode(`From: a@${domain}\r\n\r\n`), 0xc3, 0x28])), "POST", P, 400, "invalid_utf8", "body");
    await refused(await raw({ "x-envelope-to": "x@sink.example" }, `From: a@${domain}\r\n\r\n${"x".repeat(1200)}\r\n`), "POST", P, 422, "invalid_field", "body");
    await refused(await raw({ "x-envelope-to": "x@sink.example", "x-stream": "bulk" }), "POST", P, 400, "invalid_field", "stream");
    await refused(await raw({ "x-envelope-to": Array.from({ length: 51 }, (_, i) => `r${i}@sink.example`).join(",") }), "POST", P, 422, "too_many_recipients", "to");
    await refused(await raw({ "x-envelope-to": "x@sink.example" }, ""), "POST", P, 400, "missing_field", "body");
    // Larger than MAX_MESSAGE_BYTES (25 MiB), streamed: refused while reading.
    let sent = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(controller) {
        sent += 1024 * 1024;
        if (sent > 100 * 1024 * 1024) controller.close();
        else controller.enqueue(new Uint8Array(1024 * 1024).fill(0x61));
      },
    });
    await refused(await call(P, { method: "POST", key, headers: { "content-type": "message/rfc822", "x-envelope-to": "x@sink.example" }, body: stream, duplex: "half" } as RequestInit), "POST", P, 413, "too_large");
    expect(sent).toBeLessThan(30 * 1024 * 1024);
    expect(await messageCount(tenantId)).toBe(0);
  });
});

describe("other routes", () => {
  it("batch, MailChannels, suppressions, search, events, domains and admin refuse bad input with JSON errors", async () => {
    const domain = `${unique("o")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    const one = { from: `a@${domain}`, to: ["x@sink.example"], subject: "s", text: "t" };
    await refused(await call("/v1/messages/batch", { method: "POST", key, json: { messages: [] } }), "POST", "/v1/messages/batch", 400, "missing_field", "messages");
    await refused(await call("/v1/messages/batch", { method: "POST", key, json: { messages: Array(101).fill(one) } }), "POST", "/v1/messages/batch", 422, "too_many_recipients", "messages");
    await refused(await call("/v1/messages/batch", { method: "POST", key, json: { nope: 1 } }), "POST", "/v1/messages/batch", 400, "invalid_field", "messages");
    await refused(await call("/tx/v1/send", { method: "POST", key, json: { personalizations: [] } }), "POST", "/tx/v1/send", 400, "invalid_field");
    await refused(await call("/tx/v1/send?dry-run=maybe", { method: "POST", key, json: {} }), "POST", "/tx/v1/send", 400, "invalid_field", "dry-run");
    await refused(
      await call("/tx/v1/send", { method: "POST", key, json: { personalizations: [{ to: [{ email: "bad" }] }], from: { email: `a@${domain}` }, subject: "s", content: [{ type: "text/plain", value: "x" }] } }),
      "POST",
      "/tx/v1/send",
      422,
      "invalid_recipient",
      "personalizations[0].to[0]",
    );
    // A bad personalization refuses the whole request: the first one is not sent either.
    await refused(
      await call("/tx/v1/send", {
        method: "POST",
        key,
        json: {
          personalizations: [{ to: [{ email: "one@sink.example" }] }, { to: [{ email: "two@sink.example" }], dkim_domain: domain, dkim_selector: "s1", dkim_private_key: "MC4CAQAwBQYDK2VwBCIEIE" }],
          from: { email: `a@${domain}` },
          subject: "s",
          content: [{ type: "text/plain", value: "x" }],
        },
      }),
      "POST",
      "/tx/v1/send",
      422,
      "invalid_field",
      "personalizations[1].dkim_private_key",
    );
    await refused(await call("/v1/suppressions", { method: "POST", key, json: { suppressions: [{ address: "nope" }] } }), "POST", "/v1/suppressions", 422, "invalid_recipient", "suppressions[0].address");
    await refused(await call("/v1/suppressions", { method: "POST", key, json: { suppressions: [{ address: "a@b.example", scope: "everything" }] } }), "POST", "/v1/suppressions", 400, "invalid_field", "suppressions[0].scope");
    await refused(await call("/v1/suppressions", { method: "POST", key, json: { suppressions: [{ address: "a@b.example", expires_at: "2001-01-01T00:00:00Z" }] } }), "POST", "/v1/suppressions", 400, "invalid_field", "suppressions[0].expires_at");
    await refused(await call("/v1/suppressions", { method: "POST", key, json: { suppressions: Array(1001).fill({ address: "a@b.example" }) } }), "POST", "/v1/suppressions", 413, "too_large", "suppressions");
    await refused(await call("/v1/suppressions/never@listed.example", { method: "DELETE", key }), "DELETE", "/v1/suppressions/x", 404, "not_found");
    await refused(await call("/v1/suppressions?cursor=%%%", { key }), "GET", "/v1/suppressions", 400, "invalid_field", "cursor");
    await refused(await call("/v1/messages?status=lost", { key }), "GET", "/v1/messages", 400, "invalid_field", "status");
    await refused(await call("/v1/messages?since=yesterday", { key }), "GET", "/v1/messages", 400, "invalid_field", "since");
    await refused(await call("/v1/messages?limit=0", { key }), "GET", "/v1/messages", 400, "invalid_field", "limit");
    await refused(await call("/v1/messages?cursor=../../x", { key }), "GET", "/v1/messages", 400, "invalid_field", "cursor");
    await refused(await call("/v1/events?cursor=abc", { key }), "GET", "/v1/events", 400, "invalid_field", "cursor");
    await refused(await call("/v1/messages/0000000000000000000000", { key }), "GET", "/v1/messages/x", 404, "not_found");
    await refused(await call("/v1/domains/not-mine.example/dns", { key }), "GET", "/v1/domains/x/dns", 404, "not_found");
    await refused(await call("/v1/domains/not-mine.example/verify", { method: "POST", key }), "POST", "/v1/domains/x/verify", 404, "not_found");
    await refused(await call("/unsubscribe/forged.AAAAAAAAAAAAAAAAAAAAAA", { method: "POST" }), "POST", "/unsubscribe/x", 404, "not_found");
    const admin = { key: "test-admin-token" };
    await refused(await call(`/admin/tenants/${tenantId}`, { method: "PATCH", ...admin, json: { suspended: "yes" } }), "PATCH", "/admin/tenants/x", 400, "invalid_field", "suspended");
    await refused(await call(`/admin/tenants/${tenantId}`, { method: "PATCH", ...admin, json: { rate_limit_per_minute: -1 } }), "PATCH", "/admin/tenants/x", 400, "invalid_field", "rate_limit_per_minute");
    await refused(await call(`/admin/tenants/${tenantId}`, { method: "PATCH", ...admin, json: { colour: "red" } }), "PATCH", "/admin/tenants/x", 400, "unknown_field", "colour");
    await refused(await call(`/admin/tenants/nope`, { method: "PATCH", ...admin, json: { suspended: true } }), "PATCH", "/admin/tenants/x", 404, "not_found");
    await refused(await call(`/admin/tenants/${tenantId}/domains`, { method: "POST", ...admin, json: { domain: domain } }), "POST", "/admin/tenants/x/domains", 409, "conflict", "domain");
    await refused(await call(`/admin/tenants/${tenantId}/domains`, { method: "POST", ...admin, json: { domain: "not a domain" } }), "POST", "/admin/tenants/x/domains", 400, "invalid_field", "domain");
    expect(await messageCount(tenantId)).toBe(0);
  });
});
