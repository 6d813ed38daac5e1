/**
 * The event feed written per outcome write (issue 16, lean2): outcomes that end while a write is in flight share
 * the next write and one `events` row; every event keeps its own feed id, so `/v1/events` pages through a batch row
 * in order with cursors that fall inside it, and webhooks and rollups see each event once.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { loadConfig } from "../../src/config";
import { describe, expect, it } from "vitest";
import { handleOutbox } from "../../src/delivery/consumer";
import { isJobBundle } from "../../src/queue/enqueue";
import { app } from "../../src/http/app";
import { outcomeWriter, type PendingOutcome } from "../../src/delivery/outcomes";
import type { DeliveryJob } from "../../src/queue/job";
import { listEvents } from "../../src/store/message-list";
import { getMessage, outcomeStatements } from "../../src/store/messages";
import { acceptCaptured, batchOf, countingD1, envWith, type RowCounter } from "../support/ledger-env";
import { createTenantWithKey, env, receivedAt, routedDomain, unique } from "./helpers";

async function acceptSome(tenantId: string, from: string, count: number): Promise<string[]> {
  const jobs: DeliveryJob[] = [];
  const ids: string[] = [];
  for (let i = 0; i < count; i++) ids.push(await acceptCaptured(env, tenantId, from, [`r${i}@${unique("d")}.example`], jobs, "batch"));
  return ids;
}

function delivered(tenantId: string, messageId: string, address: string, seq: number): PendingOutcome {
  return { outcome: { messageId, tenantId, idx: 0, address, status: "delivered", at: Date.now(), attempt: 1, code: 250, enhanced: "2.0.0", text: "ok", host: "mx.test:25", tls: true, latencyMs: 5, seq } };
}

describe("outcomes written together", () => {
  it("records transactions that end during a write in one events row, and the feed still has every event once, in order", async () => {
    const fromDomain = `${unique("f")}.example`;
    const { tenantId } = await createTenantWithKey([fromDomain]);
    const ids = await acceptSome(tenantId, `a@${fromDomain}`, 10);
    const top = (await env.DB.prepare("SELECT COALESCE(MAX(id), 0) AS top FROM events").first<{ top: number }>())!.top;
    const counter: RowCounter = { total: 0, byTable: {} };
    const { write } = outcomeWriter(envWith(env, { DB: countingD1(env.DB, counter) }));
    const views = await Promise.all(ids.map((id) => getMessage(env.DB, id, tenantId)));
    // Ten transactions end at once: the first write starts alone, the other nine share the next one.
    await Promise.all(ids.map((id, i) => write([delivered(tenantId, id, views[i]!.recipients[0]!.address, i + 1)])));
    expect(counter.byTable.events).toBe(2);
    expect(counter.byTable.messages).toBe(10);
    expect(counter.total).toBe(12);
    for (const id of ids) expect((await getMessage(env.DB, id, tenantId))!.status).toBe("delivered");
    // A duplicate outcome (the queue delivered a job twice) writes no event and changes nothing.
    const again: RowCounter = { total: 0, byTable: {} };
    await outcomeWriter(envWith(env, { DB: countingD1(env.DB, again) })).write([delivered(tenantId, ids[0]!, views[0]!.recipients[0]!.address, 99)]);
    expect(again.total).toBe(0);

    // Paging three at a time walks into and through the batch rows: accepted, queued, delivered per message.
    const seen: { id: number; type: string; message_id: string }[] = [];
    let after: number | null = null;
    for (let page = 0; page < 20; page++) {
      const got = await listEvents(env.DB, tenantId, { type: null, messageId: null, recipient: null, since: null, after, limit: 3 });
      if (!got.length) break;
      seen.push(...got);
      after = got[got.length - 1]!.id;
    }
    expect(seen.length).toBe(30);
    expect(new Set(seen.map((e) => e.id)).size).toBe(30);
    expect(seen.map((e) => e.id)).toEqual([...seen.map((e) => e.id)].sort((a, b) => a - b));
    for (const id of ids) expect(seen.filter((e) => e.message_id === id).map((e) => e.type)).toEqual(["accepted", "queued", "delivered"]);
    expect(seen.find((e) => e.type === "delivered")).toMatchObject({ code: 250, host: "mx.test:25", tls: true, latency_ms: 5 });

    // Webhook ranges over row ids see each event once, however the ranges cut the batch rows.
    const newTop = (await env.DB.prepare("SELECT MAX(id) AS top FROM events").first<{ top: number }>())!.top;
    expect(newTop - top).toBe(10);
    const cut = top + 4;
    const rows = async (lo: number, hi: number) =>
      (await env.DB.prepare("SELECT COUNT(*) AS n FROM event_log WHERE row_id > ? AND row_id <= ? AND tenant_id = ?").bind(lo, hi, tenantId).first<{ n: number }>())!.n;
    expect((await rows(top, cut)) + (await rows(cut, newTop))).toBe(10);
    // The write seeks: neither the event log nor the tenant's messages are read whole (D1 bills rows read too).
    await env.DB.prepare("WITH RECURSIVE n(k) AS (SELECT 1 UNION ALL SELECT k + 1 FROM n WHERE k < 400) INSERT INTO events (message_id, type, at) SELECT 'filler', 'delivered', 0 FROM n").run();
    const more = await acceptSome(tenantId, `a@${fromDomain}`, 1);
    const view = (await getMessage(env.DB, more[0]!, tenantId))!;
    const [eventRow, update] = await env.DB.batch(outcomeStatements(env.DB, [delivered(tenantId, more[0]!, view.recipients[0]!.address, 1).outcome]));
    expect(eventRow!.meta.rows_written).toBe(1);
    expect(eventRow!.meta.rows_read).toBeLessThan(50);
    expect(update!.meta.rows_read).toBeLessThan(50);
  });
});

describe("the consumer's group commit", () => {
  it("writes the outcomes of eight transactions on one connection together: 2 rows per message and one events row", async () => {
    const fromDomain = `${unique("f")}.example`;
    const { tenantId } = await createTenantWithKey([fromDomain]);
    const { port, domain: dest } = await routedDomain();
    const jobs: DeliveryJob[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 16; i++) ids.push(await acceptCaptured(env, tenantId, `a@${fromDomain}`, [`g${i}@${dest}`], jobs, "group"));
    const counter: RowCounter = { total: 0, byTable: {} };
    await handleOutbox(batchOf(jobs), envWith(env, { DB: countingD1(env.DB, counter) }), loadConfig(env));
    expect((await receivedAt(port)).length).toBe(16);
    for (const id of ids) expect((await getMessage(env.DB, id, tenantId))!.status).toBe("delivered");
    // 16 message updates and 2 events rows (OUTCOME_GROUP_TRANSACTIONS = 8): 2.125 rows per message with the accept;
    // a group also closes after 250 ms, so a slow machine may write a few more (one per message before group commit).
    expect(counter.byTable.messages).toBe(16);
    expect(counter.byTable.events).toBeGreaterThanOrEqual(2);
    expect(counter.byTable.events).toBeLessThanOrEqual(4);
    const timeline = (await getMessage(env.DB, ids[5]!, tenantId))!.events;
    expect(timeline.map((e) => e.type)).toEqual(["accepted", "queued", "delivered"]);
    const feed = await listEvents(env.DB, tenantId, { type: "delivered", messageId: ids[5]!, recipient: null, since: null, after: null, limit: 5 });
    expect(feed).toHaveLength(1);
    expect(feed[0]).toMatchObject({ recipient: `g5@${dest}`, code: 250, attempt: 1 });
  });
});

describe("the batch endpoint", () => {
  it("sends its jobs several per Queue message, and the consumer delivers, defers and records each job on its own", async () => {
    const fromDomain = `${unique("f")}.example`;
    const { tenantId, key } = await createTenantWithKey([fromDomain]);
    const { port, domain: dest } = await routedDomain({ rules: [{ stage: "rcpt", match: "busy", code: 451, message: "4.3.0 mailbox busy, try later" }] });
    const to = Array.from({ length: 12 }, (_, i) => (i === 3 ? `busy@${dest}` : `u${i}@${dest}`));
    const sent: unknown[] = [];
    const queue = { send: async (b: unknown) => void sent.push(b), sendBatch: async (list: Iterable<{ body: unknown }>) => void [...list].forEach((m) => sent.push(m.body)) };
    const counter: RowCounter = { total: 0, byTable: {} };
    const relayEnv = envWith(env, { OUTBOX: queue, OUTBOX_PRIORITY: queue, DB: countingD1(env.DB, counter) });
    const ctx = createExecutionContext();
    const res = await app.fetch(
      new Request("https://relay.test/v1/messages/batch", {
        method: "POST",
        headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
        body: JSON.stringify(to.map((t, i) => ({ from: `a@${fromDomain}`, to: [t], subject: `batch ${i}`, text: "hello" }))),
      }),
      relayEnv,
      ctx,
    );
    await waitOnExecutionContext(ctx);
    expect(res.status).toBe(200);
    const body = (await res.json()) as { accepted: number; results: { id: string }[] };
    expect(body.accepted).toBe(12);
    // Twelve jobs in two Queue messages (ten, then two): 2 queue writes instead of 12.
    expect(sent.length).toBe(2);
    expect(sent.map((b) => (isJobBundle(b) ? b.bundle.length : 1))).toEqual([10, 2]);
    // Accepting wrote the twelve message rows and nothing else of the ledger.
    expect(counter.byTable.messages).toBe(12);
    expect(counter.byTable.events ?? 0).toBe(0);

    const deliver = new Map<string, number>();
    const outbox = batchOf(sent as never[]);
    const retried: unknown[] = [];
    const retryQueue = { send: async (b: unknown) => void retried.push(b), sendBatch: async (list: Iterable<{ body: unknown }>) => void [...list].forEach((m) => retried.push(m.body)) };
    await handleOutbox(outbox, envWith(env, { OUTBOX: retryQueue, OUTBOX_PRIORITY: retryQueue }), loadConfig(env));
    expect(outbox.acked).toBe(2);
    for (const m of await receivedAt(port)) for (const r of m.rcptTo) deliver.set(r, (deliver.get(r) ?? 0) + 1);
    expect(deliver.size).toBe(11);
    expect([...deliver.values()].every((n) => n === 1)).toBe(true);
    const statuses = await Promise.all(body.results.map(async (r) => (await getMessage(env.DB, r.id, tenantId))!.status));
    expect(statuses.filter((s) => s === "delivered").length).toBe(11);
    expect(statuses[3]).toBe("deferred");
    // Only the deferred job goes back to the queue, alone, with its attempt counted; the bundle is acknowledged.
    expect(retried.length).toBe(1);
    expect(retried[0]).toMatchObject({ messageId: body.results[3]!.id, attempt: 1, recipients: [{ address: `busy@${dest}` }] });
    // The whole bundle handed over again (at least once): nothing is sent twice.
    await handleOutbox(batchOf(sent as never[], 2), envWith(env, { OUTBOX: retryQueue, OUTBOX_PRIORITY: retryQueue }), loadConfig(env));
    const again = (await receivedAt(port)).flatMap((m) => m.rcptTo).filter((r) => r !== `busy@${dest}`);
    expect(again.length).toBe(11);
  });
});
