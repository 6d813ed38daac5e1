/** Upstream relay failover: the first upstream refuses connections, mail flows through the second. */
import { describe, expect, it } from "vitest";
import { addRoute, eventRows, gateState, sendMany, waitAllFinal } from "../support/delivery-helpers";
import { createTenantWithKey, receivedAt, startSmtp, unique } from "./helpers";

describe("upstream failover", () => {
  it("sends through the next upstream when the preferred one refuses connections", async () => {
    const port = await startSmtp();
    const dest = `${unique("fo")}.example`;
    const up1 = unique("dead");
    const up2 = unique("live");
    // 127.0.0.2: nothing listens there on this port, so the connection is refused.
    await addRoute({ match_recipient_domain: dest, next_hop_url: `smtp://127.0.0.2:${port}`, name: up1, priority: 10 });
    await addRoute({ match_recipient_domain: dest, next_hop_url: `smtp://127.0.0.1:${port}`, name: up2, priority: 20 });
    const fromDomain = `${unique("f")}.example`;
    const { key } = await createTenantWithKey([fromDomain]);
    const ids = await sendMany(
      key,
      Array.from({ length: 10 }, (_, i) => ({ from: `app@${fromDomain}`, to: [`u${i}@${dest}`], subject: `failover ${i}` })),
    );
    const rows = await waitAllFinal(ids, 30_000);
    expect(rows.every((r) => r.status === "delivered" && r.attempts === 1)).toBe(true);
    const delivered = (await eventRows(ids)).filter((e) => e.type === "delivered");
    expect(delivered.every((e) => e.host === `127.0.0.1:${port}`)).toBe(true);
    expect(new Set((await receivedAt(port)).flatMap((m) => m.rcptTo).filter((a) => a.endsWith(dest))).size).toBe(10);

    const dead = await gateState(`upstream:${up1}`);
    const live = await gateState(`upstream:${up2}`);
    expect((dead.totals as { connectionFailures: number }).connectionFailures).toBeGreaterThanOrEqual(1);
    expect((live.totals as { delivered: number }).delivered).toBe(10);
    console.log(`failover: ${(dead.totals as { connectionFailures: number }).connectionFailures} refused connections at ${up1}, 10 delivered through ${up2}`);
  });
});
