import PostalMime from "postal-mime";
import { describe, expect, it } from "vitest";
import { composeMessage } from "../../src/mime/compose.js";
import { SEND_ERROR_CODES, validateSendRequest, type SendErrorCode } from "../../src/mime/validate.js";
import { seededRandom } from "../support/prng";

const NOW = new Date("2026-11-28T06:00:00Z");
const base = (): Record<string, unknown> => ({ from: "App <app@example.com>", to: ["user@example.org"], subject: "Hi", text: "Hello" });

function refused(body: unknown, code: SendErrorCode, field?: string): void {
  const r = validateSendRequest(body, { now: NOW });
  expect(r.ok, JSON.stringify(body).slice(0, 200)).toBe(false);
  if (!r.ok) {
    expect(r.error.code).toBe(code);
    if (field !== undefined) expect(r.error.field).toBe(field);
    expect(r.error.message.length).toBeGreaterThan(0);
  }
}

describe("validateSendRequest: happy path", () => {
  it("normalises a full request", async () => {
    const r = validateSendRequest(
      {
        from: { name: "Shop", address: "orders@shop.example" },
        to: "Jane <jane@example.org>",
        cc: [{ address: "cc@example.org" }],
        bcc: ["audit@example.net", "JANE@example.org"],
        reply_to: "support@shop.example",
        subject: "Your order ✓",
        text: "Thanks",
        html: "<p>Thanks</p>",
        attachments: [{ filename: "logo.png", content: "iVBORw0KGgo=", content_id: "logo" }, { filename: "r.pdf", content: "JVBERi0=" }],
        headers: { "X-Order": "42", "List-Unsubscribe": "<mailto:u@shop.example>" },
        tags: ["orders", "orders", "receipt"],
        metadata: { order_id: "42" },
        send_at: "2026-12-01T09:00:00+01:00",
        stream: "transactional",
      },
      { now: NOW },
    );
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    const v = r.value;
    expect(v.from).toEqual({ name: "Shop", address: "orders@shop.example" });
    expect(v.to).toEqual([{ name: "Jane", address: "jane@example.org" }]);
    expect(v.reply_to).toEqual([{ address: "support@shop.example" }]);
    expect(v.tags).toEqual(["orders", "receipt"]);
    expect(v.metadata).toEqual({ order_id: "42" });
    expect(v.send_at?.toISOString()).toBe("2026-12-01T08:00:00.000Z");
    expect(v.recipients.map((m) => m.address)).toEqual(["jane@example.org", "cc@example.org", "audit@example.net"]);
    expect(v.attachments?.[1]?.content_type).toBe("application/pdf");
    expect(v.smtputf8).toBe(false);
    // The validated value composes and parses.
    const m = composeMessage(v, { messageIdDomain: "relay.example" });
    const p = await PostalMime.parse(m.raw);
    expect(p.subject).toBe("Your order ✓");
    expect(m.raw).not.toContain("audit@example.net");
  });

  it("accepts a JSON string body and defaults stream to transactional", () => {
    const r = validateSendRequest(JSON.stringify(base()));
    expect(r.ok && r.value.stream).toBe("transactional");
  });

  it("accepts 50 recipients in total and send_at 30 days ahead", () => {
    const to = Array.from({ length: 30 }, (_, i) => `u${i}@example.org`);
    const cc = Array.from({ length: 20 }, (_, i) => `c${i}@example.org`);
    expect(validateSendRequest({ ...base(), to, cc, send_at: "2026-12-28T05:59:00Z" }, { now: NOW }).ok).toBe(true);
  });

  it("sets smtputf8 for a UTF-8 mailbox", () => {
    const r = validateSendRequest({ ...base(), to: ["用户@例子.广告"] });
    expect(r.ok && r.value.smtputf8).toBe(true);
  });
});

