import { describe, expect, it } from "vitest";
import { DataEncoder, encodeData, encodeDataStream } from "../../src/smtp/data-encoding";

const text = (b: Uint8Array) => Buffer.from(b).toString("latin1");

function streamOf(chunks: Uint8Array[]): ReadableStream<Uint8Array> {
  let i = 0;
  return new ReadableStream({
    pull(c) {
      if (i < chunks.length) c.enqueue(chunks[i++]!);
      else c.close();
    },
  });
}

async function encodeStreamed(input: Uint8Array, sizes: number[]): Promise<string> {
  const chunks: Uint8Array[] = [];
  let o = 0;
  for (let k = 0; o < input.length; k++) {
    const n = sizes[k % sizes.length]!;
    chunks.push(input.slice(o, o + n));
    o += n;
  }
  let out = "";
  for await (const piece of encodeDataStream(streamOf(chunks))) out += text(piece);
  return out;
}

describe("encodeData", () => {
  it.each([
    ["plain CRLF", "a\r\nb\r\n", "a\r\nb\r\n.\r\n"],
    ["adds the final CRLF", "a\r\nb", "a\r\nb\r\n.\r\n"],
    ["bare LF", "a\nb\n", "a\r\nb\r\n.\r\n"],
    ["bare CR", "a\rb\r", "a\r\nb\r\n.\r\n"],
    ["dot-stuffing", ".a\r\n..b\r\nc.d\r\n.\r\n", "..a\r\n...b\r\nc.d\r\n..\r\n.\r\n"],
    ["leading dot at the start", ".", "..\r\n.\r\n"],
    ["empty body", "", ".\r\n"],
    ["CR CR LF", "a\r\r\nb", "a\r\n\r\nb\r\n.\r\n"],
  ])("%s", (_name, input, expected) => {
    expect(text(encodeData(Buffer.from(input, "latin1")))).toBe(expected);
  });

  it.each([
    ["\n.\n", "\r\n..\r\n"],
    ["\n.\r\n", "\r\n..\r\n"],
    ["\r\n.\n", "\r\n..\r\n"],
    ["\r.\r", "\r\n..\r\n"],
    ["\r\n.\r", "\r\n..\r\n"],
  ])("no smuggled end-of-data: %j", (sequence, stuffed) => {
    const out = text(encodeData(Buffer.from(`Subject: x\r\n\r\nhello${sequence}MAIL FROM:<evil@example.com>\r\n`, "latin1")));
    // The only CRLF.CRLF is the real terminator at the end.
    expect(out.indexOf("\r\n.\r\n")).toBe(out.length - 5);
    expect(out).toContain(`hello${stuffed}MAIL FROM`);
    expect(out).not.toMatch(/[^\r]\n|\r[^\n]/);
  });

  it("detects 8-bit content", () => {
    const enc = new DataEncoder();
    enc.push(new TextEncoder().encode("plain"));
    expect(enc.eightBit).toBe(false);
    enc.push(new TextEncoder().encode("Grüße"));
    expect(enc.eightBit).toBe(true);
  });

  it("gives the same bytes however the stream is chunked", async () => {
    const random = (() => {
      let s = 7;
      return () => ((s = (s * 1103515245 + 12345) & 0x7fffffff), s / 0x7fffffff);
    })();
    const alphabet = ["\r", "\n", ".", "a", "ü", "\r\n", "\r\n.", "x"];
    for (let round = 0; round < 50; round++) {
      let s = "";
      for (let i = 0; i < 200; i++) s += alphabet[Math.floor(random() * alphabet.length)];
      const input = new TextEncoder().encode(s);
      const whole = text(encodeData(input));
      for (const sizes of [[1], [2, 3], [7, 1, 64]]) expect(await encodeStreamed(input, sizes)).toBe(whole);
    }
  });

  it("streams a large body in bounded pieces", async () => {
    const line = `${"x".repeat(76)}\n`;
    const chunk = new TextEncoder().encode(line.repeat(1000)); // 77 kB per chunk
    let pieces = 0;
    let total = 0;
    let largest = 0;
    for await (const piece of encodeDataStream(streamOf(Array.from({ length: 40 }, () => chunk)))) {
      pieces++;
      total += piece.length;
      largest = Math.max(largest, piece.length);
    }
    expect(total).toBe(40 * 1000 * 78 + 3);
    expect(pieces).toBeGreaterThan(20);
    expect(largest).toBeLessThan(400_000);
  });

  it("cancels the source stream when the consumer stops early", async () => {
    let cancelled = false;
    const src = new ReadableStream<Uint8Array>({
      pull(c) {
        c.enqueue(new Uint8Array(100_000).fill(0x61));
      },
      cancel() {
        cancelled = true;
      },
    });
    for await (const _ of encodeDataStream(src)) break;
    expect(cancelled).toBe(true);
  });
});

describe("encodeDataPieces", () => {
  it("splits a large body into bounded pieces with the same bytes as encodeData", async () => {
    const { encodeDataPieces } = await import("../../src/smtp/data-encoding");
    const body = new TextEncoder().encode(`${".dot\nline ü\r".repeat(30_000)}tail`);
    const { pieces, eightBit } = encodeDataPieces(body, 10_000);
    expect(eightBit).toBe(true);
    expect(pieces.length).toBeGreaterThan(30);
    expect(Math.max(...pieces.map((p) => p.length))).toBeLessThanOrEqual(20_005);
    expect(text(Buffer.concat(pieces))).toBe(text(encodeData(body)));
    expect(encodeDataPieces(new TextEncoder().encode("short")).pieces).toHaveLength(1);
  });
});
