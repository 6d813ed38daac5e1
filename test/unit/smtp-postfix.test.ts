/**
 * The SMTP client against Debian's Postfix smtpd as a real peer. Set up with `.ci/postfix-setup.sh` (as root),
 * which listens on 127.0.0.1:2526, offers STARTTLS with a test-only self-signed certificate, rejects
 * rejected@postfix.test.example and discards what it accepts. Run with POSTFIX_PORT=2526; skipped, with the
 * reason printed, when no Postfix is reachable (issue 3).
 */
import { connect } from "node:net";
import { describe, expect, it } from "vitest";
import { openSmtpSession, type SmtpClientOptions } from "../../src/smtp/client";
import { createNodeSocketFactory } from "../../src/smtp/node-socket";

// .ci/postfix-setup.sh (run by .ci/run) uses 2526 unless POSTFIX_PORT says otherwise.
const port = Number(process.env.POSTFIX_PORT ?? 2526);

async function reachable(): Promise<string | undefined> {
  return new Promise((resolve) => {
    const s = connect({ host: "127.0.0.1", port });
    s.once("connect", () => (s.destroy(), resolve(undefined)));
    s.once("error", (e) => resolve(`Postfix is not reachable on 127.0.0.1:${port} (run .ci/postfix-setup.sh as root): ${e.message}`));
  });
}

const skipReason = await reachable();
if (skipReason) console.warn(`[smtp-postfix] skipped (issue 3): ${skipReason}`);

const options = (extra: Partial<SmtpClientOptions> = {}): SmtpClientOptions => ({
  // Test-only: the test instance's certificate is self-signed.
  socketFactory: createNodeSocketFactory({ rejectUnauthorized: false }),
  host: "127.0.0.1",
  port,
  tls: "starttls-required",
  tlsServerName: "postfix.test.example",
  heloName: "relay.test.example",
  ...extra,
});

describe.skipIf(skipReason !== undefined)("Postfix smtpd as a real peer", () => {
  it("upgrades with STARTTLS, sees Postfix's extensions, and gets per-recipient results", async () => {
    const session = await openSmtpSession(options());
    try {
      expect(session.tls).toBe(true);
      expect(session.capabilities).toMatchObject({ pipelining: true, eightBitMime: true, enhancedStatusCodes: true, dsn: true, smtputf8: true, startTls: false });
      expect(session.capabilities.size).toBeGreaterThan(0);
      const r = await session.sendMail(
        { mailFrom: "sender@relay.test.example", rcptTo: ["one@dest.test.example", "rejected@postfix.test.example", "three@dest.test.example"], dsn: { ret: "HDRS", envid: "bench+1" } },
        "From: sender@relay.test.example\r\nTo: one@dest.test.example\r\nSubject: postfix peer\r\n\r\nHello Postfix.\r\n",
      );
      expect(r.error).toBeUndefined();
      expect(r.recipients.map((x) => x.delivered)).toEqual([true, false, true]);
      expect(r.recipients[1]!.error).toMatchObject({ command: "RCPT", enhanced: "5.1.1", temporary: false, recipient: "rejected@postfix.test.example" });
      expect(r.recipients[1]!.error!.code).toBeGreaterThanOrEqual(550);
      expect(r.dataReply).toMatchObject({ code: 250, enhanced: "2.0.0" });
      expect(r.dataReply!.text).toMatch(/queued as/);
    } finally {
      await session.quit();
    }
  });

  it("carries several awkward messages over one connection", async () => {
    const session = await openSmtpSession(options({ tls: "starttls-opportunistic" }));
    try {
      const bodies = [
        "Subject: dots\r\n\r\n.\r\n..leading dots\r\n.\r\n",
        "Subject: bare LF\n\nline one\nline two\n.\nafter a lone dot\n",
        "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSchöne Grüße 📬\r\n",
        `Subject: long line\r\n\r\n${"z".repeat(998)}\r\n`,
      ];
      for (const [i, body] of bodies.entries()) {
        const r = await session.sendMail({ mailFrom: "sender@relay.test.example", rcptTo: [`r${i}@dest.test.example`] }, body);
        expect(r.error).toBeUndefined();
        expect(r.recipients[0]!.delivered).toBe(true);
      }
      const utf8 = await session.sendMail({ mailFrom: "sender@relay.test.example", rcptTo: ["jörg@dest.test.example"] }, "Subject: utf8 address\r\n\r\nhi\r\n");
      expect(utf8.error).toBeUndefined();
      expect(session.messagesSent).toBe(5);
      expect(session.usable).toBe(true);
    } finally {
      await session.quit();
    }
  });

  it("streams a large body from a ReadableStream with a null sender and DSN NOTIFY", async () => {
    const session = await openSmtpSession(options());
    try {
      const line = new TextEncoder().encode(`${"0123456789".repeat(7)}\n`);
      let n = 0;
      const body = new ReadableStream<Uint8Array>({
        pull(c) {
          if (n === 0) c.enqueue(new TextEncoder().encode("Subject: streamed\n\n"));
          if (n++ >= 30_000) return c.close(); // about 2 MB
          c.enqueue(line);
        },
      });
      const r = await session.sendMail({ mailFrom: "", rcptTo: ["big@dest.test.example"], dsn: { notify: ["FAILURE"] } }, body);
      expect(r.error).toBeUndefined();
      expect(r.recipients[0]!.delivered).toBe(true);
    } finally {
      await session.quit();
    }
  });
});
