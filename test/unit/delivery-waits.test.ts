/** Which postponements become visible waits, their text, and that a job announces a wait once (src/delivery/waits.ts). */
import { describe, expect, it } from "vitest";
import type { DeliveryJob } from "../../src/queue/job";
import { announceWait, waitFromPostponement, waitText } from "../../src/delivery/waits";

const NOW = Date.UTC(2026, 11, 6, 1, 0, 0);

/** A D1 stand-in that only records the statements it is asked to prepare (announceWait does not run them). */
function recordingDb(): { db: D1Database; bound: unknown[][] } {
  const bound: unknown[][] = [];
  const db = { prepare: () => ({ bind: (...args: unknown[]) => (bound.push(args), { args }) }) } as unknown as D1Database;
  return { db, bound };
}

const job = (extra: Partial<DeliveryJob> = {}): DeliveryJob => ({
  v: 1,
  messageId: "m1",
  tenantId: "t1",
  mailFrom: "a@b.example",
  recipients: [
    { idx: 0, address: "x@d.example" },
    { idx: 2, address: "y@d.example" },
  ],
  destination: "d.example",
  sizeBytes: 10,
  smtputf8: false,
  eightBit: false,
  acceptedAt: NOW - 1000,
  attempt: 0,
  ...extra,
});

describe("waitFromPostponement", () => {
  it("announces circuit open, paused, quota, throttled and stream limits; not pacing or budget", () => {
    expect(waitFromPostponement("upstream:ses: circuit_open", 300_000, NOW)).toEqual({ reason: "circuit_open", scope: "upstream:ses", until: NOW + 300_000 });
    expect(waitFromPostponement("provider:google: paused", 5_000, NOW)?.reason).toBe("paused");
    expect(waitFromPostponement("d.example: quota", 1_000, NOW)?.reason).toBe("quota");
    expect(waitFromPostponement("upstream:x: throttled", 60_000, NOW)?.reason).toBe("throttled");
    expect(waitFromPostponement("tenant broadcast stream: daily quota used", 3_600_000, NOW)).toEqual({ reason: "stream_quota", scope: "broadcast stream", until: NOW + 3_600_000 });
    expect(waitFromPostponement("tenant broadcast stream: rate limit", 120_000, NOW)?.reason).toBe("stream_rate");
    for (const why of ["tenant broadcast stream: rate limit", "upstream:x: busy", "upstream:x: rate", "invocation time budget used", "connection failed", "not reached in this invocation", ""]) {
      expect(waitFromPostponement(why, 1_000, NOW), why).toBeNull();
    }
  });

  it("a wait longer than 30 days has no time: until an operator acts", () => {
    const w = waitFromPostponement("upstream:x: paused", 40 * 24 * 3600_000, NOW)!;
    expect(w.until).toBeNull();
    expect(waitText(w)).toBe("waiting: delivery through upstream:x is paused after it asked to slow down; next try when an operator resumes it");
  });
});

describe("announceWait", () => {
  it("writes one event per recipient with reason and next try, and marks the job", () => {
    const { db, bound } = recordingDb();
    const w = waitFromPostponement("upstream:ses: circuit_open", 300_000, NOW);
    const out = announceWait(db, job(), w, NOW);
    // Per recipient: the event, and its entry in the message's log (the ledger's timeline, issue 16).
    expect(out.statements).toHaveLength(4);
    const events = bound.filter((b) => b.length > 10);
    const text = "waiting: upstream:ses refused repeated connections, so its circuit is open; next try at 2026-12-06T01:05:00.000Z";
    expect(events.map((b) => [b[2], b[3], b[4], b[9]])).toEqual([
      [0, "x@d.example", "waiting", text],
      [2, "y@d.example", "waiting", text],
    ]);
    expect(JSON.parse(events[0]![14] as string)).toEqual({ reason: "circuit_open", scope: "upstream:ses", next_try_at: "2026-12-06T01:05:00.000Z" });
    expect(out.job.waiting).toEqual({ key: "circuit_open|upstream:ses", until: NOW + 300_000 });
  });

  it("writes nothing again for the same wait before its end; again after it or for another reason", () => {
    const { db } = recordingDb();
    const marked = announceWait(db, job(), waitFromPostponement("upstream:ses: circuit_open", 300_000, NOW), NOW).job;
    expect(announceWait(db, marked, waitFromPostponement("upstream:ses: circuit_open", 240_000, NOW + 60_000), NOW + 60_000).statements).toHaveLength(0);
    expect(announceWait(db, marked, waitFromPostponement("upstream:ses: circuit_open", 300_000, NOW + 301_000), NOW + 301_000).statements).toHaveLength(4);
    expect(announceWait(db, marked, waitFromPostponement("upstream:ses: quota", 300_000, NOW + 60_000), NOW + 60_000).statements).toHaveLength(4);
    expect(announceWait(db, marked, null, NOW).statements).toHaveLength(0);
  });
});
