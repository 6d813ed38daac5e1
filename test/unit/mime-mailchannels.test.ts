import PostalMime from "postal-mime";
import { describe, expect, it } from "vitest";
import { composeMessage } from "../../src/mime/compose.js";
import { fromMailChannelsRequest } from "../../src/mime/mailchannels.js";
import { SEND_ERROR_CODES } from "../../src/mime/validate.js";

/**
 * The body of MailChannels' "Sending Email from Cloudflare Workers" example (docs and the
 * Cloudflare blog post announcing the integration), as published.
 */
const WORKERS_EXAMPLE = `{
  "personalizations": [
    { "to": [ {"email": "test@example.com", "name": "Test Recipient"}]}
  ],
  "from": {
    "email": "sender@example.com",
    "name": "Workers - MailChannels integration"
  },
  "subject": "Look! No servers",
  "content": [{
    "type": "text/plain",
    "value": "And no email service accounts and all for free too!"
  }]
}`;

/**
 * docs.mailchannels.com/email-api/templates, "Full example": the JSON body of the curl call,
 * with the shell variables $TO_EMAIL_1, $TO_EMAIL_2 and $FROM_EMAIL filled in.
 */
const TEMPLATE_EXAMPLE = `{
  "personalizations": [
    { "to": [{ "email": "alice@example.com" }], "dynamic_template_data": { "name": "Alice" } },
    { "to": [{ "email": "bob@example.com" }],   "dynamic_template_data": { "name": "Bob"   } }
  ],
  "from":    { "email": "sender@example.net" },
  "subject": "Hello from MailChannels",
  "content": [
    {
      "type": "text/plain",
      "value": "Hello {{name}}",
      "template_type": "mustache"
    }
  ]
}`;

/** Every field of the reference request in docs.mailchannels.com "Send an Email", with values in place of "<string>". */
const REFERENCE_SHAPE = {
  content: [
    { type: "text/plain", value: "Plain body" },
    { type: "text/html", value: "<p>HTML body</p>" },
  ],
  from: { email: "sender@example.com", name: "Priya Patel" },
  personalizations: [
    {
      to: [{ email: "recipient@example.net", name: "Sakura Tanaka" }],
      bcc: [{ email: "audit@example.net", name: "Audit" }],
      cc: [{ email: "cc@example.net", name: "Copy" }],
      dkim_domain: "example.com",
      dkim_private_key: "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
      dkim_selector: "mcdkim",
      dynamic_template_data: {},
      headers: {},
      subject: "Testing Email API",
    },
  ],
  subject: "Top-level subject",
  attachments: [{ content: "SGVsbG8=", filename: "hello.txt", type: "text/plain" }],
  campaign_id: "spring-sale",
  dkim_domain: "example.com",
  dkim_private_key: "MIIEvQIBADANBgkqhkiG9w0BAQEFAASCBKcwggSjAgEAAoIBAQC7",
  dkim_selector: "mcdkim",
  headers: {},
  tracking_settings: { click_tracking: { enable: false }, open_tracking: { enable: false } },
  transactional: true,
};

describe("fromMailChannelsRequest: documented bodies", () => {
  it("accepts the Workers example unchanged and composes it", async () => {
    const r = fromMailChannelsRequest(JSON.parse(WORKERS_EXAMPLE));
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value).toHaveLength(1);
    const send = r.value[0]!;
    expect(send.request.from).toEqual({ name: "Workers - MailChannels integration", address: "sender@example.com" });
    expect(send.request.to).toEqual([{ name: "Test Recipient", address: "test@example.com" }]);
    expect(send.request.stream).toBe("transactional");
    const m = composeMessage(send.request, { messageIdDomain: "relay.example" });
    const p = await PostalMime.parse(m.raw);
    expect(p.subject).toBe("Look! No servers");
    expect(p.text?.trim()).toBe("And no email service accounts and all for free too!");
  });

  it("accepts the template example unchanged (as a string too) and renders per personalization", () => {
    for (const body of [JSON.parse(TEMPLATE_EXAMPLE), TEMPLATE_EXAMPLE]) {
      const r = fromMailChannelsRequest(body);
      expect(r.ok).toBe(true);
      if (!r.ok) return;
      expect(r.value.map((s) => [s.request.to[0]?.address, s.request.text])).toEqual([
        ["alice@example.com", "Hello Alice"],
        ["bob@example.com", "Hello Bob"],
      ]);
    }
  });

  it("accepts every field of the reference shape", () => {
    const r = fromMailChannelsRequest(REFERENCE_SHAPE);
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    const s = r.value[0]!;
    expect(s.request.subject).toBe("Testing Email API");
    expect(s.request.cc).toEqual([{ name: "Copy", address: "cc@example.net" }]);
    expect(s.request.bcc).toEqual([{ name: "Audit", address: "audit@example.net" }]);
    expect(s.request.html).toBe("<p>HTML body</p>");
    expect(s.request.attachments).toEqual([{ filename: "hello.txt", content: "SGVsbG8=", content_type: "text/plain" }]);
    expect(s.dkim).toEqual({ domain: "example.com", selector: "mcdkim", privateKey: REFERENCE_SHAPE.dkim_private_key });
    expect(s.campaignId).toBe("spring-sale");
    expect(s.request.metadata).toEqual({ campaign_id: "spring-sale" });
    // Issue 22: tracking_settings is honoured (was accepted and ignored).
    expect(s.request.track_opens).toBe(false);
    expect(s.request.track_clicks).toBe(false);
    expect(s.ignored).toEqual([]);
  });
});