describe("validateSendRequest: error paths", () => {
  it("body shape", () => {
    refused("{not json", "invalid_json", "");
    refused([], "invalid_json", "");
    refused(null, "invalid_json", "");
    refused(42, "invalid_json", "");
    refused({ ...base(), surprise: 1 }, "unknown_field", "surprise");
    refused({ ...base(), attachments: [{ filename: "a", content: "YQ==", extra: true }] }, "unknown_field", "attachments[0].extra");
    refused({ ...base(), to: [{ address: "a@example.org", email: "x" }] }, "unknown_field", "to[0].email");
  });

  it("required fields", () => {
    const { from: _f, ...noFrom } = base();
    refused(noFrom, "missing_field", "from");
    refused({ ...base(), to: [] }, "missing_field", "to");
    const { text: _t, ...noBody } = base();
    refused(noBody, "missing_field", "text");
    refused({ ...base(), attachments: [{ content: "YQ==" }] }, "missing_field", "attachments[0].filename");
  });

  it("addresses", () => {
    refused({ ...base(), from: "not-an-address" }, "invalid_sender", "from");
    refused({ ...base(), from: ["a@example.com"] }, "invalid_sender", "from");
    refused({ ...base(), to: ["ok@example.org", "ok2@example.org", "bad@@example.org"] }, "invalid_recipient", "to[2]");
    refused({ ...base(), cc: [42] }, "invalid_recipient", "cc[0]");
    refused({ ...base(), bcc: "a@example.org, b@example.org" }, "invalid_recipient", "bcc");
    refused({ ...base(), to: ["a@example.org\r\nBcc: victim@example.net"] }, "header_injection", "to[0]");
    refused({ ...base(), from: { name: "x\nBcc: y@example.net", address: "a@example.com" } }, "header_injection", "from");
    refused({ ...base(), reply_to: "nope" }, "invalid_field", "reply_to");
  });

  it("recipient limits", () => {
    const to = Array.from({ length: 51 }, (_, i) => `u${i}@example.org`);
    refused({ ...base(), to }, "too_many_recipients");
    refused({ ...base(), to: to.slice(0, 30), bcc: to.slice(30) }, "too_many_recipients", "to");
    expect(validateSendRequest({ ...base(), to: to.slice(0, 5) }, { maxRecipients: 4 }).ok).toBe(false);
  });

  it("subject and bodies", () => {
    refused({ ...base(), subject: "Hi\r\nBcc: victim@example.net" }, "header_injection", "subject");
    refused({ ...base(), subject: "a\u0007b" }, "invalid_field", "subject");
    refused({ ...base(), subject: "é".repeat(500) }, "too_large", "subject");
    refused({ ...base(), subject: 42 }, "invalid_field", "subject");
    refused({ ...base(), text: "a\0b" }, "invalid_field", "text");
    refused({ ...base(), html: { x: 1 } }, "invalid_field", "html");
    expect(validateSendRequest({ ...base(), text: "x".repeat(101) }, { maxBodyBytes: 100 }).ok).toBe(false);
  });

  it("lone surrogates anywhere are invalid_utf8 with the field named", () => {
    refused({ ...base(), subject: "bad \ud800" }, "invalid_utf8", "subject");
    refused({ ...base(), to: ["ok@example.org", "x\udc00@example.org"] }, "invalid_utf8", "to[1]");
    refused({ ...base(), metadata: { k: "\ud83d" } }, "invalid_utf8", "metadata.k");
    refused({ ...base(), headers: { "X-\ud800": "v" } }, "invalid_utf8", "headers");
  });

  it("custom headers", () => {
    refused({ ...base(), headers: { "X-Foo": "a\r\nBcc: victim@example.net" } }, "header_injection", "headers.X-Foo");
    refused({ ...base(), headers: { "X-Foo": "a\nb" } }, "header_injection", "headers.X-Foo");
    refused({ ...base(), headers: { From: "evil@example.net" } }, "reserved_header", "headers.From");
    refused({ ...base(), headers: { "content-transfer-encoding": "8bit" } }, "reserved_header");
    refused({ ...base(), headers: { "DKIM-Signature": "v=1" } }, "reserved_header");
    refused({ ...base(), headers: { "X Foo": "v" } }, "invalid_field");
    refused({ ...base(), headers: { "X-Foo": 1 } }, "invalid_field", "headers.X-Foo");
    refused({ ...base(), headers: { "X-A": "1", "x-a": "2" } }, "invalid_field", "headers.x-a");
    refused({ ...base(), headers: ["X-Foo: 1"] }, "invalid_field", "headers");
    refused({ ...base(), headers: { "X-Big": "v".repeat(2000) } }, "invalid_field");
  });

  it("attachments", () => {
    refused({ ...base(), attachments: [{ filename: "a.txt", content: "not base64!" }] }, "invalid_attachment", "attachments[0].content");
    refused({ ...base(), attachments: [{ filename: "a\r\nX: y", content: "YQ==" }] }, "header_injection", "attachments[0].filename");
    refused({ ...base(), attachments: [{ filename: "../etc/passwd", content: "YQ==" }] }, "invalid_attachment");
    refused({ ...base(), attachments: [{ filename: "a", content: "YQ==", content_type: "text/html\r\nX: y" }] }, "header_injection", "attachments[0].content_type");
    refused({ ...base(), attachments: [{ filename: "a", content: "YQ==", content_type: "multipart/mixed" }] }, "invalid_attachment");
    refused({ ...base(), attachments: [{ filename: "a", content: "YQ==", content_id: "<x>" }] }, "invalid_attachment");
    refused({ ...base(), attachments: [{ filename: "a", content: "YQ==", disposition: "evil" }] }, "invalid_attachment");
    refused({ ...base(), attachments: "YQ==" }, "invalid_field", "attachments");
    expect(validateSendRequest({ ...base(), attachments: [{ filename: "a", content: "YWFhYQ==" }] }, { maxAttachmentBytes: 3 }).ok).toBe(false);
  });

  it("tags, metadata, stream, send_at", () => {
    refused({ ...base(), tags: "a" }, "invalid_field", "tags");
    refused({ ...base(), tags: ["ok", ""] }, "invalid_field", "tags[1]");
    refused({ ...base(), tags: ["a\nb"] }, "invalid_field", "tags[0]");
    refused({ ...base(), tags: Array.from({ length: 11 }, (_, i) => `t${i}`) }, "too_large", "tags");
    refused({ ...base(), metadata: { k: 1 } }, "invalid_field", "metadata.k");
    refused({ ...base(), metadata: { "bad key": "v" } }, "invalid_field", 'metadata["bad key"]');
    refused({ ...base(), metadata: { k: "v".repeat(2000) } }, "too_large", "metadata.k");
    refused({ ...base(), stream: "marketing" }, "invalid_field", "stream");
    refused({ ...base(), send_at: "tomorrow" }, "invalid_send_at", "send_at");
    refused({ ...base(), send_at: "2026-12-01T09:00:00" }, "invalid_send_at", "send_at");
    refused({ ...base(), send_at: "2026-02-31T09:00:00Z" }, "invalid_send_at", "send_at");
    refused({ ...base(), send_at: "2027-01-15T00:00:00Z" }, "invalid_send_at", "send_at");
    refused({ ...base(), send_at: "2026-11-27T00:00:00Z" }, "invalid_send_at", "send_at");
    refused({ ...base(), send_at: 1767225600 }, "invalid_send_at", "send_at");
  });

  it("does not let __proto__ keys reach the prototype", () => {
    const r = validateSendRequest(JSON.parse('{"from":"a@example.com","to":"b@example.org","text":"x","metadata":{"__proto__":"x"}}'));
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(Object.getPrototypeOf(r.value.metadata)).toBe(Object.prototype);
      expect(Object.keys(r.value.metadata)).toEqual(["__proto__"]);
    }
  });
});

