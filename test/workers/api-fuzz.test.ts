/**
 * Generated malformed requests (seeded, so failures reproduce): random JSON, wrong types, huge fields, CR/LF and
 * other breaks in every string field, invalid UTF-8 bytes, lone surrogates, invalid addresses, malformed raw
 * messages and MailChannels bodies, oversize bodies. Each must get a 4xx JSON error with a code from the closed
 * list, none a 5xx, and nothing may be queued.
 */
import { describe, expect, it } from "vitest";
import { ERROR_CODES } from "../../src/http/errors";
import { call, createTenantWithKey, env, unique } from "./helpers";
import { seededRandom } from "../support/prng";

type Case = { what: string; path: string; headers?: Record<string, string>; body: BodyInit };
type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

function setPath(obj: Record<string, unknown>, path: (string | number)[], value: unknown): Record<string, unknown> {
  const copy = structuredClone(obj);
  let cur: Record<string | number, unknown> = copy;
  for (const p of path.slice(0, -1)) cur = cur[p] as Record<string | number, unknown>;
  cur[path[path.length - 1]!] = value;
  return copy;
}

describe("generated malformed requests", () => {
  it("answers at least 1,000 malformed requests with 4xx JSON errors and queues nothing", async () => {
    const domain = `${unique("fz")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    const rand = seededRandom(20261128);
    const pick = <T,>(xs: readonly T[]): T => xs[Math.floor(rand() * xs.length)]!;
    const randStr = (n: number) => Array.from({ length: n }, () => String.fromCharCode(32 + Math.floor(rand() * 95))).join("");
    const randJson = (depth: number): Json => {
      const r = rand();
      if (depth > 3 || r < 0.3) return pick<Json>([null, true, false, Math.floor(rand() * 1e9) - 5e8, rand() * 1e6, randStr(Math.floor(rand() * 20))]);
      if (r < 0.65) return Array.from({ length: Math.floor(rand() * 4) }, () => randJson(depth + 1));
      return Object.fromEntries(Array.from({ length: 1 + Math.floor(rand() * 4) }, () => [`k_${randStr(4)}`, randJson(depth + 1)]));
    };
    const png = btoa("\x89PNG\r\n");
    const base = {
      from: { name: "Sender", address: `app@${domain}` },
      to: [`to@sink.example`],
      cc: [`cc@sink.example`],
      bcc: [`bcc@sink.example`],
      reply_to: [`reply@${domain}`],
      subject: "subject",
      text: "text",
      html: "<p>html</p>",
      attachments: [{ filename: "a.png", content: png, content_type: "image/png", content_id: "logo", disposition: "inline" }],
      headers: { "X-Custom": "value" },
      tags: ["tag"],
      metadata: { key: "value" },
      send_at: new Date(Date.now() + 3600_000).toISOString(),
      stream: "transactional",
    };
    const json = (what: string, body: unknown, path = "/v1/messages"): Case => ({ what, path, headers: { "content-type": "application/json" }, body: JSON.stringify(body) });
    const cases: Case[] = [];

    // Random JSON: non-objects, and objects with unknown fields.
    for (let i = 0; i < 150; i++) {
      let v = randJson(0);
      if (typeof v === "object" && v !== null && !Array.isArray(v)) v = [v];
      cases.push(json(`random non-object ${i}`, v));
    }
    for (let i = 0; i < 150; i++) cases.push(json(`random object ${i}`, { ...base, [`k_${randStr(6)}`]: randJson(1) }));
    for (let i = 0; i < 40; i++) cases.push({ what: `not JSON ${i}`, path: "/v1/messages", headers: { "content-type": "application/json" }, body: randStr(1 + Math.floor(rand() * 60)).replace(/^[[{"\d-]/, "x") });

    // Wrong types for every field.
    const stringFields = ["subject", "text", "html", "send_at", "stream"];
    const addressFields = ["from", "to", "cc", "bcc", "reply_to"];
    const wrong: Record<string, unknown[]> = {
      ...Object.fromEntries(stringFields.map((f) => [f, [42, true, ["x"], { x: "y" }, -1.5]])),
      ...Object.fromEntries(addressFields.map((f) => [f, [42, false, [[`a@${domain}`]], { x: 1 }, [{ address: 5 }]]])),
      attachments: ["a", 1, { filename: "a" }, true, [5], [{ filename: 5, content: png }], [{ filename: "a", content: 5 }]],
      headers: ["a", 1, ["X-A"], true, { "X-A": 5 }, { "X-A": ["v"] }],
      tags: ["a", 1, { a: 1 }, true, [5], [["t"]]],
      metadata: ["a", 1, ["v"], true, { k: 5 }, { k: { v: 1 } }],
    };
    for (const [f, values] of Object.entries(wrong)) for (const v of values) cases.push(json(`wrong type ${f}=${JSON.stringify(v)}`, { ...base, [f]: v }));

    // Breaks in every string field that ends up in a header.
    const breaks = ["\r", "\n", "\r\n", "\0", "\u2028", "\r\nBcc: victim@example.com"];
    const stringPaths: (string | number)[][] = [
      ["from", "name"],
      ["from", "address"],
      ["to", 0],
      ["cc", 0],
      ["bcc", 0],
      ["reply_to", 0],
      ["subject"],
      ["attachments", 0, "filename"],
      ["attachments", 0, "content_type"],
      ["attachments", 0, "content_id"],
      ["headers", "X-Custom"],
      ["tags", 0],
      ["metadata", "key"],
      ["send_at"],
      ["stream"],
    ];
    for (const p of stringPaths) {
      for (const br of breaks) {
        const original = p.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], base) as string;
        const at = Math.floor(rand() * (original.length + 1));
        cases.push(json(`break ${JSON.stringify(br)} in ${p.join(".")}`, setPath(base, p, original.slice(0, at) + br + original.slice(at))));
      }
    }
    for (const br of breaks) cases.push(json(`break in header name`, { ...base, headers: { [`X-A${br}B`]: "v" } }));

    // Lone surrogates anywhere a string goes.
    for (const p of [...stringPaths, ["text"], ["html"]]) {
      for (const s of ["\ud800", "\udfff", "a\ud83dz"]) {
        const original = p.reduce<unknown>((o, k) => (o as Record<string | number, unknown>)[k], base) as string;
        cases.push(json(`lone surrogate in ${p.join(".")}`, setPath(base, p, original + s)));
      }
    }

    // Invalid UTF-8 bytes inside otherwise valid JSON.
    const bad = [[0xff], [0xc3, 0x28], [0xed, 0xa0, 0x80], [0xe2, 0x82], [0xf0, 0x28, 0x8c, 0xbc], [0xc0, 0xaf], [0xf8, 0x88, 0x80, 0x80, 0x80]];
    const valid = new TextEncoder().encode(JSON.stringify(base));
    const quotes = [...valid.keys()].filter((i) => valid[i] === 0x22);
    for (let i = 0; i < 120; i++) {
      const at = pick(quotes) + 1;
      const seq = pick(bad);
      const bytes = new Uint8Array([...valid.slice(0, at), ...seq, ...valid.slice(at)]);
      cases.push({ what: `invalid UTF-8 ${i}`, path: "/v1/messages", headers: { "content-type": "application/json" }, body: bytes });
    }

    // Invalid addresses in every address field.
    const badAddresses = [
      "",
      "plain",
      "@example.com",
      "a@",
      "a@@example.com",
      "a@b@example.com",
      "a b@example.com",
      "a@exa mple.com",
      "a@-example.com",
      "a@example-.com",
      "a@example",
      "a@[127.0.0.1]",
      "a@example..com",
      ".a@example.com",
      "a.@example.com",
      "a..b@example.com",
      `${"x".repeat(65)}@example.com`,
      `a@${"l".repeat(64)}.com`,
      `a@${"d.".repeat(130)}com`,
      "<a@example.com",
      "Name <a@example.com> <b@example.com>",
      "a@example.com, b@example.com",
      "a@exam_ple.com",
      "a\u202e@example.com",
      "a@ex\u200bample.com",
      "\"unterminated@example.com",
      "a@example.com\u0000",
      "a(comment)@example.com",
      "a@1.2.3.4.5",
      "Name <>",
    ];
    for (const a of badAddresses) {
      for (const f of addressFields) cases.push(json(`bad address ${JSON.stringify(a)} in ${f}`, { ...base, [f]: f === "from" ? a : [a] }));
    }

    // Huge fields.
    const huge: [string, unknown][] = [
      ["subject", "s".repeat(5000)],
      ["from", `${"n".repeat(2000)}@${domain}`],
      ["tags", ["t".repeat(100)]],
      ["tags", Array.from({ length: 11 }, (_, i) => `t${i}`)],
      ["metadata", { k: "v".repeat(2000) }],
      ["metadata", Object.fromEntries(Array.from({ length: 21 }, (_, i) => [`k${i}`, "v"]))],
      ["headers", Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`X-H${i}`, "v"]))],
      ["headers", { "X-Long": "v".repeat(1000) }],
      ["headers", { [`X-${"n".repeat(100)}`]: "v" }],
      ["to", Array.from({ length: 51 }, (_, i) => `r${i}@sink.example`)],
      ["reply_to", Array.from({ length: 11 }, (_, i) => `r${i}@${domain}`)],
      ["attachments", Array.from({ length: 101 }, (_, i) => ({ filename: `f${i}.txt`, content: "eA==" }))],
      ["attachments", [{ filename: "f".repeat(300), content: "eA==" }]],
      ["send_at", new Date(Date.now() + 40 * 86_400_000).toISOString()],
      ["send_at", "2001-01-01T00:00:00Z"],
      ["send_at", "2026-02-31T00:00:00Z"],
    ];
    for (const [f, v] of huge) cases.push(json(`huge ${f}`, { ...base, [f]: v }));
    cases.push(json("text above the part limit", { ...base, text: "x".repeat(10 * 1024 * 1024 + 1) }));

    // The raw endpoint: malformed messages and envelopes.
    const rawMsg = `From: app@${domain}\r\nTo: to@sink.example\r\nSubject: s\r\n\r\nbody\r\n`;
    const raw = (what: string, body: BodyInit, headers: Record<string, string> = {}): Case => ({
      what: `raw: ${what}`,
      path: "/v1/messages/raw",
      headers: { "content-type": "message/rfc822", "x-envelope-to": "to@sink.example", ...headers },
      body,
    });
    for (let i = 0; i < 60; i++) {
      const bytes = new Uint8Array(1 + Math.floor(rand() * 200)).map(() => Math.floor(rand() * 256));
      bytes[0] = 0xff; // never valid UTF-8, never a header line
      cases.push(raw(`random bytes ${i}`, bytes));
    }
    // Header values must be printable ASCII to be sent at all.
    const headerSafe = badAddresses.filter((x) => x !== "" && !x.includes(",") && /^[\x20-\x7e]+$/.test(x));
    for (const a of headerSafe) cases.push(raw(`bad envelope recipient ${JSON.stringify(a)}`, rawMsg, { "x-envelope-to": `ok@sink.example, ${a}` }));
    for (const a of headerSafe.slice(0, 12)) cases.push(raw(`bad envelope sender ${JSON.stringify(a)}`, rawMsg, { "x-envelope-from": a }));
    for (const [what, body] of [
      ["no From", "To: x@sink.example\r\n\r\nbody\r\n"],
      ["two From", `From: a@${domain}\r\nFrom: b@${domain}\r\n\r\nbody\r\n`],
      ["From of another domain", "From: a@elsewhere.example\r\n\r\nbody\r\n"],
      ["continuation first", ` From: a@${domain}\r\n\r\nbody\r\n`],
      ["no colon", `From a@${domain}\r\n\r\nbody\r\n`],
      ["NUL", `From: a@${domain}\r\n\r\nbo\0dy\r\n`],
      ["long line", `From: a@${domain}\r\n\r\n${"x".repeat(2000)}\r\n`],
      ["empty", ""],
      ["bad From address", "From: not an address\r\n\r\nbody\r\n"],
    ] as const) cases.push(raw(what, body));
    for (const t of ["text/plain", "application/json", "multipart/form-data", "message/rfc822x"]) cases.push(raw(`content type ${t}`, rawMsg, { "content-type": t }));
    cases.push(raw("stream", rawMsg, { "x-stream": "bulk" }));
    cases.push(raw("tags", rawMsg, { "x-tags": Array.from({ length: 11 }, (_, i) => `t${i}`).join(",") }));
    cases.push(raw("helo", rawMsg, { "x-client-helo": "bad helo with spaces" }));
    cases.push(raw("protocol", rawMsg, { "x-client-protocol": "HTTP/1.1" }));

    // MailChannels bodies.
    const mc = { personalizations: [{ to: [{ email: "to@sink.example", name: "To" }] }], from: { email: `app@${domain}`, name: "App" }, subject: "s", content: [{ type: "text/plain", value: "t" }] };
    const mcCase = (what: string, body: unknown): Case => ({ ...json(`mailchannels: ${what}`, body, "/tx/v1/send") });
    for (let i = 0; i < 60; i++) cases.push(mcCase(`random ${i}`, randJson(0)));
    for (const [f, v] of [
      ["personalizations", "x"],
      ["personalizations", []],
      ["personalizations", [{}]],
      ["personalizations", [{ to: "x" }]],
      ["personalizations", [{ to: [{ email: "bad" }] }]],
      ["personalizations", [{ to: [{ email: "a@sink.example\r\nBcc: v@x.example" }] }]],
      ["from", "x"],
      ["from", { email: "bad" }],
      ["from", { email: "a@elsewhere.example" }],
      ["subject", 5],
      ["subject", "a\r\nb"],
      ["content", "x"],
      ["content", []],
      ["content", [{ type: "text/plain" }]],
      ["content", [{ type: 5, value: "v" }]],
      ["headers", { "DKIM-Signature": "x" }],
      ["headers", { "X-A": "a\nb" }],
      ["attachments", [{ filename: "a", content: "!!", type: "text/plain" }]],
      ["unknown_top_level", 1],
    ] as const) cases.push(mcCase(`${f}=${JSON.stringify(v)}`, { ...mc, [f]: v }));

    // Oversize bodies: above MAX_MESSAGE_BYTES (25 MiB) raw, above the JSON limit (4/3 of it + 1 MiB).
    cases.push(raw("oversize", new Uint8Array(25 * 1024 * 1024 + 1).fill(0x61)));
    cases.push({ what: "oversize JSON", path: "/v1/messages", headers: { "content-type": "application/json" }, body: new Uint8Array(Math.ceil((25 * 1024 * 1024 * 4) / 3) + 1024 * 1024 + 1).fill(0x20) });

    // Batch envelopes that are malformed as a whole.
    for (const v of [{}, { messages: "x" }, { messages: [] }, 5, "x", Array(101).fill(base)]) cases.push(json(`batch ${JSON.stringify(v).slice(0, 40)}`, v, "/v1/messages/batch"));

    expect(cases.length).toBeGreaterThanOrEqual(1000);
    const codes = new Set<string>(ERROR_CODES);
    const failures: string[] = [];
    const seen = new Map<string, number>();
    for (const c of cases) {
      const headers = new Headers(c.headers);
      headers.set("authorization", `Bearer ${key}`);
      const res = await call(c.path, { method: "POST", headers, body: c.body });
      const text = await res.text();
      let code = "";
      try {
        code = (JSON.parse(text) as { error: { code: string } }).error.code;
      } catch {
        code = "";
      }
      if (res.status < 400 || res.status >= 500 || !codes.has(code) || !res.headers.get("content-type")?.includes("application/json")) {
        failures.push(`${c.what}: ${res.status} ${text.slice(0, 200)}`);
      }
      seen.set(`${res.status} ${code}`, (seen.get(`${res.status} ${code}`) ?? 0) + 1);
    }
    expect(failures).toEqual([]);
    const n = await env.DB.prepare("SELECT COUNT(*) AS n FROM messages WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>();
    expect(n?.n).toBe(0);
    const jobs = await env.DB.prepare("SELECT COUNT(*) AS n FROM scheduled_jobs s JOIN messages m ON m.id = s.message_id WHERE m.tenant_id = ?").bind(tenantId).first<{ n: number }>();
    expect(jobs?.n).toBe(0);
    console.log(`fuzz: ${cases.length} requests;`, JSON.stringify(Object.fromEntries([...seen].sort())));
  });
});
