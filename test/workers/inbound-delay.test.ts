/**
 * Delay warnings through email() (issue 23): notices written the way Exim, Sendmail, Postfix, Exchange/M365,
 * Gmail and a qmail-style service word them, sent to the VERP return paths of a delivered message, leave every
 * recipient `delivered`, add no suppression, and add one `delayed` event each, visible in GET /v1/messages/:id
 * and GET /v1/events?type=delayed. A null-sender responder saying "not a valid user here" is a bounce.
 */
import { describe, expect, it } from "vitest";
import { encodeReturnPath } from "../../src/mime/return-path";
import { call, env, unique } from "./helpers";
import { deliverToWorker, eventRows, fakeEmail, fixtureFilled, inboundLog, recipientRows, sendDelivered, suppressionOf } from "./inbound-support";

type MessageView = {
  status: string;
  message_id_header: string;
  recipients: { address: string; status: string }[];
  events: { type: string; recipient: string | null; enhanced: string | null }[];
};


function returnPath(id: string, idx: number, domain: string): Promise<string> {
  const secret = env.SIGNING_SECRET;
  if (!secret) throw new Error("the workers test env needs SIGNING_SECRET (vitest.config.ts)");
  return encodeReturnPath({ messageId: id, recipientIndex: idx }, secret, `bounces.${domain}`);
}

const NOTICES = ["exim-warning.eml", "exim-warning-plain.eml", "sendmail-warning.eml", "postfix-delay.eml", "exchange-delay.eml", "qmail-warning.eml", "gmail-delay.eml"];

describe("delay warnings", () => {
  it("records each MTA's warning as a delayed event and changes no recipient's state", async () => {
    const rcptDomain = `${unique("rd")}.example`;
    const to = NOTICES.map((_, i) => `user${i}@${rcptDomain}`);
    const { id, key, tenantId, domain, messageIdHeader } = await sendDelivered(to, { prefix: "dl" });

    for (const [i, file] of NOTICES.entries()) {
      const rp = await returnPath(id, i, domain);
      const raw = await fixtureFilled(`inbound/delay/${file}`, { RECIPIENT: to[i]!, RCPT_DOMAIN: rcptDomain, TO: rp, MESSAGE_ID: messageIdHeader });
      const fake = fakeEmail({ from: "", to: rp, raw });
      await deliverToWorker(fake);
      expect(fake.rejected(), file).toBeNull();
      expect(await inboundLog(rp), file).toEqual([expect.objectContaining({ kind: "delay_notice", outcome: "recorded", message_id: id })]);
    }

    expect((await recipientRows(id)).map((r) => r.status)).toEqual(to.map(() => "delivered"));
    expect(await eventRows(id, "bounced")).toEqual([]);
    const delayed = await eventRows(id, "delayed");
    expect(delayed.map((e) => e.recipient_idx ?? -1).sort((a, b) => a - b)).toEqual(to.map((_, i) => i));
    for (const e of delayed) {
      expect(e.enhanced, NOTICES[e.recipient_idx ?? -1]).toMatch(/^4\./);
      expect(JSON.parse(e.data!)).toMatchObject({ attribution: "verp" });
    }
    for (const address of to) expect(await suppressionOf(tenantId, address)).toEqual([]);

    const view = (await (await call(`/v1/messages/${id}`, { key })).json()) as MessageView;
    expect(view.recipients.map((r) => r.status)).toEqual(to.map(() => "delivered"));
    for (const address of to) expect(view.events.filter((e) => e.recipient === address).map((e) => e.type)).toEqual(["queued", "delivered", "delayed"]);
    const list = (await (await call(`/v1/events?type=delayed&message_id=${id}`, { key })).json()) as { data: { type: string; recipient: string }[] };
    expect(list.data.map((e) => e.recipient).sort()).toEqual([...to].sort());
  });

  it("writes one event for a warning Email Routing delivers twice", async () => {
    const rcpt = `${unique("u")}@${unique("rd")}.example`;
    const { id, domain, messageIdHeader } = await sendDelivered([rcpt], { prefix: "dl" });
    const rp = await returnPath(id, 0, domain);
    const raw = await fixtureFilled("inbound/delay/exim-warning.eml", { RECIPIENT: rcpt, RCPT_DOMAIN: "rd.example", TO: rp, MESSAGE_ID: messageIdHeader });
    await deliverToWorker(fakeEmail({ from: "", to: rp, raw }));
    await deliverToWorker(fakeEmail({ from: "", to: rp, raw }));
    expect(await eventRows(id, "delayed")).toHaveLength(1);
    expect((await inboundLog(rp)).map((r) => r.outcome).sort()).toEqual(["duplicate", "recorded"]);
    expect((await recipientRows(id))[0]!.status).toBe("delivered");
  });

  it("takes a null-sender responder that says the address is not a valid user for a hard bounce", async () => {
    const rcpt = `${unique("u")}@${unique("rd")}.example`;
    const { id, tenantId, domain, messageIdHeader } = await sendDelivered([rcpt], { prefix: "dl" });
    const rp = await returnPath(id, 0, domain);
    const raw = await fixtureFilled("inbound/auto/not-a-valid-user.eml", { RECIPIENT: rcpt, RCPT_DOMAIN: "rd.example", TO: rp, MESSAGE_ID: messageIdHeader });
    await deliverToWorker(fakeEmail({ from: "", to: rp, raw }));
    expect((await recipientRows(id))[0]!.status).toBe("bounced");
    expect(await eventRows(id, "auto_replied")).toEqual([]);
    expect(await suppressionOf(tenantId, rcpt)).toEqual([expect.objectContaining({ reason: "hard_bounce" })]);
  });

  it("records a vacation reply with only X-Autorespond as an auto-reply", async () => {
    const rcpt = `${unique("u")}@${unique("rd")}.example`;
    const { id, domain, messageIdHeader } = await sendDelivered([rcpt], { prefix: "dl" });
    const rp = await returnPath(id, 0, domain);
    const raw = await fixtureFilled("inbound/auto/vacation-x-autorespond.eml", { RECIPIENT: rcpt, RCPT_DOMAIN: "rd.example", TO: rp, MESSAGE_ID: messageIdHeader });
    await deliverToWorker(fakeEmail({ from: rcpt, to: rp, raw }));
    expect(await eventRows(id, "auto_replied")).toHaveLength(1);
    expect((await recipientRows(id))[0]!.status).toBe("delivered");
  });
});
