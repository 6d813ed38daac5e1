import PostalMime from "postal-mime";
import { describe, expect, it } from "vitest";
import { ComposeError, composeMessage, formatRfc5322Date, type ComposeInput } from "../../src/mime/compose.js";

const NOW = new Date("2026-11-28T05:49:30Z");
const PNG_B64 = "iVBORw0KGgoAAAANSUhEUgAAAAEAAAABCAYAAAAfFcSJAAAADUlEQVR42mP8z8DwHwAFBQIAX8jx0gAAAABJRU5ErkJggg==";

let counter = 0;
const random = (): string => `r${(++counter).toString(16).padStart(8, "0")}`;

function compose(input: ComposeInput): ReturnType<typeof composeMessage> {
  return composeMessage(input, { messageIdDomain: "relay.example", now: NOW, random });
}

/** Every structural rule a composed message must satisfy, whatever the input. */
function checkWellFormed(raw: string): void {
  expect(raw.endsWith("\r\n")).toBe(true);
  expect(raw).not.toMatch(/\r(?!\n)|(?<!\r)\n/);
  const [head = "", ...rest] = raw.split("\r\n\r\n");
  const lines = raw.split("\r\n");
  for (const line of lines) expect(new TextEncoder().encode(line).length).toBeLessThanOrEqual(998);
  // Top-level header lines: each is a field or a continuation; no blank lines inside.
  for (const line of head.split("\r\n")) {
    expect(line).toMatch(/^([\x21-\x39\x3b-\x7e]+: |[ \t]\S)/);
    // RFC 2047 §2: a header line with encoded words is at most 76 characters.
    if (line.includes("=?")) expect(line.length).toBeLessThanOrEqual(76);
  }
  expect(rest.length).toBeGreaterThan(0);
}

/** Lines of every quoted-printable part are at most 76 characters. */
function qpLines(raw: string): string[] {
  const out: string[] = [];
  const parts = raw.split(/\r\n--=_er_[^\r\n]*\r\n/);
  for (const part of parts) {
    const [headers = "", ...body] = part.split("\r\n\r\n");
    if (/Content-Transfer-Encoding: quoted-printable/i.test(headers)) out.push(...body.join("\r\n\r\n").split("\r\n"));
  }
  return out;
}

const strip = (s: string | undefined): string | undefined => s?.replace(/\r?\n$/, "");

