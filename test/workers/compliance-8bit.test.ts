/**
 * Issue 21, 8-bit safety: an 8-bit message sent to a server that does not offer 8BITMIME arrives converted (7-bit,
 * quoted-printable/base64) with every DKIM signature valid (mailauth, in Node, through the peers' /verify-dkim); a
 * message that cannot be converted (the sender signed its 8-bit body) is refused with 5.6.3, never sent as it is.
 */
import PostalMime from "postal-mime";
import { describe, expect, it } from "vitest";
import { inject } from "vitest";
import { publicKeyRecord, signDkim } from "../../src/mime/dkim";
import { addRoute, eventRows, waitAllFinal } from "../support/delivery-helpers";
import { call, createTenantWithKey, receivedAt, startSmtp, unique } from "./helpers";

const control = () => `http://127.0.0.1:${inject("controlPort")}`;

async function publishTxt(name: string, value: string): Promise<void> {
  const r = await fetch(`${control()}/dns`, { method: "POST", body: JSON.stringify({ name, type: "TXT", entry: { Status: 0, Answer: [{ name, type: 16, TTL: 60, data: `"${value}"` }] } }) });
  expect(r.status).toBe(200);
}

async function verify(raw: string): Promise<string[]> {
  const r = await fetch(`${control()}/verify-dkim`, { method: "POST", body: JSON.stringify({ raw }) });
  return ((await r.json()) as { domain: string; selector: string; result: string }[]).map((v) => `${v.domain}/${v.selector}:${v.result}`).sort();
}

/** A tenant on a subdomain of signed.example (DKIM keys configured, records published) and a sink without 8BITMIME. */
async function setup(): Promise<{ key: string; domain: string; port: number; rcptDomain: string }> {
  const domain = `${unique("d")}.signed.example`;
  const { key } = await createTenantWithKey([domain]);
  const { records } = (await (await call(`/v1/domains/${domain}/dns`, { key })).json()) as { records: { purpose: string; name: string; value: string }[] };
  for (const r of records.filter((x) => x.purpose === "dkim")) await publishTxt(r.name, r.value);
  const port = await startSmtp({ hide: ["8BITMIME"] });
  const rcptDomain = `${unique("seven")}.example`;
  await addRoute({ match_recipient_domain: rcptDomain, next_hop_url: `smtp://127.0.0.1:${port}` });
  return { key, domain, port, rcptDomain };
}

async function sendRaw(key: string, to: string, raw: string): Promise<string> {
  const res = await call("/v1/messages/raw", { method: "POST", key, headers: { "content-type": "message/rfc822", "x-envelope-to": to }, body: raw });
  expect(res.status, await res.clone().text()).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

const BOTH_PASS = ["signed.example/ed1:pass", "signed.example/rsa1:pass"];

describe("8-bit safety", () => {
  it("converts 8-bit bodies at accept: a server without 8BITMIME gets 7-bit data, DKIM-valid, with the same content", async () => {
    const { key, domain, port, rcptDomain } = await setup();
    const text = "Schöne Grüße aus Zürich — ✓\r\n.dot line\r\n";
    const b = "=_part";
    const messages = [
      `From: App <app@${domain}>\r\nTo: x@${rcptDomain}\r\nSubject: eight bit plain\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${text}`,
      `From: App <app@${domain}>\r\nTo: x@${rcptDomain}\r\nSubject: eight bit multipart\r\nMIME-Version: 1.0\r\nContent-Type: multipart/mixed; boundary="${b}"\r\n\r\n` +
        `--${b}\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${text}--${b}\r\n` +
        `Content-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=data.txt\r\nContent-Transfer-Encoding: 8bit\r\n\r\nÄÖÜ data\r\n--${b}--\r\n`,
    ];
    const ids = [];
    for (const m of messages) ids.push(await sendRaw(key, `x@${rcptDomain}`, m));
    expect((await waitAllFinal(ids, 30_000)).map((r) => r.status)).toEqual(["delivered", "delivered"]);
    const got = await receivedAt(port);
    expect(got).toHaveLength(2);
    for (const m of got) {
      expect(/[^\x00-\x7f]/.test(m.raw)).toBe(false);
      expect(m.mailParams.BODY).toBeUndefined();
      expect(await verify(m.raw)).toEqual(BOTH_PASS);
      const parsed = await PostalMime.parse(new TextEncoder().encode(m.raw));
      expect(parsed.text?.replace(/\n/g, "\r\n")).toContain("Schöne Grüße aus Zürich — ✓\r\n.dot line");
      if (parsed.subject === "eight bit multipart") expect(new TextDecoder().decode(parsed.attachments[0]!.content as ArrayBuffer)).toBe("ÄÖÜ data"); // the CRLF before a delimiter belongs to the delimiter (RFC 2046 5.1.1)
    }
  });

  it("refuses (5.6.3) an 8-bit body that the sender signed, rather than sending it unconverted", async () => {
    const { key, domain, port, rcptDomain } = await setup();
    const upstream = (await crypto.subtle.generateKey({ name: "Ed25519" }, true, ["sign", "verify"])) as CryptoKeyPair;
    const der = new Uint8Array((await crypto.subtle.exportKey("pkcs8", upstream.privateKey)) as ArrayBuffer);
    const pem = `-----BEGIN PRIVATE KEY-----\n${btoa(String.fromCharCode(...der)).match(/.{1,64}/g)!.join("\n")}\n-----END PRIVATE KEY-----\n`;
    await publishTxt("up8._domainkey.esp.example", await publicKeyRecord(pem));
    const message = `From: App <app@${domain}>\r\nTo: y@${rcptDomain}\r\nSubject: presigned\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nKörper\r\n`;
    const presigned = await signDkim(message, [{ domain: "esp.example", selector: "up8", privateKeyPem: pem }]);
    const id = await sendRaw(key, `y@${rcptDomain}`, presigned);
    const [row] = await waitAllFinal([id], 30_000);
    expect(row!.status).toBe("bounced");
    const bounced = (await eventRows([id])).find((e) => e.type === "bounced")!;
    expect(bounced.enhanced).toBe("5.6.3");
    expect(bounced.text).toMatch(/8BITMIME/);
    expect(await receivedAt(port)).toHaveLength(0);
  });
});
