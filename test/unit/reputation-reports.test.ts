import { describe, expect, it } from "vitest";
import { gunzip, unzip } from "../../src/reputation/decompress";
import { dmarcPass, parseDmarcXml, REPORT_INFLATE_LIMITS, ReportError, unpackAttachment } from "../../src/reputation/dmarc-report";
import { parseTlsReport } from "../../src/reputation/tls-report";
import { parseXml, XmlError } from "../../src/reputation/xml-lite";
import { dmarcXml, gzip, tlsReportJson, zeros, zip, type RecordSpec } from "../support/report-builders";

const records: RecordSpec[] = [
  { ip: "203.0.113.7", count: 120, headerFrom: "example.com", selector: "rsa1" },
  { ip: "198.51.100.66", count: 9, dkim: "fail", spf: "fail", disposition: "quarantine", headerFrom: "example.com", dkimDomain: "spoof.example", spfDomain: "spoof.example" },
];

describe("DMARC aggregate reports", () => {
  for (const style of ["google", "microsoft", "yahoo", "dmarcbis"] as const) {
    it(`reads a ${style}-style report`, () => {
      const r = parseDmarcXml(dmarcXml(style, "example.com", `id-${style}`, records));
      expect(r.domain).toBe("example.com");
      expect(r.reportId).toBe(`id-${style}`);
      expect(r.endAt - r.beginAt).toBeGreaterThan(86_000_000);
      expect(r.records.map((x) => [x.sourceIp, x.count, x.disposition, dmarcPass(x)])).toEqual([
        ["203.0.113.7", 120, "none", true],
        ["198.51.100.66", 9, "quarantine", false],
      ]);
      expect(r.records[1]!.dkim).toEqual([{ domain: "spoof.example", selector: undefined, result: "fail" }]);
      expect(r.records[0]!.dkim[0]!.selector).toBe("rsa1");
    });
  }

  it("unpacks gzip, zip (deflate and stored) and plain XML to the same report", async () => {
    const xml = dmarcXml("google", "example.com", "same", records);
    const bytes = new TextEncoder().encode(xml);
    for (const packed of [await gzip(xml), await zip([{ name: "google.com!example.com!1!2.xml", data: xml }]), await zip([{ name: "r.xml", data: xml, stored: true }]), bytes]) {
      expect(new TextDecoder().decode(await unpackAttachment(packed))).toBe(xml);
    }
  });

  it("refuses zip and gzip bombs by size and by ratio, and lying zip headers", async () => {
    const limits = { maxBytes: 1024 * 1024, maxRatio: 100 };
    // 16 MiB of zeros compress to ~16 KB: over both the size and the ratio limit.
    const bomb = zeros(16 * 1024 * 1024);
    await expect(gunzip(await gzip(bomb), limits)).rejects.toThrow(/exceeds/);
    await expect(unzip(await zip([{ name: "bomb.xml", data: bomb }]), limits)).rejects.toThrow(/exceeds/);
    // The declared size says 100 bytes; the real output is still bounded while inflating.
    await expect(unzip(await zip([{ name: "liar.xml", data: bomb, declaredSize: 100 }]), limits)).rejects.toThrow(/ratio|exceeds/);
    // Ratio alone: 600 KiB of zeros is under the size limit but far over 100:1.
    await expect(gunzip(await gzip(zeros(600 * 1024)), limits)).rejects.toThrow(/ratio/);
    await expect(unpackAttachment(await zip([{ name: "bomb.xml", data: zeros(24 * 1024 * 1024) }]), REPORT_INFLATE_LIMITS)).rejects.toBeInstanceOf(ReportError);
    await expect(unpackAttachment(new Uint8Array([0x1f, 0x8b, 8, 0, 1, 2, 3]))).rejects.toThrow(/corrupt/);
  });

  it("refuses DTDs (no entity expansion), deep nesting, and documents that are not reports", () => {
    expect(() => parseXml('<?xml version="1.0"?><!DOCTYPE lolz [<!ENTITY lol "lol">]><feedback>&lol;</feedback>')).toThrow(XmlError);
    expect(() => parseXml("<a>".repeat(100) + "</a>".repeat(100))).toThrow(/deeper/);
    expect(() => parseXml("<a><b></a>")).toThrow(/mismatched/);
    expect(() => parseDmarcXml("<html><body/></html>")).toThrow(/not <feedback>/);
    expect(() => parseDmarcXml(dmarcXml("google", "example.com", "x", [{ ip: "not-an-ip", count: 1, headerFrom: "example.com" }]))).toThrow(/source_ip/);
    expect(parseXml("<a>x &amp; &#60;y&#x3e; <![CDATA[<z>]]></a>").text).toBe("x & <y> <z>");
  });

  it("keeps the biggest sources of a huge report and sums the rest", () => {
    const many = Array.from({ length: 700 }, (_, i): RecordSpec => ({ ip: `10.0.${i >> 8}.${i & 255}`, count: i + 1, headerFrom: "example.com" }));
    const r = parseDmarcXml(dmarcXml("yahoo", "example.com", "big", many));
    expect(r.records).toHaveLength(500);
    expect(r.records[0]!.count).toBe(700);
    expect(r.droppedRecords).toBe(200);
    expect(r.droppedCount).toBe((200 * 201) / 2);
  });
});

describe("TLS reports", () => {
  it("summarises sessions and failure types per policy domain", () => {
    const r = parseTlsReport(tlsReportJson("example.com", "2026-12-04T00:00:00Z_example.com", 1000, [{ type: "certificate-expired", count: 12 }, { type: "sts-policy-fetch-error", count: 3 }]));
    expect(r.orgName).toBe("Google Inc.");
    expect(r.policies).toEqual([
      {
        policyDomain: "example.com",
        policyType: "sts",
        success: 1000,
        failure: 15,
        failures: [
          { resultType: "certificate-expired", count: 12, receivingMx: "mx.example.com", receivingIp: "192.0.2.25" },
          { resultType: "sts-policy-fetch-error", count: 3, receivingMx: "mx.example.com", receivingIp: "192.0.2.25" },
        ],
      },
    ]);
    expect(() => parseTlsReport("{}")).toThrow(ReportError);
    expect(() => parseTlsReport("not json")).toThrow(/not JSON/);
  });
});
