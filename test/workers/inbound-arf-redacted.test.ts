/**
 * ARF complaints that redact the recipient (issue 18): the feedback loop names nobody and strips the Return-Path,
 * but the returned headers keep our VERP address in Authentication-Results (smtp.mailfrom). The complaint is
 * attributed to the right recipient of a message with several, by the message and index that address names.
 */
import { describe, expect, it } from "vitest";
import { encodeReturnPath } from "../../src/mime/return-path";
import { call, createTenantWithKey, env, unique, waitFor } from "./helpers";
import { deliverToWorker, eventRows, fakeEmail, fixtureFilled, suppressionOf } from "./inbound-support";

describe("redacted complaints", () => {
  it("attributes a complaint with no recipient to the recipient index its quoted VERP address names", async () => {
    const domain = `${unique("arf")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    const rcptDomain = `${unique("rd")}.example`;
    const to = [`a@${rcptDomain}`, `b@${rcptDomain}`, `c@${rcptDomain}`];
    const res = await call("/v1/messages", { method: "POST", key, json: { from: `app@${domain}`, to, subject: "Your receipt", text: "Thanks." } });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const view = await waitFor(async () => {
      const v = (await (await call(`/v1/messages/${id}`, { key })).json()) as { message_id_header: string; recipients: { status: string }[] };
      return v.recipients.every((r) => r.status === "delivered") ? v : undefined;
    }, 30_000, "delivery");
    const secret = env.SIGNING_SECRET!;
    const verp = await encodeReturnPath({ messageId: id, recipientIndex: 1 }, secret, `bounces.${domain}`);
    const fbl = `fbl@bounces.${domain}`;
    const raw = await fixtureFilled("inbound/arf/redacted-verp.eml", { TO: fbl, SENDER_DOMAIN: domain, VERP: verp, MESSAGE_ID: view.message_id_header });
    const fake = fakeEmail({ from: "fbl@isp.example", to: fbl, raw });
    await deliverToWorker(fake);
    expect(fake.rejected()).toBeNull();
    const complaints = await eventRows(id, "complained");
    expect(complaints).toEqual([expect.objectContaining({ recipient_idx: 1, recipient: to[1] })]);
    expect(JSON.parse(complaints[0]!.data!)).toMatchObject({ attribution: "original-verp" });
    expect(await suppressionOf(tenantId, to[1]!)).toEqual([expect.objectContaining({ reason: "complaint" })]);
    expect(await suppressionOf(tenantId, to[0]!)).toEqual([]);
  });
});
