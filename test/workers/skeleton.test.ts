/** The walking skeleton end to end: HTTP in, bytes at a real SMTP server, events in D1. */
import { describe, expect, it } from "vitest";
import { call, createTenantWithKey, env, receivedAt, routedDomain, sinkPort, unique, waitFor } from "./helpers";

type MessageView = { status: string; recipients: { address: string; status: string }[]; events: { type: string; code: number | null; text: string | null }[] };

async function messageState(id: string, key: string): Promise<MessageView> {
  const r = await call(`/v1/messages/${id}`, { key });
  expect(r.status).toBe(200);
  return (await r.json()) as MessageView;
}

describe("walking skeleton", () => {
  it("relays one message from the HTTP API to the SMTP sink and records accepted then delivered", async () => {
    const domain = `${unique("s")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const subject = `hello ${unique()}`;
    const rcpt = `${unique("r")}@sink.example`;
    const res = await call("/v1/messages", {
      method: "POST",
      key,
      json: { from: `app@${domain}`, to: [rcpt], subject, text: "It works.\n.leading dot line" },
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };

    const arrived = await waitFor(async () => {
      const msgs = await receivedAt(sinkPort());
      return msgs.find((m) => m.raw.includes(subject));
    }, 15_000, "message at the sink");
    // The envelope sender is the VERP return path on the bounce domain aligned with From (issue 6).
    expect(arrived.mailFrom).toMatch(new RegExp(`^bounce\\+${id}-0-[a-z2-7]{10}@bounces\\.${domain.replace(/\./g, "\\.")}$`));
    expect(arrived.rcptTo).toEqual([rcpt]);
    expect(arrived.raw).toContain("\r\n.leading dot line");

    const view = await waitFor(async () => {
      const v = await messageState(id, key);
      return v.status === "delivered" ? v : undefined;
    }, 15_000, "delivered status");
    expect(view.events.map((e) => e.type)).toEqual(["accepted", "queued", "delivered"]);

    const row = await env.DB.prepare("SELECT status, attempts FROM recipients WHERE message_id = ?").bind(id).first<{ status: string; attempts: number }>();
    expect(row).toEqual({ status: "delivered", attempts: 1 });
  });

  it("refuses a missing or wrong API key with 401 and a JSON error", async () => {
    const none = await call("/v1/messages", { method: "POST", json: { from: "a@b.example", to: ["c@d.example"], subject: "x", text: "y" } });
    expect(none.status).toBe(401);
    expect(await none.json()).toMatchObject({ error: { code: "unauthorized" } });
    const wrong = await call("/v1/messages", { method: "POST", key: "er_not-a-real-key", json: {} });
    expect(wrong.status).toBe(401);
    expect(((await wrong.json()) as { error: { code: string } }).error.code).toBe("unauthorized");
    const viaHeader = await call("/v1/messages/abc", { headers: { "x-api-key": "er_wrong" } });
    expect(viaHeader.status).toBe(401);
  });

  it("answers malformed JSON with 400 and a JSON error body, enqueuing nothing", async () => {
    const domain = `${unique("m")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    const res = await call("/v1/messages", { method: "POST", key, headers: { "content-type": "application/json" }, body: '{"from": "a@' });
    expect(res.status).toBe(400);
    expect(await res.json()).toMatchObject({ error: { code: "invalid_json" } });
    const count = await env.DB.prepare("SELECT COUNT(*) AS n FROM messages WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>();
    expect(count?.n).toBe(0);
  });

  it("refuses a sender domain the key does not own with 403", async () => {
    const { key } = await createTenantWithKey([`${unique("own")}.example`]);
    const res = await call("/v1/messages", { method: "POST", key, json: { from: "ceo@bank.example", to: ["x@y.example"], subject: "s", text: "t" } });
    expect(res.status).toBe(403);
    expect(await res.json()).toMatchObject({ error: { code: "sender_domain_not_allowed", field: "from" } });
  });

  it("retries when the next hop refuses temporarily, records deferred, and delivers later", async () => {
    const { port, domain: rcptDomain } = await routedDomain({ rules: [{ stage: "mail", code: 451, message: "4.3.0 try again later", times: 2 }] });
    const domain = `${unique("f")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const res = await call("/v1/messages", { method: "POST", key, json: { from: `app@${domain}`, to: [`u@${rcptDomain}`], subject: "retry me", text: "x" } });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const view = await waitFor(async () => {
      const v = await messageState(id, key);
      return v.status === "delivered" ? v : undefined;
    }, 30_000, "delivery after retries");
    const deferred = view.events.filter((e) => e.type === "deferred");
    expect(deferred.length).toBe(2);
    expect(deferred[0]).toMatchObject({ code: 451 });
    expect(deferred[0]!.text).toContain("try again later");
    expect((await receivedAt(port)).filter((m) => m.rcptTo.includes(`u@${rcptDomain}`))).toHaveLength(1);
  });
});
