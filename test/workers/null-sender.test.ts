/**
 * The null sender (MAIL FROM:<>, RFC 5321 section 4.5.5) through the raw endpoint: reports relayed by an MTA keep
 * their empty envelope sender, get no VERP return path, and never cause a report of their own.
 */
import { describe, expect, it } from "vitest";
import { call, createTenantWithKey, env, receivedAt, routedDomain, sinkPort, unique, waitFor } from "./helpers";

function rawMessage(from: string, to: string, subject: string): string {
  return [`From: ${from}`, `To: ${to}`, `Subject: ${subject}`, "Content-Type: text/plain", "", "report body", ""].join("\r\n");
}

describe("null sender", () => {
  it("delivers a message submitted with an empty X-Envelope-From with MAIL FROM:<>", async () => {
    const domain = `${unique("ns")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const rcpt = `${unique("r")}@sink.example`;
    const subject = `null sender ${unique()}`;
    const res = await call("/v1/messages/raw", {
      method: "POST",
      key,
      headers: { "content-type": "message/rfc822", "x-envelope-from": "", "x-envelope-to": rcpt },
      body: rawMessage(`mailer-daemon@${domain}`, rcpt, subject),
    });
    expect(res.status).toBe(202);
    const got = await waitFor(async () => (await receivedAt(sinkPort())).find((m) => m.raw.includes(subject)), 15_000, "the message at the sink");
    expect(got.mailFrom).toBe("");
  });

  it("keeps a sender given as <> null, and sends no report when such a message bounces", async () => {
    const { port, domain: rcptDomain } = await routedDomain({ rules: [{ stage: "rcpt", code: 550, message: "5.1.1 no such user" }] }, "nsd");
    const domain = `${unique("ns")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const res = await call("/v1/messages/raw", {
      method: "POST",
      key,
      headers: { "content-type": "message/rfc822", "x-envelope-from": "<>", "x-envelope-to": `gone@${rcptDomain}` },
      body: rawMessage(`mailer-daemon@${domain}`, `gone@${rcptDomain}`, "bounce of a bounce"),
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const final = await waitFor(
      async () => (await env.DB.prepare("SELECT status FROM recipients WHERE message_id = ?").bind(id).first<{ status: string }>())?.status === "bounced" || undefined,
      15_000,
      "the bounce",
    );
    expect(final).toBe(true);
    const row = await env.DB.prepare("SELECT mail_from FROM messages WHERE id = ?").bind(id).first<{ mail_from: string }>();
    expect(row?.mail_from).toBe("");
    // Give a report time to be queued and delivered, then check none was made for this message.
    await new Promise((r) => setTimeout(r, 1500));
    const reports = await env.DB.prepare("SELECT COUNT(*) AS n FROM messages WHERE metadata LIKE ?").bind(`%"dsn_for":"${id}"%`).first<{ n: number }>();
    expect(reports?.n).toBe(0);
  });
});
