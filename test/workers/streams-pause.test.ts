/**
 * Streams per tenant (issue 12): pausing a tenant's broadcast stream holds its mail (parked, nothing lost) while
 * transactional mail flows; resume releases all of it in order. Per-stream limits, suppression scopes, the stream
 * filters of the API, and the admin endpoints' validation and auth.
 */
import { describe, expect, it } from "vitest";
import { addRoute, maxInWindow, newMessage, recipientRows, smtpStats, waitAllFinal } from "../support/delivery-helpers";
import type { DeliveryJob } from "../../src/queue/job";
import { insertMessage } from "../../src/store/messages";
import { ADMIN_TOKEN, call, createTenantWithKey, env, receivedAt, startSmtp, unique } from "./helpers";
import { login } from "./report-support";

async function send(key: string, json: Record<string, unknown>): Promise<string> {
  const r = await call("/v1/messages", { method: "POST", key, json: { text: "x", ...json } });
  if (r.status !== 202) throw new Error(`send: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { id: string }).id;
}

async function setup(policy: Record<string, number> = { ratePerSecond: 100, burst: 10, maxConnections: 1, maxMessagesPerConnection: 100 }) {
  const port = await startSmtp();
  const dest = `${unique("st")}.example`;
  await addRoute({ match_recipient_domain: dest, next_hop_url: `smtp://127.0.0.1:${port}`, name: unique("st"), policy });
  const fromDomain = `${unique("f")}.example`;
  const { tenantId, key } = await createTenantWithKey([fromDomain]);
  return { port, dest, fromDomain, tenantId, key };
}

describe("pausing a tenant's broadcast stream", () => {
  it("holds broadcast mail while transactional flows, then releases all of it in order on resume", async () => {
    const { port, dest, fromDomain, tenantId, key } = await setup();
    const pause = await call(`/admin/tenants/${tenantId}/streams/broadcast/pause`, { method: "POST", key: ADMIN_TOKEN });
    expect(pause.status).toBe(200);
    expect(await pause.json()).toMatchObject({ tenant_id: tenantId, stream: "broadcast", paused: true });

    const broadcast: string[] = [];
    for (let i = 0; i < 30; i++) broadcast.push(await send(key, { from: `news@${fromDomain}`, to: [`b${i}@${dest}`], subject: `news ${i}`, stream: "broadcast" }));
    const tx = await send(key, { from: `app@${fromDomain}`, to: [`t@${dest}`], subject: "receipt" });
    expect((await waitAllFinal([tx], 20_000))[0]!.status).toBe("delivered");

    // Every broadcast job reaches the consumer and is parked; none reaches the server.
    const parked = await (async () => {
      const end = Date.now() + 20_000;
      for (;;) {
        const r = (await (await call(`/admin/tenants/${tenantId}/streams`, { key: ADMIN_TOKEN })).json()) as { data: { stream: string; parked: number }[] };
        const n = r.data.find((s) => s.stream === "broadcast")!.parked;
        if (n === 30 || Date.now() > end) return n;
        await new Promise((res) => setTimeout(res, 200));
      }
    })();
    expect(parked).toBe(30);
    expect((await receivedAt(port)).filter((m) => m.rcptTo[0]!.startsWith("b"))).toHaveLength(0);
    expect((await recipientRows(broadcast)).every((r) => r.status === "queued")).toBe(true);

    const resume = await call(`/admin/tenants/${tenantId}/streams/broadcast/resume`, { method: "POST", key: ADMIN_TOKEN });
    expect(resume.status).toBe(200);
    expect(await resume.json()).toMatchObject({ paused: false, parked: 0, released: 30 });
    const rows = await waitAllFinal(broadcast, 30_000, "released broadcast mail");
    expect(rows.every((r) => r.status === "delivered")).toBe(true);
    // In order: one connection at a time, jobs released oldest first.
    const order = (await receivedAt(port)).filter((m) => m.rcptTo[0]!.startsWith("b")).map((m) => Number(m.rcptTo[0]!.slice(1, m.rcptTo[0]!.indexOf("@"))));
    console.log(`pause: 30 broadcast messages parked, released in order: ${order.join(",")}`);
    expect(order).toEqual(Array.from({ length: 30 }, (_, i) => i));
  });

  it("limits a tenant's stream to its rate and daily quota; mail over the quota waits", async () => {
    const { port, dest, fromDomain, tenantId, key } = await setup({ ratePerSecond: 100, burst: 10, maxConnections: 2, maxMessagesPerConnection: 100 });
    const put = await call(`/admin/tenants/${tenantId}/streams/broadcast`, { method: "PUT", key: ADMIN_TOKEN, json: { rate_per_second: 5, quota_per_day: 12 } });
    expect(put.status).toBe(200);
    expect(await put.json()).toMatchObject({ rate_per_second: 5, quota_per_day: 12 });
    const ids: string[] = [];
    for (let i = 0; i < 15; i++) ids.push(await send(key, { from: `news@${fromDomain}`, to: [`q${i}@${dest}`], subject: `q ${i}`, stream: "broadcast" }));
    const end = Date.now() + 20_000;
    while ((await receivedAt(port)).length < 12 && Date.now() < end) await new Promise((r) => setTimeout(r, 200));
    await new Promise((r) => setTimeout(r, 1500));
    const stats = await smtpStats(port);
    const rows = await recipientRows(ids);
    const span = (Math.max(...stats.mailTimes) - Math.min(...stats.mailTimes)) / 1000;
    console.log(`limits: ${stats.mailTimes.length} of 15 delivered under quota 12, over ${span.toFixed(1)} s; max ${maxInWindow(stats.mailTimes, 1000)} in any 1 s`);
    expect(stats.mailTimes).toHaveLength(12);
    expect(maxInWindow(stats.mailTimes, 1000)).toBeLessThanOrEqual(6);
    expect(rows.filter((r) => r.status === "delivered")).toHaveLength(12);
    expect(rows.filter((r) => r.status === "queued")).toHaveLength(3);
    const view = (await (await call(`/admin/tenants/${tenantId}/streams`, { key: ADMIN_TOKEN })).json()) as { data: { stream: string; quota_used_today: number | null }[] };
    expect(view.data.find((s) => s.stream === "broadcast")!.quota_used_today).toBe(12);
  });

  it("releases a large backlog in several rounds: the consumer continues where the resume call stopped", { timeout: 60_000 }, async () => {
    const { dest, tenantId } = await setup();
    // 5,100 parked jobs of one message whose recipient is already final, so the consumer only acks them.
    const id = unique("big");
    const now = Date.now();
    await env.DB.batch(
      insertMessage(env.DB, newMessage({ id, tenantId, subject: "backlog", stream: "broadcast", sizeBytes: 10, createdAt: now, recipients: [{ idx: 0, address: `u@${dest}`, domain: dest, status: "suppressed" }] })),
    );
    const job: DeliveryJob = { v: 1, messageId: id, tenantId, stream: "broadcast", mailFrom: "a@x.example", recipients: [{ idx: 0, address: `u@${dest}` }], destination: dest, body: "x", sizeBytes: 1, smtputf8: false, eightBit: false, acceptedAt: now, attempt: 0 };
    await env.DB.prepare(
      `INSERT INTO parked_jobs (tenant_id, stream, job, parked_at)
       SELECT ?, 'broadcast', ?, ? FROM (WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 5100) SELECT x FROM c)`,
    )
      .bind(tenantId, JSON.stringify(job), now)
      .run();
    const resume = await call(`/admin/tenants/${tenantId}/streams/broadcast/resume`, { method: "POST", key: ADMIN_TOKEN });
    const first = (await resume.json()) as { released: number; parked: number };
    expect(first).toMatchObject({ released: 5000, parked: 100 });
    const end = Date.now() + 30_000;
    let parked = first.parked;
    while (parked > 0 && Date.now() < end) {
      await new Promise((r) => setTimeout(r, 250));
      parked = ((await (await call(`/admin/tenants/${tenantId}/streams`, { key: ADMIN_TOKEN })).json()) as { data: { stream: string; parked: number }[] }).data.find((x) => x.stream === "broadcast")!.parked;
    }
    console.log(`pause: 5,100 parked jobs: ${first.released} released by the resume call, the rest by the consumer (${parked} left)`);
    expect(parked).toBe(0);
  });

  it("validates stream admin calls and needs the admin token", async () => {
    const { tenantId } = await setup();
    expect((await call(`/admin/tenants/${tenantId}/streams/broadcast/pause`, { method: "POST" })).status).toBe(401);
    expect((await call(`/admin/tenants/${tenantId}/streams`, { key: "er_nope" })).status).toBe(401);
    expect((await call(`/admin/tenants/${tenantId}/streams/bulk/pause`, { method: "POST", key: ADMIN_TOKEN })).status).toBe(400);
    expect((await call(`/admin/tenants/nope-${unique()}/streams/broadcast/pause`, { method: "POST", key: ADMIN_TOKEN })).status).toBe(404);
    const bad = await call(`/admin/tenants/${tenantId}/streams/broadcast`, { method: "PUT", key: ADMIN_TOKEN, json: { rate_per_second: -1 } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: "invalid_field", field: "rate_per_second" } });
    expect((await call(`/admin/tenants/${tenantId}/streams/broadcast`, { method: "PUT", key: ADMIN_TOKEN, json: { speed: 1 } })).status).toBe(400);
  });
});

