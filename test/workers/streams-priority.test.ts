/**
 * Streams and priority (issue 12): a campaign's backlog never delays transactional mail to the same destination,
 * and transactional mail never starves the campaign. The receiving server's own timestamps are the measure.
 */
import { describe, expect, it } from "vitest";
import { addRoute, maxInWindow, smtpStats } from "../support/delivery-helpers";
import { ADMIN_TOKEN, call, createTenantWithKey, env, receivedAt, startSmtp, unique, waitFor } from "./helpers";

/** Accepts `count` broadcast messages (one recipient each) through the batch endpoint, `parallel` calls at a time. */
async function sendBroadcast(key: string, from: string, to: (i: number) => string, count: number, parallel = 4): Promise<string[]> {
  const ids: string[] = [];
  let next = 0;
  const worker = async () => {
    while (next < count) {
      const start = next;
      next = Math.min(count, next + 100);
      const messages = Array.from({ length: next - start }, (_, j) => ({ from, to: [to(start + j)], subject: `news ${start + j}`, text: "news", stream: "broadcast" }));
      const r = await call("/v1/messages/batch", { method: "POST", key, json: messages });
      if (r.status !== 200) throw new Error(`batch: ${r.status} ${await r.text()}`);
      const body = (await r.json()) as { accepted: number; results: { id?: string; error?: unknown }[] };
      if (body.accepted !== messages.length) throw new Error(`batch refused some: ${JSON.stringify(body.results.find((x) => x.error))}`);
      ids.push(...body.results.map((x) => x.id!));
    }
  };
  await Promise.all(Array.from({ length: parallel }, worker));
  return ids;
}

async function pendingCount(ids: string[]): Promise<number> {
  let n = 0;
  for (let i = 0; i < ids.length; i += 90) {
    const chunk = ids.slice(i, i + 90);
    const row = await env.DB.prepare(`SELECT COUNT(*) AS n FROM recipients WHERE final_at IS NULL AND message_id IN (${chunk.map(() => "?").join(",")})`)
      .bind(...chunk)
      .first<{ n: number }>();
    n += row?.n ?? 0;
  }
  return n;
}

async function pauseBroadcast(tenantId: string): Promise<void> {
  const r = await call(`/admin/tenants/${tenantId}/streams/broadcast/pause`, { method: "POST", key: ADMIN_TOKEN });
  expect(r.status).toBe(200);
}

/** A scripted server behind a route with `ratePerSecond` (burst 1, 3 connections), and a tenant sending from a fresh domain. */
async function rateLimitedDestination(prefix: string, ratePerSecond: number) {
  const port = await startSmtp();
  const dest = `${unique(prefix)}.example`;
  await addRoute({
    match_recipient_domain: dest,
    next_hop_url: `smtp://127.0.0.1:${port}`,
    name: unique(prefix),
    policy: { ratePerSecond, burst: 1, maxConnections: 3, maxMessagesPerConnection: 50 },
  });
  const fromDomain = `${unique("f")}.example`;
  const { tenantId, key } = await createTenantWithKey([fromDomain]);
  return { port, dest, fromDomain, tenantId, key };
}

