/**
 * The MailChannels body is described once, as a valibot schema (issue 19): it validates the body, types the
 * mapping and generates the OpenAPI request schema. This checks that it answers every body exactly as the hand
 * checker it replaced (test/support/mailchannels-hand-checker.ts) did: the same send requests for good bodies,
 * and for bad ones the same first refusal (code, message, field). Bodies are generated from good ones by random
 * edits (a seeded generator, so a failure repeats), and the document's schema is checked against what the
 * route accepts.
 */
import { Validator, type Schema } from "@cfworker/json-schema";
import { isDeepStrictEqual } from "node:util";
import { describe, expect, it } from "vitest";
import { OPENAPI_DOCUMENT } from "../../src/http/openapi.js";
import { fromMailChannelsRequest, mailChannelsSchema } from "../../src/mime/mailchannels.js";
import { handCheckedMailChannelsRequest } from "../support/mailchannels-hand-checker.js";
import { seededRandom as generator } from "../support/prng.js";

type Json = null | boolean | number | string | Json[] | { [key: string]: Json };

const ADDRESSES: Json[] = [
  { email: "user@example.org" },
  { email: "Büro@exämple.org", name: "Zoë" },
  { email: "ops@example.org", name: null },
  { email: "not an address" },
  { email: 5 },
  { email: null },
  { name: "no email" },
  { email: "a@example.org", extra: 1 },
  { email: "x@example.org\r\nBcc: y@example.org" },
  "user@example.org",
];

/** Values an edit puts anywhere: every JSON kind, and the strings the checks care about. */
const VALUES: Json[] = [
  null,
  true,
  0,
  -1,
  2.5,
  "",
  " ",
  "x",
  "text/plain",
  "TEXT/HTML; charset=utf-8",
  "text/csv",
  "mustache",
  "handlebars",
  "Hello {{name}} {{{raw}}} {{&amp}} {{! note}} {{a.b}}",
  "{{#list}}x{{/list}}",
  "{{> partial}}",
  "{{unbalanced}}}",
  "line\r\nBcc: evil@example.org",
  "nul\u0000byte",
  "bad \ud800 surrogate",
  "example.com",
  "sub.example.com",
  "-bad-.com",
  "sel1",
  "s1.s2",
  "bad selector",
  "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC",
  "-----BEGIN PRIVATE KEY-----\\nMIIB\\n-----END PRIVATE KEY-----",
  "not a key!",
  "campaign-1",
  "with space",
  "c".repeat(49),
  "YQ==",
  "a.txt",
  '{"name":"JSON string"}',
  "[1]",
  "{broken",
  [],
  [1],
  ["user@example.org"],
  {},
  { enable: true },
  { enable: "yes" },
  { enable: false, other: 1 },
  { "X-Custom": "1" },
  { "x-custom": "2", Subject: "reserved" },
  { "X-Num": 1 },
  { name: "Ann", a: { b: "nested" } },
  ...ADDRESSES,
  [{ email: "a@example.org" }, { email: "b@example.org" }],
  [{ email: "a@example.org" }, "b@example.org"],
  [{ type: "text/plain", value: "hi" }],
  [{ type: "text/plain", value: "a" }, { type: "text/plain", value: "b" }],
  [{ type: "text/html", value: "a" }, { type: "Text/HTML", value: 1 }],
  [{ type: "text/plain", value: "a" }, { type: "text/plain", value: "b", template_type: "x" }],
  [{ type: "text/plain", value: "{{x}}", template_type: "mustache" }, { type: 1 }],
  [{ content: "YQ==", filename: "a.txt", type: "text/plain" }],
  [{ content: "not base64!", filename: "a.txt" }],
  [{ filename: "a.txt" }],
  ["not an object"],
];

/** Keys an edit adds: known ones in the wrong place, unknown ones, odd ones. */
const KEYS = ["to", "cc", "bcc", "from", "reply_to", "subject", "headers", "content", "attachments", "dkim_domain", "dkim_selector", "dkim_private_key", "envelope_from", "mailfrom", "dynamic_template_data", "tracking_settings", "click_tracking", "open_tracking", "enable", "campaign_id", "transactional", "email", "name", "type", "value", "template_type", "filename", "unknown", "odd key", "constructor", "personalizations"];

function pick<T>(rand: () => number, items: readonly T[]): T {
  return items[Math.floor(rand() * items.length)]!;
}

