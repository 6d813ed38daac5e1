/**
 * `mx:` routes: MX lookup over DNS-over-HTTPS (the stub on 127.0.0.1), preference order with failover to the
 * next MX when a connection is refused, implicit MX, null MX and NXDOMAIN bounces, SERVFAIL deferral.
 * MX hosts resolve to loopback addresses; the route names the test server's port.
 */
import { describe, expect, it } from "vitest";
import { addRoute, DNS_TYPE, dnsRecord, eventRows, waitAllFinal } from "../support/delivery-helpers";
import { call, createTenantWithKey, env, receivedAt, startSmtp, unique, waitFor } from "./helpers";

async function setup(): Promise<{ port: number; domain: string; key: string; from: string; tenantId: string }> {
  const port = await startSmtp();
  const domain = `${unique("mx")}.example`;
  await addRoute({ match_recipient_domain: domain, next_hop_url: `mx:?port=${port}&tls=off`, retry_schedule_seconds: [1] });
  const fromDomain = `${unique("f")}.example`;
  const { key, tenantId } = await createTenantWithKey([fromDomain]);
  return { port, domain, key, from: `app@${fromDomain}`, tenantId };
}

async function send(key: string, from: string, to: string, subject = "mx test"): Promise<string> {
  const r = await call("/v1/messages", { method: "POST", key, json: { from, to: [to], subject, text: "hello" } });
  expect(r.status).toBe(202);
  return ((await r.json()) as { id: string }).id;
}

const a = (name: string, ip: string) => dnsRecord(name, "A", { Status: 0, Answer: [{ name, type: DNS_TYPE.A, TTL: 300, data: ip }] });

describe("mx routes over DNS-over-HTTPS", () => {
  it("delivers to the most preferred MX that answers, skipping one that refuses connections", async () => {
    const { port, domain, key, from } = await setup();
    // mx1 (preference 10) resolves to 127.0.0.2, where nothing listens on the port: connection refused.
    await dnsRecord(domain, "MX", {
      Status: 0,
      Answer: [
        { name: domain, type: DNS_TYPE.MX, TTL: 300, data: `20 mx2.${domain}.` },
        { name: domain, type: DNS_TYPE.MX, TTL: 300, data: `10 mx1.${domain}.` },
      ],
    });
    await a(`mx1.${domain}`, "127.0.0.2");
    await a(`mx2.${domain}`, "127.0.0.1");
    const to = `alice@${domain}`;
    const id = await send(key, from, to);
    const [row] = await waitAllFinal([id], 30_000);
    expect(row!.status).toBe("delivered");
    const delivered = (await eventRows([id])).find((e) => e.type === "delivered")!;
    expect(delivered.host).toBe(`mx2.${domain}:${port} [127.0.0.1]`);
    expect(delivered.attempt).toBe(1);
    expect((await receivedAt(port)).some((m) => m.rcptTo.includes(to))).toBe(true);
  });

  it("uses the domain's own address when it has no MX records (implicit MX)", async () => {
    const { port, domain, key, from } = await setup();
    await a(domain, "127.0.0.1");
    const to = `bob@${domain}`;
    const id = await send(key, from, to);
    const [row] = await waitAllFinal([id], 30_000);
    expect(row!.status).toBe("delivered");
    expect((await eventRows([id])).find((e) => e.type === "delivered")!.host).toBe(`${domain}:${port} [127.0.0.1]`);
  });

  it("bounces at once for a null MX (RFC 7505) and suppresses the address", async () => {
    const { domain, key, from, tenantId } = await setup();
    await dnsRecord(domain, "MX", { Status: 0, Answer: [{ name: domain, type: DNS_TYPE.MX, TTL: 300, data: "0 ." }] });
    const to = `carol@${domain}`;
    const id = await send(key, from, to);
    const [row] = await waitAllFinal([id], 30_000);
    expect(row).toMatchObject({ status: "bounced", attempts: 1, last_enhanced: "5.1.10" });
    const events = await eventRows([id]);
    expect(events.filter((e) => e.type === "deferred")).toHaveLength(0);
    expect(events.find((e) => e.type === "bounced")!.text).toContain("null MX");
    const sup = await env.DB.prepare("SELECT reason, scope FROM suppressions WHERE tenant_id = ? AND address = ?").bind(tenantId, to).first();
    expect(sup).toEqual({ reason: "hard_bounce", scope: "all" });
  });

  it("bounces at once for a domain that does not exist (NXDOMAIN)", async () => {
    const { key, from } = await setup();
    const ghost = `${unique("ghost")}.example`;
    await addRoute({ match_recipient_domain: ghost, next_hop_url: "mx:?tls=off" });
    const id = await send(key, from, `dave@${ghost}`);
    const [row] = await waitAllFinal([id], 30_000);
    expect(row).toMatchObject({ status: "bounced", last_enhanced: "5.1.2" });
    expect((await eventRows([id])).find((e) => e.type === "bounced")!.text).toContain("NXDOMAIN");
  });

  it("defers on SERVFAIL and delivers once the resolver answers", async () => {
    const { port, domain, key, from } = await setup();
    await dnsRecord(domain, "MX", { Status: 2 });
    const to = `erin@${domain}`;
    const id = await send(key, from, to);
    await waitFor(async () => ((await eventRows([id])).some((e) => e.type === "deferred") ? true : undefined), 30_000, "a deferral");
    const deferred = (await eventRows([id])).find((e) => e.type === "deferred")!;
    expect(deferred.enhanced).toBe("4.4.3");
    expect(deferred.text).toContain("rcode 2");
    await dnsRecord(domain, "MX", { Status: 0, Answer: [{ name: domain, type: DNS_TYPE.MX, TTL: 300, data: `10 mx.${domain}.` }] });
    await a(`mx.${domain}`, "127.0.0.1");
    const [row] = await waitAllFinal([id], 30_000);
    expect(row!.status).toBe("delivered");
    expect(row!.attempts).toBeGreaterThanOrEqual(2);
    expect((await receivedAt(port)).filter((m) => m.rcptTo.includes(to))).toHaveLength(1);
  });
});
