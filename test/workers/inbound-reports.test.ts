/**
 * The email() handler on reports: bounces from the shared corpus aimed at the real VERP return paths of a
 * message sent through the API, complaints (ARF), auto-replies, and the fallbacks when the return path was lost.
 */
import { describe, expect, inject, it } from "vitest";
import { runInboundHousekeeping } from "../../src/inbound/housekeeping";
import { encodeReturnPath } from "../../src/mime/return-path";
import { ADMIN_TOKEN, call, createTenantWithKey, env, receivedAt, routedDomain, sinkPort, unique, waitFor } from "./helpers";
import {
  bounceLabels,
  deliverToWorker,
  eventRows,
  fakeEmail,
  fixtureBytes,
  fixtureFilled,
  inboundLog,
  recipientRows,
  sendDelivered,
  suppressionOf,
} from "./inbound-support";

type MessageView = {
  status: string;
  message_id_header: string;
  recipients: { address: string; status: string; last_enhanced: string | null }[];
  events: { type: string; recipient: string | null; enhanced: string | null; code: number | null; text: string | null }[];
};

const secret = () => {
  const s = env.SIGNING_SECRET;
  if (!s) throw new Error("the workers test env needs SIGNING_SECRET (vitest.config.ts)");
  return s;
};


/** The header section of the copy the sink received for `rcpt`, as a mailbox returns it in a bounce. */
async function deliveredHeaders(rcpt: string): Promise<string> {
  const m = await waitFor(async () => (await receivedAt(sinkPort())).find((x) => x.rcptTo.includes(rcpt)), 20_000, `the copy for ${rcpt}`);
  return m.raw.slice(0, m.raw.indexOf("\r\n\r\n"));
}

/** A DSN made from the template whose text/rfc822-headers part holds `headers` instead of the template's. */
function withReturnedHeaders(report: string, headers: string): string {
  const out = report.replace(/(Content-Type: text\/rfc822-headers\r\n\r\n)[\s\S]*?(\r\n\r\n--)/, (_, a: string, b: string) => a + headers + b);
  if (out === report) throw new Error("the report has no text/rfc822-headers part");
  return out;
}

function returnPath(id: string, idx: number, domain: string): Promise<string> {
  return encodeReturnPath({ messageId: id, recipientIndex: idx }, secret(), `bounces.${domain}`);
}