function clone(value: Json): Json {
  return JSON.parse(JSON.stringify(value)) as Json;
}

/** A good body with some of the optional parts MailChannels documents. */
function goodBody(rand: () => number): { [key: string]: Json } {
  const personalizations: Json[] = [];
  const count = 1 + Math.floor(rand() * 3);
  for (let i = 0; i < count; i++) {
    const p: { [key: string]: Json } = { to: [{ email: `user${i}@example.org`, name: `User ${i}` }] };
    if (rand() < 0.3) p.cc = [{ email: `cc${i}@example.org` }];
    if (rand() < 0.2) p.bcc = [{ email: `bcc${i}@example.org` }];
    if (rand() < 0.3) p.subject = `Subject ${i}`;
    if (rand() < 0.2) p.from = { email: `news${i}@example.com`, name: "News" };
    if (rand() < 0.2) p.reply_to = { email: "reply@example.com" };
    if (rand() < 0.3) p.headers = { "X-Personal": `${i}`, "x-top": "override" };
    if (rand() < 0.4) p.dynamic_template_data = rand() < 0.5 ? { name: `N${i}`, raw: "<b>", amp: "&", a: { b: "c" } } : '{"name":"S"}';
    if (rand() < 0.2) Object.assign(p, { dkim_domain: "example.com", dkim_selector: "s1", dkim_private_key: "MIIEvQIBADANBgkqhkiG9w0BAQEFAASC" });
    if (rand() < 0.2) p.envelope_from = { email: `bounce${i}@example.com`, name: "ignored" };
    personalizations.push(p);
  }
  const template = rand() < 0.4;
  const content: Json[] = [{ type: "text/plain", value: template ? "Hi {{name}}" : "Hello", ...(template ? { template_type: "mustache" } : {}) }];
  if (rand() < 0.5) content.push({ type: "text/html", value: template ? "<p>{{name}} {{{raw}}} {{a.b}}</p>" : "<p>Hello</p>", ...(template ? { template_type: "mustache" } : {}) });
  const body: { [key: string]: Json } = { personalizations, from: { email: "app@example.com", name: "App" }, subject: "Hello", content };
  if (rand() < 0.3) body.reply_to = { email: "help@example.com" };
  if (rand() < 0.3) body.headers = { "X-Top": "1" };
  if (rand() < 0.3) body.attachments = [{ content: "YQ==", filename: "a.txt", type: "text/plain" }];
  if (rand() < 0.3) body.tracking_settings = { click_tracking: { enable: rand() < 0.5 }, open_tracking: { enable: rand() < 0.5 } };
  if (rand() < 0.3) body.campaign_id = "spring-2026";
  if (rand() < 0.3) body.transactional = rand() < 0.5;
  if (rand() < 0.2) body[rand() < 0.5 ? "envelope_from" : "mailfrom"] = { email: "bounce@example.com" };
  if (rand() < 0.2) Object.assign(body, { dkim_domain: "example.com", dkim_selector: rand() < 0.5 ? "s1" : "relay" });
  return body;
}

/** Every object and array in a value, with itself first. */
function containers(value: Json, out: (Json[] | { [key: string]: Json })[] = []): (Json[] | { [key: string]: Json })[] {
  if (value !== null && typeof value === "object") {
    out.push(value);
    for (const child of Object.values(value)) containers(child, out);
  }
  return out;
}

/** One random edit somewhere in the body: replace a value, remove a key, add a key, or empty a list. */
function edit(rand: () => number, body: { [key: string]: Json }): void {
  // Most edits where most of the checks are: the top level and the personalizations.
  const r0 = rand();
  const personalizations = Array.isArray(body.personalizations) ? body.personalizations.filter((p) => p !== null && typeof p === "object") : [];
  const target = r0 < 0.35 ? body : r0 < 0.55 && personalizations.length ? (pick(rand, personalizations) as { [key: string]: Json }) : pick(rand, containers(body));
  const keys = Object.keys(target);
  const r = rand();
  if (Array.isArray(target)) {
    if (r < 0.6 && target.length) target[Math.floor(rand() * target.length)] = clone(pick(rand, VALUES));
    else if (r < 0.8) target.push(clone(pick(rand, VALUES)));
    else target.length = 0;
  } else if (r < 0.55 && keys.length) {
    target[pick(rand, keys)] = clone(pick(rand, VALUES));
  } else if (r < 0.75 && keys.length) {
    delete target[pick(rand, keys)];
  } else {
    target[pick(rand, KEYS)] = clone(pick(rand, VALUES));
  }
}

