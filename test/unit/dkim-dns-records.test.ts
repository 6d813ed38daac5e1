import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { publicKeyRecord } from "../../src/mime/dkim";
import { checkDnsRecords, requiredDnsRecords, type DnsRecordType } from "../../src/mime/dns-records";
import { bounceDomainFor } from "../../src/mime/return-path";

const rsaTxt = await publicKeyRecord(
  generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString(),
);
const edTxt = await publicKeyRecord(generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString());

const records = requiredDnsRecords({
  domain: "Example.com",
  selectors: [
    { selector: "er2026a", publicKeyTxt: rsaTxt },
    { selector: "er2026e", publicKeyTxt: edTxt },
  ],
  bounceDomain: bounceDomainFor("example.com"),
  spfInclude: "amazonses.com",
});

/** A zone as a DoH JSON resolver would report it: TXT in presentation form, MX as "<pref> <host>.". */
function zone(entries: Record<string, string[]>) {
  return async (name: string, type: DnsRecordType): Promise<string[]> => entries[`${type} ${name}`] ?? [];
}

function quoted(text: string): string {
  return (text.match(/.{1,255}/g) ?? []).map((s) => `"${s}"`).join(" ");
}

const goodZone: Record<string, string[]> = {
  "TXT er2026a._domainkey.example.com": [quoted(rsaTxt)],
  "TXT er2026e._domainkey.example.com": [quoted(edTxt)],
  "MX bounces.example.com": ["13 route1.mx.cloudflare.net.", "86 route2.mx.cloudflare.net.", "24 route3.mx.cloudflare.net."],
  "TXT bounces.example.com": ['"v=spf1 include:_spf.mx.cloudflare.net include:amazonses.com ~all"'],
  "TXT _dmarc.example.com": ['"v=DMARC1; p=quarantine; rua=mailto:d@example.com"'],
};

describe("requiredDnsRecords", () => {
  it("lists DKIM per selector, bounce MX and SPF, and DMARC/MTA-STS/TLS-RPT suggestions", () => {
    expect(records.map((r) => `${r.required ? "required" : "suggested"} ${r.type} ${r.name} ${r.purpose}`)).toEqual([
      "required TXT er2026a._domainkey.example.com dkim",
      "required TXT er2026e._domainkey.example.com dkim",
      "required MX bounces.example.com bounce-mx",
      "required MX bounces.example.com bounce-mx",
      "required MX bounces.example.com bounce-mx",
      "required TXT bounces.example.com spf",
      "suggested TXT _dmarc.example.com dmarc",
      "suggested TXT _mta-sts.example.com mta-sts",
      "suggested TXT _smtp._tls.example.com tls-rpt",
    ]);
    expect(records.filter((r) => r.type === "MX").map((r) => r.value)).toEqual([
      "route1.mx.cloudflare.net",
      "route2.mx.cloudflare.net",
      "route3.mx.cloudflare.net",
    ]);
    expect(records.find((r) => r.purpose === "spf")?.value).toBe("v=spf1 include:_spf.mx.cloudflare.net include:amazonses.com ~all");
    expect(records[0]?.value).toMatch(/^v=DKIM1; k=rsa; p=/);
    expect(records[1]?.value).toMatch(/^v=DKIM1; k=ed25519; p=/);
    // Issue 20: reports go to the relay's own report mailboxes at the bounce domain.
    expect(records.find((r) => r.purpose === "dmarc")?.value).toBe("v=DMARC1; p=none; rua=mailto:dmarc@bounces.example.com; adkim=r; aspf=r");
    expect(records.find((r) => r.purpose === "tls-rpt")?.value).toBe("v=TLSRPTv1; rua=mailto:tls-rpt@bounces.example.com");
  });
});

describe("checkDnsRecords", () => {
  it("reports ok for a correct zone, including split TXT strings and trailing dots", async () => {
    const report = await checkDnsRecords(records, zone(goodZone));
    expect(report.ok).toBe(true);
    expect(report.results.filter((r) => r.record.required).every((r) => r.status === "ok")).toBe(true);
    expect(report.results.find((r) => r.record.purpose === "mta-sts")?.status).toBe("missing");
  });

  it("reports what is missing or wrong, with a fix", async () => {
    const otherKey = await publicKeyRecord(generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString());
    const report = await checkDnsRecords(
      records,
      zone({
        ...goodZone,
        "TXT er2026a._domainkey.example.com": [],
        "TXT er2026e._domainkey.example.com": [quoted(otherKey)],
        "MX bounces.example.com": ["10 mx.other-provider.example."],
        "TXT bounces.example.com": ['"v=spf1 include:_spf.mx.cloudflare.net ~all"', '"google-site-verification=abc"'],
      }),
    );
    expect(report.ok).toBe(false);
    const byName = (purpose: string) => report.results.filter((r) => r.record.purpose === purpose);
    expect(byName("dkim").map((r) => r.status)).toEqual(["missing", "mismatch"]);
    expect(byName("dkim")[0]?.message).toContain("er2026a._domainkey.example.com");
    expect(byName("bounce-mx").map((r) => r.status)).toEqual(["mismatch", "mismatch", "mismatch"]);
    expect(byName("bounce-mx")[0]?.message).toMatch(/missing route1\.mx\.cloudflare\.net.*other hosts mx\.other-provider\.example/);
    expect(byName("spf")[0]?.status).toBe("mismatch");
    expect(byName("spf")[0]?.message).toContain("include:amazonses.com");
    expect(byName("dmarc")[0]?.status).toBe("ok");
  });

  it("flags two SPF records and a failing resolver", async () => {
    const two = await checkDnsRecords(
      records,
      zone({ ...goodZone, "TXT bounces.example.com": ['"v=spf1 include:_spf.mx.cloudflare.net include:amazonses.com ~all"', '"v=spf1 -all"'] }),
    );
    expect(two.results.find((r) => r.record.purpose === "spf")?.message).toMatch(/permerror/);
    const failing = await checkDnsRecords(records, async () => {
      throw new Error("DoH timeout");
    });
    expect(failing.ok).toBe(false);
    expect(failing.results.every((r) => r.status === "error" && r.message.includes("DoH timeout"))).toBe(true);
  });
});