describe("composeMessage: structure", () => {
  it("text only → single text/plain 7bit part with Message-ID, Date and MIME-Version", async () => {
    const m = compose({ from: "App <app@example.com>", to: ["user@example.org"], subject: "Hello", text: "Hi there\nSecond line" });
    checkWellFormed(m.raw);
    expect(m.raw).toContain("Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 7bit\r\n");
    expect(m.raw).toContain(`Date: ${formatRfc5322Date(NOW)}\r\n`);
    expect(m.raw).toContain("Date: Sat, 28 Nov 2026 05:49:30 +0000\r\n");
    expect(m.raw).toContain("MIME-Version: 1.0\r\n");
    expect(m.messageId).toMatch(/^[^<>]+@relay\.example$/);
    expect(m.raw).toContain(`Message-ID: <${m.messageId}>\r\n`);
    expect(m.raw).not.toMatch(/multipart/);
    expect(m.smtputf8).toBe(false);
    expect(m.eightBit).toBe(false);
    expect(m.size).toBe(m.raw.length);
    const p = await PostalMime.parse(m.raw);
    expect(p.from).toEqual({ name: "App", address: "app@example.com" });
    expect(p.subject).toBe("Hello");
    expect(strip(p.text)).toBe("Hi there\nSecond line");
    expect(p.messageId).toBe(`<${m.messageId}>`);
    expect(p.date).toBe(NOW.toISOString());
  });

  it("text + html → multipart/alternative with text first", async () => {
    const m = compose({ from: "app@example.com", to: ["u@example.org"], subject: "Both", text: "plain", html: "<b>rich</b>" });
    checkWellFormed(m.raw);
    expect(m.raw).toMatch(/^Content-Type: multipart\/alternative;/m);
    expect(m.raw.indexOf("text/plain")).toBeLessThan(m.raw.indexOf("text/html"));
    const p = await PostalMime.parse(m.raw);
    expect(strip(p.text)).toBe("plain");
    expect(strip(p.html)).toBe("<b>rich</b>");
    expect(p.attachments).toHaveLength(0);
  });

  it("html only → text/html", async () => {
    const m = compose({ from: "app@example.com", to: ["u@example.org"], html: "<p>x</p>" });
    expect(m.raw).toContain("Content-Type: text/html; charset=utf-8");
    expect(m.raw).not.toMatch(/multipart/);
  });

  it("inline images → multipart/related around the html, inside alternative; attachments → mixed outermost", async () => {
    const m = compose({
      from: "app@example.com",
      to: ["u@example.org"],
      subject: "Full",
      text: "see logo",
      html: '<img src="cid:logo@app">',
      attachments: [
        { filename: "logo.png", content: PNG_B64, content_id: "logo@app" },
        { filename: "invoice.pdf", content: "JVBERi0xLjQK", content_type: "application/pdf" },
      ],
    });
    checkWellFormed(m.raw);
    const types = [...m.raw.matchAll(/^Content-Type: ([^;\r\n]+)/gm)].map((x) => x[1]);
    expect(types).toEqual(["multipart/mixed", "multipart/alternative", "text/plain", "multipart/related", "text/html", "image/png", "application/pdf"]);
    const p = await PostalMime.parse(m.raw);
    expect(strip(p.text)).toBe("see logo");
    expect(p.attachments).toHaveLength(2);
    const logo = p.attachments.find((a) => a.filename === "logo.png");
    expect(logo).toMatchObject({ mimeType: "image/png", disposition: "inline", contentId: "<logo@app>", related: true });
    const pdf = p.attachments.find((a) => a.filename === "invoice.pdf");
    expect(pdf).toMatchObject({ mimeType: "application/pdf", disposition: "attachment" });
    expect(new TextDecoder().decode(pdf!.content as ArrayBuffer)).toBe("%PDF-1.4\n");
    expect(Buffer.from(logo!.content as ArrayBuffer).toString("base64")).toBe(PNG_B64);
  });

  it("an attachment without a body still yields a text part and multipart/mixed", async () => {
    const m = compose({ from: "app@example.com", to: ["u@example.org"], text: "", attachments: [{ filename: "a.txt", content: "aGVsbG8=" }] });
    const p = await PostalMime.parse(m.raw);
    expect(p.attachments[0]).toMatchObject({ filename: "a.txt", mimeType: "text/plain" });
    expect(m.raw).toMatch(/^Content-Type: multipart\/mixed;/m);
  });

  it("large attachments are base64 in 76-character lines", () => {
    const big = Buffer.alloc(100_000, 7).toString("base64");
    const m = compose({ from: "app@example.com", to: ["u@example.org"], text: "x", attachments: [{ filename: "big.bin", content: big }] });
    checkWellFormed(m.raw);
    const body = m.raw.slice(m.raw.indexOf("Content-Disposition: attachment"));
    const b64Lines = body.split("\r\n").filter((l) => /^[A-Za-z0-9+/=]{20,}$/.test(l));
    expect(b64Lines.length).toBeGreaterThan(1000);
    for (const l of b64Lines) expect(l.length).toBeLessThanOrEqual(76);
  });
});

