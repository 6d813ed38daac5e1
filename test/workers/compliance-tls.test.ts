/**
 * Issue 21: TLS that the sender requires (RFC 8689 REQUIRETLS semantics: `require_tls`, `X-Require-TLS`, a
 * tenant-wide policy, `TLS-Required: No`) and TLS that the recipient domain requires (MTA-STS, RFC 8461, against
 * the DoH stub and a policy served by the control server). A message that must travel encrypted and cannot is
 * never received by the test server: it ends bounced (REQUIRETLS, 5.7.10) or deferred and expired (MTA-STS, 4.7.5).
 */
import { describe, expect, it } from "vitest";
import { inject } from "vitest";
import testOnlyCert from "../fixtures/tls/test-only-cert.pem?raw";
import testOnlyKey from "../fixtures/tls/test-only-key.pem?raw";
import { addRoute, DNS_TYPE, dnsRecord, eventRows, waitAllFinal, type EventRow } from "../support/delivery-helpers";
import { ADMIN_TOKEN, call, createTenantWithKey, env, receivedAt, startSmtp, unique, waitFor } from "./helpers";

const control = () => `http://127.0.0.1:${inject("controlPort")}`;

async function tenant(): Promise<{ key: string; tenantId: string; from: string }> {
  const fromDomain = `${unique("f")}.example`;
  const { key, tenantId } = await createTenantWithKey([fromDomain]);
  return { key, tenantId, from: `app@${fromDomain}` };
}

async function sendJson(key: string, json: Record<string, unknown>): Promise<string> {
  const r = await call("/v1/messages", { method: "POST", key, json: { subject: "tls test", text: "hello", ...json } });
  expect(r.status, await r.clone().text()).toBe(202);
  return ((await r.json()) as { id: string }).id;
}

async function sendRaw(key: string, from: string, to: string, extraHeaders: Record<string, string> = {}, body = "hello\r\n", messageHeaders = ""): Promise<string> {
  const raw = `From: <${from}>\r\nTo: <${to}>\r\nSubject: raw tls test\r\n${messageHeaders}\r\n${body}`;
  const r = await call("/v1/messages/raw", { method: "POST", key, headers: { "content-type": "message/rfc822", "x-envelope-to": to, ...extraHeaders }, body: raw });
  expect(r.status, await r.clone().text()).toBe(202);
  return ((await r.json()) as { id: string }).id;
}

/** Waits until the one recipient of `id` is final, checks that it bounced with 5.7.10 (REQUIRETLS), and returns the bounce event. */
async function requireTlsBounce(id: string): Promise<EventRow> {
  const [row] = await waitAllFinal([id], 30_000);
  expect(row!.status).toBe("bounced");
  const bounced = (await eventRows([id])).find((e) => e.type === "bounced")!;
  expect(bounced.enhanced).toBe("5.7.10");
  return bounced;
}

/** An `mx:` destination whose one MX host is 127.0.0.1 on `port`. */
async function mxDomain(port: number, opts: { maxAge?: number } = {}): Promise<string> {
  const domain = `${unique("sts")}.example`;
  await addRoute({ match_recipient_domain: domain, next_hop_url: `mx:?port=${port}&tls=opportunistic`, retry_schedule_seconds: [1], ...(opts.maxAge ? { max_message_age_seconds: opts.maxAge } : {}) });
  await dnsRecord(domain, "MX", { Status: 0, Answer: [{ name: domain, type: DNS_TYPE.MX, TTL: 300, data: `10 mx.${domain}.` }] });
  await dnsRecord(`mx.${domain}`, "A", { Status: 0, Answer: [{ name: `mx.${domain}`, type: DNS_TYPE.A, TTL: 300, data: "127.0.0.1" }] });
  return domain;
}