describe("bounces to VERP return paths", () => {
  it("records corpus bounces from six MTAs as asynchronous bounces on the right recipients and suppresses the hard ones", async () => {
    const files = ["lhost-postfix-31.eml", "lhost-gmail-01.eml", "lhost-exim-05.eml", "lhost-sendmail-05.eml", "lhost-office365-01.eml", "lhost-qmail-13.eml"];
    const labels = await bounceLabels();
    const rcptDomain = `${unique("rd")}.example`;
    const to = files.map((_, i) => `user${i}@${rcptDomain}`);
    const { id, key, tenantId, domain } = await sendDelivered(to);

    for (const [i, file] of files.entries()) {
      const fake = fakeEmail({ from: "", to: await returnPath(id, i, domain), raw: await fixtureBytes(`bounces/${file}`) });
      await deliverToWorker(fake);
      expect(fake.rejected(), file).toBeNull();
    }

    const rows = await recipientRows(id);
    const bounced = await eventRows(id, "bounced");
    for (const [i, file] of files.entries()) {
      const label = labels.find((l) => l.file === file)!;
      expect(rows[i], file).toMatchObject({ address: to[i], status: "bounced", last_enhanced: label.status });
      expect(rows[i]!.final_at, file).not.toBeNull();
      const events = bounced.filter((e) => e.recipient_idx === i);
      expect(events, file).toHaveLength(1);
      expect(events[0]!.recipient).toBe(to[i]);
      expect(events[0]!.enhanced).toBe(label.status);
      if (label.replycode) expect(events[0]!.code, file).toBe(Number(label.replycode));
      expect(JSON.parse(events[0]!.data!)).toMatchObject({ async: true, reason: label.reason, hard: label.hardbounce, attribution: "verp" });
      const suppressed = await suppressionOf(tenantId, to[i]!);
      if (label.hardbounce) expect(suppressed, file).toEqual([expect.objectContaining({ scope: "all", reason: "hard_bounce", message_id: id })]);
      else expect(suppressed, file).toEqual([]);
    }

    // The message status API shows each bounce on its recipient, after the delivery.
    const view = (await (await call(`/v1/messages/${id}`, { key })).json()) as MessageView;
    expect(view.status).toBe("bounced");
    expect(view.recipients.map((r) => r.status)).toEqual(files.map(() => "bounced"));
    for (const [i] of files.entries()) {
      const types = view.events.filter((e) => e.recipient === to[i]).map((e) => e.type);
      expect(types).toEqual(["queued", "delivered", "bounced"]);
    }
    // A suppressed address is not mailed again.
    const again = await call("/v1/messages", { method: "POST", key, json: { from: `app@${domain}`, to: [to[0]], subject: "again", text: "x" } });
    expect(((await again.json()) as { recipients: { status: string }[] }).recipients[0]!.status).toBe("suppressed");
  });

  it("ignores a repeated report for a recipient that already bounced", async () => {
    const rcpt = `${unique("u")}@${unique("rd")}.example`;
    const { id, domain } = await sendDelivered([rcpt]);
    const raw = await fixtureBytes("bounces/lhost-postfix-31.eml");
    const rp = await returnPath(id, 0, domain);
    for (let n = 0; n < 2; n++) {
      const fake = fakeEmail({ from: "", to: rp, raw });
      await deliverToWorker(fake);
      expect(fake.rejected()).toBeNull();
    }
    expect(await eventRows(id, "bounced")).toHaveLength(1);
    expect((await inboundLog(rp)).map((l) => l.outcome)).toEqual(["recorded", "duplicate"]);
  });

  it("refuses a return path whose signature does not verify, and records nothing", async () => {
    const rcpt = `${unique("u")}@${unique("rd")}.example`;
    const { id, domain } = await sendDelivered([rcpt]);
    const good = await returnPath(id, 0, domain);
    const forged = good.replace(/-([a-z2-7]{10})@/, (_m, sig: string) => `-${sig[0] === "a" ? "b" : "a"}${sig.slice(1)}@`);
    const fake = fakeEmail({ from: "", to: forged, raw: await fixtureBytes("bounces/lhost-gmail-01.eml") });
    await deliverToWorker(fake);
    expect(fake.rejected()).toMatch(/^5\.1\.1 /);
    expect((await recipientRows(id))[0]!.status).toBe("delivered");
    expect(await eventRows(id, "bounced")).toEqual([]);
  });
});

