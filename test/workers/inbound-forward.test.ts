/**
 * Forwarding aliases through the email() handler: SRS envelope, our Received and loop marker, a DKIM signature
 * mailauth verifies, bounces to the SRS address returned to the original sender; loops and oversize refused.
 */
import { inject } from "vitest";
import { describe, expect, it } from "vitest";
import { parseDkimKeys } from "../../src/accept/dkim-keys";
import { srsReverse } from "../../src/mime/srs";
import { publicKeyRecord } from "../../src/mime/dkim";
import { ADMIN_TOKEN, call, createTenantWithKey, env, receivedAt, routedDomain, routeDomain, startSmtp, unique, waitFor } from "./helpers";
import { deliverToWorker, eventRows, fakeEmail, fixtureFilled, inboundLog, recipientRows } from "./inbound-support";

const control = () => `http://127.0.0.1:${inject("controlPort")}`;

/** Publishes the test DKIM keys (vitest.config.ts: signed.example) in the DNS-over-HTTPS stub the verifier reads. */
async function publishDkimKeys(): Promise<void> {
  for (const k of parseDkimKeys(env.DKIM_KEYS)) {
    const value = await publicKeyRecord(k.privateKeyPem);
    const name = `${k.selector}._domainkey.${k.domain}`;
    await fetch(`${control()}/dns`, { method: "POST", body: JSON.stringify({ name, type: "TXT", entry: { Status: 0, Answer: [{ name, type: 16, TTL: 300, data: `"${value}"` }] } }) });
  }
}

async function verifyDkim(raw: string): Promise<{ domain: string; selector: string; result: string }[]> {
  const r = await fetch(`${control()}/verify-dkim`, { method: "POST", body: JSON.stringify({ raw }) });
  return (await r.json()) as { domain: string; selector: string; result: string }[];
}

/** A tenant whose domain is under signed.example (the test DKIM keys sign for it), an alias there, and an SMTP server for the destinations. */
async function aliasSetup(destinations = 2) {
  const aliasDomain = `${unique("fw")}.signed.example`;
  const { tenantId, key } = await createTenantWithKey([aliasDomain]);
  const { port, domain: destDomain } = await routedDomain({}, "dest");
  const alias = `team@${aliasDomain}`;
  const dests = Array.from({ length: destinations }, (_, i) => `member${i}@${destDomain}`);
  const r = await call("/admin/aliases", { method: "POST", key: ADMIN_TOKEN, json: { address: alias, tenant_id: tenantId, destinations: dests } });
  expect(r.status).toBe(201);
  return { aliasDomain, tenantId, key, port, destDomain, alias, dests };
}

function forwardMessage(o: { from: string; to: string; subject: string; messageId: string; extraHeaders?: string }): Promise<string> {
  return fixtureFilled("inbound/handler/forward-plain.eml", { FROM: o.from, TO: o.to, SUBJECT: o.subject, MESSAGE_ID: o.messageId, EXTRA_HEADERS: o.extraHeaders ?? "" });
}

/** A received message's bytes (latin1 string on the wire) as UTF-8 text. */
function utf8(latin1: string): string {
  return new TextDecoder().decode(Uint8Array.from(latin1, (c) => c.charCodeAt(0)));
}

