/**
 * Security paths of the email() handler (issue 15, findings 2 and 3): reports change state only when they are
 * authenticated, a VERP return path speaks only for its own recipient, and no report touches a recipient that
 * has not been handed to a next hop yet. Each case here bounced or suppressed recipients before the fix.
 */
import { describe, expect, it } from "vitest";
import { encodeReturnPath } from "../../src/mime/return-path";
import { call, createTenantWithKey, env, receivedAt, sinkPort, unique, waitFor } from "./helpers";
import { deliverToWorker, eventRows, fakeEmail, fixtureFilled, inboundLog, recipientRows, suppressionOf } from "./inbound-support";

type MessageView = { message_id_header: string; recipients: { status: string }[] };

async function send(to: string[], o: { signed?: boolean; sendAt?: string; from?: string; key?: string; domain?: string; messageId?: string } = {}) {
  const domain = o.domain ?? (o.signed ? `${unique("sx")}.signed.example` : `${unique("sx")}.example`);
  const { key, tenantId } = o.key ? { key: o.key, tenantId: "" } : await createTenantWithKey([domain]);
  const json: Record<string, unknown> = { from: `app@${domain}`, to, subject: "Your receipt", text: "Thanks." };
  if (o.sendAt) json.send_at = o.sendAt;
  if (o.messageId) json.headers = { "Message-ID": `<${o.messageId}>` };
  const res = await call("/v1/messages", { method: "POST", key, json });
  expect(res.status, await res.clone().text()).toBe(202);
  const { id } = (await res.json()) as { id: string };
  const view = (await (await call(`/v1/messages/${id}`, { key })).json()) as MessageView;
  return { id, key, tenantId, domain, messageIdHeader: view.message_id_header };
}

async function delivered(id: string, key: string): Promise<void> {
  await waitFor(async () => {
    const v = (await (await call(`/v1/messages/${id}`, { key })).json()) as MessageView;
    return v.recipients.every((r) => r.status === "delivered") ? true : undefined;
  }, 30_000, `delivery of ${id}`);
}

async function headersDeliveredTo(rcpt: string): Promise<string> {
  const m = await waitFor(async () => (await receivedAt(sinkPort())).find((x) => x.rcptTo.includes(rcpt)), 20_000, `the copy for ${rcpt}`);
  return m.raw.slice(0, m.raw.indexOf("\r\n\r\n"));
}

function dsn(vars: { to: string; rcpt: string; domain: string; messageId: string; returnPath?: string; originalTo?: string }): Promise<string> {
  const rcptDomain = vars.rcpt.split("@")[1]!;
  return fixtureFilled("inbound/handler/dsn-template.eml", {
    TO: vars.to,
    RCPT_DOMAIN: rcptDomain,
    RECIPIENT: vars.rcpt,
    ORIGINAL_RECIPIENT_LINE: "",
    STATUS: "5.1.1",
    DIAGNOSTIC: `550 5.1.1 <${vars.rcpt}>: Recipient address rejected: User unknown`,
    ORIGINAL_RETURN_PATH: vars.returnPath ?? `app@${vars.domain}`,
    SENDER_DOMAIN: vars.domain,
    ORIGINAL_TO: vars.originalTo ?? vars.rcpt,
    MESSAGE_ID: vars.messageId,
  });
}

function withReturnedHeaders(report: string, headers: string): string {
  return report.replace(/(Content-Type: text\/rfc822-headers\r\n\r\n)[\s\S]*?(\r\n\r\n--)/, (_, a: string, b: string) => a + headers + b);
}

function arf(vars: { to: string; rcpt: string; domain: string; messageId: string; feedbackDomain?: string }): Promise<string> {
  return fixtureFilled("inbound/handler/arf-template.eml", {
    TO: vars.to,
    RCPT_DOMAIN: vars.feedbackDomain ?? vars.rcpt.split("@")[1]!,
    FEEDBACK_TYPE: "abuse",
    ORIGINAL_RETURN_PATH: `app@${vars.domain}`,
    RECIPIENT: vars.rcpt,
    SENDER_DOMAIN: vars.domain,
    MESSAGE_ID: vars.messageId,
  });
}

const secret = () => env.SIGNING_SECRET!;

