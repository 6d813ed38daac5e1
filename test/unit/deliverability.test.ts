import { generateKeyPairSync } from "node:crypto";
import { describe, expect, it } from "vitest";
import { dkimVerify } from "mailauth/lib/dkim/verify";
import {
  HeaderValueError,
  feedbackIdField,
  formatHeaderField,
  insertHeaders,
  listUnsubscribeFields,
  receivedField,
  signUnsubscribeToken,
  unsubscribeMailto,
  unsubscribeUrl,
  verifyUnsubscribeToken,
} from "../../src/mime/deliverability";
import { publicKeyRecord, signDkim } from "../../src/mime/dkim";

const raw = "From: a@example.com\r\nTo: b@example.org\r\nSubject: hi\r\n\r\nbody\r\n";

describe("formatHeaderField", () => {
  it("keeps short fields on one line", () => {
    expect(formatHeaderField({ name: "X-Tag", value: "one two" })).toBe("X-Tag: one two");
  });

  it("folds long values before spaces at 78 characters and unfolds back to the value", () => {
    const value = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");
    const folded = formatHeaderField({ name: "Subject", value });
    const lines = folded.split("\r\n");
    expect(lines.length).toBeGreaterThan(2);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(78);
    for (const line of lines.slice(1)) expect(line).toMatch(/^ \S/);
    expect(folded.replace(/\r\n/g, "")).toBe(`Subject: ${value}`);
  });

  it("leaves an unbreakable token long rather than splitting it, up to 998", () => {
    const token = "x".repeat(200);
    expect(formatHeaderField({ name: "X-Long", value: `a ${token} b` }).split("\r\n")).toEqual(["X-Long: a", ` ${token}`, " b"]);
    expect(() => formatHeaderField({ name: "X-Long", value: "y".repeat(1000) })).toThrow(HeaderValueError);
  });

  it("refuses CR, LF and NUL in values and bad names (header injection)", () => {
    for (const value of ["a\r\nBcc: evil@example.net", "a\nb", "a\rb", "a\0b"]) {
      expect(() => formatHeaderField({ name: "X-Test", value })).toThrow(HeaderValueError);
    }
    for (const name of ["Bad Name", "Bad:Name", "", "Naïve"]) {
      expect(() => formatHeaderField({ name, value: "v" })).toThrow(HeaderValueError);
    }
  });
});

describe("insertHeaders", () => {
  it("adds fields at the top in order with CRLF", () => {
    const out = insertHeaders(raw, [
      { name: "X-One", value: "1" },
      { name: "X-Two", value: "2" },
    ]);
    expect(out).toBe("X-One: 1\r\nX-Two: 2\r\n" + raw);
  });

  it("follows an LF-only message's line ending and handles bytes", () => {
    const lf = raw.replace(/\r\n/g, "\n");
    expect(insertHeaders(lf, [{ name: "X-One", value: "1" }])).toBe("X-One: 1\n" + lf);
    const bytes = insertHeaders(new TextEncoder().encode(raw), [{ name: "X-U", value: "ü" }]);
    expect(new TextDecoder().decode(bytes)).toBe("X-U: ü\r\n" + raw);
  });

  it("refuses a message that starts with whitespace and unsafe values", () => {
    expect(() => insertHeaders(" continuation\r\n" + raw, [{ name: "X-One", value: "1" }])).toThrow(HeaderValueError);
    expect(() => insertHeaders(raw, [{ name: "X-One", value: "1\r\nBcc: x@example.net" }])).toThrow(HeaderValueError);
  });
});

describe("receivedField", () => {
  const date = new Date("2026-11-28T05:49:30Z");

  it("writes an RFC 5321 trace line", () => {
    const field = receivedField({ by: "relay.example.com", fromName: "app01", fromAddress: "203.0.113.7", protocol: "HTTPS", id: "m1abc", for: "bob@example.org", date });
    expect(formatHeaderField(field).replace(/\r\n/g, "")).toBe(
      "Received: from app01 ([203.0.113.7]) by relay.example.com (Edge Relay) with HTTPS id m1abc for <bob@example.org>; Sat, 28 Nov 2026 05:49:30 +0000",
    );
    const v6 = receivedField({ by: "relay.example.com", fromAddress: "2001:db8::1", protocol: "ESMTPSA", id: "x", date });
    expect(v6.value).toBe("from unknown ([IPv6:2001:db8::1]) by relay.example.com (Edge Relay) with ESMTPSA id x; Sat, 28 Nov 2026 05:49:30 +0000");
    expect(receivedField({ by: "relay.example.com", protocol: "HTTPS", id: "x", date }).value).toMatch(/^by relay\.example\.com /);
  });

  it("refuses values that would change the line's structure", () => {
    expect(() => receivedField({ by: "relay.example.com", fromName: "evil; x", protocol: "HTTPS", id: "x", date })).toThrow(HeaderValueError);
    expect(() => receivedField({ by: "relay.example.com", fromAddress: "not-an-ip", protocol: "HTTPS", id: "x", date })).toThrow(HeaderValueError);
    expect(() => receivedField({ by: "relay.example.com", protocol: "HTTPS", id: "x", for: "a@b>c", date })).toThrow(HeaderValueError);
  });
});