describe("forwarding aliases", () => {
  it("forwards to every destination with an SRS envelope sender, our Received and loop marker, and a valid DKIM signature", async () => {
    await publishDkimKeys();
    const { alias, aliasDomain, dests, port, tenantId } = await aliasSetup();
    const subject = `Quarterly numbers ${unique()}`;
    const messageId = `${unique("m")}@sender.example`;
    const fake = fakeEmail({ from: "alice@sender.example", to: alias, raw: await forwardMessage({ from: "alice@sender.example", to: alias, subject, messageId }) });
    await deliverToWorker(fake);
    expect(fake.rejected()).toBeNull();
    expect(fake.forwarded).toEqual([]);

    const arrived = await waitFor(async () => (await receivedAt(port)).find((m) => m.raw.includes(subject)), 15_000, "the forwarded message");
    expect(arrived.rcptTo.sort()).toEqual([...dests].sort());
    expect(arrived.mailFrom).toMatch(new RegExp(`^SRS0=[A-Z2-7]{10}=[A-Z2-7]{2}=sender\\.example=alice@${aliasDomain.replace(/\./g, "\\.")}$`));
    expect(await srsReverse(arrived.mailFrom, env.SIGNING_SECRET!)).toEqual({ ok: true, address: "alice@sender.example" });

    const text = utf8(arrived.raw);
    expect(text).toMatch(/^Received: by relay\.edge-relay\.local \(Edge Relay\) with ESMTP id\b/m);
    expect(text).toContain(`X-Edge-Relay-Loop: ${alias}\r\n`);
    expect(text).not.toMatch(/^Return-Path:/im);
    expect(text).toContain(`Message-ID: <${messageId}>`);
    expect(text).toContain("Grüße aus Köln.");
    expect(text).toContain("\r\n.a line that starts with a dot\r\n");
    const dkim = await verifyDkim(arrived.raw);
    expect(dkim.filter((d) => d.domain === "signed.example").map((d) => `${d.selector}:${d.result}`).sort()).toEqual(["ed1:pass", "rsa1:pass"]);

    // The forward is an ordinary message of the tenant: recorded, delivered, visible in the API and the inbound log.
    const [log] = await inboundLog(alias);
    expect(log).toMatchObject({ kind: "forward", outcome: "forwarded" });
    const row = await env.DB.prepare("SELECT tenant_id, mail_from, message_id_header, tags FROM messages WHERE id = ?").bind(log!.message_id).first<Record<string, string>>();
    expect(row).toMatchObject({ tenant_id: tenantId, mail_from: arrived.mailFrom, message_id_header: messageId, tags: '["forward"]' });
    await waitFor(async () => ((await recipientRows(log!.message_id!)).every((r) => r.status === "delivered") ? true : undefined), 15_000, "delivered state");
  });

  it("returns a bounce sent to the SRS address to the original sender with the null sender, and records it on the forward", async () => {
    const { alias, dests, port } = await aliasSetup();
    const senderDomain = `${unique("snd")}.example`;
    const senderPort = await startSmtp();
    await routeDomain(senderDomain, `smtp://127.0.0.1:${senderPort}`);
    const sender = `alice@${senderDomain}`;
    const subject = `Bounce me ${unique()}`;
    const messageId = `${unique("m")}@${senderDomain}`;
    await deliverToWorker(fakeEmail({ from: sender, to: alias, raw: await forwardMessage({ from: sender, to: alias, subject, messageId }) }));
    const forwarded = await waitFor(async () => (await receivedAt(port)).find((m) => m.raw.includes(subject)), 15_000, "the forwarded message");
    const [log] = await inboundLog(alias);
    const forwardId = log!.message_id!;
    await waitFor(async () => ((await recipientRows(forwardId)).every((r) => r.status === "delivered") ? true : undefined), 15_000, "delivered state");

    const srsAddress = forwarded.mailFrom;
    const dsn = await fixtureFilled("inbound/handler/dsn-template.eml", {
      TO: srsAddress,
      RCPT_DOMAIN: dests[1]!.split("@")[1]!,
      RECIPIENT: dests[1]!,
      ORIGINAL_RECIPIENT_LINE: "",
      STATUS: "5.1.1",
      DIAGNOSTIC: `550 5.1.1 <${dests[1]}>: Recipient address rejected: User unknown`,
      ORIGINAL_RETURN_PATH: srsAddress,
      SENDER_DOMAIN: senderDomain,
      ORIGINAL_TO: alias,
      MESSAGE_ID: messageId,
    });
    // The destination returns the headers of the copy it got, which carry the relay's DKIM signature: that is
    // what lets the bounce change the forward's state (issue 15).
    const returnedHeaders = forwarded.raw.slice(0, forwarded.raw.indexOf("\r\n\r\n"));
    const signedDsn = dsn.replace(/(Content-Type: text\/rfc822-headers\r\n\r\n)[\s\S]*?(\r\n\r\n--)/, (_, a: string, b: string) => a + returnedHeaders + b);
    const bounce = fakeEmail({ from: "", to: srsAddress, raw: signedDsn });
    await deliverToWorker(bounce);
    expect(bounce.rejected()).toBeNull();

    const returned = await waitFor(async () => (await receivedAt(senderPort)).find((m) => m.rcptTo.includes(sender)), 15_000, "the bounce back at the original sender");
    expect(returned.mailFrom).toBe("");
    expect(utf8(returned.raw)).toContain("Undelivered Mail Returned to Sender");
    const rows = await recipientRows(forwardId);
    expect(rows.map((r) => r.status)).toEqual(["delivered", "bounced"]);
    const [event] = await eventRows(forwardId, "bounced");
    expect(event).toMatchObject({ recipient: dests[1], enhanced: "5.1.1" });
    expect(JSON.parse(event!.data!)).toMatchObject({ async: true, attribution: "dkim" });
  });

  it("refuses to forward for a suspended tenant", async () => {
    const { alias, tenantId } = await aliasSetup(1);
    const r = await call(`/admin/tenants/${tenantId}`, { method: "PATCH", key: ADMIN_TOKEN, json: { suspended: true } });
    expect(r.status).toBe(200);
    const fake = fakeEmail({ from: "bob@sender.example", to: alias, raw: await forwardMessage({ from: "bob@sender.example", to: alias, subject: "s", messageId: `${unique("m")}@sender.example` }) });
    await deliverToWorker(fake);
    expect(fake.rejected()).toBe(`5.7.1 <${alias}>: forwarding for this address is suspended`);
    const n = await env.DB.prepare("SELECT COUNT(*) AS n FROM messages WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>();
    expect(n?.n).toBe(0);
  });

  it("refuses an SRS address with a bad hash", async () => {
    const { aliasDomain } = await aliasSetup(1);
    const fake = fakeEmail({ from: "", to: `SRS0=AAAA=AB=sender.example=alice@${aliasDomain}`, raw: "From: MAILER-DAEMON@x.example\r\nSubject: x\r\n\r\nx\r\n" });
    await deliverToWorker(fake);
    expect(fake.rejected()).toMatch(/^5\.1\.1 .*SRS hash/);
  });
});

describe("forwarding loops and limits", () => {
  it("stops a message that comes back to the alias it was forwarded for", async () => {
    const { alias, port } = await aliasSetup(1);
    const subject = `Loop ${unique()}`;
    await deliverToWorker(fakeEmail({ from: "bob@sender.example", to: alias, raw: await forwardMessage({ from: "bob@sender.example", to: alias, subject, messageId: `${unique("m")}@sender.example` }) }));
    const first = await waitFor(async () => (await receivedAt(port)).find((m) => m.raw.includes(subject)), 15_000, "the first forward");

    // The destination hands the forwarded message back to the alias (a forwarding loop between two systems).
    const back = fakeEmail({ from: first.mailFrom, to: alias, raw: Uint8Array.from(first.raw, (c) => c.charCodeAt(0)) });
    await deliverToWorker(back);
    expect(back.rejected()).toMatch(/^5\.4\.6 Routing loop detected: the message was already forwarded for team@/);
    await new Promise((r) => setTimeout(r, 1500));
    expect((await receivedAt(port)).filter((m) => m.raw.includes(subject))).toHaveLength(1);
    expect((await inboundLog(alias)).map((l) => l.outcome)).toEqual(["forwarded", "rejected"]);
  });

  it("stops a message with more Received lines than the hop limit", async () => {
    const { alias } = await aliasSetup(1);
    const hops = Array.from({ length: 101 }, (_, i) => `Received: from hop${i}.example by hop${i + 1}.example; Sat, 28 Nov 2026 06:00:00 +0000\r\n`).join("");
    const fake = fakeEmail({ from: "bob@sender.example", to: alias, raw: await forwardMessage({ from: "bob@sender.example", to: alias, subject: "hops", messageId: `${unique("m")}@sender.example`, extraHeaders: hops }) });
    await deliverToWorker(fake);
    expect(fake.rejected()).toMatch(/^5\.4\.6 Routing loop detected: too many hops: 103 Received header fields \(limit 100\)$/);
  });

  it("refuses a message larger than MAX_MESSAGE_BYTES, by its declared size or while reading it", async () => {
    const { alias, tenantId } = await aliasSetup(1);
    const raw = await forwardMessage({ from: "bob@sender.example", to: alias, subject: "big", messageId: `${unique("m")}@sender.example` });
    const declared = fakeEmail({ from: "bob@sender.example", to: alias, raw, rawSize: 26_214_401 });
    await deliverToWorker(declared);
    expect(declared.rejected()).toBe("5.3.4 Message too big: 26214401 bytes, the limit for forwarding is 26214400 bytes");

    const padded = raw + "x".repeat(70).concat("\r\n").repeat(100);
    const lying = fakeEmail({ from: "bob@sender.example", to: alias, raw: padded, rawSize: 100, chunkBytes: 1000 });
    await deliverToWorker(lying, { MAX_MESSAGE_BYTES: "4000" });
    expect(lying.rejected()).toBe("5.3.4 Message too big: more than 4000 bytes, the limit for forwarding");
    const n = await env.DB.prepare("SELECT COUNT(*) AS n FROM messages WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>();
    expect(n?.n).toBe(0);
  });
});
