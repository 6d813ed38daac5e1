/**
 * DMARC aggregate and TLS reports through the email() handler: Google (zip), Microsoft (gzip) and Yahoo (plain
 * XML) styles stored and summarised per domain with this relay's sources apart; duplicates, zip bombs, reports
 * about someone else's domain and oversize mail refused; TLS reports per receiving domain.
 */
import { describe, expect, it } from "vitest";
import { checkResponse } from "./api-schema";
import { ADMIN_TOKEN, call, createTenantWithKey, env, unique } from "./helpers";
import { deliverToWorker, fakeEmail } from "./inbound-support";
import { pruneReports } from "../../src/store/reputation";
import { dmarcXml, gzip, reportMail, tlsReportJson, zeros, zip, type RecordSpec } from "../support/report-builders";

async function inboundLog(to: string) {
  return (await env.DB.prepare("SELECT kind, outcome, detail FROM inbound_messages WHERE envelope_to = ? ORDER BY id").bind(to).all<{ kind: string; outcome: string; detail: string }>()).results;
}

async function send(to: string, raw: Uint8Array, rawSize?: number) {
  const fake = fakeEmail({ from: "noreply-dmarc-support@google.com", to, raw, ...(rawSize ? { rawSize } : {}) });
  await deliverToWorker(fake);
  return fake;
}

describe("DMARC aggregate reports by mail", () => {
  it("stores Google, Microsoft and Yahoo reports and shows volume, pass rate and failing sources per domain", async () => {
    const domain = `${unique("dm")}.example`;
    const { tenantId } = await createTenantWithKey([domain]);
    const ownIp = `203.0.113.${Math.floor(Math.random() * 200) + 1}`;
    expect((await call("/admin/reputation/subjects", { method: "POST", key: ADMIN_TOKEN, json: { subject: ownIp, label: "upstream" } })).status).toBe(201);
    const records: RecordSpec[] = [
      { ip: ownIp, count: 100, headerFrom: domain },
      { ip: "198.51.100.66", count: 7, dkim: "fail", spf: "fail", disposition: "none", headerFrom: domain, dkimDomain: "spoof.example", spfDomain: "spoof.example" },
    ];
    const box = `dmarc@bounces.${domain}`;
    const google = await zip([{ name: `google.com!${domain}!1764892800!1764979199.xml`, data: dmarcXml("google", domain, `g-${domain}`, records) }]);
    const ms = await gzip(dmarcXml("microsoft", domain, `m-${domain}`, records));
    const mails = [
      reportMail({ from: "noreply-dmarc-support@google.com", to: box, subject: `Report domain: ${domain} Submitter: google.com`, attachment: { name: "google.zip", type: "application/zip", data: google }, authResults: "dkim=pass header.d=google.com; spf=pass smtp.mailfrom=google.com" }),
      reportMail({ from: "dmarcreport@microsoft.com", to: box, subject: `Report Domain: ${domain} Submitter: protection.outlook.com`, attachment: { name: `enterprise.protection.outlook.com!${domain}!1!2.xml.gz`, type: "application/gzip", data: ms } }),
      reportMail({ from: "dmarchelp@yahooinc.com", to: box, subject: `Report Domain: ${domain}`, plainBody: dmarcXml("yahoo", domain, `y-${domain}`, records) }),
    ];
    for (const m of mails) expect((await send(box, m)).rejected()).toBeNull();
    // The same Google report again is a duplicate: stored once.
    expect((await send(box, mails[0]!)).rejected()).toBeNull();
    const log = await inboundLog(box);
    expect(log.map((l) => `${l.kind} ${l.outcome}`)).toEqual(["dmarc_report recorded", "dmarc_report recorded", "dmarc_report recorded", "dmarc_report duplicate"]);
    expect(log[0]!.detail).toContain("dkim=pass spf=pass");

    const r = await call(`/admin/reputation/dmarc?tenant_id=${tenantId}`, { key: ADMIN_TOKEN });
    const body = await checkResponse<{ domains: { domain: string; reports: number; volume: number; passed: number; own_volume: number; pass_rate: number }[]; failing_sources: { source_ip: string; own: boolean; failed: number; reporters: string[] }[] }>(r, "GET", "/admin/reputation/dmarc");
    expect(body.domains).toEqual([expect.objectContaining({ domain, reports: 3, authenticated_reports: 1, volume: 321, passed: 300, own_volume: 300 })]);
    expect(body.failing_sources).toEqual([expect.objectContaining({ source_ip: "198.51.100.66", own: false, failed: 21 })]);
    expect(body.failing_sources[0]!.reporters.sort()).toEqual(["Enterprise Outlook", "Yahoo", "google.com"]);
  });

  it("refuses zip bombs, reports about other domains, non-reports and oversize mail, and never touches delivery state", async () => {
    const domain = `${unique("dmb")}.example`;
    await createTenantWithKey([domain]);
    const box = `dmarc@bounces.${domain}`;
    const before = await env.DB.prepare("SELECT COUNT(*) AS n FROM events").first<{ n: number }>();
    const bomb = await zip([{ name: "report.xml", data: zeros(24 * 1024 * 1024) }]);
    const refused = await send(box, reportMail({ from: "x@reporter.example", to: box, subject: "Report", attachment: { name: "r.zip", type: "application/zip", data: bomb } }));
    expect(refused.rejected()).toMatch(/^5\.6\.0 .*(ratio|exceeds)/);
    const other = await send(box, reportMail({ from: "x@reporter.example", to: box, subject: "Report", attachment: { name: "r.xml.gz", type: "application/gzip", data: await gzip(dmarcXml("google", "victim.example", "x1", [{ ip: "192.0.2.1", count: 1, headerFrom: "victim.example" }])) } }));
    expect(other.rejected()).toMatch(/^5\.6\.0 .*victim\.example/);
    const html = await send(box, reportMail({ from: "x@reporter.example", to: box, subject: "hi", plainBody: "just text", plainType: "text/plain" }));
    expect(html.rejected()).toMatch(/^5\.6\.0 No report/);
    const big = await send(box, reportMail({ from: "x@reporter.example", to: box, subject: "Report", plainBody: "<feedback/>" }), 11 * 1024 * 1024);
    expect(big.rejected()).toMatch(/^5\.3\.4/);
    expect((await inboundLog(box)).map((l) => l.outcome)).toEqual(["rejected", "rejected", "rejected", "rejected"]);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM dmarc_reports WHERE domain IN (?, 'victim.example')").bind(domain).first<{ n: number }>())?.n).toBe(0);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM events").first<{ n: number }>())?.n).toBe(before?.n);
  });
});