describe("our own DSNs", () => {
  it("sends the relay's own DSN to the original sender, not its return path, and takes a returned copy as a repeat", async () => {
    const { port, domain: rcptDomain } = await routedDomain({ rules: [{ stage: "rcpt", code: 550, message: "5.1.1 no such user here" }] }, "rd");
    const domain = `${unique("in")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const rcpt = `gone@${rcptDomain}`;
    const res = await call("/v1/messages", { method: "POST", key, json: { from: `app@${domain}`, to: [rcpt], subject: "sync bounce", text: "x" } });
    const { id } = (await res.json()) as { id: string };
    const rp = await returnPath(id, 0, domain);
    // The DSN goes to the sender the application gave (its From), from the null sender; <domain> has no route,
    // so it lands at the sink. A DSN to our own return path would only come straight back to email().
    const dsn = await waitFor(async () => (await receivedAt(sinkPort())).find((m) => m.rcptTo.includes(`app@${domain}`)), 20_000, "the relay's DSN");
    expect(dsn.mailFrom).toBe("");
    expect(dsn.raw).toContain("multipart/report");
    expect((await receivedAt(sinkPort())).some((m) => m.rcptTo.includes(rp))).toBe(false);
    // Should a copy of a report come back to the return path anyway, it changes nothing.
    const fake = fakeEmail({ from: "", to: rp, raw: Uint8Array.from(dsn.raw, (c) => c.charCodeAt(0)) });
    await deliverToWorker(fake);
    expect(fake.rejected()).toBeNull();
    expect(await eventRows(id, "bounced")).toHaveLength(1);
    expect(await inboundLog(rp)).toEqual([expect.objectContaining({ kind: "bounce", outcome: "duplicate", message_id: id })]);
  });
});

describe("bounces whose return path was lost", () => {
  it("attributes a DSN sent to the bounce domain by the Message-ID of a returned original the relay signed", async () => {
    const rcptDomain = `${unique("rd")}.example`;
    const to = [`first@${rcptDomain}`, `second@${rcptDomain}`];
    const { id, tenantId, domain, messageIdHeader } = await sendDelivered(to, { signed: true });
    const raw = withReturnedHeaders(
      await fixtureFilled("inbound/handler/dsn-template.eml", {
        TO: `postmaster@bounces.${domain}`,
        RCPT_DOMAIN: rcptDomain,
        RECIPIENT: to[1]!,
        ORIGINAL_RECIPIENT_LINE: "",
        STATUS: "5.1.1",
        DIAGNOSTIC: "550 5.1.1 <second@x>: Recipient address rejected: User unknown in virtual mailbox table",
        ORIGINAL_RETURN_PATH: `app@${domain}`,
        SENDER_DOMAIN: domain,
        ORIGINAL_TO: to.join(", "),
        MESSAGE_ID: messageIdHeader,
      }),
      // Mailboxes refold and re-order nothing that relaxed canonicalization cares about.
      (await deliveredHeaders(to[1]!)).replace(/^Return-Path:.*\r\n/im, ""),
    );
    const fake = fakeEmail({ from: "", to: `postmaster@bounces.${domain}`, raw });
    await deliverToWorker(fake);
    expect(fake.rejected()).toBeNull();
    const rows = await recipientRows(id);
    expect(rows.map((r) => r.status)).toEqual(["delivered", "bounced"]);
    expect(rows[1]).toMatchObject({ last_code: 550, last_enhanced: "5.1.1" });
    const [event] = await eventRows(id, "bounced");
    expect(event).toMatchObject({ recipient_idx: 1, recipient: to[1], enhanced: "5.1.1" });
    expect(JSON.parse(event!.data!)).toMatchObject({ async: true, attribution: "dkim", reason: "userunknown", hard: true });
    expect(await suppressionOf(tenantId, to[1]!)).toHaveLength(1);
    expect(await suppressionOf(tenantId, to[0]!)).toEqual([]);
  });

  it("takes the one recipient of a signed original when the report names a forwarded address", async () => {
    const rcptDomain = `${unique("rd")}.example`;
    const rcpt = `mia@${rcptDomain}`;
    const { id, domain, messageIdHeader } = await sendDelivered([rcpt], { signed: true });
    const raw = withReturnedHeaders(
      await fixtureFilled("inbound/handler/dsn-template.eml", {
        TO: `bounce-handler@bounces.${domain}`,
        RCPT_DOMAIN: "forwarded.example",
        RECIPIENT: "mia.new@forwarded.example",
        ORIGINAL_RECIPIENT_LINE: `Original-Recipient: rfc822; ${rcpt}`,
        STATUS: "5.2.2",
        DIAGNOSTIC: "552 5.2.2 <mia.new@forwarded.example>: Mailbox full",
        ORIGINAL_RETURN_PATH: `app@${domain}`,
        SENDER_DOMAIN: domain,
        ORIGINAL_TO: rcpt,
        MESSAGE_ID: messageIdHeader,
      }),
      await deliveredHeaders(rcpt),
    );
    const fake = fakeEmail({ from: "", to: `bounce-handler@bounces.${domain}`, raw });
    await deliverToWorker(fake);
    expect(fake.rejected()).toBeNull();
    expect((await recipientRows(id))[0]).toMatchObject({ status: "bounced", last_enhanced: "5.2.2" });
    const [event] = await eventRows(id, "bounced");
    expect(JSON.parse(event!.data!)).toMatchObject({ attribution: "dkim", reported_recipient: "mia.new@forwarded.example", hard: false });
  });

  it("logs a bounce it cannot attribute instead of guessing", async () => {
    const domain = `${unique("in")}.example`;
    await createTenantWithKey([domain]);
    const raw = await fixtureBytes("bounces/lhost-exim-05.eml");
    const fake = fakeEmail({ from: "", to: `postmaster@bounces.${domain}`, raw });
    await deliverToWorker(fake);
    expect(fake.rejected()).toBeNull();
    expect(await inboundLog(`postmaster@bounces.${domain}`)).toEqual([expect.objectContaining({ kind: "bounce", outcome: "unverified" })]);
  });
});

describe("what a report cannot do", () => {
  it("leaves a recipient alone on a delay notice (Action: delayed)", async () => {
    const rcptDomain = `${unique("rd")}.example`;
    const rcpt = `slow@${rcptDomain}`;
    const { id, domain, messageIdHeader } = await sendDelivered([rcpt]);
    const raw = (
      await fixtureFilled("inbound/handler/dsn-template.eml", {
        TO: "x",
        RCPT_DOMAIN: rcptDomain,
        RECIPIENT: rcpt,
        ORIGINAL_RECIPIENT_LINE: "",
        STATUS: "4.4.7",
        DIAGNOSTIC: "451 4.4.7 delivery temporarily suspended: connection timed out",
        ORIGINAL_RETURN_PATH: `app@${domain}`,
        SENDER_DOMAIN: domain,
        ORIGINAL_TO: rcpt,
        MESSAGE_ID: messageIdHeader,
      })
    ).replace("Action: failed", "Action: delayed");
    const rp = await returnPath(id, 0, domain);
    const fake = fakeEmail({ from: "", to: rp, raw });
    await deliverToWorker(fake);
    expect(fake.rejected()).toBeNull();
    expect((await recipientRows(id))[0]!.status).toBe("delivered");
    expect(await eventRows(id, "bounced")).toEqual([]);
    // Issue 23: the notice is recorded as a `delayed` event (it used to be ignored), still without a change of state.
    expect(await inboundLog(rp)).toEqual([expect.objectContaining({ kind: "delay_notice", outcome: "recorded" })]);
    expect(await eventRows(id, "delayed")).toEqual([expect.objectContaining({ recipient: rcpt, enhanced: "4.4.7" })]);
  });

  it("never attributes a report sent to one tenant's bounce domain to another tenant's message", async () => {
    const rcptDomain = `${unique("rd")}.example`;
    const victim = await sendDelivered([`v@${rcptDomain}`]);
    const attackerDomain = `${unique("ev")}.example`;
    await createTenantWithKey([attackerDomain]);
    const raw = await fixtureFilled("inbound/handler/arf-template.eml", {
      TO: `fbl@bounces.${attackerDomain}`,
      RCPT_DOMAIN: rcptDomain,
      FEEDBACK_TYPE: "abuse",
      // Even the victim's real (signed) return path does not cross tenants.
      ORIGINAL_RETURN_PATH: await returnPath(victim.id, 0, victim.domain),
      RECIPIENT: `v@${rcptDomain}`,
      SENDER_DOMAIN: victim.domain,
      MESSAGE_ID: victim.messageIdHeader,
    });
    const fake = fakeEmail({ from: "x@evil.example", to: `fbl@bounces.${attackerDomain}`, raw });
    await deliverToWorker(fake);
    expect(await eventRows(victim.id, "complained")).toEqual([]);
    expect(await suppressionOf(victim.tenantId, `v@${rcptDomain}`)).toEqual([]);
    expect(await inboundLog(`fbl@bounces.${attackerDomain}`)).toEqual([expect.objectContaining({ outcome: "unverified" })]);
  });
});

describe("unsubscribe by mail", () => {
  it("suppresses broadcast mail for the recipient named by the token in the List-Unsubscribe mailto subject", async () => {
    const domain = `${unique("ub")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    const rcpt = `reader@${unique("rd")}.example`;
    const subject = `Newsletter ${unique()}`;
    const res = await call("/v1/messages", { method: "POST", key, json: { from: `news@${domain}`, to: [rcpt], subject, text: "news", stream: "broadcast" } });
    expect(res.status).toBe(202);
    const sent = await waitFor(async () => (await receivedAt(sinkPort())).find((m) => m.raw.includes(subject)), 15_000, "the newsletter at the sink");
    const unfolded = sent.raw.replace(/\r\n[ \t]+/g, " ");
    const mailto = /<mailto:(unsubscribe@bounces\.[^?>]+)\?subject=([^>]+)>/.exec(unfolded);
    expect(mailto).not.toBeNull();
    const to = mailto![1]!;
    const request = `From: ${rcpt}\r\nTo: ${to}\r\nSubject: ${decodeURIComponent(mailto![2]!)}\r\n\r\n\r\n`;

    const bad = fakeEmail({ from: rcpt, to, raw: request.replace(/unsubscribe (\S+)\./, "unsubscribe x$1.") });
    await deliverToWorker(bad);
    expect(bad.rejected()).toBe("5.7.1 This unsubscribe request is not valid");
    expect(await suppressionOf(tenantId, rcpt)).toEqual([]);

    const good = fakeEmail({ from: rcpt, to, raw: request });
    await deliverToWorker(good);
    expect(good.rejected()).toBeNull();
    expect(await suppressionOf(tenantId, rcpt)).toEqual([expect.objectContaining({ scope: "broadcast", reason: "unsubscribe" })]);
  });
});

describe("complaints", () => {
  it("records an ARF report from the corpus sent to the return path as complained and suppresses the address", async () => {
    const rcpt = `${unique("u")}@${unique("rd")}.example`;
    const { id, key, tenantId, domain } = await sendDelivered([rcpt]);
    const fake = fakeEmail({ from: "fbl@isp.example", to: await returnPath(id, 0, domain), raw: await fixtureBytes("bounces/arf-01.eml") });
    await deliverToWorker(fake);
    expect(fake.rejected()).toBeNull();
    const [event] = await eventRows(id, "complained");
    expect(event).toMatchObject({ recipient_idx: 0, recipient: rcpt });
    expect(JSON.parse(event!.data!)).toMatchObject({ feedback_type: "abuse", attribution: "verp" });
    expect(await suppressionOf(tenantId, rcpt)).toEqual([expect.objectContaining({ scope: "all", reason: "complaint", expires_at: null })]);
    // A complaint is not a delivery failure: the recipient stays delivered, the event shows on it.
    const view = (await (await call(`/v1/messages/${id}`, { key })).json()) as MessageView;
    expect(view.recipients[0]!.status).toBe("delivered");
    expect(view.events.filter((e) => e.recipient === rcpt).map((e) => e.type)).toEqual(["queued", "delivered", "complained"]);
  });

  it("matches a configured feedback loop's authenticated report by Message-ID; not-spam reports suppress nothing", async () => {
    const rcptDomain = `${unique("rd")}.example`;
    const fbl = { FEEDBACK_LOOP_SOURCES: `feedback.${rcptDomain}` };
    const authResults = `Authentication-Results: mx.cloudflare.net; dkim=pass header.d=feedback.${rcptDomain} header.s=s1; spf=pass smtp.mailfrom=feedback.${rcptDomain}\r\n`;
    const to = [`a@${rcptDomain}`, `b@${rcptDomain}`];
    const { id, tenantId, domain, messageIdHeader } = await sendDelivered(to);
    const report = (feedbackType: string) =>
      fixtureFilled("inbound/handler/arf-template.eml", {
        TO: `fbl@bounces.${domain}`,
        RCPT_DOMAIN: rcptDomain,
        FEEDBACK_TYPE: feedbackType,
        ORIGINAL_RETURN_PATH: `app@${domain}`,
        RECIPIENT: to[1]!,
        SENDER_DOMAIN: domain,
        MESSAGE_ID: messageIdHeader,
      });
    const fake = fakeEmail({ from: `fbl@feedback.${rcptDomain}`, to: `fbl@bounces.${domain}`, raw: authResults + (await report("abuse")) });
    await deliverToWorker(fake, fbl);
    expect(fake.rejected()).toBeNull();
    const events = await eventRows(id, "complained");
    expect(events).toEqual([expect.objectContaining({ recipient_idx: 1, recipient: to[1] })]);
    expect(JSON.parse(events[0]!.data!)).toMatchObject({ attribution: "message-id" });
    expect(await suppressionOf(tenantId, to[1]!)).toEqual([expect.objectContaining({ reason: "complaint" })]);

    const other = await sendDelivered([`c@${rcptDomain}`]);
    const notSpam = fakeEmail({
      from: `fbl@feedback.${rcptDomain}`,
      to: `fbl@bounces.${other.domain}`,
      raw:
        authResults +
        (await fixtureFilled("inbound/handler/arf-template.eml", {
          TO: `fbl@bounces.${other.domain}`,
          RCPT_DOMAIN: rcptDomain,
          FEEDBACK_TYPE: "not-spam",
          ORIGINAL_RETURN_PATH: `app@${other.domain}`,
          RECIPIENT: `c@${rcptDomain}`,
          SENDER_DOMAIN: other.domain,
          MESSAGE_ID: other.messageIdHeader,
        })),
    });
    await deliverToWorker(notSpam, fbl);
    expect(await eventRows(other.id, "complained")).toHaveLength(1);
    expect(await suppressionOf(other.tenantId, `c@${rcptDomain}`)).toEqual([]);
  });
});

describe("auto-replies", () => {
  it("records an RFC 3834 reply from the corpus to the return path as auto_replied, never as a bounce", async () => {
    const rcpt = `${unique("u")}@${unique("rd")}.example`;
    const { id, tenantId, domain } = await sendDelivered([rcpt]);
    const fake = fakeEmail({ from: rcpt, to: await returnPath(id, 0, domain), raw: await fixtureBytes("bounces/rfc3834-01.eml") });
    await deliverToWorker(fake);
    expect(fake.rejected()).toBeNull();
    const events = await eventRows(id);
    expect(events.filter((e) => e.type === "auto_replied")).toEqual([expect.objectContaining({ recipient_idx: 0, recipient: rcpt })]);
    expect(events.some((e) => e.type === "bounced")).toBe(false);
    expect((await recipientRows(id))[0]!.status).toBe("delivered");
    expect(await suppressionOf(tenantId, rcpt)).toEqual([]);
  });

  it("logs a vacation reply to the bounce domain, matched only by its In-Reply-To, as unverified and records nothing", async () => {
    const rcpt = `mia@${unique("rd")}.example`;
    const { id, domain, messageIdHeader } = await sendDelivered([rcpt]);
    const raw = await fixtureFilled("inbound/handler/vacation-reply.eml", { RECIPIENT: rcpt, RCPT_DOMAIN: "rd.example", TO: `replies@bounces.${domain}`, MESSAGE_ID: messageIdHeader });
    const fake = fakeEmail({ from: rcpt, to: `replies@bounces.${domain}`, raw });
    await deliverToWorker(fake);
    expect(fake.rejected()).toBeNull();
    expect(await eventRows(id, "auto_replied")).toEqual([]);
    expect(await inboundLog(`replies@bounces.${domain}`)).toEqual([expect.objectContaining({ kind: "auto_reply", outcome: "unverified" })]);
    expect((await recipientRows(id))[0]!.status).toBe("delivered");
  });
});

describe("webhooks", () => {
  it("posts the asynchronous bounce to the tenant's webhook endpoint right after the report arrives", async () => {
    const control = `http://127.0.0.1:${inject("controlPort")}`;
    const rcpt = `${unique("u")}@${unique("rd")}.example`;
    const { id, tenantId, domain } = await sendDelivered([rcpt]);
    const name = unique("inbound-hook");
    const hook = await call("/admin/webhooks", { method: "POST", key: ADMIN_TOKEN, json: { tenant_id: tenantId, url: `${control}/hooks/${name}`, events: ["bounced"] } });
    expect(hook.status).toBe(201);
    const { secret: hookSecret } = (await hook.json()) as { secret: string };
    await fetch(`${control}/hooks/${name}/config`, { method: "POST", body: JSON.stringify({ secret: hookSecret }) });

    await deliverToWorker(fakeEmail({ from: "", to: await returnPath(id, 0, domain), raw: await fixtureBytes("bounces/lhost-gmail-01.eml") }));
    const [post] = await waitFor(async () => {
      const r = (await (await fetch(`${control}/hooks/${name}`)).json()) as { body: string; verified: boolean | null }[];
      return r.length ? r : undefined;
    }, 20_000, "the bounced webhook");
    expect(post!.verified).toBe(true);
    expect(JSON.parse(post!.body)).toMatchObject({ type: "bounced", message_id: id, recipient: rcpt, data: { enhanced: "5.1.1", extra: { async: true, reason: "userunknown", hard: true } } });
  });
});

describe("other mail", () => {
  it("refuses mail for an address that is neither a return path, a bounce domain nor an alias", async () => {
    const fake = fakeEmail({ from: "someone@else.example", to: `nobody@${unique("x")}.example`, raw: "From: someone@else.example\r\nSubject: hi\r\n\r\nhello\r\n" });
    await deliverToWorker(fake);
    expect(fake.rejected()).toMatch(/^5\.1\.1 <nobody@.*>: no such recipient here$/);
  });
});

describe("inbound log retention", () => {
  it("the cron trigger deletes inbound log rows older than EVENT_RETENTION_DAYS and keeps newer ones", async () => {
    const to = `${unique("old")}@bounces.retention.example`;
    const now = Date.now();
    for (const at of [now - 31 * 86_400_000, now - 29 * 86_400_000]) {
      await env.DB.prepare("INSERT INTO inbound_messages (at, envelope_from, envelope_to, kind, outcome) VALUES (?, '', ?, 'unknown', 'ignored')").bind(at, to).run();
    }
    expect(await runInboundHousekeeping({ ...env, EVENT_RETENTION_DAYS: "30" }, now)).toBeGreaterThanOrEqual(1);
    expect(await inboundLog(to)).toHaveLength(1);
  });
});
