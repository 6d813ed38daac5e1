/**
 * DomainGate admin API and circuit breaker: consecutive connection failures open the circuit (no more
 * connection attempts, jobs wait in the queue), the state is readable and resettable by an admin, policy
 * overrides are validated, and the endpoints need the admin token. Also: a job due later than now (the hops of
 * a delay longer than a Queue allows) waits for its due time.
 */
import { describe, expect, it } from "vitest";
import type { DeliveryJob } from "../../src/queue/job";
import { insertMessage } from "../../src/store/messages";
import { addRoute, eventRows, gateState, newMessage, recipientRows, waitAllFinal } from "../support/delivery-helpers";
import { ADMIN_TOKEN, call, createTenantWithKey, env, receivedAt, startSmtp, unique, waitFor } from "./helpers";

describe("DomainGate circuit and admin API", () => {
  it("opens the circuit after consecutive connection failures, then an admin reset lets mail through", async () => {
    const port = await startSmtp();
    const dest = `${unique("cb")}.example`;
    const name = unique("cb");
    // Nothing listens on 127.0.0.2: every connection is refused.
    const routeId = await addRoute({
      match_recipient_domain: dest,
      next_hop_url: `smtp://127.0.0.2:${port}`,
      name,
      policy: { circuitFailures: 2, circuitOpenSeconds: 600 },
      retry_schedule_seconds: [1],
    });
    const fromDomain = `${unique("f")}.example`;
    const { key } = await createTenantWithKey([fromDomain]);
    const r = await call("/v1/messages", { method: "POST", key, json: { from: `app@${fromDomain}`, to: [`x@${dest}`], subject: "circuit", text: "x" } });
    const { id } = (await r.json()) as { id: string };

    const open = await waitFor(async () => {
      const s = await gateState(`upstream:${name}`);
      return s.circuit === "open" ? s : undefined;
    }, 30_000, "the circuit to open");
    expect(open.consecutiveConnectionFailures).toBe(2);
    expect(typeof open.circuitOpenUntil).toBe("string");
    // While open, the recipient waits (deferred twice, then no further attempts are made).
    await new Promise((res) => setTimeout(res, 2500));
    const [row] = await recipientRows([id]);
    expect(row).toMatchObject({ status: "deferred", attempts: 2 });
    expect((await eventRows([id])).filter((e) => e.type === "deferred").every((e) => e.text?.includes("connection failed"))).toBe(true);

    // The operator fixes the route and resets the gate; the mail goes out.
    await env.DB.prepare("UPDATE routes SET next_hop_url = ? WHERE id = ?").bind(`smtp://127.0.0.1:${port}`, routeId).run();
    const reset = await call(`/admin/gates/${encodeURIComponent(`upstream:${name}`)}/reset`, { method: "POST", key: ADMIN_TOKEN });
    expect(reset.status).toBe(200);
    expect(await reset.json()).toMatchObject({ circuit: "closed", consecutiveConnectionFailures: 0 });
    const [done] = await waitAllFinal([id], 60_000, "delivery after the reset");
    expect(done!.status).toBe("delivered");
    expect((await receivedAt(port)).some((m) => m.rcptTo.includes(`x@${dest}`))).toBe(true);
  });

  it("sets, validates and clears a destination's policy override", async () => {
    const dest = `${unique("pol")}.example`;
    const put = await call(`/admin/gates/${dest}/policy`, { method: "PUT", key: ADMIN_TOKEN, json: { ratePerSecond: 2, maxConnections: 1 } });
    expect(put.status).toBe(200);
    const state = (await put.json()) as { override: unknown; policy: { ratePerSecond: number; maxConnections: number } };
    expect(state.override).toEqual({ ratePerSecond: 2, maxConnections: 1 });
    expect(state.policy).toMatchObject({ ratePerSecond: 2, maxConnections: 1 });
    const bad = await call(`/admin/gates/${dest}/policy`, { method: "PUT", key: ADMIN_TOKEN, json: { ratePerSecond: -1 } });
    expect(bad.status).toBe(400);
    expect(await bad.json()).toMatchObject({ error: { code: "invalid_field", field: "policy" } });
    const unknown = await call(`/admin/gates/${dest}/policy`, { method: "PUT", key: ADMIN_TOKEN, json: { speed: 3 } });
    expect(unknown.status).toBe(400);
    const cleared = await call(`/admin/gates/${dest}/policy`, { method: "PUT", key: ADMIN_TOKEN, json: null });
    expect(((await cleared.json()) as { override: unknown }).override).toBeNull();
  });

  it("refuses gate and route admin calls without the admin token, and bad route input", async () => {
    expect((await call("/admin/gates/example.com")).status).toBe(401);
    expect((await call("/admin/gates/example.com", { key: "er_not-admin" })).status).toBe(401);
    expect((await call("/admin/routes", { method: "POST", json: { match_recipient_domain: "a.example", next_hop_url: "mx:" } })).status).toBe(401);
    const badKey = await call("/admin/gates/not%20a%20key", { key: ADMIN_TOKEN });
    expect(badKey.status).toBe(400);
    const secret = await call("/admin/routes", {
      method: "POST",
      key: ADMIN_TOKEN,
      json: { match_recipient_domain: "a.example", next_hop_url: "smtps://${ADMIN_TOKEN}:x@evil.example:465" },
    });
    expect(secret.status).toBe(400);
    expect(await secret.json()).toMatchObject({ error: { code: "invalid_field", field: "next_hop_url" } });
    const policy = await call("/admin/routes", { method: "POST", key: ADMIN_TOKEN, json: { match_recipient_domain: "a.example", next_hop_url: "mx:", policy: { burst: 0 } } });
    expect(policy.status).toBe(400);
    const list = await call("/admin/routes", { key: ADMIN_TOKEN });
    expect(list.status).toBe(200);
  });
});

describe("jobs due later", () => {
  it("waits for a job's due time (delays beyond the Queues limit are made of several hops)", async () => {
    const port = await startSmtp();
    const dest = `${unique("due")}.example`;
    await addRoute({ match_recipient_domain: dest, next_hop_url: `smtp://127.0.0.1:${port}` });
    const { tenantId } = await createTenantWithKey([`${unique("f")}.example`]);
    const id = unique("msg");
    const now = Date.now();
    const raw = `From: a@x.example\r\nTo: u@${dest}\r\nSubject: due later\r\nMessage-ID: <${id}@x.example>\r\n\r\nlater\r\n`;
    await env.DB.batch(
      insertMessage(env.DB, newMessage({ id, tenantId, subject: "due later", sizeBytes: raw.length, createdAt: now, recipients: [{ idx: 0, address: `u@${dest}`, domain: dest, status: "queued" }] })),
    );
    const dueAt = now + 3000;
    const job: DeliveryJob = { v: 1, messageId: id, tenantId, mailFrom: "a@x.example", recipients: [{ idx: 0, address: `u@${dest}` }], destination: dest, body: raw, sizeBytes: raw.length, smtputf8: false, eightBit: false, acceptedAt: now, attempt: 0, dueAt };
    await env.OUTBOX.send(job, { contentType: "json" });
    const [row] = await waitAllFinal([id], 30_000);
    expect(row!.status).toBe("delivered");
    const arrived = (await receivedAt(port)).find((m) => m.rcptTo.includes(`u@${dest}`))!;
    console.log(`due: delivered ${arrived.receivedAt - dueAt} ms after the due time`);
    expect(arrived.receivedAt).toBeGreaterThanOrEqual(dueAt - 1000);
  });
});