describe("fromMailChannelsRequest: mapping rules", () => {
  const base = (): Record<string, unknown> => JSON.parse(WORKERS_EXAMPLE) as Record<string, unknown>;

  it("personalization from/subject/headers override the top level; headers merge case-insensitively", () => {
    const body = {
      ...base(),
      headers: { "X-Top": "top", "X-Both": "top" },
      personalizations: [
        { to: [{ email: "a@example.org" }], from: { email: "p@example.com" }, subject: "Per", headers: { "x-both": "pers" } },
        { to: [{ email: "b@example.org" }] },
      ],
    };
    const r = fromMailChannelsRequest(body);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value[0]!.request.from.address).toBe("p@example.com");
    expect(r.value[0]!.request.subject).toBe("Per");
    expect(r.value[0]!.request.headers).toEqual({ "X-Top": "top", "x-both": "pers" });
    expect(r.value[1]!.request.from.address).toBe("sender@example.com");
    expect(r.value[1]!.request.headers).toEqual({ "X-Top": "top", "X-Both": "top" });
  });

  it("escapes mustache variables in HTML only and supports triple braces", () => {
    const body = {
      ...base(),
      personalizations: [{ to: [{ email: "a@example.org" }], dynamic_template_data: { name: "<b>A&B</b>", user: { id: 7 } } }],
      content: [
        { type: "text/plain", value: "Hi {{name}} #{{user.id}}{{! comment }}", template_type: "mustache" },
        { type: "text/html", value: "<p>{{name}} {{{name}}} {{& name}} {{missing}}</p>", template_type: "mustache" },
      ],
    };
    const r = fromMailChannelsRequest(body);
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value[0]!.request.text).toBe("Hi <b>A&B</b> #7");
    expect(r.value[0]!.request.html).toBe("<p>&#60;b&#62;A&#38;B&#60;&#47;b&#62; <b>A&B</b> <b>A&B</b> </p>");
  });

  it("leaves content without template_type untouched", () => {
    const r = fromMailChannelsRequest({ ...base(), content: [{ type: "text/plain", value: "{{literal}}" }] });
    expect(r.ok && r.value[0]!.request.text).toBe("{{literal}}");
  });

  it("transactional: false selects the broadcast stream; mailfrom is returned", () => {
    const r = fromMailChannelsRequest({ ...base(), transactional: false, mailfrom: { email: "bounce@example.com" } });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value[0]!.request.stream).toBe("broadcast");
    expect(r.value[0]!.mailfrom?.address).toBe("bounce@example.com");
  });

  it("envelope_from: top level for every personalization, a personalization's own wins; the name is ignored", () => {
    const b = base();
    const first = (b.personalizations as Record<string, unknown>[])[0]!;
    b.personalizations = [first, { ...first, envelope_from: { email: "own@example.com", name: "Ignored" } }];
    const r = fromMailChannelsRequest({ ...b, envelope_from: { email: "top@example.com", name: "Ignored" } });
    expect(r.ok, JSON.stringify(r)).toBe(true);
    if (!r.ok) return;
    expect(r.value.map((s) => [s.mailfrom?.address, s.mailfrom?.name, s.mailfromField])).toEqual([
      ["top@example.com", undefined, "envelope_from"],
      ["own@example.com", undefined, "personalizations[1].envelope_from"],
    ]);
  });

  it("envelope_from errors name the field; envelope_from and mailfrom together are refused", () => {
    const bad = fromMailChannelsRequest({ ...base(), personalizations: [{ to: [{ email: "a@example.net" }], envelope_from: { email: "not an address" } }] });
    expect(bad.ok ? null : bad.error).toMatchObject({ code: "invalid_sender", field: "personalizations[0].envelope_from.email" });
    const both = fromMailChannelsRequest({ ...base(), envelope_from: { email: "a@example.com" }, mailfrom: { email: "b@example.com" } });
    expect(both.ok ? null : both.error).toMatchObject({ code: "invalid_field", field: "mailfrom" });
  });

  it("dkim: a selector alone, or with a domain, names a key the relay holds; a key needs domain and selector", () => {
    const one = (extra: Record<string, unknown>) => fromMailChannelsRequest({ ...base(), ...extra });
    const sel = one({ dkim_selector: "mc1" });
    expect(sel.ok && sel.value[0]!.dkim).toEqual({ selector: "mc1" });
    const both = one({ dkim_domain: "Example.com", dkim_selector: "mc1" });
    expect(both.ok && both.value[0]!.dkim).toEqual({ domain: "example.com", selector: "mc1" });
    const keyOnly = one({ dkim_selector: "mc1", dkim_private_key: "AAAA" });
    expect(keyOnly.ok ? null : keyOnly.error).toMatchObject({ code: "missing_field", field: "dkim_domain" });
  });

  it("tracking_settings become track_opens / track_clicks; an absent switch leaves the tenant's setting", () => {
    const r = fromMailChannelsRequest({ ...base(), tracking_settings: { click_tracking: { enable: true } } });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.value[0]!.request.track_clicks).toBe(true);
    expect(r.value[0]!.request.track_opens).toBeUndefined();
  });
});

