/**
 * Rate conformance: 300 messages to one destination limited to N messages per second and C connections. The
 * receiving server's own timestamps (MAIL FROM times, connection open/close) show the limits held.
 */
import { describe, expect, it } from "vitest";
import { addRoute, eventRows, gateState, maxConcurrent, maxInWindow, sendMany, smtpStats, waitAllFinal } from "../support/delivery-helpers";
import { createTenantWithKey, receivedAt, startSmtp, unique } from "./helpers";

const MESSAGES = 300;
const RATE_PER_SECOND = 40;
const BURST = 1;
const CONNECTIONS = 2;
const PER_CONNECTION = 20;

describe("DomainGate rate conformance", () => {
  it(`delivers ${MESSAGES} messages at no more than ${RATE_PER_SECOND}/s over at most ${CONNECTIONS} connections`, async () => {
    const port = await startSmtp();
    const rcptDomain = `${unique("rate")}.example`;
    const name = unique("up");
    await addRoute({
      match_recipient_domain: rcptDomain,
      next_hop_url: `smtp://127.0.0.1:${port}`,
      name,
      policy: { ratePerSecond: RATE_PER_SECOND, burst: BURST, maxConnections: CONNECTIONS, maxMessagesPerConnection: PER_CONNECTION },
    });
    const from = `${unique("f")}.example`;
    const { key } = await createTenantWithKey([from]);
    const started = Date.now();
    const ids = await sendMany(
      key,
      Array.from({ length: MESSAGES }, (_, i) => ({ from: `app@${from}`, to: [`user${i}@${rcptDomain}`], subject: `rate ${i}` })),
    );
    const rows = await waitAllFinal(ids, 120_000, "all rate-test recipients final");
    const elapsedMs = Date.now() - started;

    expect(rows.filter((r) => r.status === "delivered")).toHaveLength(MESSAGES);
    const received = await receivedAt(port);
    const rcpts = new Set(received.flatMap((m) => m.rcptTo));
    for (let i = 0; i < MESSAGES; i++) expect(rcpts.has(`user${i}@${rcptDomain}`)).toBe(true);

    const stats = await smtpStats(port);
    const perSecond = maxInWindow(stats.mailTimes, 1000);
    const perTenth = maxInWindow(stats.mailTimes, 100);
    const concurrent = maxConcurrent(stats.connections);
    const span = (Math.max(...stats.mailTimes) - Math.min(...stats.mailTimes)) / 1000;
    console.log(
      `rate: ${MESSAGES} messages, limit ${RATE_PER_SECOND}/s burst ${BURST}, ${CONNECTIONS} connections x ${PER_CONNECTION}: ` +
        `max ${perSecond} MAIL in any 1 s window, max ${perTenth} in any 100 ms, max ${concurrent} concurrent connections, ` +
        `${stats.connections.length} connections, MAIL span ${span.toFixed(1)} s (${(MESSAGES / span).toFixed(1)}/s), end to end ${(elapsedMs / 1000).toFixed(1)} s`,
    );
    // Token bucket: in any window of length W at most burst + rate * W messages.
    expect(perSecond).toBeLessThanOrEqual(BURST + RATE_PER_SECOND);
    expect(concurrent).toBeLessThanOrEqual(CONNECTIONS);
    // Several messages per connection: far fewer connections than messages.
    expect(stats.connections.length).toBeLessThan(MESSAGES / 2);

    // Every delivery event carries the gate's sequence number, each one distinct.
    const delivered = (await eventRows(ids)).filter((e) => e.type === "delivered");
    expect(delivered).toHaveLength(MESSAGES);
    const seqs = delivered.map((e) => e.seq);
    expect(seqs.every((s) => typeof s === "number" && s > 0)).toBe(true);
    expect(new Set(seqs).size).toBe(MESSAGES);
    expect(delivered.every((e) => e.host === `127.0.0.1:${port}` && e.code === 250 && e.attempt === 1)).toBe(true);

    const state = await gateState(`upstream:${name}`);
    expect(state).toMatchObject({ destination: `upstream:${name}`, activeConnections: 0, circuit: "closed" });
    expect((state.policy as { ratePerSecond: number }).ratePerSecond).toBe(RATE_PER_SECOND);
    expect((state.totals as { delivered: number }).delivered).toBe(MESSAGES);
    expect(state.sequence).toBeGreaterThanOrEqual(MESSAGES);
  });
});
