/**
 * Delivery throughput (issue 16): a batch with many messages for one destination is spread over the connections
 * its policy allows (not carried down one connection because the per-connection limit would fit it), connections
 * that take more work from the line keep to the policy's messages per connection, and retried transactional jobs
 * go back to the queue several per Queue message.
 */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import { handleOutbox } from "../../src/delivery/consumer";
import { laneCount } from "../../src/delivery/lanes";
import { acceptMessage } from "../../src/queue/spool";
import type { DeliveryJob } from "../../src/queue/job";
import { getMessage } from "../../src/store/messages";
import { addRoute, maxConcurrent, smtpStats } from "../support/delivery-helpers";
import { isJobBundle } from "../../src/queue/enqueue";
import { batchOf, capturingQueue, envWith } from "../support/ledger-env";
import { createTenantWithKey, env, receivedAt, startSmtp, unique } from "./helpers";

/** Accepts `count` single-recipient messages to `dest` and returns their ids and delivery jobs (not queued). */
async function acceptFor(tenantId: string, from: string, dest: string, count: number): Promise<{ ids: string[]; jobs: DeliveryJob[] }> {
  const jobs: DeliveryJob[] = [];
  const q = capturingQueue(jobs);
  const ids: string[] = [];
  for (let i = 0; i < count; i++) {
    const to = `l${i}@${dest}`;
    const { id } = await acceptMessage(envWith(env, { OUTBOX: q, OUTBOX_PRIORITY: q }), {
      tenantId, mailFrom: from, headerFrom: from, subject: "lanes", messageIdHeader: `${unique("mid")}@x.example`,
      raw: `From: ${from}\r\nTo: ${to}\r\nSubject: lanes\r\n\r\nhello\r\n`, recipients: [to],
    });
    ids.push(id);
  }
  return { ids, jobs };
}

async function setUp(policy: Record<string, number>, script: Parameters<typeof startSmtp>[0] = {}): Promise<{ port: number; dest: string; tenantId: string; from: string }> {
  const port = await startSmtp(script);
  const dest = `${unique("lanes")}.example`;
  await addRoute({ match_recipient_domain: dest, next_hop_url: `smtp://127.0.0.1:${port}`, name: unique("up"), policy: { ratePerSecond: 100000, burst: 10000, ...policy } });
  const fromDomain = `${unique("f")}.example`;
  const { tenantId } = await createTenantWithKey([fromDomain]);
  return { port, dest, tenantId, from: `a@${fromDomain}` };
}

