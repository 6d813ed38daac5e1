/**
 * The Reputation page in Chromium against the real Worker (wrangler's unstable_startWorker): a blocklist listing
 * found over the local DoH stub, and a failing DMARC source from a report mailed to the email() handler through
 * the local runtime's email endpoint. Values from the report (reporter name) are hostile and must stay text.
 */
import { mkdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type Page } from "playwright-core";
import { startRelay, type TestRelay } from "../bridge/support/relay";
import { LAUNCH, SCREENSHOT_DIR as OUT, whyNoBrowser } from "../support/chromium";
import { startPeers, type Peers } from "../support/peers";
import { dmarcXml, gzip, reportMail } from "../support/report-builders";

const skipReason = await whyNoBrowser();
if (skipReason) console.warn(`${skipReason}: the browser test of the Reputation page is skipped`);

const EVIL_ORG = `<img src=x onerror=alert(1)>Evil Reporter`;

describe.skipIf(skipReason !== null)("Reputation page in Chromium", () => {
  let relay: TestRelay;
  let peers: Peers;
  let browser: Browser;
  let page: Page;
  const dialogs: string[] = [];
  const domain = "brand.example";
  const listedIp = "192.0.2.10";

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    peers = await startPeers();
    relay = await startRelay({ NEXT_HOP_URL: `smtp://127.0.0.1:${peers.sink.port}`, DOH_URL: `http://127.0.0.1:${peers.controlPort}/dns-query` });
    await relay.createTenant([domain]);
    const added = await relay.call("POST", "/admin/reputation/subjects", relay.adminToken, { subject: listedIp, label: "upstream ses" });
    expect(added.status).toBe(201);
    peers.dns.set("10.2.0.192.zen.spamhaus.org|A", { Status: 0, Answer: [{ name: "10.2.0.192.zen.spamhaus.org.", type: 1, TTL: 60, data: "127.0.0.2" }] });
    const check = await relay.call("POST", "/admin/reputation/check", relay.adminToken);
    expect(check.status).toBe(200);
    expect((check.body as { listed: number }).listed).toBeGreaterThanOrEqual(1);

    // A Microsoft-style gzip report with a spoofing source, through the local runtime's email() endpoint.
    const xml = dmarcXml("microsoft", domain, "ms-browser-1", [
      { ip: listedIp, count: 50, headerFrom: domain },
      { ip: "198.51.100.99", count: 12, dkim: "fail", spf: "fail", disposition: "quarantine", headerFrom: domain, dkimDomain: "spoofer.example", spfDomain: "spoofer.example" },
    ]).replace("<org_name>Enterprise Outlook</org_name>", `<org_name>${EVIL_ORG.replace(/</g, "&lt;").replace(/>/g, "&gt;")}</org_name>`);
    const to = `dmarc@bounces.${domain}`;
    const raw = reportMail({ from: "dmarcreport@microsoft.com", to, subject: `Report Domain: ${domain}`, attachment: { name: "report.xml.gz", type: "application/gzip", data: await gzip(xml) } });
    const res = await fetch(new URL(`/cdn-cgi/local/email?from=${encodeURIComponent("dmarcreport@microsoft.com")}&to=${encodeURIComponent(to)}`, relay.url), { method: "POST", body: raw });
    expect(res.status, await res.text()).toBe(200);

    browser = await chromium.launch(LAUNCH);
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
    await page.goto(new URL("/dashboard/login", relay.url).toString());
    await page.fill('input[name="token"]', relay.adminToken);
    await page.click('button[type="submit"]');
    await page.waitForURL((u) => u.pathname === "/dashboard");
  }, 180_000);

  afterAll(async () => {
    await browser?.close();
    await relay?.dispose();
    await peers?.close();
  });

  it("shows the listing, its history, and the failing DMARC source apart from this relay's traffic", async () => {
    await page.click('nav.main a:has-text("Reputation")');
    await page.waitForURL((u) => u.pathname === "/dashboard/reputation");
    const listing = page.locator("#listings tr", { hasText: listedIp });
    expect(await listing.count()).toBe(1);
    expect(await listing.textContent()).toMatch(/spamhaus-zen[\s\S]*SBL/);
    expect(await page.locator("#history").textContent()).toContain("reputation.listed");

    const domains = page.locator("#dmarc-domains tr", { hasText: domain });
    // 62 messages, 50 of them from the relay's own (watched) IP, which passed.
    expect(await domains.textContent()).toMatch(/1[\s\S]*0[\s\S]*62[\s\S]*80\.6%[\s\S]*50[\s\S]*100%[\s\S]*12/);
    const failing = page.locator("#dmarc-failing tr", { hasText: "198.51.100.99" });
    expect(await failing.count()).toBe(1);
    const text = (await failing.textContent()) ?? "";
    expect(text).toContain("other");
    expect(text).toContain("quarantine");
    expect(text).toContain("spoofer.example=fail");
    expect(text).toContain(EVIL_ORG);
    expect(await page.locator("#dmarc-failing img").count()).toBe(0);
    expect(dialogs).toEqual([]);
    await page.screenshot({ path: `${OUT}/dashboard-reputation.png`, fullPage: true });
  });
});
