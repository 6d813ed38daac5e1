/**
 * DKIM at accept, checked by an independent verifier: messages as received by the test SMTP server (and as
 * returned by a MailChannels dry run) are verified by mailauth in Node (the peers' POST /verify-dkim), which
 * resolves the public keys from the DNS records the relay told us to publish (GET /v1/domains/:domain/dns).
 */
import { describe, expect, it } from "vitest";
import { inject } from "vitest";
import { publicKeyRecord, signDkim } from "../../src/mime/dkim";
import { call, createTenantWithKey, receivedAt, sinkPort, unique, waitFor } from "./helpers";

const control = () => `http://127.0.0.1:${inject("controlPort")}`;
type Verified = { domain: string; selector: string; result: string; info: string }[];

async function publishTxt(name: string, value: string): Promise<void> {
  const r = await fetch(`${control()}/dns`, { method: "POST", body: JSON.stringify({ name, type: "TXT", entry: { Status: 0, Answer: [{ name, type: 16, TTL: 60, data: `"${value}"` }] } }) });
  expect(r.status).toBe(200);
}

/** `raw` holds one octet per character (latin1), as the sink stores messages. */
async function verifyFull(raw: string): Promise<Verified> {
  const r = await fetch(`${control()}/verify-dkim`, { method: "POST", body: JSON.stringify({ raw }) });
  expect(r.status).toBe(200);
  return (await r.json()) as Verified;
}

async function verify(raw: string): Promise<string[]> {
  return (await verifyFull(raw)).map((v) => `${v.domain}/${v.selector}:${v.result}`).sort();
}

/** A tenant on a subdomain of signed.example (whose DKIM keys are configured), with the DKIM records published. */
async function signedTenant(): Promise<{ key: string; domain: string }> {
  const domain = `${unique("d")}.signed.example`;
  const { key } = await createTenantWithKey([domain]);
  const res = await call(`/v1/domains/${domain}/dns`, { key });
  const { records } = (await res.json()) as { records: { purpose: string; name: string; value: string }[] };
  const dkim = records.filter((r) => r.purpose === "dkim");
  expect(dkim.map((r) => r.name).sort()).toEqual(["ed1._domainkey.signed.example", "rsa1._domainkey.signed.example"]);
  for (const r of dkim) await publishTxt(r.name, r.value);
  return { key, domain };
}

async function arrived(marker: string): Promise<string> {
  const m = await waitFor(async () => (await receivedAt(sinkPort())).find((x) => x.raw.includes(marker)), 15_000, `message ${marker} at the sink`);
  return m.raw;
}

const BOTH_PASS = ["signed.example/ed1:pass", "signed.example/rsa1:pass"];

async function pemOf(key: CryptoKey): Promise<string> {
  const der = new Uint8Array((await crypto.subtle.exportKey("pkcs8", key)) as ArrayBuffer);
  const b64 = btoa(String.fromCharCode(...der));
  return `-----BEGIN PRIVATE KEY-----\n${b64.match(/.{1,64}/g)!.join("\n")}\n-----END PRIVATE KEY-----\n`;
}