describe("stream priority at a rate-limited destination", () => {
  it("delivers 20 transactional messages within 3 s while 3,000 broadcast messages drain at 20/s", { timeout: 90_000 }, async () => {
    const { port, dest, fromDomain, tenantId, key } = await rateLimitedDestination("prio", 20);

    const t0 = Date.now();
    const broadcastIds = await sendBroadcast(key, `news@${fromDomain}`, (i) => `b${i}@${dest}`, 3000);
    console.log(`priority: 3000 broadcast messages accepted in ${((Date.now() - t0) / 1000).toFixed(1)} s`);
    // The campaign is flowing before the transactional mail arrives.
    await waitFor(async () => ((await receivedAt(port)).length >= 20 ? true : undefined), 20_000, "broadcast to start");

    const accepted = new Map<string, number>();
    for (let i = 0; i < 20; i++) {
      const to = `t${i}@${dest}`;
      const r = await call("/v1/messages", { method: "POST", key, json: { from: `app@${fromDomain}`, to: [to], subject: `code ${i}`, text: "123456", stream: "transactional" } });
      expect(r.status).toBe(202);
      accepted.set(to, Date.now());
    }
    const arrivals = await waitFor(
      async () => {
        const got = (await receivedAt(port)).filter((m) => m.rcptTo.some((a) => accepted.has(a)));
        return got.length >= 20 ? got : undefined;
      },
      20_000,
      "all 20 transactional messages at the server",
    );
    const broadcastPending = await pendingCount(broadcastIds);
    const broadcastReceived = (await receivedAt(port)).filter((m) => m.rcptTo.some((a) => a.startsWith("b"))).length;
    const delays = arrivals.map((m) => m.receivedAt - accepted.get(m.rcptTo[0]!)!).sort((a, b) => a - b);
    const stats = await smtpStats(port);
    console.log(
      `priority: transactional accept-to-arrival delays ms: min ${delays[0]} median ${delays[10]} max ${delays[19]} (all: ${delays.join(",")}); ` +
        `broadcast at that point: ${broadcastReceived} received, ${broadcastPending} still pending; max ${maxInWindow(stats.mailTimes, 1000)} MAIL in any 1 s window`,
    );
    // Transactional mail arrived while the campaign was still draining, each within the 3 s.
    expect(broadcastPending).toBeGreaterThan(0);
    expect(delays[19]!).toBeLessThanOrEqual(3000);
    // The destination's limit held for both streams together (20/s, burst 1).
    expect(maxInWindow(stats.mailTimes, 1000)).toBeLessThanOrEqual(21);
    // The rest of the campaign waits, parked, instead of draining for minutes after the test.
    await pauseBroadcast(tenantId);
  });
});

describe("no starvation", () => {
  it("broadcast keeps its reserved share under constant transactional load", { timeout: 60_000 }, async () => {
    const { port, dest, fromDomain, tenantId, key } = await rateLimitedDestination("starve", 10);
    await sendBroadcast(key, `news@${fromDomain}`, (i) => `b${i}@${dest}`, 100, 1);
    // The campaign is flowing (the queue may first have to work through another test's parked backlog).
    await waitFor(async () => ((await receivedAt(port)).length > 0 ? true : undefined), 40_000, "broadcast to start");
    // Transactional mail at 15/s, more than the destination's 10/s, for 8 seconds.
    const loadMs = 8000;
    const start = Date.now();
    let sent = 0;
    while (Date.now() - start < loadMs) {
      const batch = Array.from({ length: 3 }, () => ({ from: `app@${fromDomain}`, to: [`t${sent++}@${dest}`], subject: "code", text: "123456" }));
      const r = await call("/v1/messages/batch", { method: "POST", key, json: batch });
      expect(r.status).toBe(200);
      await new Promise((res) => setTimeout(res, Math.max(0, start + (sent / 15) * 1000 - Date.now())));
    }
    const end = Date.now();
    const during = (await receivedAt(port)).filter((m) => m.receivedAt >= start + 1000 && m.receivedAt <= end);
    const broadcast = during.filter((m) => m.rcptTo[0]!.startsWith("b")).length;
    const transactional = during.length - broadcast;
    console.log(
      `starvation: during ${((end - start - 1000) / 1000).toFixed(1)} s of transactional load (${sent} sent at 15/s to a 10/s destination): ` +
        `${transactional} transactional and ${broadcast} broadcast delivered (${((100 * broadcast) / Math.max(1, during.length)).toFixed(0)} % broadcast; reserved share 15 %)`,
    );
    // Broadcast progressed while transactional mail wanted more than the whole rate, and transactional got the most.
    expect(broadcast).toBeGreaterThan(0);
    expect(transactional).toBeGreaterThan(broadcast);
    await pauseBroadcast(tenantId);
  });
});