/** Publishes an MTA-STS policy: the `_mta-sts` TXT record and the policy file. */
async function publishSts(domain: string, id: string, mode: string, mx: string[], maxAge = 86400): Promise<void> {
  await dnsRecord(`_mta-sts.${domain}`, "TXT", { Status: 0, Answer: [{ name: `_mta-sts.${domain}`, type: DNS_TYPE.TXT, TTL: 300, data: `"v=STSv1; id=${id};"` }] });
  const text = ["version: STSv1", `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), `max_age: ${maxAge}`].join("\r\n") + "\r\n";
  const r = await fetch(`${control()}/mta-sts/${domain}`, { method: "POST", body: JSON.stringify({ text }) });
  expect(r.ok).toBe(true);
}

describe("require_tls (RFC 8689 REQUIRETLS semantics)", () => {
  it("bounces a require_tls message with 5.7.10 when the next hop offers no STARTTLS, and never sends it", async () => {
    const port = await startSmtp();
    const domain = `${unique("rt")}.example`;
    await addRoute({ match_recipient_domain: domain, next_hop_url: `smtp://127.0.0.1:${port}` });
    const { key, from } = await tenant();
    const id = await sendJson(key, { from, to: [`alice@${domain}`], require_tls: true });
    const bounced = await requireTlsBounce(id);
    expect(bounced.text).toMatch(/REQUIRETLS.*does not offer STARTTLS/);
    expect(await receivedAt(port)).toHaveLength(0);
    // Plain mail on the same route still goes (the requirement is per message).
    const plain = await sendJson(key, { from, to: [`bob@${domain}`] });
    expect((await waitAllFinal([plain], 30_000))[0]!.status).toBe("delivered");
    expect(await receivedAt(port)).toHaveLength(1);
  });

  it("bounces when the certificate cannot be verified (self-signed), and never sends it in the clear", async () => {
    const port = await startSmtp({ tls: { key: testOnlyKey, cert: testOnlyCert } });
    const domain = `${unique("rtc")}.example`;
    await addRoute({ match_recipient_domain: domain, next_hop_url: `smtp+opportunistic://127.0.0.1:${port}` });
    const { key, from } = await tenant();
    const id = await sendJson(key, { from, to: [`alice@${domain}`], require_tls: true });
    const bounced = await requireTlsBounce(id);
    // The runtime refused the certificate (workerd logs "invalid peer certificate"); its message to us is terse.
    expect(bounced.text).toMatch(/REQUIRETLS: not sent.*STARTTLS/);
    expect(await receivedAt(port)).toHaveLength(0);
  });

  it("applies a tenant-wide policy to raw mail, and X-Require-TLS: yes to a single raw message", async () => {
    const port = await startSmtp();
    const domain = `${unique("rtt")}.example`;
    await addRoute({ match_recipient_domain: domain, next_hop_url: `smtp://127.0.0.1:${port}` });
    const { key, tenantId, from } = await tenant();
    const single = await sendRaw(key, from, `one@${domain}`, { "x-require-tls": "yes" });
    expect((await waitAllFinal([single], 30_000))[0]!.status).toBe("bounced");

    const patch = await call(`/admin/tenants/${tenantId}`, { method: "PATCH", key: ADMIN_TOKEN, json: { require_tls: true } });
    expect(patch.status).toBe(200);
    expect(((await patch.json()) as { require_tls: boolean }).require_tls).toBe(true);
    // TLS-Required: No cannot lower the tenant's own floor.
    const id = await sendRaw(key, from, `two@${domain}`, {}, "hello\r\n", "TLS-Required: No\r\n");
    await requireTlsBounce(id);
    expect(await receivedAt(port)).toHaveLength(0);

    const bad = await call(`/admin/tenants/${tenantId}`, { method: "PATCH", key: ADMIN_TOKEN, json: { require_tls: "yes" } });
    expect(bad.status).toBe(400);
    const badHeader = await call("/v1/messages/raw", { method: "POST", key, headers: { "content-type": "message/rfc822", "x-envelope-to": `x@${domain}`, "x-require-tls": "maybe" }, body: `From: <${from}>\r\n\r\nx\r\n` });
    expect(badHeader.status).toBe(400);
    const badJson = await call("/v1/messages", { method: "POST", key, json: { from, to: [`x@${domain}`], subject: "s", text: "t", require_tls: "yes" } });
    expect(badJson.status).toBe(400);
  });
});

