/**
 * Adaptive backoff: a destination that answers 421 4.7.0 "try again in 3 seconds" is paused for the time it
 * names and slowed down, while another destination keeps flowing. The servers' own timestamps show it.
 */
import { describe, expect, it } from "vitest";
import { addRoute, eventRows, gateState, sendMany, smtpStats, waitAllFinal } from "../support/delivery-helpers";
import { createTenantWithKey, startSmtp, unique } from "./helpers";

const PER_DESTINATION = 20;
const RATE = 20;
const HINT_SECONDS = 3;

describe("421 backoff", () => {
  it("pauses and slows the throttling destination while the other keeps flowing", async () => {
    const throttling = await startSmtp({
      rules: [{ stage: "mail", code: 421, message: `4.7.0 Too many messages from you, try again in ${HINT_SECONDS} seconds`, times: 1 }],
    });
    const healthy = await startSmtp();
    const slow = `${unique("thr")}.example`;
    const fine = `${unique("ok")}.example`;
    const slowName = unique("thr");
    // The configured pause (60 s) is far longer than the server's hint: only honouring the hint explains a 3 s pause.
    await addRoute({
      match_recipient_domain: slow,
      next_hop_url: `smtp://127.0.0.1:${throttling}`,
      name: slowName,
      policy: { ratePerSecond: RATE, burst: 1, maxConnections: 1, maxMessagesPerConnection: 10, backoffPauseSeconds: 60 },
    });
    await addRoute({ match_recipient_domain: fine, next_hop_url: `smtp://127.0.0.1:${healthy}`, policy: { ratePerSecond: RATE, burst: 1 } });
    const fromDomain = `${unique("f")}.example`;
    const { key } = await createTenantWithKey([fromDomain]);
    const items = Array.from({ length: PER_DESTINATION }, (_, i) => [
      { from: `app@${fromDomain}`, to: [`s${i}@${slow}`], subject: `slow ${i}` },
      { from: `app@${fromDomain}`, to: [`f${i}@${fine}`], subject: `fine ${i}` },
    ]).flat();
    const ids = await sendMany(key, items);
    const rows = await waitAllFinal(ids, 60_000);
    expect(rows.every((r) => r.status === "delivered")).toBe(true);

    const events = await eventRows(ids);
    const deferred = events.filter((e) => e.type === "deferred");
    expect(deferred).toHaveLength(1);
    // smtp-server puts its own enhanced code (4.4.2 for 421) before the scripted text.
    expect(deferred[0]).toMatchObject({ code: 421 });
    expect(deferred[0]!.text).toContain("4.7.0 Too many messages");
    expect(deferred[0]!.recipient).toContain(slow);

    const gate = await gateState(`upstream:${slowName}`);
    expect((gate.totals as { throttles: number }).throttles).toBe(1);
    expect((gate.lastThrottle as { text: string }).text).toContain(`try again in ${HINT_SECONDS} seconds`);
    expect(gate.rateFactor as number).toBeLessThan(1);

    const s = await smtpStats(throttling);
    const h = await smtpStats(healthy);
    const t421 = s.mailTimes[0]!;
    const after = s.mailTimes.slice(1);
    const pauseMs = Math.min(...after) - t421;
    const gaps = after.slice(1).map((t, i) => t - after[i]!);
    const meanGapMs = gaps.reduce((a, b) => a + b, 0) / gaps.length;
    const duringPause = h.mailTimes.filter((t) => t > t421 && t < t421 + HINT_SECONDS * 1000).length;
    console.log(
      `backoff: first MAIL after the 421 came ${pauseMs} ms later (hint ${HINT_SECONDS} s); mean gap afterwards ${meanGapMs.toFixed(0)} ms ` +
        `(configured ${1000 / RATE} ms); the healthy destination took ${duringPause} of its ${h.mailTimes.length} messages during the pause; ` +
        `gate rate factor now ${gate.rateFactor}`,
    );
    expect(pauseMs).toBeGreaterThanOrEqual(HINT_SECONDS * 1000 - 50);
    // Slowed: after a throttle the gate runs at half the rate (restoring a step per good connection).
    expect(meanGapMs).toBeGreaterThan(1000 / RATE);
    expect(duringPause).toBeGreaterThan(0);
  });
});
