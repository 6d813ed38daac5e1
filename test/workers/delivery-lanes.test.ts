/**
 * Lanes (issue 16, delivery throughput): a batch with many messages for one destination is spread over the
 * connections its policy allows (not carried down one connection because the per-connection limit would fit it),
 * and connections that take more work from the line keep to the policy's messages per connection.
 */
import { describe, expect, it } from "vitest";
import { handleOutbox } from "../../src/delivery/consumer";
import { acceptMessage } from "../../src/queue/spool";
import type { DeliveryJob } from "../../src/queue/job";
import { getMessage } from "../../src/store/messages";
import { addRoute, maxConcurrent, smtpStats } from "../support/delivery-helpers";
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

async function setUp(policy: Record<string, number>): Promise<{ port: number; dest: string; tenantId: string; from: string }> {
  const port = await startSmtp();
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
    await handleOutbox(batchOf(jobs), env);
    const received = await receivedAt(port);
    expect(received).toHaveLength(100);
    expect(new Set(received.flatMap((m) => m.rcptTo)).size).toBe(100);
    for (const id of ids) expect((await getMessage(env.DB, id, tenantId))!.status).toBe("delivered");
    const { connections } = await smtpStats(port);
    // One connection would fit all 100 (1,000 per connection), but the policy allows 4 at once: they are used.
    expect(maxConcurrent(connections)).toBeGreaterThan(1);
    expect(maxConcurrent(connections)).toBeLessThanOrEqual(4);
  });

  it("keeps each connection within the policy's messages per connection when connections take more of the line", async () => {
    const { port, dest, tenantId, from } = await setUp({ maxConnections: 2, maxMessagesPerConnection: 10 });
    const { ids, jobs } = await acceptFor(tenantId, from, dest, 45);
    await handleOutbox(batchOf(jobs), env);
    const received = await receivedAt(port);
    expect(received).toHaveLength(45);
    for (const id of ids) expect((await getMessage(env.DB, id, tenantId))!.status).toBe("delivered");
    const perSession = new Map<string, number>();
    for (const m of received) perSession.set(m.sessionId, (perSession.get(m.sessionId) ?? 0) + 1);
    expect(Math.max(...perSession.values())).toBeLessThanOrEqual(10);
    expect(maxConcurrent((await smtpStats(port)).connections)).toBeLessThanOrEqual(2);
  });
});