describe("fromMailChannelsRequest: errors use MailChannels field paths", () => {
  const base = (): Record<string, unknown> => JSON.parse(WORKERS_EXAMPLE) as Record<string, unknown>;
  const cases: [string, unknown, string, string][] = [
    ["not an object", [], "invalid_json", ""],
    ["bad json", "{", "invalid_json", ""],
    ["unknown top field", { ...base(), nope: 1 }, "unknown_field", "nope"],
    ["unknown personalization field", { ...base(), personalizations: [{ to: [{ email: "a@example.org" }], send_at: 1 }] }, "unknown_field", "personalizations[0].send_at"],
    ["missing personalizations", { ...base(), personalizations: undefined }, "missing_field", "personalizations"],
    ["empty personalizations", { ...base(), personalizations: [] }, "invalid_field", "personalizations"],
    ["bad recipient", { ...base(), personalizations: [{ to: [{ email: "ok@example.org" }, { email: "nope" }] }] }, "invalid_recipient", "personalizations[0].to[1]"],
    ["recipient as string", { ...base(), personalizations: [{ to: ["a@example.org"] }] }, "invalid_field", "personalizations[0].to[0]"],
    ["missing email", { ...base(), personalizations: [{ to: [{ name: "x" }] }] }, "missing_field", "personalizations[0].to[0].email"],
    ["injected name", { ...base(), personalizations: [{ to: [{ email: "a@example.org", name: "x\r\nBcc: v@example.net" }] }] }, "header_injection", "personalizations[0].to[0]"],
    ["bad from", { ...base(), from: { email: "bad" } }, "invalid_sender", "from"],
    ["no subject", { ...base(), subject: undefined }, "missing_field", "subject"],
    ["subject injection", { ...base(), subject: "a\nb" }, "header_injection", "subject"],
    ["reserved header top", { ...base(), headers: { "Reply-To": "x@example.com" } }, "reserved_header", "headers.Reply-To"],
    ["reserved header personalization", { ...base(), personalizations: [{ to: [{ email: "a@example.org" }], headers: { "DKIM-Signature": "x" } }] }, "reserved_header", "personalizations[0].headers.DKIM-Signature"],
    ["header injection", { ...base(), headers: { "X-A": "1\r\nBcc: v@example.net" } }, "header_injection", "headers.X-A"],
    ["no content", { ...base(), content: [] }, "invalid_field", "content"],
    ["content type", { ...base(), content: [{ type: "text/calendar", value: "x" }] }, "invalid_field", "content[0].type"],
    ["duplicate content", { ...base(), content: [{ type: "text/plain", value: "x" }, { type: "text/plain", value: "y" }] }, "invalid_field", "content[1].type"],
    ["NUL in content", { ...base(), content: [{ type: "text/html", value: "a\0" }] }, "invalid_field", "content[0].value"],
    ["mustache section", { ...base(), content: [{ type: "text/plain", value: "{{#x}}y{{/x}}", template_type: "mustache" }] }, "invalid_field", "content[0].value"],
    ["bad template type", { ...base(), content: [{ type: "text/plain", value: "x", template_type: "handlebars" }] }, "invalid_field", "content[0].template_type"],
    ["attachment base64", { ...base(), attachments: [{ content: "!!", filename: "a.txt" }] }, "invalid_attachment", "attachments[0].content"],
    ["attachment type", { ...base(), attachments: [{ content: "YQ==", filename: "a.txt", type: "text\r\nX: y" }] }, "header_injection", "attachments[0].type"],
    ["partial dkim", { ...base(), dkim_domain: "example.com" }, "missing_field", "dkim_selector"],
    ["bad dkim domain", { ...base(), dkim_domain: "not a domain", dkim_selector: "s", dkim_private_key: "AAAA" }, "invalid_field", "dkim_domain"],
    ["campaign id spaces", { ...base(), campaign_id: "has space" }, "invalid_field", "campaign_id"],
    ["tracking shape", { ...base(), tracking_settings: { click_tracking: { enable: "yes" } } }, "invalid_field", "tracking_settings.click_tracking.enable"],
    ["lone surrogate", { ...base(), subject: "x\ud800" }, "invalid_utf8", "subject"],
    ["too many personalizations", { ...base(), personalizations: Array.from({ length: 1001 }, () => ({ to: [{ email: "a@example.org" }] })) }, "too_many_recipients", "personalizations"],
  ];
  for (const [name, body, code, field] of cases) {
    it(`${name} → ${code} at ${field || "(body)"}`, () => {
      const r = fromMailChannelsRequest(body);
      expect(r.ok).toBe(false);
      if (!r.ok) {
        expect(SEND_ERROR_CODES).toContain(r.error.code);
        expect(r.error).toMatchObject({ code, field });
      }
    });
  }
});