describe("MTA-STS (RFC 8461) on mx: routes", () => {
  it("enforce: a matching MX without STARTTLS gets nothing; the mail is deferred with 4.7.5 and expires", async () => {
    const port = await startSmtp();
    const domain = await mxDomain(port, { maxAge: 3 });
    await publishSts(domain, "enf1", "enforce", [`mx.${domain}`]);
    const { key, from } = await tenant();
    const id = await sendJson(key, { from, to: [`alice@${domain}`] });
    const [row] = await waitAllFinal([id], 40_000);
    expect(row!.status).toBe("expired");
    const events = await eventRows([id]);
    const deferred = events.find((e) => e.type === "deferred")!;
    expect(deferred.enhanced).toBe("4.7.5");
    expect(deferred.text).toMatch(/MTA-STS enforce \(id enf1/);
    expect(await receivedAt(port)).toHaveLength(0);
    // The policy is cached in D1 with its max_age.
    const cached = await env.DB.prepare("SELECT policy_id, mode, expires_at - fetched_at AS age FROM mta_sts_policies WHERE domain = ?").bind(domain).first<{ policy_id: string; mode: string; age: number }>();
    expect(cached).toEqual({ policy_id: "enf1", mode: "enforce", age: 86400_000 });
    // Fetched once, then served from the cache while the TXT id stays the same.
    const stats = (await (await fetch(`${control()}/mta-sts/${domain}`)).json()) as { fetches: number };
    expect(stats.fetches).toBe(1);
  });

  it("enforce: an MX host the policy does not list is never tried (4.7.5)", async () => {
    const port = await startSmtp();
    const domain = await mxDomain(port);
    await publishSts(domain, "enf2", "enforce", [`*.elsewhere.example`]);
    const { key, from } = await tenant();
    const id = await sendJson(key, { from, to: [`alice@${domain}`] });
    const deferred = await waitFor(async () => (await eventRows([id])).find((e) => e.type === "deferred"), 30_000, "deferral");
    expect(deferred.enhanced).toBe("4.7.5");
    expect(deferred.text).toMatch(/no MX host .* matches the MTA-STS policy/);
    expect(await receivedAt(port)).toHaveLength(0);
  });

  it("testing: delivers, and the event says what would have failed; TLS-Required: No skips an enforce policy", async () => {
    const port = await startSmtp();
    const domain = await mxDomain(port);
    await publishSts(domain, "tst1", "testing", [`mx.${domain}`]);
    const { key, from } = await tenant();
    const id = await sendJson(key, { from, to: [`alice@${domain}`] });
    expect((await waitAllFinal([id], 30_000))[0]!.status).toBe("delivered");
    const delivered = (await eventRows([id])).find((e) => e.type === "delivered")!;
    expect(delivered.text).toMatch(/MTA-STS testing \(id tst1, fetched\): would fail, no TLS/);

    const port2 = await startSmtp();
    const enforced = await mxDomain(port2);
    await publishSts(enforced, "enf3", "enforce", [`mx.${enforced}`]);
    const optional = await sendJson(key, { from, to: [`bob@${enforced}`], headers: { "TLS-Required": "No" } });
    expect((await waitAllFinal([optional], 30_000))[0]!.status).toBe("delivered");
    expect((await receivedAt(port2)).length).toBe(1);
  });

  it("none, or no policy at all: delivers as before", async () => {
    const port = await startSmtp();
    const domain = await mxDomain(port);
    await publishSts(domain, "non1", "none", []);
    const plain = await mxDomain(port);
    const { key, from } = await tenant();
    const ids = [await sendJson(key, { from, to: [`alice@${domain}`] }), await sendJson(key, { from, to: [`bob@${plain}`] })];
    const rows = await waitAllFinal(ids, 30_000);
    expect(rows.map((r) => r.status)).toEqual(["delivered", "delivered"]);
    expect((await eventRows(ids)).filter((e) => e.type === "delivered").every((e) => !/MTA-STS/.test(e.text ?? ""))).toBe(true);
  });
});
