/**
 * The real `mailchannels-sdk` package (devDependency) pointed at /tx/v1 with its `baseUrl` option: what an
 * application using it sees for send, sendAsync, envelopeFrom, tracking and errors. The SDK calls the global
 * fetch; the test routes requests for its base URL to this Worker's fetch handler (the same runtime).
 */
import { exports } from "cloudflare:workers";
import { MailChannels } from "mailchannels-sdk";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { checkResponse } from "./api-schema";
import { call, createTenantWithKey, env, receivedAt, sinkPort, unique, waitFor } from "./helpers";

const BASE_URL = "https://relay.test";
const INSECURE_BASE_URL = "http://relay.test";
const realFetch = globalThis.fetch;

beforeAll(() => {
  globalThis.fetch = ((input: RequestInfo | URL, init?: RequestInit) => {
    const req = new Request(input, init);
    return req.url.startsWith(`${BASE_URL}/`) || req.url.startsWith(`${INSECURE_BASE_URL}/`) ? exports.default.fetch(req) : realFetch(req);
  }) as typeof fetch;
});
afterAll(() => {
  globalThis.fetch = realFetch;
});

async function client(domains: string[]) {
  const { key, tenantId } = await createTenantWithKey(domains);
  return { mc: new MailChannels(key, { baseUrl: BASE_URL }), tenantId };
}

async function arrivedWith(text: string) {
  return waitFor(async () => (await receivedAt(sinkPort())).find((m) => m.raw.includes(text)), 15_000, `message containing ${text}`);
}