describe("composeMessage: encodings and round trips", () => {
  it("composes a 15 MB attachment (no call-stack limits on large content)", async () => {
    const bytes = Buffer.alloc(15 * 1024 * 1024);
    for (let i = 0; i < bytes.length; i++) bytes[i] = (i * 31) & 255;
    const m = compose({ from: "app@example.com", to: ["u@example.org"], text: "x", attachments: [{ filename: "big.bin", content: bytes.toString("base64") }] });
    expect(m.size).toBeGreaterThan(20 * 1024 * 1024);
    const p = await PostalMime.parse(m.raw);
    expect(Buffer.from(p.attachments[0]!.content as ArrayBuffer).equals(bytes)).toBe(true);
  });

  it("non-ASCII subject, names and bodies round-trip through postal-mime", async () => {
    const subject = "Grüße – ваш заказ № 42 已发货 😀 ".repeat(4).trim();
    const text = "Привет, мир!\nこんにちは世界\n" + "Long line with ümlauts ".repeat(20) + "\nEnds with space ";
    const html = "<p>Ça va? 🎉</p>\n<p>" + "ß".repeat(300) + "</p>";
    const m = compose({
      from: { name: "Société Générale, Équipe", address: "team@example.com" },
      to: [{ name: "山田 太郎", address: "taro@example.jp" }, { name: 'Quote "Me"', address: "q@example.org" }],
      cc: ["Ünïcödé <cc@bücher.de>"],
      reply_to: [{ name: "Support 支持", address: "help@example.com" }],
      subject,
      text,
      html,
      attachments: [{ filename: "счёт №1 — очень длинное имя файла для проверки продолжений.pdf", content: "JVBERi0=" }],
    });
    checkWellFormed(m.raw);
    expect(m.raw).toMatch(/^[\x00-\x7f]*$/);
    for (const line of qpLines(m.raw)) expect(line.length).toBeLessThanOrEqual(76);
    expect(qpLines(m.raw).length).toBeGreaterThan(5);
    const p = await PostalMime.parse(m.raw);
    expect(p.subject).toBe(subject);
    expect(p.from).toEqual({ name: "Société Générale, Équipe", address: "team@example.com" });
    expect(p.to).toEqual([
      { name: "山田 太郎", address: "taro@example.jp" },
      { name: 'Quote "Me"', address: "q@example.org" },
    ]);
    expect(p.cc).toEqual([{ name: "Ünïcödé", address: "cc@xn--bcher-kva.de" }]);
    expect(p.replyTo).toEqual([{ name: "Support 支持", address: "help@example.com" }]);
    expect(strip(p.text)).toBe(text);
    expect(strip(p.html)).toBe(html);
    expect(p.attachments[0]?.filename).toBe("счёт №1 — очень длинное имя файла для проверки продолжений.pdf");
  });

  it("long ASCII lines switch the body to quoted-printable with soft breaks", async () => {
    const text = "word ".repeat(400);
    const m = compose({ from: "app@example.com", to: ["u@example.org"], text });
    expect(m.raw).toContain("Content-Transfer-Encoding: quoted-printable");
    for (const line of qpLines(m.raw)) expect(line.length).toBeLessThanOrEqual(76);
    expect(strip((await PostalMime.parse(m.raw)).text)).toBe(text);
  });

  it("a UTF-8 local part sets smtputf8 and eightBit and is written raw", async () => {
    const m = compose({ from: "app@example.com", to: ["用户@例子.广告"], text: "hi" });
    expect(m.smtputf8).toBe(true);
    expect(m.eightBit).toBe(true);
    expect(m.size).toBe(new TextEncoder().encode(m.raw).length);
    expect(m.size).toBeGreaterThan(m.raw.length);
    expect((await PostalMime.parse(m.raw)).to).toEqual([{ name: "", address: "用户@例子.广告" }]);
  });

  it("a body containing the boundary prefix gets a different boundary", () => {
    let n = 0;
    const seq = (): string => (n++ < 2 ? "fixed" : `other${n}`);
    const m = composeMessage(
      { from: "a@example.com", to: ["b@example.org"], text: "--=_er_alternative_fixed\r\nfake", html: "<p>x</p>" },
      { messageIdDomain: "relay.example", random: seq },
    );
    expect(m.raw).not.toMatch(/boundary="=_er_alternative_fixed"/);
  });
});

