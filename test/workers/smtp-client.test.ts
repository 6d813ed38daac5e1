/**
 * The SMTP client inside the Workers runtime, over `connect()` from `cloudflare:sockets` (the production
 * adapter), against scripted SMTP servers on 127.0.0.1 started through the peers control server.
 */
/// <reference types="vite/client" />
import { env } from "cloudflare:workers";
import { describe, expect, inject, it } from "vitest";
import { openSmtpSession } from "../../src/smtp/client";
import { cloudflareSocketFactory } from "../../src/smtp/cloudflare-socket";
import type { ReceivedMessage, SmtpServerScript } from "../support/peers";
import testOnlyCert from "../fixtures/tls/test-only-cert.pem?raw";
import testOnlyKey from "../fixtures/tls/test-only-key.pem?raw";

// Talks to the peers control server directly rather than through ./helpers, so these tests only load src/smtp.
const control = () => `http://127.0.0.1:${inject("controlPort")}`;
async function startSmtp(script: SmtpServerScript): Promise<number> {
  const r = await fetch(`${control()}/smtp`, { method: "POST", body: JSON.stringify(script) });
  return ((await r.json()) as { port: number }).port;
}
async function receivedAt(port: number): Promise<ReceivedMessage[]> {
  return (await (await fetch(`${control()}/smtp/${port}/messages`)).json()) as ReceivedMessage[];
}
const unique = (prefix: string) => `${prefix}-${crypto.randomUUID()}`;

const options = (port: number) =>
  ({ socketFactory: cloudflareSocketFactory, host: "127.0.0.1", port, tls: "starttls-opportunistic", heloName: "relay.test.example" }) as const;

const bytesOf = (raw: string) => Uint8Array.from(raw, (c) => c.charCodeAt(0)); // ReceivedMessage.raw is latin1

describe("SMTP client on cloudflare:sockets", () => {
  it("streams an R2 body to two of three recipients, byte for byte", async () => {
    const port = await startSmtp({ rules: [{ stage: "rcpt", match: "nobody", code: 550, message: "no such user" }] });
    const body = `Subject: ${unique("r2")}\n\n.leading dot\nbare LF line\nSchöne Grüße 📬\n${"w".repeat(998)}\n`;
    const key = unique("body");
    await env.BODIES.put(key, body);
    const object = await env.BODIES.get(key);
    const session = await openSmtpSession(options(port));
    try {
      expect(session.tls).toBe(false);
      const r = await session.sendMail(
        { mailFrom: "app@sender.example", rcptTo: ["one@dest.example", "nobody@dest.example", "three@dest.example"], eightBit: true },
        object!.body,
      );
      expect(r.error).toBeUndefined();
      expect(r.recipients.map((x) => x.delivered)).toEqual([true, false, true]);
      expect(r.recipients[1]!.error).toMatchObject({ command: "RCPT", code: 550, temporary: false });
    } finally {
      await session.quit();
    }
    const [received] = await receivedAt(port);
    expect(received!.rcptTo).toEqual(["one@dest.example", "three@dest.example"]);
    expect(received!.mailParams).toMatchObject({ BODY: "8BITMIME" });
    expect(bytesOf(received!.raw)).toEqual(new TextEncoder().encode(body.replace(/\n/g, "\r\n")));
  });

  it("reports a temporary refusal, recovers with RSET, and fails clearly when TLS is required but missing", async () => {
    const port = await startSmtp({ rules: [{ stage: "mail", code: 451, message: "try later", times: 1 }] });
    const session = await openSmtpSession(options(port));
    try {
      const first = await session.sendMail({ mailFrom: "app@sender.example", rcptTo: ["a@dest.example"] }, "Subject: one\r\n\r\nx\r\n");
      expect(first.error).toMatchObject({ command: "MAIL", code: 451, temporary: true });
      expect(session.usable).toBe(true);
      const second = await session.sendMail({ mailFrom: "app@sender.example", rcptTo: ["a@dest.example"] }, "Subject: two\r\n\r\nx\r\n");
      expect(second.error).toBeUndefined();
    } finally {
      await session.quit();
    }
    expect((await receivedAt(port)).length).toBe(1);
    await expect(openSmtpSession({ ...options(port), tls: "starttls-required" })).rejects.toMatchObject({ kind: "tls", temporary: true });
  });

  it("never trusts a self-signed certificate: opportunistic falls back to plaintext once, required fails", async () => {
    // workerd verifies certificates and cannot be told otherwise, so the handshake with this test-only
    // self-signed certificate fails: the opportunistic mode retries in plaintext, the required mode fails.
    const port = await startSmtp({ tls: { key: testOnlyKey, cert: testOnlyCert } });
    const session = await openSmtpSession(options(port));
    try {
      expect(session.tls).toBe(false);
      expect((await session.sendMail({ mailFrom: "app@sender.example", rcptTo: ["a@dest.example"] }, "Subject: fallback\r\n\r\nx\r\n")).error).toBeUndefined();
    } finally {
      await session.quit();
    }
    const [received] = await receivedAt(port);
    expect(received!.secure).toBe(false);
    await expect(openSmtpSession({ ...options(port), tls: "starttls-required" })).rejects.toMatchObject({ kind: "tls", command: "STARTTLS", temporary: true });
  });
});
