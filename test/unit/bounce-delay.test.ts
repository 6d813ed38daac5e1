/**
 * Delay warnings and auto-replies (issue 23): notices written the way each MTA words them (test/fixtures/inbound/
 * delay/, from the MTAs' own templates) are `delayed`, never bounces; responders that say the address is dead are
 * bounces; vacation replies without Auto-Submitted are auto-replies.
 */
import { readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { parseBounce } from "../../src/inbound/bounce";
import { isDelayWarning } from "../../src/inbound/delay";

const here = path.dirname(fileURLToPath(import.meta.url));
const RECIPIENT = "mia@rcpt.example";
const vars: Record<string, string> = { RECIPIENT, RCPT_DOMAIN: "rcpt.example", TO: "bounce+abc-0-sig@bounces.sender.example", MESSAGE_ID: "m1@sender.example" };

function fill(file: string): string {
  let text = readFileSync(path.resolve(here, "../fixtures/inbound", file), "utf8");
  for (const [k, v] of Object.entries(vars)) text = text.split(`{{${k}}}`).join(v);
  return text.replace(/\r?\n/g, "\r\n");
}

describe("delay warnings", () => {
  const notices = [
    "exim-warning.eml",
    "exim-warning-plain.eml",
    "sendmail-warning.eml",
    "postfix-delay.eml",
    "exchange-delay.eml",
    "qmail-warning.eml",
    "gmail-delay.eml",
  ];
  for (const file of notices) {
    it(`reads ${file} as a delay warning for the recipient, never hard`, () => {
      const r = parseBounce(fill(`delay/${file}`), { envelopeFrom: "" });
      expect(r.kind).toBe("delayed");
      expect(r.recipients.map((x) => x.address)).toEqual([RECIPIENT]);
      expect(r.recipients[0]).toMatchObject({ action: "delayed", hard: false });
      expect(r.recipients[0]!.status).toMatch(/^4\./);
    });
  }

  it("keeps the Postfix warning's status and the returned Message-ID", () => {
    const r = parseBounce(fill("delay/postfix-delay.eml"));
    expect(r.recipients[0]).toMatchObject({ status: "4.2.2", reason: "mailboxfull" });
    expect(r.originalMessageId).toBe("m1@sender.example");
  });

  it("does not take a bounce that mentions an earlier delay for a warning", () => {
    const bounce = "This message was created automatically by mail delivery software.\n\nA message that you sent could not be delivered to one or more of its\nrecipients. This is a permanent error. The following address(es) failed:\n\n  mia@rcpt.example\n    retry timeout exceeded (the message had been delayed for 5 days)\n";
    expect(isDelayWarning("Mail delivery failed: returning message to sender", bounce)).toBe(false);
    expect(isDelayWarning("Undelivered Mail Returned to Sender", "I'm sorry to have to inform you that your message could not\nbe delivered to one or more recipients.\n\n<mia@rcpt.example>: host mx said: 550 5.1.1 User unknown\n")).toBe(false);
    expect(isDelayWarning("failure notice", "Hi. This is the qmail-send program at mx.example.\nI'm afraid I wasn't able to deliver your message to the following addresses.\nThis is a permanent error; I've given up. Sorry it didn't work out.\n")).toBe(false);
  });
});

describe("auto-replies", () => {
  it("takes a null-sender responder saying 'not a valid user here' for a hard bounce", () => {
    const r = parseBounce(fill("auto/not-a-valid-user.eml"), { envelopeFrom: "" });
    expect(r.kind).toBe("bounce");
    expect(r.recipients[0]).toMatchObject({ address: RECIPIENT, reason: "userunknown", hard: true });
  });

  for (const file of ["vacation-x-autorespond.eml", "vacation-precedence.eml", "vacation-subject-only.eml"]) {
    it(`recognises ${file} as a vacation reply without Auto-Submitted`, () => {
      const r = parseBounce(fill(`auto/${file}`), { envelopeFrom: RECIPIENT });
      expect(r.kind).toBe("auto-reply");
      expect(r.autoReply?.reason).toBe("vacation");
      expect(r.recipients.every((x) => !x.hard)).toBe(true);
    });
  }
});
