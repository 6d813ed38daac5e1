import { describe, expect, it } from "vitest";
import {
  decodeBase64,
  encodeBase64,
  encodeBase64Lines,
  encodeQuotedPrintable,
  encodeUnstructured,
  encodeWords,
  foldHeader,
  formatParameter,
  hasLoneSurrogate,
} from "../../src/mime/encoding.js";

const bytesOf = (s: string): Uint8Array => new TextEncoder().encode(s);

/** Minimal QP decoder for round-trip checks (RFC 2045 §6.7), independent of the encoder. */
function decodeQp(encoded: string): string {
  const joined = encoded.replace(/=\r\n/g, "");
  const out: number[] = [];
  for (let i = 0; i < joined.length; i++) {
    const c = joined[i]!;
    if (c === "=") {
      out.push(parseInt(joined.slice(i + 1, i + 3), 16));
      i += 2;
    } else {
      out.push(joined.charCodeAt(i));
    }
  }
  return new TextDecoder().decode(Uint8Array.from(out));
}

/** Decode one RFC 2047 word. */
function decodeWord(word: string): Uint8Array {
  const m = /^=\?UTF-8\?([BQ])\?(.*)\?=$/.exec(word);
  if (!m) throw new Error(`not an encoded word: ${word}`);
  if (m[1] === "B") return decodeBase64(m[2]!)!;
  const out: number[] = [];
  const s = m[2]!;
  for (let i = 0; i < s.length; i++) {
    if (s[i] === "_") out.push(32);
    else if (s[i] === "=") {
      out.push(parseInt(s.slice(i + 1, i + 3), 16));
      i += 2;
    } else out.push(s.charCodeAt(i));
  }
  return Uint8Array.from(out);
}

describe("base64", () => {
  it("matches Node's encoder for every length 0..300", () => {
    for (let n = 0; n < 300; n++) {
      const bytes = Uint8Array.from({ length: n }, (_, i) => (i * 37 + n) & 255);
      const expected = Buffer.from(bytes).toString("base64");
      expect(encodeBase64(bytes)).toBe(expected);
      expect(Array.from(decodeBase64(expected)!)).toEqual(Array.from(bytes));
    }
  });

  it("wraps at 76 characters with CRLF", () => {
    const out = encodeBase64Lines(new Uint8Array(1000));
    const lines = out.split("\r\n");
    expect(lines.every((l) => l.length <= 76)).toBe(true);
    expect(lines.slice(0, -1).every((l) => l.length === 76)).toBe(true);
    expect(out).not.toMatch(/\r(?!\n)|(?<!\r)\n/);
  });

  it("refuses malformed input instead of guessing", () => {
    for (const bad of ["abc", "ab=c", "a===", "****", "YWJj\u00e9", "=AAA", "YQ==YQ=="]) expect(decodeBase64(bad)).toBeNull();
    expect(decodeBase64("YW Jj\r\nZA==")).toEqual(bytesOf("abcd"));
  });
});

describe("quoted-printable", () => {
  const samples = [
    "plain ascii",
    "trailing space \nand tab\t\r\nend",
    "x".repeat(500),
    "é".repeat(100),
    "=".repeat(80),
    ".leading dot\nFrom the start",
    "mixed 😀 emoji " + "ü".repeat(40) + " " + "a ".repeat(60),
    "a".repeat(74) + " b",
    "a".repeat(75) + "\t",
    "\r\n\r\n",
  ];

  it("keeps every line at most 76 characters and round-trips", () => {
    for (const text of samples) {
      const encoded = encodeQuotedPrintable(text);
      for (const line of encoded.split("\r\n")) {
        expect(line.length).toBeLessThanOrEqual(76);
        expect(line).toMatch(/^[\x21-\x7e \t]*$/);
        // Rule 3: no literal whitespace at the end of an encoded line.
        expect(line).not.toMatch(/[ \t]$/);
      }
      expect(decodeQp(encoded)).toBe(text.replace(/\r\n|\r|\n/g, "\r\n"));
    }
  });

  it("never splits an escape across a soft break", () => {
    const encoded = encodeQuotedPrintable("é".repeat(200));
    for (const line of encoded.split("\r\n")) expect(line).toMatch(/^(=[0-9A-F]{2})*=?$/);
  });

  it("turns every kind of line break into a CRLF hard break", () => {
    expect(encodeQuotedPrintable("a\rb\nc\r\nd")).toBe("a\r\nb\r\nc\r\nd");
  });

  it("encodes trailing whitespace and leading dots", () => {
    expect(encodeQuotedPrintable("end \nx\t")).toBe("end=20\r\nx=09");
    expect(encodeQuotedPrintable(".")).toBe("=2E");
  });
});