const BODIES = 6000;

function bodies(): unknown[] {
  const rand = generator(19);
  const out: unknown[] = [];
  for (let i = 0; i < BODIES; i++) {
    const body = goodBody(rand);
    const edits = i % 5 === 0 ? 0 : 1 + Math.floor(rand() * 5);
    for (let e = 0; e < edits; e++) edit(rand, body);
    out.push(i % 97 === 0 ? JSON.stringify(body) : body);
  }
  // Not objects at all, and the limits.
  out.push(null, [], "not json", "[]", 5, JSON.stringify({ personalizations: [] }));
  return out;
}

describe("the MailChannels body schema answers as the hand checker did", () => {
  it(`gives the same result for ${BODIES} generated bodies (0 differences)`, () => {
    const limits = [{}, { maxRecipients: 2, maxPersonalizations: 2 }];
    const differences: string[] = [];
    let refused = 0;
    let different = 0;
    const codes = new Set<string>();
    let n = 0;
    for (const body of bodies()) {
      const given = limits[n++ % limits.length]!;
      const old = handCheckedMailChannelsRequest(body, given);
      const now = fromMailChannelsRequest(body, given);
      if (!old.ok) {
        refused++;
        codes.add(old.error.code);
      }
      if (isDeepStrictEqual(now, old)) continue;
      different++;
      if (differences.length < 5) differences.push(`${JSON.stringify(body)}\n  was ${JSON.stringify(old)}\n  now ${JSON.stringify(now)}`);
    }
    console.log(`mailchannels-schema: ${n} bodies (${n - refused} accepted, ${refused} refused with ${codes.size} codes), ${different} differences`);
    expect(differences).toEqual([]);
    // The bodies reach both sides of the checks, or the comparison proves little.
    expect(refused).toBeGreaterThan(n / 4);
    expect(n - refused).toBeGreaterThan(n / 10);
    expect([...codes].sort()).toEqual(expect.arrayContaining(["invalid_attachment", "invalid_field", "invalid_recipient", "invalid_sender", "invalid_utf8", "missing_field", "too_many_recipients", "unknown_field"]));
  });
});

describe("the MailChannels request schema in the OpenAPI document", () => {
  const components = (OPENAPI_DOCUMENT as unknown as { components: { schemas: Record<string, Schema & { properties?: Record<string, unknown> }> } }).components;

  it("is generated from the schema that validates the body: same fields, strict, personalizations and content required", () => {
    const doc = components.schemas.MailChannelsSend!;
    expect(Object.keys(doc.properties ?? {})).toEqual(Object.keys(mailChannelsSchema().entries));
    expect(doc).toMatchObject({ type: "object", required: ["personalizations", "content"], additionalProperties: false });
  });

  it("accepts every generated body the route accepts (less top-level defaults no personalization reads)", () => {
    const validator = new Validator({ $ref: "#/components/schemas/MailChannelsSend", components } as Schema, "2020-12", false);
    const refused: string[] = [];
    let accepted = 0;
    for (const body of bodies()) {
      if (typeof body !== "object" || body === null || !fromMailChannelsRequest(body).ok) continue;
      accepted++;
      // A top-level default that every personalization overrides is never read, so never checked (as before the
      // schema); the document describes it as it would be read.
      const read = { ...(body as Record<string, unknown>) };
      const personalizations = read.personalizations as Record<string, unknown>[];
      for (const key of ["from", "reply_to", "subject", "dkim_domain", "dkim_selector", "dkim_private_key"]) {
        if (personalizations.every((p) => p[key] !== undefined && p[key] !== null)) delete read[key];
      }
      if (read.headers && typeof read.headers === "object") {
        const overridden = (name: string) => personalizations.every((p) => Object.keys((p.headers as object | null) ?? {}).some((k) => k.toLowerCase() === name.toLowerCase()));
        read.headers = Object.fromEntries(Object.entries(read.headers).filter(([name]) => !overridden(name)));
      }
      if (!validator.validate(read).valid) refused.push(JSON.stringify(body));
    }
    expect(refused.slice(0, 3)).toEqual([]);
    expect(accepted).toBeGreaterThan(100);
  });
});
