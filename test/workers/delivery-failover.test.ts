/** Upstream relay failover: the first upstream refuses connections, mail flows through the second. */
import { describe, expect, it } from "vitest";
import { addRoute, eventRows, gateState, sendMany, waitAllFinal } from "../support/delivery-helpers";
import { call, createTenantWithKey, env, receivedAt, startSmtp, unique, waitFor } from "./helpers";

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

  it("streams a body kept in R2 (larger than a queue message) to the next hop", async () => {
    const port = await startSmtp();
    const dest = `${unique("big")}.example`;
    await addRoute({ match_recipient_domain: dest, next_hop_url: `smtp://127.0.0.1:${port}` });
    const fromDomain = `${unique("f")}.example`;
    const { key } = await createTenantWithKey([fromDomain]);
    const line = "The quick brown fox jumps over the lazy dog. 0123456789\n";
    const text = line.repeat(4000) + ".a line starting with a dot\nend\n";
    const r = await call("/v1/messages", { method: "POST", key, json: { from: `app@${fromDomain}`, to: [`big@${dest}`], subject: "large", text } });
    expect(r.status).toBe(202);
    const { id } = (await r.json()) as { id: string };
    const [row] = await waitAllFinal([id], 30_000);
    expect(row!.status).toBe("delivered");
    const m = (await receivedAt(port)).find((x) => x.rcptTo.includes(`big@${dest}`))!;
    expect(m.raw.length).toBeGreaterThan(200_000);
    expect(m.raw.split("The quick brown fox").length - 1).toBe(4000);
    expect(m.raw).toContain("\r\n.a line starting with a dot\r\nend");
    // Every recipient is final, so the body is gone from R2.
    const { body_key } = (await env.DB.prepare("SELECT body_key FROM messages WHERE id = ?").bind(id).first<{ body_key: string }>())!;
    expect(body_key).toBeTruthy();
    await waitFor(async () => ((await env.BODIES.head(body_key)) === null ? true : undefined), 10_000, "the R2 body to be deleted");
    console.log(`large body: ${m.raw.length} bytes streamed from R2`);
  });

  it("moves to the next upstream when the preferred one's daily quota is used up", async () => {
    const port1 = await startSmtp();
    const port2 = await startSmtp();
    const dest = `${unique("quota")}.example`;
    const up1 = unique("quota1");
    await addRoute({ match_recipient_domain: dest, next_hop_url: `smtp://127.0.0.1:${port1}`, name: up1, priority: 10, policy: { quotaPerDay: 3 } });
    await addRoute({ match_recipient_domain: dest, next_hop_url: `smtp://127.0.0.1:${port2}`, name: unique("quota2"), priority: 20 });
    const fromDomain = `${unique("f")}.example`;
    const { key } = await createTenantWithKey([fromDomain]);
    const ids = await sendMany(key, Array.from({ length: 8 }, (_, i) => ({ from: `app@${fromDomain}`, to: [`q${i}@${dest}`], subject: `quota ${i}` })));
    const rows = await waitAllFinal(ids, 30_000);
    expect(rows.every((r) => r.status === "delivered")).toBe(true);
    const first = (await receivedAt(port1)).filter((m) => m.rcptTo.some((a) => a.endsWith(dest)));
    const second = (await receivedAt(port2)).filter((m) => m.rcptTo.some((a) => a.endsWith(dest)));
    expect(first).toHaveLength(3);
    expect(second).toHaveLength(5);
    expect((await gateState(`upstream:${up1}`)).quotaUsedToday).toBe(3);
  });

  it("authenticates to an upstream with credentials taken from SMTP_* secrets", async () => {
    const port = await startSmtp({ auth: { user: "relay-user", pass: "s3cret:with/odd@chars", required: true } });
    const dest = `${unique("auth")}.example`;
    // Plaintext AUTH only because the URL says so (the test server has no certificate workerd would trust).
    await addRoute({ match_recipient_domain: dest, next_hop_url: `smtp://\${SMTP_TEST_USER}:\${SMTP_TEST_PASS}@127.0.0.1:${port}?insecure_auth=1` });
    const fromDomain = `${unique("f")}.example`;
    const { key } = await createTenantWithKey([fromDomain]);
    const [id] = await sendMany(key, [{ from: `app@${fromDomain}`, to: [`a@${dest}`], subject: "auth" }]);
    const [row] = await waitAllFinal([id!], 30_000);
    expect(row!.status).toBe("delivered");
    const m = (await receivedAt(port)).find((x) => x.rcptTo.includes(`a@${dest}`))!;
    expect(m.authUser).toBe("relay-user");
  });
});