describe("mailchannels-sdk against /tx/v1", () => {
  it("emails.send delivers; the SDK reports success with the message id", async () => {
    const domain = `${unique("sdk")}.example`;
    const { mc } = await client([domain]);
    const marker = unique("marker");
    const { success, data, error } = await mc.emails.send({
      from: { email: `app@${domain}`, name: "App" },
      to: ["reader@sink.example"],
      subject: `Hello ${marker}`,
      text: `text ${marker}`,
      html: `<p>html ${marker}</p>`,
      headers: { "X-Campaign": "c1" },
      replyTo: `help@${domain}`,
      campaignId: "spring-2026",
      attachments: [{ content: btoa("hi"), filename: "a.txt", type: "text/plain" }],
    });
    expect(error).toBeNull();
    expect(success).toBe(true);
    expect(data?.results?.[0]).toMatchObject({ index: 0, status: "sent" });
    const id = data!.results![0]!.messageId!;
    const arrived = await arrivedWith(marker);
    expect(arrived.raw).toMatch(/^X-Campaign: c1\r$/m);
    expect(arrived.raw).toMatch(/^Reply-To: help@/m);
    expect(arrived.raw).toContain('filename="a.txt"');
    const row = await env.DB.prepare("SELECT tags FROM messages WHERE id = ?").bind(id).first<{ tags: string }>();
    expect(row?.tags).toContain("spring-2026");
  });

  it("emails.send with dryRun returns the rendered message and queues nothing", async () => {
    const domain = `${unique("sdk")}.example`;
    const { mc, tenantId } = await client([domain]);
    const { data, error } = await mc.emails.send({ from: `app@${domain}`, to: "x@sink.example", subject: "Dry {{who}}", text: "Hi {{who}}", mustaches: { who: "Ada" } }, true);
    expect(error).toBeNull();
    expect(data?.rendered?.[0]).toContain("Hi Ada");
    const n = await env.DB.prepare("SELECT COUNT(*) AS n FROM messages WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>();
    expect(n?.n).toBe(0);
  });

  it("emails.sendAsync answers 202 with queued_at and request_id; the message is queued", async () => {
    const domain = `${unique("sdk")}.example`;
    const { mc, tenantId } = await client([domain]);
    const marker = unique("async");
    const { data, error } = await mc.emails.sendAsync({ from: `app@${domain}`, to: "reader@sink.example", subject: marker, text: marker });
    expect(error).toBeNull();
    expect(data?.requestId).toMatch(/\S/);
    expect(Date.parse(data!.queuedAt!)).toBeGreaterThan(Date.now() - 60_000);
    await arrivedWith(marker);
    const n = await env.DB.prepare("SELECT COUNT(*) AS n FROM messages WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>();
    expect(n?.n).toBe(1);
  });

  it("envelopeFrom (top level and per personalization) is accepted and checked against the tenant's domains", async () => {
    const domain = `${unique("sdk")}.example`;
    const { mc } = await client([domain]);
    const ok = await mc.emails.send({ from: `app@${domain}`, to: "r@sink.example", envelopeFrom: `bounces@${domain}`, subject: "s", text: "t" }, true);
    expect(ok.error).toBeNull();
    const foreign = await mc.emails.send({
      from: `app@${domain}`,
      subject: "s",
      text: "t",
      personalizations: [{ to: "r@sink.example", envelopeFrom: "bounces@someone-else.example" }],
    });
    expect(foreign.success).toBe(false);
    expect(foreign.error?.statusCode).toBe(403);
    expect(foreign.error?.message).toContain("personalizations[0].envelope_from");
  });

  it("errors reach the application with the relay's reason, not a bare status text", async () => {
    const domain = `${unique("sdk")}.example`;
    const { mc } = await client([domain]);
    const notOurs = await mc.emails.send({ from: "ceo@not-yours.example", to: "r@sink.example", subject: "s", text: "t" });
    expect(notOurs.error?.statusCode).toBe(403);
    expect(notOurs.error?.message).toBe("User does not have access to this feature. personalizations[0].from: this key may not send from not-yours.example");
    const sections = await mc.emails.send({ from: `a@${domain}`, to: "r@sink.example", subject: "s", text: "{{#items}}x{{/items}}", mustaches: { items: [1] } });
    expect(sections.error?.statusCode).toBe(400);
    expect(sections.error?.message).toMatch(/^Bad Request\. content\[0\]\.value: mustache sections/);
    const badKey = await new MailChannels("er_not_a_key", { baseUrl: BASE_URL }).emails.send({ from: `a@${domain}`, to: "r@sink.example", subject: "s", text: "t" });
    expect(badKey.error?.statusCode).toBe(401);
    expect(badKey.error?.message).toContain("the API key is not valid");
  });

  it("tracking settings are honoured: tracked links and the open pixel appear in the delivered message", async () => {
    const domain = `${unique("sdk")}.example`;
    const { mc } = await client([domain]);
    const on = unique("tracked");
    const off = unique("plain");
    const html = (m: string) => `<p>${m} <a href="https://news.example/${m}">this</a></p>`;
    expect((await mc.emails.send({ from: `a@${domain}`, to: "r@sink.example", subject: on, html: html(on), tracking: { click: true, open: true } })).error).toBeNull();
    expect((await mc.emails.send({ from: `a@${domain}`, to: "r@sink.example", subject: off, html: html(off), tracking: { click: false, open: false } })).error).toBeNull();
    const onRaw = (await arrivedWith(`Subject: ${on}`)).raw.replace(/=\r\n/g, "");
    expect(onRaw).toMatch(/\/t\/c\//);
    expect(onRaw).toMatch(/\/t\/o\//);
    const offRaw = (await arrivedWith(`Subject: ${off}`)).raw.replace(/=\r\n/g, "");
    expect(offRaw).toContain(`https://news.example/${off}`);
    expect(offRaw).not.toMatch(/\/t\/[co]\//);
  });

  it("tracking the relay cannot host is refused, naming tracking_settings; nothing is queued", async () => {
    const domain = `${unique("sdk")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    // Over plain http and without PUBLIC_BASE_URL the relay has no https origin for tracking links.
    const insecure = new MailChannels(key, { baseUrl: INSECURE_BASE_URL });
    const { error } = await insecure.emails.send({
      from: `a@${domain}`,
      subject: "s",
      html: "<p>x</p>",
      personalizations: [{ to: "one@sink.example" }, { to: "two@sink.example" }],
      tracking: { click: true },
    });
    expect(error?.statusCode).toBe(422);
    expect(error?.message).toContain("tracking_settings.click_tracking.enable: tracking needs SIGNING_SECRET");
    const n = await env.DB.prepare("SELECT COUNT(*) AS n FROM messages WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>();
    expect(n?.n).toBe(0);
  });

  it("send-async and /tx/v1 errors match the OpenAPI document; send-async has no dry run", async () => {
    const domain = `${unique("sdk")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const body = { personalizations: [{ to: [{ email: "r@sink.example" }] }], from: { email: `a@${domain}` }, subject: "s", content: [{ type: "text/plain", value: "x" }] };
    const ok = await call("/tx/v1/send-async", { method: "POST", headers: { "x-api-key": key }, json: body });
    expect(ok.status).toBe(202);
    await checkResponse(ok, "POST", "/tx/v1/send-async");
    const dry = await call("/tx/v1/send-async?dry-run=true", { method: "POST", headers: { "x-api-key": key }, json: body });
    expect(dry.status).toBe(400);
    expect(await checkResponse(dry, "POST", "/tx/v1/send-async")).toEqual({
      error: { code: "invalid_field", message: "send-async has no dry run; use /tx/v1/send?dry-run=true", field: "dry-run" },
      errors: ["dry-run: send-async has no dry run; use /tx/v1/send?dry-run=true"],
    });
    const unknown = await call("/tx/v1/send", { method: "POST", headers: { "x-api-key": key }, json: { ...body, priority: "high" } });
    expect(unknown.status).toBe(400);
    expect((await checkResponse<{ errors: string[] }>(unknown, "POST", "/tx/v1/send")).errors).toEqual(['priority: unknown field "priority"']);
  });

  it("DKIM by selector only (a key the relay holds, as MailChannels' stored keys): signed with it; an unknown selector is refused", async () => {
    // DKIM_KEYS in the test configuration holds rsa1 and ed1 for signed.example.
    const domain = `${unique("sdk")}.signed.example`;
    const { mc } = await client([domain]);
    const marker = unique("dkimsel");
    const { error } = await mc.emails.send({ from: `a@${domain}`, to: "r@sink.example", subject: marker, text: "x", dkim: { domain: "signed.example", selector: "rsa1" } });
    expect(error).toBeNull();
    const raw = (await arrivedWith(`Subject: ${marker}`)).raw.replace(/\r\n[ \t]+/g, " ");
    expect(raw).toMatch(/^DKIM-Signature: .*d=signed\.example; .*s=rsa1;/m);
    const unknown = await mc.emails.send({ from: `a@${domain}`, to: "r@sink.example", subject: "s", text: "x", dkim: { domain: "signed.example", selector: "mc-2026" } });
    expect(unknown.error?.statusCode).toBe(422);
    expect(unknown.error?.message).toContain("personalizations[0].dkim_selector: no DKIM key for signed.example with selector mc-2026 is configured at the relay");
    const foreign = await mc.emails.send({ from: `a@${domain}`, to: "r@sink.example", subject: "s", text: "x", dkim: { domain: "bank.example", selector: "rsa1" } });
    expect(foreign.error?.statusCode).toBe(403);
  });
});