describe("unauthenticated reports change nothing", () => {
  it("a forged DSN to the bounce domain naming a delivered recipient and its Message-ID is logged unverified", async () => {
    const rcpt = `victim@${unique("rd")}.example`;
    const m = await send([rcpt]);
    await delivered(m.id, m.key);
    const to = `postmaster@bounces.${m.domain}`;
    const fake = fakeEmail({ from: "attacker@evil.example", to, raw: await dsn({ to, rcpt, domain: m.domain, messageId: m.messageIdHeader }) });
    await deliverToWorker(fake);
    expect(fake.rejected()).toBeNull();
    expect((await recipientRows(m.id))[0]!.status).toBe("delivered");
    expect(await eventRows(m.id, "bounced")).toEqual([]);
    expect(await suppressionOf(m.tenantId, rcpt)).toEqual([]);
    expect(await inboundLog(to)).toEqual([expect.objectContaining({ kind: "bounce", outcome: "unverified" })]);
  });

  it("a forged complaint to the bounce domain adds no suppression, even from an address-only match", async () => {
    const rcpt = `reader@${unique("rd")}.example`;
    const m = await send([rcpt]);
    await delivered(m.id, m.key);
    const to = `fbl@bounces.${m.domain}`;
    const fake = fakeEmail({ from: "fbl@feedback.evil.example", to, raw: await arf({ to, rcpt, domain: m.domain, messageId: `unknown-${unique()}@x.example` }) });
    await deliverToWorker(fake);
    expect(await eventRows(m.id, "complained")).toEqual([]);
    expect(await suppressionOf(m.tenantId, rcpt)).toEqual([]);
    expect(await inboundLog(to)).toEqual([expect.objectContaining({ kind: "complaint", outcome: "unverified" })]);
  });

  it("a configured feedback loop counts only with our MX's passing Authentication-Results on top", async () => {
    const rcpt = `reader@${unique("rd")}.example`;
    const m = await send([rcpt]);
    await delivered(m.id, m.key);
    const source = `fbl.${unique("isp")}.example`;
    const to = `fbl@bounces.${m.domain}`;
    const report = await arf({ to, rcpt, domain: m.domain, messageId: m.messageIdHeader, feedbackDomain: source.replace(/^fbl\./, "") });
    const cfg = { FEEDBACK_LOOP_SOURCES: source.replace(/^fbl\./, "feedback.") };
    const forged = [
      "", // no Authentication-Results at all
      `Authentication-Results: mx.evil.example; dkim=pass header.d=${cfg.FEEDBACK_LOOP_SOURCES}\r\n`, // not our MX
      `Authentication-Results: mx.cloudflare.net; dkim=fail header.d=${cfg.FEEDBACK_LOOP_SOURCES}\r\n`, // failed
      `Authentication-Results: mx.cloudflare.net; dkim=pass header.d=evil.example\r\n`, // another domain's signature
      // ours below someone else's: only the topmost counts (RFC 8601 section 5)
      `Authentication-Results: mx.evil.example; none\r\nAuthentication-Results: mx.cloudflare.net; dkim=pass header.d=${cfg.FEEDBACK_LOOP_SOURCES}\r\n`,
    ];
    for (const ar of forged) {
      const fake = fakeEmail({ from: `fbl@${cfg.FEEDBACK_LOOP_SOURCES}`, to, raw: ar + report });
      await deliverToWorker(fake, cfg);
    }
    expect(await eventRows(m.id, "complained")).toEqual([]);
    expect(await suppressionOf(m.tenantId, rcpt)).toEqual([]);
    expect((await inboundLog(to)).map((r) => r.outcome)).toEqual(forged.map(() => "unverified"));
    // Not configured: the same report with a good header changes nothing either.
    const good = `Authentication-Results: mx.cloudflare.net; dkim=pass header.d=${cfg.FEEDBACK_LOOP_SOURCES}\r\n`;
    await deliverToWorker(fakeEmail({ from: `fbl@${cfg.FEEDBACK_LOOP_SOURCES}`, to, raw: good + report }));
    expect(await eventRows(m.id, "complained")).toEqual([]);
    // Configured and authenticated: recorded.
    await deliverToWorker(fakeEmail({ from: `fbl@${cfg.FEEDBACK_LOOP_SOURCES}`, to, raw: good + report }), cfg);
    expect(await eventRows(m.id, "complained")).toHaveLength(1);
  });

  it("a signed original whose Message-ID was altered, or another tenant's signed original reusing a Message-ID, is not ours to act on", async () => {
    const rcpt = `victim@${unique("rd")}.example`;
    const victim = await send([rcpt], { signed: true });
    await delivered(victim.id, victim.key);
    const to = `postmaster@bounces.${victim.domain}`;
    const real = await headersDeliveredTo(rcpt);
    // 1: the victim's own signed headers, Message-ID changed to point elsewhere -> the signature fails.
    const other = await send([`x@${unique("rd")}.example`], { key: victim.key, domain: victim.domain });
    const altered = real.replace(victim.messageIdHeader, other.messageIdHeader);
    await deliverToWorker(fakeEmail({ from: "", to, raw: withReturnedHeaders(await dsn({ to, rcpt, domain: victim.domain, messageId: other.messageIdHeader }), altered) }));
    // 2: an attacker tenant (its own subdomain of signed.example, same DKIM key) sends with the victim's
    // Message-ID and returns its own validly signed headers to the victim's bounce domain.
    const attackerDomain = `${unique("ev")}.signed.example`;
    const attacker = await createTenantWithKey([attackerDomain]);
    const helper = `helper@${rcpt.split("@")[1]}`;
    const res = await call("/v1/messages/raw", {
      method: "POST",
      key: attacker.key,
      headers: { "content-type": "message/rfc822", "x-envelope-to": helper },
      body: `From: app@${attackerDomain}\r\nTo: ${rcpt}\r\nSubject: Your receipt\r\nMessage-ID: <${victim.messageIdHeader}>\r\n\r\nx\r\n`,
    });
    expect(res.status).toBe(202);
    const attackerHeaders = await headersDeliveredTo(helper);
    expect(attackerHeaders).toMatch(/d=signed\.example/);
    await deliverToWorker(fakeEmail({ from: "", to, raw: withReturnedHeaders(await dsn({ to, rcpt, domain: victim.domain, messageId: victim.messageIdHeader }), attackerHeaders) }));
    expect((await recipientRows(victim.id))[0]!.status).toBe("delivered");
    expect(await suppressionOf(victim.tenantId, rcpt)).toEqual([]);
    expect((await inboundLog(to)).map((r) => r.outcome)).not.toContain("recorded");
  });
});

