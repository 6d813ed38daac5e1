/**
 * The bounce parser on our own samples (auto-replies, out-of-office, ordinary mail, a VERP-addressed
 * Postfix DSN) and on input shapes: CRLF vs LF, string vs bytes.
 */
import { readdirSync, readFileSync } from "node:fs";
import path from "node:path";
import { fileURLToPath } from "node:url";
import { describe, expect, it } from "vitest";
import { isAutoReply, parseBounce } from "../../src/inbound/bounce";
import { bounceFixturesDir } from "../support/fixtures";

const here = path.dirname(fileURLToPath(import.meta.url));
const samples = path.resolve(here, "../fixtures/inbound");
const read = (name: string): string => readFileSync(path.join(samples, name), "utf8");

describe("parseBounce on our own samples", () => {
  it("takes an Exchange out-of-office reply for an auto-reply, never a bounce", () => {
    const r = parseBounce(read("out-of-office-exchange.eml"));
    expect(r.kind).toBe("auto-reply");
    expect(r.autoReply?.reason).toBe("vacation");
    expect(r.recipients.every((x) => !x.hard)).toBe(true);
  });

  it("recognises a vacation reply by its encoded subject alone", () => {
    const r = parseBounce(read("vacation-no-headers.eml"));
    expect(r.kind).toBe("auto-reply");
    expect(r.autoReply?.reason).toBe("vacation");
  });

  it("records an auto-generated notice as an auto-reply of that kind", () => {
    const r = parseBounce(read("auto-generated-notice.eml"));
    expect(r.kind).toBe("auto-reply");
    expect(r.autoReply?.reason).toBe("auto-generated");
  });

  it("leaves ordinary mail alone", () => {
    const r = parseBounce(read("ordinary-reply.eml"));
    expect(r.kind).toBe("unknown");
    expect(r.recipients).toEqual([]);
  });

  it("reads a Postfix DSN with a hard and a delayed recipient and the VERP return path", () => {
    const r = parseBounce(read("postfix-dsn-verp.eml"));
    expect(r.kind).toBe("bounce");
    expect(r.originalMessageId).toBe("msg_01J0AB@relay.example.org");
    expect(r.originalEnvelopeFrom).toBe("bounces+msg_01J0AB.rcpt_7@relay.example.org");
    expect(r.recipients.map((x) => [x.address, x.status, x.reason, x.hard, x.action])).toEqual([
      ["nobody@customer.example", "5.1.1", "userunknown", true, "failed"],
      ["full@customer.example", "4.2.2", "mailboxfull", false, "delayed"],
    ]);
    expect(r.recipients[0]?.command).toBe("RCPT");
    expect(r.recipients[0]?.replyCode).toBe("550");
    expect(r.recipients[0]?.remoteMta).toBe("mx1.customer.example");
  });

  it("exposes isAutoReply for plain header objects", () => {
    expect(isAutoReply(new Headers({ "Auto-Submitted": "auto-replied", Subject: "Out of office" }))?.reason).toBe("vacation");
    expect(isAutoReply(new Headers({ Subject: "Hello" }))).toBeUndefined();
    expect(isAutoReply(new Headers({ "Auto-Submitted": "no", Subject: "Hello" }))).toBeUndefined();
  });
});

describe("parseBounce input shapes", () => {
  it("gives the same report for LF text and CRLF bytes", () => {
    const dir = bounceFixturesDir();
    const files = readdirSync(dir).filter((f) => f.endsWith(".eml"));
    expect(files.length).toBeGreaterThan(0);
    for (const f of files) {
      const bytes = readFileSync(path.join(dir, f));
      const lf = parseBounce(bytes);
      // latin1 keeps every byte as one char, so this converts line endings without touching the content.
      const raw = Uint8Array.from(bytes.toString("latin1").replace(/\r?\n/g, "\r\n"), (c) => c.charCodeAt(0));
      const crlf = parseBounce(raw);
      expect({ f, kind: crlf.kind, recipients: crlf.recipients.map((x) => [x.address, x.status, x.reason]) }).toEqual({
        f,
        kind: lf.kind,
        recipients: lf.recipients.map((x) => [x.address, x.status, x.reason]),
      });
    }
  });
});
