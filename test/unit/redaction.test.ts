// Issue 21: the redaction of stored values (src/store/redaction.ts), in plain Node: markers, addresses keeping their
// domain, addresses inside texts, keyed hashes per tenant, idempotence.
import { describe, expect, it } from "vitest";
import { addressSearchForm, isRedactedMessage, isRedactedValue, redactAddress, redactEventFields, redactMessageFields, redactText, type Redactor } from "../../src/store/redaction";

const redact: Redactor = { mode: "redact", tenantId: "t1", hashKey: null };
const hash: Redactor = { mode: "hash", tenantId: "t1", hashKey: "unit-test-redaction-key" };

describe("redaction", () => {
  it("replaces the local part and keeps the domain; never touches a marked value twice", async () => {
    expect(await redactAddress(redact, "Jane.Doe@Clinic.example")).toBe("[redacted]@clinic.example");
    const h = await redactAddress(hash, "Jane.Doe@Clinic.example");
    expect(h).toMatch(/^\[hmac:[A-Za-z0-9_-]{22}\]@clinic\.example$/);
    expect(await redactAddress(hash, h)).toBe(h);
    expect(isRedactedValue(h)).toBe(true);
    expect(isRedactedValue("jane@clinic.example")).toBe(false);
  });

  it("hashes case-insensitively per tenant, so a search hashes its query to the same value, and no other tenant's", async () => {
    const stored = await redactAddress(hash, "Jane.Doe@clinic.example");
    expect(await addressSearchForm(hash.hashKey, "t1", "jane.doe@CLINIC.example")).toBe(stored);
    expect(await addressSearchForm(hash.hashKey, "t2", "jane.doe@clinic.example")).not.toBe(stored);
    expect(await addressSearchForm(hash.hashKey, "t1", "john@clinic.example")).not.toBe(stored);
    expect(await addressSearchForm(null, "t1", "jane.doe@clinic.example")).toBeNull();
    // Without a key, mode hash keeps nothing in the clear.
    expect(await redactAddress({ ...hash, hashKey: null }, "jane@clinic.example")).toBe("[redacted]@clinic.example");
  });

  it("redacts every address inside a text and keeps the rest", async () => {
    const text = "550 5.1.1 <jane@clinic.example>: user unknown (also ü.ser@例え.example)";
    expect(await redactText(redact, text)).toBe("550 5.1.1 <[redacted]@clinic.example>: user unknown (also [redacted]@例え.example)");
    expect(await redactText(redact, "250 2.0.0 Ok: queued as 4F2")).toBe("250 2.0.0 Ok: queued as 4F2");
  });

  it("redacts a message row's subject, From, senders, recipients, replies and log, and says so", async () => {
    const row = {
      mail_from: "bounce+abc-0-sig@bounces.clinic.example",
      header_from: '"Dr Who" <who@clinic.example>',
      subject: "Your results",
      rcpts: JSON.stringify([{ a: "jane@x.example", s: "bounced", u: 1, t: "no such user jane@x.example" }]),
      log: JSON.stringify([{ y: "bounced", i: 0, at: 1, t: "<jane@x.example> unknown", d: { original: "jane@x.example", n: 3 } }]),
    };
    const out = await redactMessageFields(redact, row);
    expect(JSON.stringify(out)).not.toMatch(/jane|Dr Who|who@|Your results|bounce\+abc/);
    expect(out.subject).toBe("[redacted]");
    expect(out.header_from).toBe("[redacted]@clinic.example");
    expect(JSON.parse(out.log!)[0].d).toEqual({ original: "[redacted]@x.example", n: 3 });
    expect(isRedactedMessage(out)).toBe(true);
    expect(isRedactedMessage(row)).toBe(false);
    expect(await redactEventFields(redact, { recipient: "jane@x.example", text: null, data: '{"to":"jane@x.example"}' })).toEqual({ recipient: "[redacted]@x.example", text: null, data: '{"to":"[redacted]@x.example"}' });
  });
});