describe("fromMailChannelsRequest: generated malformed requests", () => {
  it("refuses CR/LF, NUL and lone surrogates in every string field and wrong types everywhere, never throwing", () => {
    const poison = ["\r\n", "\n", "\0", "\ud800", "\r\nBcc: victim@evil.example"];
    const wrong: unknown[] = [0, true, [], {}, [1], { a: 1 }, "x".repeat(3000)];
    const setters: ((b: Record<string, unknown>, v: unknown) => void)[] = [
      (b, v) => ((b.from as Record<string, unknown>).email = `a${String(v)}@example.com`),
      (b, v) => ((b.from as Record<string, unknown>).name = `A${String(v)}`),
      (b, v) => (b.subject = `S${String(v)}`),
      (b, v) => (b.personalizations = [{ to: [{ email: `t${String(v)}@example.org` }] }]),
      (b, v) => (b.personalizations = [{ to: [{ email: "t@example.org", name: `N${String(v)}` }] }]),
      (b, v) => (b.personalizations = [{ to: [{ email: "t@example.org" }], subject: `P${String(v)}` }]),
      (b, v) => (b.personalizations = [{ to: [{ email: "t@example.org" }], headers: { "X-A": `h${String(v)}` } }]),
      (b, v) => (b.headers = { [`X-${String(v)}`]: "v" }),
      (b, v) => (b.reply_to = { email: `r${String(v)}@example.org` }),
      (b, v) => (b.attachments = [{ content: "YQ==", filename: `f${String(v)}.txt` }]),
      (b, v) => (b.attachments = [{ content: "YQ==", filename: "f.txt", type: `text/plain${String(v)}` }]),
      (b, v) => (b.campaign_id = `c${String(v)}`),
      (b, v) => (b.dkim_domain = `d${String(v)}.example`),
    ];
    const fields = ["personalizations", "from", "reply_to", "subject", "content", "headers", "attachments", "tracking_settings", "campaign_id", "dkim_domain", "transactional", "mailfrom", "envelope_from"];
    const bodies: unknown[] = [];
    for (const set of setters) {
      for (const p of poison) {
        const b = JSON.parse(WORKERS_EXAMPLE) as Record<string, unknown>;
        set(b, p);
        bodies.push(b);
      }
    }
    for (const f of fields) {
      for (const w of wrong) {
        // Empty containers are valid for optional object/array fields, and any string is a subject.
        if (f === "subject" && typeof w === "string") continue;
        if (["headers", "tracking_settings"].includes(f) && JSON.stringify(w) === "{}") continue;
        if (f === "attachments" && JSON.stringify(w) === "[]") continue;
        if (f === "transactional" && typeof w === "boolean") continue;
        bodies.push({ ...(JSON.parse(WORKERS_EXAMPLE) as Record<string, unknown>), [f]: w });
      }
    }
    expect(bodies.length).toBeGreaterThan(140);
    for (const body of bodies) {
      let r: ReturnType<typeof fromMailChannelsRequest>;
      try {
        r = fromMailChannelsRequest(body);
      } catch (e) {
        throw new Error(`${JSON.stringify(body).slice(0, 200)} threw ${String(e)}`);
      }
      expect(r.ok, JSON.stringify(body).slice(0, 300)).toBe(false);
      if (!r.ok) {
        expect(SEND_ERROR_CODES).toContain(r.error.code);
        expect(r.error.message).not.toBe("request could not be validated");
      }
    }
  });
});