describe("feedbackIdField", () => {
  it("writes tenant:stream:tag:relay-id and keeps colons out of the fields", () => {
    expect(feedbackIdField({ tenant: "acme", stream: "broadcast", tag: "spring-sale", relayId: "edgerelay1" })).toEqual({
      name: "Feedback-ID",
      value: "acme:broadcast:spring-sale:edgerelay1",
    });
    expect(feedbackIdField({ tenant: "a:b", stream: "tx", relayId: "r1" }).value).toBe("a-b:tx::r1");
    expect(feedbackIdField({ tenant: "t", stream: "s", tag: "news letter/2026", relayId: "r" }).value).toBe("t:s:news-letter-2026:r");
    expect(() => feedbackIdField({ tenant: "t", stream: "s", relayId: "" })).toThrow(HeaderValueError);
  });
});

describe("List-Unsubscribe and the one-click token", () => {
  const secret = "unsubscribe-secret";

  it("writes both URIs and the RFC 8058 one-click field", async () => {
    const token = await signUnsubscribeToken({ sender: "example.com", recipient: "bob@example.org", messageId: "m1" }, secret);
    const fields = listUnsubscribeFields({
      url: unsubscribeUrl("https://relay.example.com/v1/unsubscribe/", token),
      mailto: unsubscribeMailto("unsubscribe@bounces.example.com", token),
    });
    expect(fields).toEqual([
      {
        name: "List-Unsubscribe",
        value: `<https://relay.example.com/v1/unsubscribe/${token}>, <mailto:unsubscribe@bounces.example.com?subject=unsubscribe%20${token}>`,
      },
      { name: "List-Unsubscribe-Post", value: "List-Unsubscribe=One-Click" },
    ]);
    expect(() => listUnsubscribeFields({ url: "http://relay.example.com/u/x" })).toThrow(/https/);
    expect(() => listUnsubscribeFields({ url: "https://relay.example.com/u/x", mailto: "mailto:a b@c" })).toThrow(HeaderValueError);
  });

  it("round-trips the token and rejects tampering and other secrets", async () => {
    const payload = { sender: "example.com", recipient: "bob@example.org", messageId: "m1", stream: "broadcast" };
    const token = await signUnsubscribeToken(payload, secret);
    expect(token).toMatch(/^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]{22}$/);
    expect(await verifyUnsubscribeToken(token, secret)).toEqual(payload);
    expect(await verifyUnsubscribeToken(token, "other-secret")).toBeNull();
    const [body = "", mac = ""] = token.split(".");
    const forgedBody = btoa(JSON.stringify({ s: "example.com", r: "carol@example.org" })).replace(/=+$/, "").replace(/\+/g, "-").replace(/\//g, "_");
    expect(await verifyUnsubscribeToken(`${forgedBody}.${mac}`, secret)).toBeNull();
    expect(await verifyUnsubscribeToken(`${body}.${mac.slice(0, -1)}${mac.endsWith("A") ? "B" : "A"}`, secret)).toBeNull();
    expect(await verifyUnsubscribeToken("garbage", secret)).toBeNull();
    expect(await verifyUnsubscribeToken(decodeURIComponent(encodeURIComponent(token)), secret)).toEqual(payload);
  });

  it("produces headers that stay DKIM-valid and are covered by the signature", async () => {
    const pem = generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
    const txt = await publicKeyRecord(pem);
    const token = await signUnsubscribeToken({ sender: "example.com", recipient: "b@example.org" }, secret);
    const withHeaders = insertHeaders(raw, [
      receivedField({ by: "relay.example.com", protocol: "HTTPS", id: "m1", date: new Date() }),
      feedbackIdField({ tenant: "acme", stream: "broadcast", tag: "news", relayId: "edge1" }),
      ...listUnsubscribeFields({ url: unsubscribeUrl("https://relay.example.com/u", token), mailto: unsubscribeMailto("unsub@bounces.example.com", token) }),
    ]);
    const signed = await signDkim(withHeaders, [{ domain: "example.com", selector: "s1", privateKeyPem: pem }]);
    const resolver = async (name: string) => {
      if (name === "s1._domainkey.example.com") return [[txt]];
      throw Object.assign(new Error("nx"), { code: "ENOTFOUND" });
    };
    const ok = await dkimVerify(signed, { resolver });
    expect(ok.results.map((r) => r.status.result)).toEqual(["pass"]);
    const tampered = signed.replace("List-Unsubscribe-Post: List-Unsubscribe=One-Click", "List-Unsubscribe-Post: List-Unsubscribe=Two-Click");
    const bad = await dkimVerify(tampered, { resolver });
    expect(bad.results.map((r) => r.status.result)).toEqual(["fail"]);
  });
});