describe("validateSendRequest: generated malformed requests", () => {
  const rnd = seededRandom(0x5eed);
  const pick = <T>(xs: readonly T[]): T => xs[Math.floor(rnd() * xs.length)]!;
  const poison = ["\r\n", "\n", "\r", "\0", "\ud800", "\udfff", "\r\nBcc: victim@evil.example"];
  const wrongTypes: unknown[] = [null, 0, -1, 1.5, true, false, [], {}, [1, 2], { a: 1 }, "", "x".repeat(5000)];
  const badAddresses = ["", "a", "@", "a@", "@b.c", "a@b", "a@@b.com", "a b@c.com", "a@-b.com", "<a@b.com", "a@b.com>", "a@[1.2.3.4]", `${"x".repeat(65)}@b.com`, "a@" + "b".repeat(70) + ".com", "a,b@c.com", "a@b.com, c@d.com"];

  function randomJson(depth: number): unknown {
    const r = rnd();
    if (depth > 3 || r < 0.3) return pick(wrongTypes);
    if (r < 0.6) return Array.from({ length: Math.floor(rnd() * 4) }, () => randomJson(depth + 1));
    const o: Record<string, unknown> = {};
    for (let i = 0; i < Math.floor(rnd() * 4); i++) o[pick(["from", "to", "x", "subject", "headers", "__proto__", "text"])] = randomJson(depth + 1);
    return o;
  }

  // Every string-valued place in a valid request, as a path and a setter.
  const stringFields: [string, (b: Record<string, unknown>, v: string) => void][] = [
    ["from", (b, v) => (b.from = `app${v}@example.com`)],
    ["from.name", (b, v) => (b.from = { name: `App${v}`, address: "app@example.com" })],
    ["to", (b, v) => (b.to = [`user${v}@example.org`])],
    ["to.name", (b, v) => (b.to = [{ name: `U${v}`, address: "u@example.org" }])],
    ["cc", (b, v) => (b.cc = [`c@exa${v}mple.org`])],
    ["bcc", (b, v) => (b.bcc = [`b${v}@example.org`])],
    ["reply_to", (b, v) => (b.reply_to = `r@example.org${v}`)],
    ["subject", (b, v) => (b.subject = `Hello${v}there`)],
    ["headers.value", (b, v) => (b.headers = { "X-Test": `a${v}b` })],
    ["headers.name", (b, v) => (b.headers = { [`X-T${v}`]: "a" })],
    ["attachments.filename", (b, v) => (b.attachments = [{ filename: `a${v}.txt`, content: "YQ==" }])],
    ["attachments.content_type", (b, v) => (b.attachments = [{ filename: "a.txt", content: "YQ==", content_type: `text/plain${v}` }])],
    ["attachments.content_id", (b, v) => (b.attachments = [{ filename: "a.txt", content: "YQ==", content_id: `id${v}` }])],
    ["tags", (b, v) => (b.tags = [`t${v}`])],
    ["metadata.value", (b, v) => (b.metadata = { k: `v${v}` })],
    ["metadata.key", (b, v) => (b.metadata = { [`k${v}`]: "v" })],
    ["send_at", (b, v) => (b.send_at = `2026-12-01T09:00:00Z${v}`)],
    ["stream", (b, v) => (b.stream = `transactional${v}`)],
  ];
  // Places where NUL is refused but CR/LF is legitimate content.
  const bodyFields: [string, (b: Record<string, unknown>, v: string) => void][] = [
    ["text", (b, v) => (b.text = `a${v}b`)],
    ["html", (b, v) => (b.html = `<p>${v}</p>`)],
  ];
  const topFields = ["from", "to", "cc", "bcc", "reply_to", "subject", "text", "html", "attachments", "headers", "tags", "metadata", "send_at", "stream"];

  const cases: { name: string; body: unknown }[] = [];
  for (const [name, set] of stringFields) {
    for (const p of poison) {
      const b = base();
      set(b, p);
      cases.push({ name: `${name} with ${JSON.stringify(p)}`, body: b });
    }
  }
  for (const [name, set] of bodyFields) {
    for (const p of ["\0", "\ud800", "\udc00x"]) {
      const b = base();
      set(b, p);
      cases.push({ name: `${name} with ${JSON.stringify(p)}`, body: b });
    }
  }
  /** Wrong-typed values that are nevertheless acceptable for a field (absent, empty list, a string body). */
  const legit = (field: string, w: unknown): boolean =>
    w === null ||
    (typeof w === "string" && ["subject", "text", "html"].includes(field)) ||
    (["headers", "metadata"].includes(field) && JSON.stringify(w) === "{}") ||
    (["to", "cc", "bcc", "reply_to", "attachments", "tags"].includes(field) && Array.isArray(w) && w.length === 0);
  for (const field of topFields) {
    for (const w of wrongTypes) {
      if (legit(field, w)) continue;
      cases.push({ name: `${field} = ${JSON.stringify(w).slice(0, 30)}`, body: { ...base(), [field]: w } });
    }
  }
  for (const a of badAddresses) {
    for (const field of ["from", "to", "cc", "bcc"]) cases.push({ name: `${field} = ${a}`, body: { ...base(), [field]: field === "from" ? a : [a] } });
  }
  const huge = "h".repeat(1_100_000);
  cases.push({ name: "huge subject", body: { ...base(), subject: huge } });
  cases.push({ name: "huge header", body: { ...base(), headers: { "X-H": huge } } });
  cases.push({ name: "huge tag", body: { ...base(), tags: [huge] } });
  cases.push({ name: "huge address", body: { ...base(), to: [huge + "@example.org"] } });
  cases.push({ name: "many headers", body: { ...base(), headers: Object.fromEntries(Array.from({ length: 500 }, (_, i) => [`X-${i}`, "v"])) } });
  cases.push({ name: "many recipients", body: { ...base(), to: Array.from({ length: 10_000 }, (_, i) => `u${i}@example.org`) } });
  cases.push({ name: "deep nesting", body: { ...base(), metadata: JSON.parse("[".repeat(200) + "]".repeat(200)) } });
  cases.push({ name: "huge body", body: { ...base(), text: "x".repeat(11 * 1024 * 1024) } });
  for (let i = 0; cases.length < 1200; i++) {
    const r = randomJson(0);
    // A random object that happens to be valid is vanishingly unlikely, but random objects
    // are mixed with a valid base half the time so deeper checks are reached too.
    const field = pick(topFields);
    const spread = typeof r === "object" && r !== null && !Array.isArray(r) ? r : { junk: r };
    cases.push({ name: `random #${i}`, body: rnd() < 0.5 ? r : { ...base(), ...spread, [field]: pick(wrongTypes.filter((w) => !legit(field, w))) } });
  }

  it(`has at least 1000 cases (${cases.length})`, () => {
    expect(cases.length).toBeGreaterThanOrEqual(1000);
  });

  it("refuses every one with a code from the closed list, never throwing", () => {
    const codes = new Set<string>(SEND_ERROR_CODES);
    const seen = new Map<string, number>();
    const accepted: string[] = [];
    for (const c of cases) {
      let r: ReturnType<typeof validateSendRequest>;
      try {
        r = validateSendRequest(c.body, { now: NOW });
      } catch (e) {
        throw new Error(`${c.name} threw ${String(e)}`);
      }
      if (r.ok) {
        accepted.push(`${c.name}: ${JSON.stringify(c.body).slice(0, 300)}`);
        continue;
      }
      expect(codes.has(r.error.code), c.name).toBe(true);
      expect(typeof r.error.field).toBe("string");
      expect(r.error.message).not.toMatch(/[\r\n]/);
      // The catch-all for internal bugs must never be what refuses a request.
      expect(r.error.message, c.name).not.toBe("request could not be validated");
      seen.set(r.error.code, (seen.get(r.error.code) ?? 0) + 1);
    }
    expect(accepted).toEqual([]);
    // The generator exercises most of the list, not just one catch-all code.
    expect(seen.size).toBeGreaterThanOrEqual(9);
  });

  it("names the poisoned field for CR/LF in every string field", () => {
    for (const [name, set] of stringFields) {
      const b = base();
      set(b, "\r\n");
      const r = validateSendRequest(b, { now: NOW });
      expect(r.ok, name).toBe(false);
      if (!r.ok) expect(r.error.field.split(/[.[]/)[0], name).toBe(name.split(".")[0]);
    }
  });
});
