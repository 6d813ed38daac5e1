/** 8-bit safety (issue 21): toSevenBitBody re-encodes 8-bit MIME bodies so a parser reads back the same content. */
import PostalMime from "postal-mime";
import { describe, expect, it } from "vitest";
import { toSevenBitBody } from "../../src/mime/seven-bit";

const NON_ASCII = /[^\x00-\x7f]/;
const head = "From: a@example.com\r\nTo: b@example.net\r\nSubject: s\r\nMIME-Version: 1.0\r\n";

async function parse(raw: string) {
  return PostalMime.parse(new TextEncoder().encode(raw));
}

describe("toSevenBitBody", () => {
  it("leaves an ASCII message alone", () => {
    const raw = `${head}\r\nplain text\r\n`;
    expect(toSevenBitBody(raw)).toEqual({ raw, converted: false });
  });

  it("turns an 8bit text body into quoted-printable that decodes to the same text, headers untouched", async () => {
    const text = "Schöne Grüße aus Zürich — ✓\r\n.leading dot\r\nFrom here\r\nend  \r\n";
    const raw = `${head}Content-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${text}`;
    const out = toSevenBitBody(raw)!;
    expect(out.converted).toBe(true);
    expect(NON_ASCII.test(out.raw)).toBe(false);
    expect(out.raw).toMatch(/\r\nContent-Transfer-Encoding: quoted-printable\r\n\r\n/);
    expect(out.raw.match(/Content-Transfer-Encoding/g)).toHaveLength(1);
    expect(out.raw.startsWith(head)).toBe(true);
    expect((await parse(out.raw)).text).toBe(text.replace(/\r\n/g, "\n"));
    expect(out.raw.split("\r\n").every((l) => l.length <= 998)).toBe(true);
  });

  it("walks multiparts: 8-bit text becomes quoted-printable, 8-bit other parts base64, 7-bit parts stay byte for byte", async () => {
    const b = "=_b1";
    const raw =
      `${head}Content-Type: multipart/mixed; boundary="${b}"\r\nContent-Transfer-Encoding: 8bit\r\n\r\npreamble\r\n` +
      `--${b}\r\nContent-Type: text/html; charset=utf-8\r\n\r\n<p>Grüße</p>\r\n` +
      `--${b}\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\nascii part\r\n` +
      `--${b}\r\nContent-Type: application/octet-stream\r\nContent-Disposition: attachment; filename=x.bin\r\nContent-Transfer-Encoding:\r\n 8bit\r\n\r\nbïnärÿ\r\n` +
      `--${b}--\r\nepilogue\r\n`;
    const out = toSevenBitBody(raw)!;
    expect(NON_ASCII.test(out.raw)).toBe(false);
    expect(out.raw).toContain(`--${b}\r\nContent-Type: text/plain\r\nContent-Transfer-Encoding: 7bit\r\n\r\nascii part\r\n--${b}`);
    expect(out.raw).toContain("preamble\r\n");
    const parsed = await parse(out.raw);
    // postal-mime joins the inline parts of a multipart/mixed into one html view.
    expect(parsed.html).toContain("<p>Grüße</p>");
    expect(parsed.attachments).toHaveLength(1);
    expect(new TextDecoder().decode(parsed.attachments[0]!.content as ArrayBuffer)).toBe("bïnärÿ");
  });

  it("converts inside an attached message, and gives up (null) on what it cannot convert without guessing", () => {
    const inner = "Subject: inner\r\nContent-Type: text/plain; charset=utf-8\r\n\r\nÄrger\r\n";
    const nested = `${head}Content-Type: message/rfc822\r\nContent-Transfer-Encoding: 8bit\r\n\r\n${inner}`;
    const out = toSevenBitBody(nested)!;
    expect(NON_ASCII.test(out.raw)).toBe(false);
    expect(out.raw).toContain("Content-Transfer-Encoding: 7bit\r\n\r\nSubject: inner");
    // Declared base64 but holding 8-bit octets; an 8-bit preamble; a multipart without its boundary.
    expect(toSevenBitBody(`${head}Content-Transfer-Encoding: base64\r\n\r\nÄrger\r\n`)).toBeNull();
    expect(toSevenBitBody(`${head}Content-Type: multipart/mixed; boundary=q\r\n\r\nÄ\r\n--q\r\n\r\nx\r\n--q--\r\n`)).toBeNull();
    expect(toSevenBitBody(`${head}Content-Type: multipart/mixed\r\n\r\nÄ\r\n`)).toBeNull();
  });
});