describe("delivery lanes", () => {
  it("spreads 100 messages for one destination over several connections, within the policy's limit", async () => {
    const { port, dest, tenantId, from } = await setUp({ maxConnections: 4, maxMessagesPerConnection: 1000 });
    const { ids, jobs } = await acceptFor(tenantId, from, dest, 100);
    await handleOutbox(batchOf(jobs), env, loadConfig(env));
    const received = await receivedAt(port);
    expect(received).toHaveLength(100);
    expect(new Set(received.flatMap((m) => m.rcptTo)).size).toBe(100);
    for (const id of ids) expect((await getMessage(env.DB, id, tenantId))!.status).toBe("delivered");
    const { connections } = await smtpStats(port);
    // One connection would fit all 100 (1,000 per connection), but the policy allows 4 at once: they are used.
    expect(maxConcurrent(connections)).toBeGreaterThan(1);
    expect(maxConcurrent(connections)).toBeLessThanOrEqual(4);
  });

  it("plans one connection per 50 messages, within the policy, the invocation's 6, and broadcast's share", () => {
    const open = { maxConnections: 6, maxMessagesPerConnection: 1000 };
    expect(laneCount(open, 500, "transactional")).toBe(6);
    expect(laneCount(open, 120, "transactional")).toBe(2);
    expect(laneCount(open, 49, "transactional")).toBe(1);
    // Broadcast never holds the last connection, so it plans one lane fewer.
    expect(laneCount(open, 500, "broadcast")).toBe(5);
    expect(laneCount({ maxConnections: 1, maxMessagesPerConnection: 50 }, 500, "broadcast")).toBe(1);
    // The per-connection limit still asks for more connections where it needs them.
    expect(laneCount({ maxConnections: 3, maxMessagesPerConnection: 10 }, 25, "transactional")).toBe(3);
    expect(laneCount({ maxConnections: 20, maxMessagesPerConnection: 10 }, 500, "transactional")).toBe(6);
  });

  it("keeps each connection within the policy's messages per connection when connections take more of the line", async () => {
    const { port, dest, tenantId, from } = await setUp({ maxConnections: 2, maxMessagesPerConnection: 10 });
    const { ids, jobs } = await acceptFor(tenantId, from, dest, 45);
    await handleOutbox(batchOf(jobs), env, loadConfig(env));
    const received = await receivedAt(port);
    expect(received).toHaveLength(45);
    for (const id of ids) expect((await getMessage(env.DB, id, tenantId))!.status).toBe("delivered");
    const perSession = new Map<string, number>();
    for (const m of received) perSession.set(m.sessionId, (perSession.get(m.sessionId) ?? 0) + 1);
    expect(Math.max(...perSession.values())).toBeLessThanOrEqual(10);
    expect(maxConcurrent((await smtpStats(port)).connections)).toBeLessThanOrEqual(2);
  });

  it("re-queues deferred transactional jobs of the same delay together, several per Queue message", async () => {
    const busy = { stage: "rcpt" as const, match: "busy", code: 451, message: "4.3.0 mailbox busy, try later" };
    const { port, dest, tenantId, from } = await setUp({ maxConnections: 1, maxMessagesPerConnection: 100 }, { rules: [busy] });
    const jobs: DeliveryJob[] = [];
    const q = capturingQueue(jobs);
    const ids: string[] = [];
    for (let i = 0; i < 6; i++) {
      const to = i % 2 ? `busy${i}@${dest}` : `ok${i}@${dest}`;
      const { id } = await acceptMessage(envWith(env, { OUTBOX: q, OUTBOX_PRIORITY: q }), {
        tenantId, mailFrom: from, headerFrom: from, subject: "retry", messageIdHeader: `${unique("mid")}@x.example`,
        raw: `From: ${from}\r\nTo: ${to}\r\nSubject: retry\r\n\r\nhello\r\n`, recipients: [to],
      });
      ids.push(id);
    }
    const retried: { body: unknown; delaySeconds?: number }[] = [];
    const retryQueue = { send: async (b: unknown) => void retried.push({ body: b }), sendBatch: async (list: Iterable<{ body: unknown; delaySeconds?: number }>) => void retried.push(...list) };
    await handleOutbox(batchOf(jobs), envWith(env, { OUTBOX: retryQueue, OUTBOX_PRIORITY: retryQueue }), loadConfig(env));
    expect((await receivedAt(port)).length).toBe(3);
    // Three deferred jobs with the same retry delay: one Queue message (3 queue operations instead of 9).
    expect(retried).toHaveLength(1);
    const body = retried[0]!.body;
    expect(isJobBundle(body)).toBe(true);
    if (!isJobBundle(body)) return;
    expect(body.bundle.map((j) => j.messageId).sort()).toEqual([ids[1], ids[3], ids[5]].sort());
    expect(body.bundle.every((j) => j.attempt === 1)).toBe(true);
    expect(retried[0]!.delaySeconds).toBeGreaterThan(0);
    // Handed back to the consumer, each job of the bundle is tried on its own; the delivered ones are not sent again.
    await handleOutbox(batchOf([body as never], 2), envWith(env, { OUTBOX: retryQueue, OUTBOX_PRIORITY: retryQueue }), loadConfig(env));
    expect((await receivedAt(port)).length).toBe(3);
    for (const i of [0, 2, 4]) expect((await getMessage(env.DB, ids[i]!, tenantId))!.status).toBe("delivered");
    for (const i of [1, 3, 5]) expect((await getMessage(env.DB, ids[i]!, tenantId))!.status).toBe("deferred");
  });
});
