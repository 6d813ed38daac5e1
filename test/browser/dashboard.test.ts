/**
 * The reporting page in a real browser: Debian's Chromium driven by playwright-core, against the real Worker
 * (wrangler's unstable_startWorker, local D1/Queues persisted in a temp dir, migrations applied), with mail
 * seeded through the HTTP API and delivered to real SMTP servers. Screenshots go to test-output/.
 */
import { mkdirSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { chromium, type Browser, type Page } from "playwright-core";
import { startRelay, type TestRelay } from "../bridge/support/relay";
import { LAUNCH, SCREENSHOT_DIR as OUT, whyNoBrowser } from "../support/chromium";
import { startSmtpServer, type ScriptedServer } from "../support/peers";

const skipReason = await whyNoBrowser();
if (skipReason) console.warn(`${skipReason}: the browser tests of the reporting page are skipped`);

const EVIL_SUBJECT = `<script>alert("subject")</script><img src=x onerror=alert(1)>`;

describe.skipIf(skipReason !== null)("reporting page in Chromium", () => {
  let relay: TestRelay;
  let sink: ScriptedServer;
  let rejecting: ScriptedServer;
  let browser: Browser;
  let page: Page;
  let tenantId: string;
  const dialogs: string[] = [];
  const sent: { id: string; to: string }[] = [];

  beforeAll(async () => {
    mkdirSync(OUT, { recursive: true });
    sink = await startSmtpServer({ name: "sink.browser.test" });
    rejecting = await startSmtpServer({ rules: [{ stage: "rcpt", code: 550, message: "5.1.1 no such mailbox" }] });
    relay = await startRelay({ NEXT_HOP_URL: `smtp://127.0.0.1:${sink.port}` });
    const t = await relay.createTenant(["shop.example"]);
    tenantId = t.tenantId;
    const route = await relay.call("POST", "/admin/routes", relay.adminToken, { match_recipient_domain: "gone.example", next_hop_url: `smtp://127.0.0.1:${rejecting.port}` });
    expect(route.status).toBe(201);
    const mails = [
      { to: "ann@customers.example", subject: "Your order #1001" },
      { to: "bob@customers.example", subject: "Your order #1002" },
      { to: "cy@partners.example", subject: EVIL_SUBJECT },
      { to: "nobody@gone.example", subject: "Your order #1003" },
    ];
    for (const m of mails) {
      const r = await relay.call("POST", "/v1/messages", t.key, { from: "orders@shop.example", to: [m.to], subject: m.subject, text: "Thanks!" });
      expect(r.status).toBe(202);
      sent.push({ id: (r.body as { id: string }).id, to: m.to });
    }
    // Wait until every seeded message reached its final state through the real queue and SMTP servers.
    const deadline = Date.now() + 60_000;
    for (const m of sent) {
      for (;;) {
        const v = await relay.call("GET", `/v1/messages/${m.id}`, t.key);
        const status = (v.body as { status?: string }).status ?? "";
        if (["delivered", "bounced"].includes(status)) break;
        if (Date.now() > deadline) throw new Error(`message ${m.id} did not settle: ${JSON.stringify(v.body)}`);
        await new Promise((r) => setTimeout(r, 200));
      }
    }
    browser = await chromium.launch(LAUNCH);
    page = await browser.newPage({ viewport: { width: 1280, height: 900 } });
    page.on("dialog", (d) => {
      dialogs.push(d.message());
      void d.dismiss();
    });
  });

  afterAll(async () => {
    await browser?.close();
    await relay?.dispose();
    await sink?.close();
    await rejecting?.close();
  });

  const url = (path: string) => new URL(path, relay.url).toString();
  const metric = async (name: string) => Number(((await page.locator(`[data-metric="${name}"] .value`).textContent()) ?? "").replace(/,/g, ""));

  it("signs in with the admin token and shows the seeded counts on the overview", async () => {
    await page.goto(url("/dashboard"));
    expect(new URL(page.url()).pathname).toBe("/dashboard/login");
    await page.fill('input[name="token"]', "wrong-token");
    await page.click('button[type="submit"]');
    await expect(page.locator('[role="alert"]').textContent()).resolves.toContain("not the admin token");
    await page.fill('input[name="token"]', relay.adminToken);
    await page.click('button[type="submit"]');
    await page.waitForURL((u) => u.pathname === "/dashboard");
    const cookies = await page.context().cookies();
    const session = cookies.find((c) => c.name === "__Host-er_session");
    expect(session).toMatchObject({ httpOnly: true, secure: true, sameSite: "Strict" });

    await page.goto(url(`/dashboard?tenant=${tenantId}&window=1h`));
    expect(await metric("accepted")).toBeGreaterThanOrEqual(4);
    expect(await metric("delivered")).toBeGreaterThanOrEqual(3);
    expect(await metric("bounced")).toBe(1);
    expect(await metric("deferred")).toBe(0);
    await expect(page.locator("svg[role=img] title").first().textContent()).resolves.toContain("Outcomes per step");
    // Issue 25: the page says how current its counts are (caught up here: the page folds in what is new).
    const freshness = (await page.locator("p.freshness").textContent()) ?? "";
    expect(freshness).toMatch(/^Counts as of \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC: every event so far is counted\.$/);
    await page.screenshot({ path: `${OUT}/dashboard-overview.png`, fullPage: true });
  });

  it("finds a message by recipient and shows its timeline", async () => {
    await page.goto(url(`/dashboard/messages?tenant=${tenantId}`));
    await page.selectOption('select[name="field"]', "recipient");
    await page.fill('input[name="q"]', "bob@customers.example");
    await page.click('#message-search button[type="submit"]');
    await page.waitForURL((u) => u.searchParams.get("q") === "bob@customers.example");
    const rows = page.locator("main table tbody tr");
    expect(await rows.count()).toBe(1);
    // Issue 25: the From column shows the From header, not the envelope sender (a VERP bounce+ address).
    expect(await rows.first().locator("td").nth(2).textContent()).toBe("orders@shop.example");
    await rows.first().locator("a").first().click();
    await page.waitForURL((u) => u.pathname === `/dashboard/messages/${sent[1]!.id}`);
    const timeline = (await page.locator("ol.timeline").textContent()) ?? "";
    expect(timeline).toMatch(/accepted[\s\S]*queued[\s\S]*delivered/);
    expect(timeline).toContain(`next hop 127.0.0.1:${sink.port}`);
    expect(timeline).toContain("250");
    await page.screenshot({ path: `${OUT}/dashboard-message.png`, fullPage: true });
  });

  it("adds a suppression through the form", async () => {
    await page.goto(url(`/dashboard/suppressions?tenant=${tenantId}`));
    await page.fill('input[name="address"]', "do-not-mail@customers.example");
    await page.selectOption('select[name="reason"]', "unsubscribe");
    await page.fill('input[name="detail"]', "asked by phone");
    await page.click('form[method="post"][action="/dashboard/suppressions"] button[type="submit"]');
    await page.waitForURL((u) => u.searchParams.get("notice") === "added");
    await expect(page.locator('[role="status"]').textContent()).resolves.toContain("Suppression added.");
    const row = page.locator("tr", { hasText: "do-not-mail@customers.example" });
    expect(await row.count()).toBe(1);
    expect(await row.textContent()).toContain("unsubscribe");
    await page.screenshot({ path: `${OUT}/dashboard-suppressions.png`, fullPage: true });
  });

  it("shows hostile subjects as text: no script runs", async () => {
    await page.goto(url(`/dashboard/messages?tenant=${tenantId}`));
    await expect(page.locator("main").textContent()).resolves.toContain(EVIL_SUBJECT);
    await page.goto(url(`/dashboard/messages/${sent[2]!.id}`));
    await expect(page.locator("h1").textContent()).resolves.toBe(EVIL_SUBJECT);
    expect(await page.locator("main img").count()).toBe(0);
    expect(dialogs).toEqual([]);
  });

  it("renders destinations and webhooks pages, and works on a phone-sized screen", async () => {
    await page.goto(url(`/dashboard/destinations?tenant=${tenantId}`));
    await expect(page.locator("main").textContent()).resolves.toContain("customers.example");
    await page.screenshot({ path: `${OUT}/dashboard-destinations.png`, fullPage: true });
    await page.goto(url(`/dashboard/webhooks`));
    await expect(page.locator("h1").textContent()).resolves.toBe("Webhooks");
    await page.setViewportSize({ width: 390, height: 844 });
    await page.goto(url(`/dashboard?tenant=${tenantId}`));
    // Runs in the page (a string, since this file is type-checked without the DOM library).
    const wide = await page.evaluate<string[]>(`[...document.querySelectorAll("body *")]
      .filter((e) => e.getBoundingClientRect().right > window.innerWidth + 1 && !e.closest(".table-wrap"))
      .map((e) => e.tagName.toLowerCase() + "." + e.className + " " + Math.round(e.getBoundingClientRect().right))`);
    expect(wide, "elements wider than the phone screen").toEqual([]);
    await page.screenshot({ path: `${OUT}/dashboard-phone.png`, fullPage: true });
  });
});