describe("report flood", () => {
  it("refuses report mail past the per-tenant daily cap with a temporary error", async () => {
    const domain = `${unique("cap")}.example`;
    const { tenantId } = await createTenantWithKey([domain]);
    const now = Date.now();
    const rows = Array.from({ length: 1000 }, (_, i) =>
      env.DB.prepare("INSERT INTO dmarc_reports (tenant_id, domain, org_name, report_id, begin_at, end_at, received_at) VALUES (?, ?, 'flood', ?, ?, ?, ?)").bind(tenantId, domain, `f${i}`, now, now, now),
    );
    await env.DB.batch(rows);
    const box = `dmarc@bounces.${domain}`;
    const r = await send(box, reportMail({ from: "x@reporter.example", to: box, subject: "Report", plainBody: dmarcXml("google", domain, "after-cap", [{ ip: "192.0.2.1", count: 1, headerFrom: domain }]) }));
    expect(r.rejected()).toMatch(/^4\.7\.0 Too many reports/);
  });
});

describe("TLS reports by mail", () => {
  it("stores a gzip TLS report and shows sessions and failure types per receiving domain", async () => {
    const domain = `${unique("tls")}.example`;
    const { tenantId } = await createTenantWithKey([domain]);
    const box = `tls-rpt@bounces.${domain}`;
    const json = tlsReportJson(domain, `2026-12-04T00:00:00Z_${domain}`, 980, [{ type: "certificate-expired", count: 15 }, { type: "sts-webpki-invalid", count: 5 }]);
    const m = reportMail({ from: "noreply-smtp-tls-reporting@google.com", to: box, subject: `Report Domain: ${domain} Submitter: google.com Report-ID: <x>`, attachment: { name: `google.com!${domain}!1!2.json.gz`, type: "application/tlsrpt+gzip", data: await gzip(json) } });
    expect((await send(box, m)).rejected()).toBeNull();
    const r = await call(`/admin/reputation/tls?tenant_id=${tenantId}`, { key: ADMIN_TOKEN });
    const body = await checkResponse<{ domains: unknown[] }>(r, "GET", "/admin/reputation/tls");
    expect(body.domains).toEqual([{ policy_domain: domain, reports: 1, success: 980, failure: 20, failure_types: { "certificate-expired": 15, "sts-webpki-invalid": 5 } }]);
    expect((await inboundLog(box)).map((l) => `${l.kind} ${l.outcome}`)).toEqual(["tls_report recorded"]);
  });

  it("suggests the report mailboxes in the DNS helper", async () => {
    const domain = `${unique("dnsh")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const r = await call(`/v1/domains/${domain}/dns`, { key });
    const text = JSON.stringify(await r.json());
    expect(text).toContain(`rua=mailto:dmarc@bounces.${domain}`);
    expect(text).toContain(`v=TLSRPTv1; rua=mailto:tls-rpt@bounces.${domain}`);
  });
});

describe("report retention", () => {
  it("deletes reports whose period ended before the retention limit, with their rows", async () => {
    const count = async () => (await env.DB.prepare("SELECT (SELECT COUNT(*) FROM dmarc_reports) + (SELECT COUNT(*) FROM dmarc_records) + (SELECT COUNT(*) FROM tls_reports) + (SELECT COUNT(*) FROM tls_report_policies) AS n").first<{ n: number }>())!.n;
    expect(await count()).toBeGreaterThan(0);
    expect(await pruneReports(env.DB, Date.now() - 30 * 86400_000)).toBe(0);
    // At most 200 reports of each kind per call: the cron takes a large backlog over several runs.
    expect(await pruneReports(env.DB, Date.now() + 30 * 86400_000)).toBe(201);
    while ((await pruneReports(env.DB, Date.now() + 30 * 86400_000)) > 0);
    expect(await count()).toBe(0);
  });
});
