/**
 * The private-address filter (issue 15, finding 6): an `mx:` route never connects to a non-public address a
 * domain publishes, and webhooks are never posted to one, unless ALLOW_PRIVATE_DESTINATIONS lists it. The
 * workers test env allows loopback only (127.0.0.0/8, ::1), like `npm start`.
 */
import { describe, expect, it } from "vitest";
import { addRoute, DNS_TYPE, dnsRecord, eventRows, waitAllFinal } from "../support/delivery-helpers";
import { ADMIN_TOKEN, call, createTenantWithKey, receivedAt, startSmtp, unique } from "./helpers";

const a = (name: string, ip: string) => dnsRecord(name, "A", { Status: 0, Answer: [{ name, type: DNS_TYPE.A, TTL: 300, data: ip }] });
const aaaa = (name: string, ip: string) => dnsRecord(name, "AAAA", { Status: 0, Answer: [{ name, type: DNS_TYPE.AAAA, TTL: 300, data: ip }] });

async function sendTo(to: string): Promise<string> {
  const fromDomain = `${unique("f")}.example`;
  const { key } = await createTenantWithKey([fromDomain]);
  const r = await call("/v1/messages", { method: "POST", key, json: { from: `app@${fromDomain}`, to: [to], subject: "filter", text: "hello" } });
  expect(r.status).toBe(202);
  return ((await r.json()) as { id: string }).id;
}

describe("mx routes refuse non-public mail hosts", () => {
  it("bounces (5.4.4) a domain whose MX hosts are metadata, RFC 1918, CGNAT and ULA addresses; nothing connects", async () => {
    const port = await startSmtp();
    const domain = `${unique("px")}.example`;
    await addRoute({ match_recipient_domain: domain, next_hop_url: `mx:?port=${port}&tls=off`, retry_schedule_seconds: [1] });
    await dnsRecord(domain, "MX", {
      Status: 0,
      Answer: ["meta", "rfc1918", "cgnat", "ula"].map((h, i) => ({ name: domain, type: DNS_TYPE.MX, TTL: 300, data: `${10 + i} ${h}.${domain}.` })),
    });
    await a(`meta.${domain}`, "169.254.169.254");
    await a(`rfc1918.${domain}`, "10.1.2.3");
    await a(`cgnat.${domain}`, "100.64.0.1");
    await aaaa(`ula.${domain}`, "fd00::1");
    const id = await sendTo(`x@${domain}`);
    const [row] = await waitAllFinal([id], 30_000);
    expect(row).toMatchObject({ status: "bounced", last_enhanced: "5.4.4" });
    expect((await eventRows([id])).find((e) => e.type === "bounced")!.text).toContain("non-public");
    expect((await receivedAt(port)).some((m) => m.rcptTo.includes(`x@${domain}`))).toBe(false);
  });

  it("skips a private address and delivers to the allowed loopback host of the same domain", async () => {
    const port = await startSmtp();
    const domain = `${unique("pm")}.example`;
    await addRoute({ match_recipient_domain: domain, next_hop_url: `mx:?port=${port}&tls=off`, retry_schedule_seconds: [1] });
    await dnsRecord(domain, "MX", {
      Status: 0,
      Answer: [
        { name: domain, type: DNS_TYPE.MX, TTL: 300, data: `10 inside.${domain}.` },
        { name: domain, type: DNS_TYPE.MX, TTL: 300, data: `20 local.${domain}.` },
      ],
    });
    await a(`inside.${domain}`, "192.168.1.25");
    await a(`local.${domain}`, "127.0.0.1");
    const id = await sendTo(`y@${domain}`);
    const [row] = await waitAllFinal([id], 30_000);
    expect(row!.status).toBe("delivered");
    expect((await eventRows([id])).find((e) => e.type === "delivered")!.host).toBe(`local.${domain}:${port} [127.0.0.1]`);
  });
});

describe("webhooks refuse non-public endpoints", () => {
  it("refuses link-local/metadata, RFC 1918, ULA and IPv4-mapped URLs; takes an allowed loopback one", async () => {
    const { tenantId } = await createTenantWithKey([`${unique("wh")}.example`]);
    for (const url of ["https://169.254.169.254/latest/meta-data/", "https://10.0.0.8/hook", "https://[fd12::8]/hook", "https://[::ffff:a9fe:a9fe]/hook", "https://172.20.0.1/", "https://0.0.0.0/"]) {
      const r = await call("/admin/webhooks", { method: "POST", key: ADMIN_TOKEN, json: { tenant_id: tenantId, url, events: ["*"] } });
      expect(r.status, url).toBe(400);
      expect(((await r.json()) as { error: { code: string; field: string } }).error).toMatchObject({ code: "invalid_field", field: "url" });
    }
    const ok = await call("/admin/webhooks", { method: "POST", key: ADMIN_TOKEN, json: { tenant_id: tenantId, url: "http://127.0.0.1:9/hook", events: ["*"] } });
    expect(ok.status).toBe(201);
  });
});