describe("a return path speaks only for its own recipient (finding 3)", () => {
  it("a DSN to recipient 0's return path naming recipient 1 among several failures bounces nobody else", async () => {
    const rd = `${unique("rd")}.example`;
    const to = [`insider@${rd}`, `colleague@${rd}`];
    const m = await send(to);
    await delivered(m.id, m.key);
    const rp = await encodeReturnPath({ messageId: m.id, recipientIndex: 0 }, secret(), `bounces.${m.domain}`);
    // Two failures in one report (the shape that used to reach the sibling): the colleague and someone else.
    const one = await dsn({ to: rp, rcpt: to[1]!, domain: m.domain, messageId: m.messageIdHeader, originalTo: to.join(", ") });
    const raw = one.replace(/(Final-Recipient: rfc822; [^\r]+\r\nAction: failed\r\nStatus: 5\.1\.1\r\nDiagnostic-Code: [^\r]+\r\n)/, `$1\r\nFinal-Recipient: rfc822; other@${rd}\r\nAction: failed\r\nStatus: 5.1.1\r\nDiagnostic-Code: smtp; 550 5.1.1 unknown\r\n`);
    expect(raw).not.toBe(one);
    await deliverToWorker(fakeEmail({ from: "", to: rp, raw }));
    expect((await recipientRows(m.id)).map((r) => r.status)).toEqual(["delivered", "delivered"]);
    expect(await suppressionOf(m.tenantId, to[1]!)).toEqual([]);
    expect((await inboundLog(rp)).map((r) => r.outcome)).toEqual(["unverified", "unverified"]);
  });
});

describe("reports never cancel mail that has not left (finding 2)", () => {
  it("a valid return path of a scheduled recipient leaves it queued, without a suppression", async () => {
    const rcpt = `later@${unique("rd")}.example`;
    const m = await send([rcpt], { sendAt: new Date(Date.now() + 6 * 3600_000).toISOString() });
    const rp = await encodeReturnPath({ messageId: m.id, recipientIndex: 0 }, secret(), `bounces.${m.domain}`);
    await deliverToWorker(fakeEmail({ from: "", to: rp, raw: await dsn({ to: rp, rcpt, domain: m.domain, messageId: m.messageIdHeader }) }));
    const [row] = await recipientRows(m.id);
    expect(row!.status).toBe("queued");
    expect(row!.final_at).toBeNull();
    expect(await eventRows(m.id, "bounced")).toEqual([]);
    expect(await suppressionOf(m.tenantId, rcpt)).toEqual([]);
  });
});
