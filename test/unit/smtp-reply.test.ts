import { describe, expect, it } from "vitest";
import { hmacMd5, md5, cramMd5Response, plainResponse } from "../../src/smtp/auth";
import { parseEhloReply } from "../../src/smtp/capabilities";
import { SmtpError, isTemporaryFailure } from "../../src/smtp/errors";
import { MAX_REPLY_LINE_BYTES, ReplyParser, ReplySyntaxError, buildReply } from "../../src/smtp/reply";
import { createHash, createHmac } from "node:crypto";

const bytes = (s: string) => new TextEncoder().encode(s);

describe("ReplyParser", () => {
  it("parses single and multi-line replies with enhanced codes", () => {
    const p = new ReplyParser();
    p.push(bytes("250-mx.example.org Hello\r\n250-PIPELINING\r\n250 8BITMIME\r\n550 5.1.1 <a@b> no such user\r\n"));
    expect(p.shift()).toEqual({ code: 250, text: "mx.example.org Hello\nPIPELINING\n8BITMIME", lines: ["mx.example.org Hello", "PIPELINING", "8BITMIME"] });
    expect(p.shift()).toEqual({ code: 550, enhanced: "5.1.1", text: "<a@b> no such user", lines: ["5.1.1 <a@b> no such user"] });
    expect(p.shift()).toBeUndefined();
  });

  it("keeps partial lines and split UTF-8 across pushes", () => {
    const p = new ReplyParser();
    const all = bytes("250-first\r\n250 Grüße\r\n");
    for (const b of all) {
      p.push(new Uint8Array([b]));
    }
    expect(p.shift()).toMatchObject({ code: 250, lines: ["first", "Grüße"] });
  });

  it("accepts bare LF line ends and a code without text", () => {
    const p = new ReplyParser();
    p.push(bytes("354\n"));
    expect(p.shift()).toEqual({ code: 354, text: "", lines: [""] });
  });

  it("ignores an enhanced code whose class contradicts the reply code", () => {
    expect(buildReply(250, ["5.1.1 odd"]).enhanced).toBeUndefined();
    expect(buildReply(451, ["4.7.1 try later"]).enhanced).toBe("4.7.1");
  });

  it("rejects garbage, code changes inside a reply, and endless lines", () => {
    expect(() => new ReplyParser().push(bytes("HTTP/1.1 400 Bad Request\r\n"))).toThrow(ReplySyntaxError);
    expect(() => new ReplyParser().push(bytes("250-a\r\n251 b\r\n"))).toThrow(ReplySyntaxError);
    expect(() => new ReplyParser().push(new Uint8Array(MAX_REPLY_LINE_BYTES + 10).fill(0x41))).toThrow(ReplySyntaxError);
  });
});

describe("parseEhloReply", () => {
  it("reads the extensions the client uses", () => {
    const caps = parseEhloReply(
      buildReply(250, ["mx.example.org greets you", "PIPELINING", "SIZE 10240000", "8BITMIME", "SMTPUTF8", "STARTTLS", "AUTH PLAIN LOGIN", "AUTH=CRAM-MD5", "ENHANCEDSTATUSCODES", "DSN", "CHUNKING"]),
    );
    expect(caps).toMatchObject({
      serverName: "mx.example.org",
      esmtp: true,
      pipelining: true,
      size: 10240000,
      eightBitMime: true,
      smtputf8: true,
      startTls: true,
      enhancedStatusCodes: true,
      dsn: true,
      chunking: true,
    });
    expect(caps.auth.sort()).toEqual(["CRAM-MD5", "LOGIN", "PLAIN"]);
  });
  it("reports missing extensions as absent", () => {
    const caps = parseEhloReply(buildReply(250, ["mx"]));
    expect(caps).toMatchObject({ pipelining: false, startTls: false, auth: [] });
    expect(caps.size).toBeUndefined();
  });
});

describe("isTemporaryFailure", () => {
  const reply = (code: number, text = "x") => buildReply(code, [text]);
  it.each([
    [421, "MAIL", true],
    [450, "RCPT", true],
    [451, "DATA", true],
    [452, "RCPT", true],
    [550, "RCPT", false],
    [552, "DATA", false],
    [552, "RCPT", true], // RFC 5321 4.5.3.1.10: too many recipients, treat as 452
    [554, "DATA", false],
    [554, "GREETING", false],
  ] as const)("%i to %s -> temporary %s", (code, command, temporary) => {
    expect(isTemporaryFailure("reply", command, reply(code))).toBe(temporary);
    expect(new SmtpError({ kind: "reply", command, reply: reply(code) }).temporary).toBe(temporary);
  });
  it("treats timeouts, drops, TLS and auth failures as temporary", () => {
    for (const kind of ["timeout", "connection", "tls", "protocol", "auth"] as const) expect(isTemporaryFailure(kind, "MAIL")).toBe(true);
    expect(isTemporaryFailure("auth", "AUTH", reply(535, "5.7.8 bad credentials"))).toBe(true);
  });
  it("carries the structure of the failure", () => {
    const e = new SmtpError({ kind: "reply", command: "RCPT", reply: reply(550, "5.1.1 no such user"), recipient: "a@b.example" });
    expect(e).toMatchObject({ code: 550, enhanced: "5.1.1", recipient: "a@b.example", command: "RCPT", temporary: false });
    expect(e.message).toContain("550 5.1.1 no such user");
  });
});

describe("SASL helpers", () => {
  it("md5 and hmac-md5 match node:crypto", () => {
    for (const n of [0, 1, 55, 56, 63, 64, 65, 1000]) {
      const data = new Uint8Array(n).map((_, i) => (i * 7) & 0xff);
      expect(Buffer.from(md5(data)).toString("hex")).toBe(createHash("md5").update(data).digest("hex"));
      const key = data.subarray(0, Math.min(n, 80));
      expect(Buffer.from(hmacMd5(key, data)).toString("hex")).toBe(createHmac("md5", key).update(data).digest("hex"));
    }
  });
  it("CRAM-MD5 matches the RFC 2195 example", () => {
    const challenge = Buffer.from("<1896.697170952@postoffice.reston.mci.net>").toString("base64");
    expect(Buffer.from(cramMd5Response("tim", "tanstaaftanstaaf", challenge), "base64").toString()).toBe("tim b913a602c7eda7a495b4e6e7334d3890");
  });
  it("PLAIN encodes UTF-8 credentials", () => {
    expect(Buffer.from(plainResponse("jörg", "pässword"), "base64").toString("utf8")).toBe("\u0000jörg\u0000pässword");
  });
});