describe("DKIM signatures verified by mailauth", () => {
  const bodies: [string, Record<string, unknown>][] = [
    ["plain text", { text: "Hello.\nSecond line." }],
    ["trailing whitespace and blank lines", { text: "trailing   \nspaces\t\n\n\n\n" }],
    ["an empty body", { text: "" }],
    ["lines starting with dots", { text: ".\n..two dots\n.leading\nend" }],
    ["long lines", { text: `${"long ".repeat(400)}\n${"x".repeat(1500)}` }],
    ["8-bit UTF-8", { subject: "Grüße aus Köln — 東京", text: "Ünïcödé bödy — ✓ 🚀\n" }],
    ["attachments and inline parts", { html: '<p>logo <img src="cid:logo"></p>', text: "alt", attachments: [{ filename: "logo.png", content: btoa("\x89PNG fake"), content_id: "logo" }, { filename: "Bericht für März.pdf", content: btoa("%PDF-1.4 ...") }] }],
  ];
  for (const [what, fields] of bodies) {
    it(`RSA and Ed25519 signatures verify for ${what}`, async () => {
      const { key, domain } = await signedTenant();
      const marker = unique("dkim");
      const res = await call("/v1/messages", { method: "POST", key, json: { from: `app@${domain}`, to: [`${marker}@sink.example`], subject: "s", ...fields } });
      expect(res.status, await res.clone().text()).toBe(202);
      const raw = await arrived(marker);
      expect(await verify(raw)).toEqual(BOTH_PASS);
    });
  }

  it("signs broadcast mail including List-Unsubscribe and List-Unsubscribe-Post", async () => {
    const { key, domain } = await signedTenant();
    const marker = unique("bcast");
    const res = await call("/v1/messages", { method: "POST", key, json: { from: `news@${domain}`, to: [`${marker}@sink.example`], subject: "news", text: "x", stream: "broadcast" } });
    expect(res.status).toBe(202);
    const raw = await arrived(marker);
    expect(await verify(raw)).toEqual(BOTH_PASS);
    const sig = /DKIM-Signature:[^]*?\r\n(?![ \t])/.exec(raw)![0].replace(/\r\n[ \t]+/g, " ");
    expect(sig).toMatch(/h=[^;]*list-unsubscribe:[^;]*list-unsubscribe-post/i);
  });

  it("a tampered body fails verification", async () => {
    const { key, domain } = await signedTenant();
    const marker = unique("tamper");
    await call("/v1/messages", { method: "POST", key, json: { from: `app@${domain}`, to: [`${marker}@sink.example`], subject: "s", text: "Pay 100 EUR to account 1234." } });
    const raw = await arrived(marker);
    expect(await verify(raw)).toEqual(BOTH_PASS);
    // mailauth reports a body hash mismatch as "neutral" with the reason in info (RFC 6376 section 6.3 leaves the wording open).
    const tampered = await verifyFull(raw.replace("100 EUR", "900 EUR"));
    expect(tampered).toHaveLength(2);
    for (const v of tampered) {
      expect(v.result).not.toBe("pass");
      expect(v.info).toMatch(/body hash did not verify/);
    }
  });

  it("keeps an existing signature on mail through the raw endpoint and adds ours", async () => {
    const { key, domain } = await signedTenant();
    const upstream = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const upstreamPem = await pemOf(upstream.privateKey);
    await publishTxt("up._domainkey.esp.example", await publicKeyRecord(upstreamPem));
    const marker = unique("rawdkim");
    const message = [`From: App <app@${domain}>`, `To: ${marker}@sink.example`, "Subject: signed upstream", "Message-ID: <x1@esp.example>", "Date: Sat, 28 Nov 2026 06:00:00 +0000", "MIME-Version: 1.0", "Content-Type: text/plain; charset=utf-8", "Content-Transfer-Encoding: 8bit", "", "Körper mit Umlauten.", ".dot line", ""].join("\r\n");
    const presigned = await signDkim(message, [{ domain: "esp.example", selector: "up", privateKeyPem: upstreamPem }]);
    expect(await verify(String.fromCharCode(...new TextEncoder().encode(presigned)))).toEqual(["esp.example/up:pass"]);
    const res = await call("/v1/messages/raw", { method: "POST", key, headers: { "content-type": "message/rfc822", "x-envelope-to": `${marker}@sink.example` }, body: presigned });
    expect(res.status, await res.clone().text()).toBe(202);
    const raw = await arrived(marker);
    // The sink stores octets as latin1; the verifier reads them back as octets.
    expect(await verify(raw)).toEqual(["esp.example/up:pass", ...BOTH_PASS].sort());
  });

  it("MailChannels dry run: the request's own dkim_* key verifies; the relay's keys do not sign a dry run (issue 15)", async () => {
    const { key, domain } = await signedTenant();
    const own = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const der = new Uint8Array((await crypto.subtle.exportKey("pkcs8", own.privateKey)) as ArrayBuffer);
    await publishTxt(`mc._domainkey.${domain}`, await publicKeyRecord(await pemOf(own.privateKey)));
    const res = await call("/tx/v1/send?dry-run=true", {
      method: "POST",
      key,
      json: {
        personalizations: [{ to: [{ email: "someone@sink.example" }], dkim_domain: domain, dkim_selector: "mc", dkim_private_key: btoa(String.fromCharCode(...der)) }],
        from: { email: `app@${domain}` },
        subject: "dry",
        content: [{ type: "text/plain", value: "dry run body" }],
      },
    });
    expect(res.status, await res.clone().text()).toBe(200);
    const { data } = (await res.json()) as { data: string[] };
    const latin1 = String.fromCharCode(...new TextEncoder().encode(data[0]!));
    expect(await verify(latin1)).toEqual([`${domain}/mc:pass`]);
  });
});