describe("streams in suppressions and searches", () => {
  it("an unsubscribe from broadcast does not suppress transactional mail; the API and the page filter by stream", async () => {
    const { port, dest, fromDomain, tenantId, key } = await setup();
    const address = `reader@${dest}`;
    // What one-click unsubscribe writes: scope broadcast.
    const sup = await call("/v1/suppressions", { method: "POST", key, json: { suppressions: [{ address, scope: "broadcast", reason: "unsubscribe" }] } });
    expect(sup.status).toBe(201);
    const news = await call("/v1/messages", { method: "POST", key, json: { from: `news@${fromDomain}`, to: [address], subject: "news", text: "x", stream: "broadcast" } });
    const newsBody = (await news.json()) as { id: string; recipients: { status: string }[] };
    expect(newsBody.recipients[0]!.status).toBe("suppressed");
    const receipt = await send(key, { from: `shop@${fromDomain}`, to: [address], subject: "receipt", stream: "transactional" });
    expect((await waitAllFinal([receipt], 20_000))[0]!.status).toBe("delivered");
    expect((await receivedAt(port)).some((m) => m.rcptTo.includes(address))).toBe(true);
    // A suppression of scope all holds for both.
    const other = `gone@${dest}`;
    await call("/v1/suppressions", { method: "POST", key, json: { suppressions: [{ address: other, scope: "all", reason: "manual" }] } });
    const both = await call("/v1/messages", { method: "POST", key, json: { from: `shop@${fromDomain}`, to: [other], subject: "r", text: "x" } });
    expect(((await both.json()) as { recipients: { status: string }[] }).recipients[0]!.status).toBe("suppressed");

    const list = async (path: string) => ((await (await call(path, { key })).json()) as { data: { id?: string; message_id?: string; stream?: string }[] }).data;
    const tx = await list("/v1/messages?stream=transactional");
    const bc = await list("/v1/messages?stream=broadcast");
    expect(tx.some((m) => m.id === receipt) && tx.every((m) => m.stream === "transactional")).toBe(true);
    expect(bc.length).toBeGreaterThan(0);
    expect(bc.every((m) => m.stream === "broadcast") && !bc.some((m) => m.id === receipt)).toBe(true);
    expect(bc.some((m) => m.id === newsBody.id)).toBe(true);
    const ev = await list("/v1/events?stream=broadcast&limit=1000");
    expect(ev.length).toBeGreaterThan(0);
    expect(ev.some((e) => e.message_id === receipt)).toBe(false);
    expect((await list("/v1/events?stream=transactional&limit=1000")).some((e) => e.message_id === receipt)).toBe(true);
    // The reporting page searches by stream too (a bare "broadcast" is taken as one).
    const s = await login();
    for (const query of ["field=stream&q=broadcast", "q=broadcast"]) {
      const page = await (await s.get(`/dashboard/messages?tenant=${tenantId}&${query}`)).text();
      expect(page, query).toContain(`/dashboard/messages/${newsBody.id}`);
      expect(page, query).not.toContain(`/dashboard/messages/${receipt}`);
    }
    expect(await (await s.get(`/dashboard/messages?tenant=${tenantId}&field=stream&q=transactional`)).text()).toContain(`/dashboard/messages/${receipt}`);
    expect((await call("/v1/messages?stream=bulk", { key })).status).toBe(400);
    expect((await call("/v1/events?stream=bulk", { key })).status).toBe(400);
  });
});
