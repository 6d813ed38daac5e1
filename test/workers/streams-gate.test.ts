/**
 * The DomainGate's stream rules, called directly over RPC (issue 12): broadcast never holds the last connection nor
 * send times far ahead, transactional goes ahead of it, and broadcast keeps its reserved share while both want the
 * destination.
 */
import { describe, expect, it } from "vitest";
import { DEFAULT_GATE_POLICY, mergePolicy } from "../../src/gate/policy";
import type { PermitRequest } from "../../src/gate/domain-gate";
import { env, unique } from "./helpers";

const policy = mergePolicy(DEFAULT_GATE_POLICY, { ratePerSecond: 20, burst: 1, maxConnections: 2, maxMessagesPerConnection: 100 });
const req = (stream: "transactional" | "broadcast", over: Partial<PermitRequest> = {}): PermitRequest => ({
  policy,
  messages: 100,
  holder: `test-${stream}`,
  maxWaitMs: 0,
  horizonMs: 20_000,
  leaseMs: 60_000,
  stream,
  broadcastShare: 0.15,
  ...over,
});

function gate(key: string) {
  return env.DOMAIN_GATE.get(env.DOMAIN_GATE.idFromName(key));
}

describe("DomainGate stream priority", () => {
  it("keeps the last connection and the near future for transactional mail", async () => {
    const key = unique("gate");
    const g = gate(key);
    const t0 = Date.now();
    const b1 = await g.acquire(key, req("broadcast"));
    // Broadcast: send times only up to 600 ms ahead (12 at 20/s, spaced for 97 % of it), not the 20 s asked for.
    expect(b1.granted).toBeGreaterThan(0);
    expect(b1.granted).toBeLessThanOrEqual(13);
    expect(Math.max(...b1.slots) - t0).toBeLessThanOrEqual(700);
    // A second broadcast connection would take the last one: refused.
    const b2 = await g.acquire(key, req("broadcast"));
    expect(b2).toMatchObject({ granted: 0, reason: "busy" });
    // Transactional gets it, its first send time right after broadcast's short reservation, and only a short way
    // ahead itself now that broadcast wants the destination too.
    let t1 = await g.acquire(key, req("transactional"));
    if (!t1.granted) {
      // Broadcast's reservation reaches past transactional's short horizon: "ask again in a moment", not later.
      expect(t1).toMatchObject({ reason: "rate" });
      expect(t1.retryAfterMs).toBeLessThanOrEqual(400);
      await new Promise((r) => setTimeout(r, t1.retryAfterMs));
      t1 = await g.acquire(key, req("transactional"));
    }
    expect(t1.granted).toBeGreaterThan(0);
    expect(t1.slots[0]! - t0).toBeLessThanOrEqual(700);
    expect(Math.max(...t1.slots) - Date.now()).toBeLessThanOrEqual(1100);
    const state = await g.state();
    expect(state.streams.broadcast).toMatchObject({ active: true, activeConnections: 1 });
    expect(state.streams.transactional).toMatchObject({ active: true, activeConnections: 1 });
    console.log(`gate: broadcast ${b1.granted} times up to ${Math.max(...b1.slots) - t0} ms ahead; transactional first time ${t1.slots[0]! - t0} ms after the start`);
    await g.release({ leaseId: b1.leaseId, delivered: 0, unused: 0, usedUntil: 0 });
    await g.release({ leaseId: t1.leaseId, delivered: 0, unused: 0, usedUntil: 0 });
  });

  it("holds broadcast to its reserved share while transactional mail wants the destination", async () => {
    const key = unique("gate");
    const g = gate(key);
    const b = await g.acquire(key, req("broadcast", { messages: 1 }));
    const t = await g.acquire(key, req("transactional", { messages: 1 }));
    expect(b.granted + t.granted).toBe(2);
    // Both streams keep asking for more for 3 s; count the send times each gets.
    const counts = { transactional: 0, broadcast: 0 };
    const end = Date.now() + 3000;
    const ask = async (stream: "transactional" | "broadcast", leaseId: string) => {
      while (Date.now() < end) {
        const p = await g.more(leaseId, 100, 20_000);
        counts[stream] += p.granted;
        await new Promise((r) => setTimeout(r, p.granted ? Math.max(0, Math.max(...p.slots) - Date.now()) : Math.min(p.retryAfterMs, 200)));
      }
    };
    await Promise.all([ask("transactional", t.leaseId), ask("broadcast", b.leaseId)]);
    const share = counts.broadcast / (counts.broadcast + counts.transactional);
    console.log(`gate: over 3 s at 20/s, transactional ${counts.transactional} and broadcast ${counts.broadcast} send times (${(share * 100).toFixed(0)} % broadcast)`);
    expect(counts.broadcast).toBeGreaterThan(0);
    expect(share).toBeGreaterThan(0.05);
    expect(share).toBeLessThan(0.3);
    // Together never more than the rate: 3 s at 20/s (spaced for 97 %) plus the reservations made at the end.
    expect(counts.transactional + counts.broadcast).toBeLessThanOrEqual(3 * 20 + 20);
  });
});
