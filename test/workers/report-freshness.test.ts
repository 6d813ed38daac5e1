/**
 * The reporting page says how current it is ("as of", and how many events are not counted yet), and its message
 * list shows the From header while the message's own page also shows the envelope sender (issue 25).
 */
import { describe, expect, it } from "vitest";
import { fmtTimeSeconds } from "../../src/report/format";
import { ROLLUP_FRESHNESS_SQL, rollupFreshness } from "../../src/store/rollup-freshness";
import { advanceRollups, PAGE_ROLLUP_EVENTS } from "../../src/store/rollups";
import { call, createTenantWithKey, env, unique } from "./helpers";
import { login } from "./report-support";

/** The freshness line of a page: its pending count and the time it states. */
function freshness(page: string): { pending: number; asOf: string; text: string } {
  const m = /<p class="freshness[^"]*"[^>]* data-pending="(\d+)">([\s\S]*?)<\/p>/.exec(page);
  if (!m) throw new Error("the page has no freshness line");
  const t = /<time datetime="([^"]+)">/.exec(m[2]!);
  return { pending: Number(m[1]), asOf: t![1]!, text: m[2]!.replace(/<[^>]+>/g, "").replace(/\s+/g, " ") };
}

/** Writes `n` events in one statement, one second apart from `firstAt`, the way a burst of traffic would. */
async function writeEvents(tenantId: string, n: number, firstAt: number): Promise<void> {
  await env.DB.prepare(
    `WITH RECURSIVE k(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM k WHERE i < ?1 - 1)
     INSERT INTO events (message_id, tenant_id, type, at) SELECT 'fresh-' || i, ?2, 'accepted', ?3 + i * 1000 FROM k`,
  ).bind(n, tenantId, firstAt).run();
}

describe("reporting page: how current it is", () => {
  it("says as of when, and how many events are not counted yet while the rollups are behind", async () => {
    const { tenantId } = await createTenantWithKey([`${unique("fr")}.example`]);
    await advanceRollups(env.DB, 100);
    const s = await login();

    const before = Date.now();
    const current = freshness(await (await s.get(`/dashboard?tenant=${tenantId}`)).text());
    expect(current.pending).toBe(0);
    expect(current.text).toContain("every event so far is counted");
    expect(Date.parse(current.asOf)).toBeGreaterThanOrEqual(before - 1000);

    // More events than one page load folds in: the page counts PAGE_ROLLUP_EVENTS of them and says the rest wait.
    const extra = 500;
    const firstAt = Date.now() - 3_600_000;
    await writeEvents(tenantId, PAGE_ROLLUP_EVENTS + extra, firstAt);
    const behindPage = await (await s.get(`/dashboard?tenant=${tenantId}&window=24h`)).text();
    const behind = freshness(behindPage);
    expect(behind.pending).toBe(extra);
    // Every event before the first uncounted one is counted: that one was written PAGE_ROLLUP_EVENTS seconds in.
    const firstUncounted = firstAt + PAGE_ROLLUP_EVENTS * 1000;
    expect(Date.parse(behind.asOf)).toBe(firstUncounted);
    expect(behind.text).toContain(`Counts as of ${fmtTimeSeconds(firstUncounted)} UTC`);
    expect(behind.text).toContain("500 newer events are not counted yet");
    expect(behindPage).toMatch(/data-metric="accepted"><div class="label">[^<]*<\/div><div class="value">2,000</);
    expect(await rollupFreshness(env.DB)).toEqual({ asOf: firstUncounted, pendingEvents: extra });

    // The tag search reads an index the rollups fill: it says the same.
    const tagged = freshness(await (await s.get(`/dashboard/messages?tenant=${tenantId}&field=tag&q=nothing-${unique()}`)).text());
    expect(tagged.pending).toBe(0);

    await writeEvents(tenantId, PAGE_ROLLUP_EVENTS + 1, Date.now() - 60_000);
    const dest = freshness(await (await s.get(`/dashboard/destinations?tenant=${tenantId}`)).text());
    expect(dest.pending).toBe(1);
    expect(dest.text).toContain("1 newer event is not counted yet");

    // Once the cron caught up, every page says so again.
    await advanceRollups(env.DB, 100);
    expect(freshness(await (await s.get(`/dashboard/destinations?tenant=${tenantId}`)).text()).pending).toBe(0);
  });

  it("measures the backlog with index lookups only, whatever its size", async () => {
    const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${ROLLUP_FRESHNESS_SQL}`).all<{ detail: string }>();
    const details = results.map((r) => r.detail);
    expect(details.some((d) => /SEARCH e USING INTEGER PRIMARY KEY \(rowid>\?\)/.test(d))).toBe(true);
    expect(details.filter((d) => /^SCAN (events|e)\b/.test(d) && !/USING/.test(d))).toEqual([]);
  });
});

describe("reporting page: the message list", () => {
  it("shows the From header, and the envelope sender (VERP return path) on the message's own page", async () => {
    const domain = `${unique("from")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    const from = `orders@${domain}`;
    const res = await call("/v1/messages", { method: "POST", key, json: { from: `Shop <${from}>`, to: [`buyer@${unique("b")}.example`], subject: "Your order", text: "hi" } });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const row = await env.DB.prepare("SELECT mail_from FROM messages WHERE id = ?").bind(id).first<{ mail_from: string }>();
    // With SIGNING_SECRET set the envelope sender is a VERP address, not what the sender wrote.
    expect(row!.mail_from).toMatch(/^bounce\+/);

    const s = await login();
    const list = await (await s.get(`/dashboard/messages?tenant=${tenantId}`)).text();
    const tr = new RegExp(`<tr><td[^>]*><a href="/dashboard/messages/${id}[^"]*">[\\s\\S]*?</tr>`).exec(list)?.[0] ?? "";
    expect(tr).toContain(`<td class="mono">${from}</td>`);
    expect(tr).not.toContain("bounce+");

    const page = await (await s.get(`/dashboard/messages/${id}`)).text();
    expect(page).toContain(`<dt>From header</dt><dd class="mono">${from}</dd>`);
    expect(page).toContain(`<dt>Envelope sender (return path)</dt><dd class="mono">${row!.mail_from}</dd>`);
  });
});
