/**
 * Chaos: 2,000 messages through a server that answers 4xx at random (MAIL and RCPT), drops connections in the
 * middle of DATA, and rejects some recipients with 5xx. Every accepted recipient must end in exactly one final
 * state, every `delivered` recipient must be at the server (loss = 0); duplicates (allowed: at-least-once) are
 * counted and printed.
 */
import { describe, expect, it } from "vitest";
import { addRoute, eventRows, FINAL, recipientRows, sendMany, smtpStats, waitAllFinal } from "../support/delivery-helpers";
import { createTenantWithKey, receivedAt, startSmtp, unique } from "./helpers";

const MESSAGES = 2000;
/** Every 20th recipient does not exist (550 5.1.1). */
const BAD_EVERY = 20;

describe("chaos", () => {
  it(`loses none of ${MESSAGES} messages to a misbehaving server`, { timeout: 170_000 }, async () => {
    const port = await startSmtp({
      seed: 4242,
      rules: [
        { stage: "mail", probability: 0.05, code: 451, message: "4.3.2 system busy, come back" },
        { stage: "rcpt", match: "bad", code: 550, message: "5.1.1 unknown user" },
        { stage: "rcpt", probability: 0.05, code: 450, message: "4.2.1 mailbox busy" },
        { stage: "data", probability: 0.03, drop: true },
        { stage: "data", probability: 0.02, code: 452, message: "4.3.1 insufficient storage" },
      ],
    });
    const dest = `${unique("chaos")}.example`;
    await addRoute({
      match_recipient_domain: dest,
      next_hop_url: `smtp://127.0.0.1:${port}`,
      policy: { ratePerSecond: 1000, burst: 100, maxConnections: 6, maxMessagesPerConnection: 50 },
      retry_schedule_seconds: [1],
    });
    const fromDomain = `${unique("f")}.example`;
    const { key } = await createTenantWithKey([fromDomain]);
    const address = (i: number) => (i % BAD_EVERY === 0 ? `bad${i}@${dest}` : `user${i}@${dest}`);
    const started = Date.now();
    const ids = await sendMany(
      key,
      Array.from({ length: MESSAGES }, (_, i) => ({ from: `app@${fromDomain}`, to: [address(i)], subject: `chaos ${i}` })),
      24,
    );
    const acceptedMs = Date.now() - started;
    const rows = await waitAllFinal(ids, 150_000, "every chaos recipient final");
    const elapsedMs = Date.now() - started;

    // Exactly one final state per accepted recipient.
    expect(rows).toHaveLength(MESSAGES);
    expect(rows.every((r) => FINAL.has(r.status))).toBe(true);
    const byStatus = new Map<string, number>();
    for (const r of rows) byStatus.set(r.status, (byStatus.get(r.status) ?? 0) + 1);
    const bad = rows.filter((r) => r.address.startsWith("bad"));
    expect(bad.every((r) => r.status === "bounced" && r.last_code === 550)).toBe(true);
    expect(rows.filter((r) => !r.address.startsWith("bad")).every((r) => r.status === "delivered")).toBe(true);

    // Every delivered recipient is at the server; count duplicates.
    const received = await receivedAt(port);
    const copies = new Map<string, number>();
    for (const m of received) for (const a of m.rcptTo) copies.set(a, (copies.get(a) ?? 0) + 1);
    const delivered = rows.filter((r) => r.status === "delivered");
    const lost = delivered.filter((r) => !copies.has(r.address));
    const duplicates = [...copies.values()].filter((n) => n > 1).reduce((s, n) => s + n - 1, 0);
    const bouncedAtServer = bad.filter((r) => copies.has(r.address));

    const events = await eventRows(ids);
    const finalEvents = new Map<string, number>();
    for (const e of events) if (e.recipient && FINAL.has(e.type)) finalEvents.set(e.recipient, (finalEvents.get(e.recipient) ?? 0) + 1);
    const multiFinal = [...finalEvents.values()].filter((n) => n > 1).length;
    const deferrals = events.filter((e) => e.type === "deferred").length;
    const maxAttempts = Math.max(...rows.map((r) => r.attempts));
    const stats = await smtpStats(port);
    console.log(
      `chaos: ${MESSAGES} messages accepted in ${(acceptedMs / 1000).toFixed(1)} s, all final after ${(elapsedMs / 1000).toFixed(1)} s; ` +
        `${JSON.stringify(Object.fromEntries(byStatus))}; ${deferrals} deferrals, max ${maxAttempts} attempts; ` +
        `${stats.connections.length} connections, ${stats.mailTimes.length} MAIL commands; ` +
        `lost ${lost.length}, duplicates at the server ${duplicates}, recipients with more than one final event ${multiFinal}`,
    );
    expect(lost).toHaveLength(0);
    expect(bouncedAtServer).toHaveLength(0);
    expect(deferrals).toBeGreaterThan(0);
    // Each recipient's recorded state agrees with a final event in its timeline.
    expect(finalEvents.size).toBe(MESSAGES);
    const again = await recipientRows(ids);
    expect(again.map((r) => r.status)).toEqual(rows.map((r) => r.status));
  });
});