describe("RFC 2047 encoded words", () => {
  const texts = ["Grüße aus Köln", "日本語のテキスト".repeat(8), "😀🎉👍".repeat(20), "a".repeat(200), "mixed é and 😀 and 中文 " + "z".repeat(90)];

  it("keeps each word at most 75 characters and splits only between characters", () => {
    for (const text of texts) {
      for (const enc of ["B", "Q", undefined] as const) {
        const words = encodeWords(text, enc);
        for (const w of words) {
          expect(w.length).toBeLessThanOrEqual(75);
          // Each word decodes to valid UTF-8 on its own: no character was split.
          expect(() => new TextDecoder("utf-8", { fatal: true, ignoreBOM: false }).decode(decodeWord(w))).not.toThrow();
        }
        expect(words.map((w) => new TextDecoder().decode(decodeWord(w))).join("")).toBe(text);
      }
    }
  });

  it("uses only phrase-safe characters in Q words", () => {
    for (const w of encodeWords('"quoted", (comment) <angle> ; @ _ = ?', "Q")) {
      expect(w.slice(10, -2)).toMatch(/^[A-Za-z0-9!*+\-/=_]*$/);
    }
  });

  it("leaves plain ASCII subjects alone and encodes the rest", () => {
    expect(encodeUnstructured("Your receipt #123")).toBe("Your receipt #123");
    expect(encodeUnstructured("Looks =?like?Q?encoded?=")).toMatch(/^=\?UTF-8\?/);
    expect(encodeUnstructured("Ünïcode")).toMatch(/^=\?UTF-8\?[BQ]\?/);
    expect(encodeUnstructured("x".repeat(200))).toMatch(/^=\?UTF-8\?/);
  });
});

describe("generated round trips", () => {
  // Seeded so a failure is reproducible.
  let seed = 12345;
  const rnd = (): number => ((seed = (Math.imul(seed, 1103515245) + 12345) >>> 0) / 4294967296);
  const alphabet = ["a", "Z", "0", " ", "\t", "=", "?", "_", ".", "\n", "\r\n", "é", "ß", "中", "😀", "\u0301", "\u00a0", "-", "\"", "F", "From "];
  const randomText = (): string => Array.from({ length: Math.floor(rnd() * 300) }, () => alphabet[Math.floor(rnd() * alphabet.length)]).join("");

  it("500 random texts survive quoted-printable and encoded words with legal lengths", () => {
    for (let i = 0; i < 500; i++) {
      const text = randomText();
      const qp = encodeQuotedPrintable(text);
      for (const line of qp.split("\r\n")) expect(line.length).toBeLessThanOrEqual(76);
      expect(decodeQp(qp)).toBe(text.replace(/\r\n|\r|\n/g, "\r\n"));
      const oneLine = text.replace(/[\r\n]/g, "");
      const words = encodeWords(oneLine, undefined, 40 + Math.floor(rnd() * 36));
      for (const w of words) expect(w.length).toBeLessThanOrEqual(75);
      expect(words.map((w) => new TextDecoder().decode(decodeWord(w))).join("")).toBe(oneLine);
    }
  });
});

describe("header folding", () => {
  it("folds at whitespace to 76 characters", () => {
    const value = Array.from({ length: 40 }, (_, i) => `word${i}`).join(" ");
    const folded = foldHeader("X-Long", value);
    const lines = folded.split("\r\n");
    expect(lines.length).toBeGreaterThan(1);
    for (const line of lines) expect(line.length).toBeLessThanOrEqual(76);
    for (const line of lines.slice(1)) expect(line).toMatch(/^[ \t]\S/);
    expect(folded.replace(/\r\n/g, "")).toBe(`X-Long: ${value}`);
  });

  it("refuses a line that cannot be folded under 998 octets", () => {
    expect(() => foldHeader("X-Long", "y".repeat(1200))).toThrow(RangeError);
  });
});

describe("RFC 2231 parameters", () => {
  it("quotes short ASCII and percent-encodes the rest in continuations", () => {
    expect(formatParameter("filename", 'a "b".pdf')).toEqual(['filename="a \\"b\\".pdf"']);
    const parts = formatParameter("filename", "résumé ".repeat(20) + ".pdf");
    expect(parts.length).toBeGreaterThan(1);
    expect(parts[0]).toMatch(/^filename\*0\*=UTF-8''/);
    for (const p of parts) expect(p.length).toBeLessThanOrEqual(75);
    const joined = parts.map((p) => p.replace(/^filename\*\d+\*=(UTF-8'')?/, "")).join("");
    expect(decodeURIComponent(joined)).toBe("résumé ".repeat(20) + ".pdf");
  });
});

describe("lone surrogates", () => {
  it("are detected, paired surrogates are not", () => {
    expect(hasLoneSurrogate("ok 😀")).toBe(false);
    expect(hasLoneSurrogate("bad \ud800")).toBe(true);
    expect(hasLoneSurrogate("\udc00 bad")).toBe(true);
    expect(hasLoneSurrogate("\ude00\ud83d")).toBe(true);
  });
});