describe("composeMessage: privacy and safety", () => {
  it("Bcc never appears in the headers", async () => {
    const m = compose({ from: "app@example.com", to: ["u@example.org"], bcc: ["hidden@example.net", "Secret <s2@example.net>"], text: "x" });
    expect(m.raw.toLowerCase()).not.toContain("bcc");
    expect(m.raw).not.toContain("hidden@example.net");
    expect((await PostalMime.parse(m.raw)).bcc).toBeUndefined();
  });

  it("bcc-only messages carry an empty group in To", () => {
    const m = compose({ from: "app@example.com", bcc: ["hidden@example.net"], text: "x" });
    expect(m.raw).toContain("To: undisclosed-recipients:;\r\n");
    expect(m.raw).not.toContain("hidden@example.net");
  });

  it("custom headers are written; non-ASCII values are encoded", async () => {
    const m = compose({
      from: "app@example.com",
      to: ["u@example.org"],
      text: "x",
      headers: { "X-Campaign": "spring", "List-Unsubscribe": "<https://example.com/u/1>", "List-Unsubscribe-Post": "List-Unsubscribe=One-Click", "X-Note": "naïve", "In-Reply-To": "<a@b.example>" },
    });
    const p = await PostalMime.parse(m.raw);
    const h = (k: string): string | undefined => p.headers.find((x) => x.key === k)?.value;
    expect(h("x-campaign")).toBe("spring");
    expect(h("list-unsubscribe")).toBe("<https://example.com/u/1>");
    expect(h("list-unsubscribe-post")).toBe("List-Unsubscribe=One-Click");
    expect(h("x-note")).toMatch(/^=\?UTF-8\?/);
    expect(p.inReplyTo).toBe("<a@b.example>");
  });

  it("keeps long structured ASCII header values unencoded", async () => {
    const url = `<https://example.com/unsubscribe?token=${"a1".repeat(150)}>`;
    const m = compose({ from: "app@example.com", to: ["u@example.org"], text: "x", headers: { "List-Unsubscribe": `${url}, <mailto:u@example.com>` } });
    checkWellFormed(m.raw);
    const p = await PostalMime.parse(m.raw);
    expect(p.headers.find((h) => h.key === "list-unsubscribe")?.value).toBe(`${url}, <mailto:u@example.com>`);
  });

  const unsafe: [Record<string, string>, string][] = [
    [{ "X-Evil": "a\r\nBcc: victim@example.org" }, "header_injection"],
    [{ "X-Evil": "a\nb" }, "header_injection"],
    [{ "X-Evil": "a\0b" }, "header_injection"],
    [{ "X-Evil\r\nBcc": "x" }, "header_injection"],
    [{ "Bad Name": "x" }, "invalid_field"],
    [{ "Bad:Name": "x" }, "invalid_field"],
    [{ From: "x@example.com" }, "reserved_header"],
    [{ bcc: "x@example.com" }, "reserved_header"],
    [{ "Content-Type": "text/html" }, "reserved_header"],
    [{ "DKIM-Signature": "v=1" }, "reserved_header"],
    [{ "ARC-Seal": "x" }, "reserved_header"],
    [{ "Authentication-Results": "pass" }, "reserved_header"],
    [{ "Message-ID": "<x@y>" }, "reserved_header"],
    [{ "Return-Path": "<x@y>" }, "reserved_header"],
    [{ "X-Dup": "1", "x-dup": "2" }, "invalid_field"],
  ];
  for (const [headers, code] of unsafe) {
    it(`refuses headers ${JSON.stringify(headers)} with ${code}`, () => {
      try {
        compose({ from: "app@example.com", to: ["u@example.org"], text: "x", headers });
        expect.unreachable();
      } catch (e) {
        expect(e).toBeInstanceOf(ComposeError);
        expect((e as ComposeError).code).toBe(code);
      }
    });
  }

  it("refuses CR/LF in the subject and invalid addresses", () => {
    expect(() => compose({ from: "app@example.com", to: ["u@example.org"], subject: "a\r\nBcc: x@y.com", text: "x" })).toThrow(ComposeError);
    expect(() => compose({ from: "app@example.com\r\nBcc: x@y.com", to: ["u@example.org"], text: "x" })).toThrow(ComposeError);
    expect(() => compose({ from: "app@example.com", to: ["u@example.org, v@example.org"], text: "x" })).toThrow(ComposeError);
  });

  it("uses a given Message-ID and refuses a malformed one", () => {
    const m = composeMessage({ from: "a@example.com", to: ["b@example.org"], text: "x" }, { messageIdDomain: "relay.example", messageId: "abc.def@relay.example" });
    expect(m.messageId).toBe("abc.def@relay.example");
    expect(m.raw).toContain("Message-ID: <abc.def@relay.example>\r\n");
    expect(() => composeMessage({ from: "a@example.com", to: ["b@example.org"], text: "x" }, { messageIdDomain: "relay.example", messageId: "<x@y>" })).toThrow(ComposeError);
  });
});
