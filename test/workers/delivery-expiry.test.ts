/**
 * Expiry and bounces: a destination that always answers 451 ends `expired` once the (short) maximum age is
 * reached, a 550 5.1.1 recipient bounces at once; both send an RFC 3464 report to the envelope sender, from
 * the null sender, through the normal delivery path. The report is parsed back with postal-mime.
 */
import PostalMime from "postal-mime";
import { describe, expect, it } from "vitest";
import { addRoute, eventRows, waitAllFinal } from "../support/delivery-helpers";
import { call, createTenantWithKey, env, receivedAt, startSmtp, unique, waitFor } from "./helpers";
import type { ReceivedMessage } from "../support/peers";

async function senderWithMailbox(): Promise<{ key: string; tenantId: string; from: string; mailboxPort: number }> {
  const mailboxPort = await startSmtp();
  const fromDomain = `${unique("snd")}.example`;
  // The envelope sender may be the address itself or a VERP return path at bounces.<domain>: both lead here.
  await addRoute({ match_recipient_domain: fromDomain, next_hop_url: `smtp://127.0.0.1:${mailboxPort}` });
  await addRoute({ match_recipient_domain: `bounces.${fromDomain}`, next_hop_url: `smtp://127.0.0.1:${mailboxPort}` });
  const { key, tenantId } = await createTenantWithKey([fromDomain]);
  return { key, tenantId, from: `app@${fromDomain}`, mailboxPort };
}

/** The DSN for message `id`: from the null sender, to the envelope sender (the address, or its VERP return path naming `id`). */
async function dsnAt(port: number, id: string, from: string): Promise<ReceivedMessage> {
  return waitFor(
    async () => (await receivedAt(port)).find((m) => m.mailFrom === "" && m.rcptTo.some((r) => r === from || r.includes(id))),
    30_000,
    "the DSN at the sender's mailbox",
  );
}

/** The parts of a multipart/report, parsed with postal-mime. */
async function parseReport(raw: string) {
  const email = await PostalMime.parse(raw, { attachmentEncoding: "utf8" } as never);
  const part = (type: string) => {
    const a = email.attachments.find((x) => x.mimeType === type);
    if (!a) return undefined;
    return typeof a.content === "string" ? a.content : new TextDecoder().decode(a.content as ArrayBuffer);
  };
  return {
    email,
    contentType: email.headers.find((h) => h.key === "content-type")?.value ?? "",
    status: part("message/delivery-status"),
    headers: part("text/rfc822-headers"),
  };
}

describe("expiry and bounce notifications", () => {
  it("ends a recipient `expired` after the maximum age and reports it to the sender (RFC 3464)", async () => {
    const { key, from, mailboxPort } = await senderWithMailbox();
    const port = await startSmtp({ rules: [{ stage: "rcpt", code: 451, message: "4.3.0 mailbox busy, try later" }] });
    const dest = `${unique("exp")}.example`;
    await addRoute({ match_recipient_domain: dest, next_hop_url: `smtp://127.0.0.1:${port}`, retry_schedule_seconds: [1], max_message_age_seconds: 4 });
    const to = `late@${dest}`;
    const subject = `expiring ${unique()}`;
    const r = await call("/v1/messages", { method: "POST", key, json: { from, to: [to], subject, text: "will not arrive" } });
    expect(r.status).toBe(202);
    const { id } = (await r.json()) as { id: string };

    const [row] = await waitAllFinal([id], 45_000, "expiry");
    expect(row).toMatchObject({ status: "expired", last_code: 451, last_enhanced: "4.3.0" });
    const events = await eventRows([id]);
    const deferred = events.filter((e) => e.type === "deferred");
    const expired = events.filter((e) => e.type === "expired");
    expect(deferred.length).toBeGreaterThanOrEqual(1);
    expect(expired).toHaveLength(1);
    expect(expired[0]!.text).toContain("expired after");
    expect(deferred.every((e) => e.code === 451 && e.host === `127.0.0.1:${port}`)).toBe(true);
    console.log(`expiry: ${deferred.length} deferrals then expired at attempt ${expired[0]!.attempt}, ${((expired[0]!.at - events[0]!.at) / 1000).toFixed(1)} s after accept`);

    const dsn = await dsnAt(mailboxPort, id, from);
    expect(dsn.mailFrom).toBe("");
    const report = await parseReport(Buffer.from(dsn.raw, "latin1").toString("utf8"));
    expect(report.contentType).toMatch(/^multipart\/report;/);
    expect(report.contentType).toContain("report-type=delivery-status");
    expect(report.email.subject).toContain("expired");
    expect(report.status).toContain(`Final-Recipient: rfc822; ${to}`);
    expect(report.status).toContain("Action: failed");
    expect(report.status).toContain("Status: 4.3.0");
    expect(report.status).toContain("Diagnostic-Code: smtp; 451 4.3.0");
    expect(report.status).toMatch(/Reporting-MTA: dns; \S+/);
    expect(report.headers).toContain(`Subject: ${subject}`);
    expect(report.email.text).toContain(to);

    // The DSN is itself a recorded message (null sender), so it can be followed like any other.
    const dsnRow = await env.DB.prepare("SELECT mail_from, tags FROM messages WHERE metadata LIKE ?").bind(`%${id}%`).first<{ mail_from: string; tags: string }>();
    expect(dsnRow).toEqual({ mail_from: "", tags: '["dsn"]' });
  });

  it("bounces a rejected recipient at once, delivers the other, suppresses the bad address and reports the bounce", async () => {
    const { key, tenantId, from, mailboxPort } = await senderWithMailbox();
    const port = await startSmtp({ rules: [{ stage: "rcpt", match: "nobody", code: 550, message: "5.1.1 no such user here" }] });
    const dest = `${unique("bnc")}.example`;
    await addRoute({ match_recipient_domain: dest, next_hop_url: `smtp://127.0.0.1:${port}` });
    const good = `somebody@${dest}`;
    const bad = `nobody@${dest}`;
    const r = await call("/v1/messages", { method: "POST", key, json: { from, to: [good, bad], subject: "bounce test", text: "x" } });
    const { id } = (await r.json()) as { id: string };
    const rows = await waitAllFinal([id], 30_000);
    expect(rows.find((x) => x.address === good)!.status).toBe("delivered");
    expect(rows.find((x) => x.address === bad)).toMatchObject({ status: "bounced", attempts: 1, last_code: 550, last_enhanced: "5.1.1" });
    expect((await eventRows([id])).filter((e) => e.type === "deferred")).toHaveLength(0);

    const sup = await env.DB.prepare("SELECT reason, scope, message_id FROM suppressions WHERE tenant_id = ? AND address = ?").bind(tenantId, bad).first();
    expect(sup).toEqual({ reason: "hard_bounce", scope: "all", message_id: id });

    const dsn = await dsnAt(mailboxPort, id, from);
    expect(dsn.mailFrom).toBe("");
    const report = await parseReport(Buffer.from(dsn.raw, "latin1").toString("utf8"));
    expect(report.status).toContain(`Final-Recipient: rfc822; ${bad}`);
    expect(report.status).toContain("Status: 5.1.1");
    // smtp-server puts its own enhanced code before the scripted text, so the text itself starts with "5.1.1".
    expect(report.status).toMatch(/Diagnostic-Code: smtp; 550 5\.1\.1 .*no such user here/);
    expect(report.status).toContain("Remote-MTA: dns; 127.0.0.1");
    expect(report.status).not.toContain(good);
  });
});
