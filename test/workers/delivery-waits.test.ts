/**
 * Visible waits (issue 22): a recipient the relay holds back without trying it shows a `waiting` event with the
 * reason and the time of the next try — once per wait, not once per look — for an open circuit, a used-up
 * stream quota and a paused stream.
 */
import { describe, expect, it } from "vitest";
import { addRoute, eventRows, gateState, recipientRows } from "../support/delivery-helpers";
import { ADMIN_TOKEN, call, createTenantWithKey, receivedAt, startSmtp, unique, waitFor } from "./helpers";

type MessageView = { recipients: { address: string; status: string }[]; events: { type: string; text: string | null; recipient: string | null }[] };

async function send(key: string, json: Record<string, unknown>): Promise<string> {
  const r = await call("/v1/messages", { method: "POST", key, json: { text: "x", ...json } });
  if (r.status !== 202) throw new Error(`send: ${r.status} ${await r.text()}`);
  return ((await r.json()) as { id: string }).id;
}

async function view(key: string, id: string): Promise<MessageView> {
  return (await (await call(`/v1/messages/${id}`, { key })).json()) as MessageView;
}

const NEXT_TRY = /next try at (\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z)$/;

describe("waits the relay imposes show on the recipient", () => {
  it("circuit open: after five refused connections a new message shows why it waits and until when", async () => {
    const port = await startSmtp();
    const dest = `${unique("wait")}.example`;
    const name = unique("dead");
    // Nothing listens on 127.0.0.2: every connection is refused. Default policy: 5 failures open it for 300 s.
    await addRoute({ match_recipient_domain: dest, next_hop_url: `smtp://127.0.0.2:${port}`, name, retry_schedule_seconds: [1] });
    const fromDomain = `${unique("f")}.example`;
    const { key } = await createTenantWithKey([fromDomain]);
    const first = await send(key, { from: `app@${fromDomain}`, to: [`a@${dest}`], subject: "opens the circuit" });
    const open = await waitFor(async () => {
      const s = await gateState(`upstream:${name}`);
      return s.circuit === "open" ? s : undefined;
    }, 45_000, "the circuit to open");
    expect(open.consecutiveConnectionFailures).toBe(5);
    const openUntil = Date.parse(open.circuitOpenUntil as string);

    const second = await send(key, { from: `app@${fromDomain}`, to: [`b@${dest}`], subject: "arrives while open" });
    const waiting = await waitFor(async () => (await view(key, second)).events.find((e) => e.type === "waiting"), 20_000, "a waiting event");
    expect(waiting.recipient).toBe(`b@${dest}`);
    expect(waiting.text).toMatch(new RegExp(`^waiting: upstream:${name} refused repeated connections, so its circuit is open; next try at `));
    const nextTry = Date.parse(NEXT_TRY.exec(waiting.text!)![1]!);
    expect(Math.abs(nextTry - openUntil)).toBeLessThan(2_000);
    // The job looks again every second (the route's first retry step) but the wait is announced once.
    await new Promise((r) => setTimeout(r, 3_000));
    const events = (await eventRows([second])).filter((e) => e.type === "waiting");
    expect(events).toHaveLength(1);
    const [row] = await recipientRows([second]);
    expect(row).toMatchObject({ status: "queued", attempts: 0 });
    // The message that opened the circuit waits too, and says so.
    expect((await eventRows([first])).some((e) => e.type === "waiting" && e.text?.includes("circuit is open"))).toBe(true);
  });

  it("stream quota used: the message over the quota says so, with the time of the next try", async () => {
    const port = await startSmtp();
    const dest = `${unique("q")}.example`;
    await addRoute({ match_recipient_domain: dest, next_hop_url: `smtp://127.0.0.1:${port}`, name: unique("q") });
    const fromDomain = `${unique("f")}.example`;
    const { tenantId, key } = await createTenantWithKey([fromDomain]);
    const put = await call(`/admin/tenants/${tenantId}/streams/broadcast`, { method: "PUT", key: ADMIN_TOKEN, json: { quota_per_day: 1 } });
    expect(put.status).toBe(200);
    const ok = await send(key, { from: `news@${fromDomain}`, to: [`one@${dest}`], subject: "within quota", stream: "broadcast" });
    await waitFor(async () => ((await recipientRows([ok]))[0]!.status === "delivered" ? true : undefined), 20_000, "the first to be delivered");
    const over = await send(key, { from: `news@${fromDomain}`, to: [`two@${dest}`], subject: "over quota", stream: "broadcast" });
    const waiting = await waitFor(async () => (await view(key, over)).events.find((e) => e.type === "waiting"), 20_000, "a waiting event");
    expect(waiting.text).toMatch(/^waiting: the tenant's broadcast stream used its daily quota; next try at /);
    const nextTry = Date.parse(NEXT_TRY.exec(waiting.text!)![1]!);
    const midnight = new Date();
    midnight.setUTCHours(24, 0, 0, 0);
    expect(Math.abs(nextTry - midnight.getTime())).toBeLessThan(5_000);
    expect((await receivedAt(port)).length).toBe(1);
  });

  it("stream paused: a parked message says it waits for the operator", async () => {
    const port = await startSmtp();
    const dest = `${unique("p")}.example`;
    await addRoute({ match_recipient_domain: dest, next_hop_url: `smtp://127.0.0.1:${port}`, name: unique("p") });
    const fromDomain = `${unique("f")}.example`;
    const { tenantId, key } = await createTenantWithKey([fromDomain]);
    expect((await call(`/admin/tenants/${tenantId}/streams/broadcast/pause`, { method: "POST", key: ADMIN_TOKEN })).status).toBe(200);
    const id = await send(key, { from: `news@${fromDomain}`, to: [`p@${dest}`], subject: "paused", stream: "broadcast" });
    const waiting = await waitFor(async () => (await view(key, id)).events.find((e) => e.type === "waiting"), 20_000, "a waiting event");
    expect(waiting.text).toBe("waiting: the tenant's broadcast stream is paused; next try when an operator resumes it");
    expect((await call(`/admin/tenants/${tenantId}/streams/broadcast/resume`, { method: "POST", key: ADMIN_TOKEN })).status).toBe(200);
    await waitFor(async () => ((await recipientRows([id]))[0]!.status === "delivered" ? true : undefined), 20_000, "delivery after resume");
  });
});
