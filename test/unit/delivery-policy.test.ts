/** Pure parts of the delivery engine: route parsing and failover order, retry policy, MX lookup, DSN composition. */
import PostalMime from "postal-mime";
import { describe, expect, it } from "vitest";
import { composeDsn } from "../../src/delivery/dsn";
import { DnsFailure, DohResolver } from "../../src/delivery/mx";
import { isHardAddressBounce, isThrottleReply, retryDelaySeconds, retryHintSeconds } from "../../src/delivery/retry";
import { parseRouteTarget, resolveSmtpHop, RouteError, selectRouteSet } from "../../src/delivery/routes";
import { DEFAULT_GATE_POLICY, mergePolicy, parsePartialPolicy, presetForMxHosts } from "../../src/gate/policy";
import type { RouteRow } from "../../src/store/routes";

const row = (over: Partial<RouteRow>): RouteRow => ({
  id: "r",
  tenant_id: null,
  match_recipient_domain: "example.com",
  match_sender_domain: "*",
  next_hop_url: "smtp://127.0.0.1:25",
  priority: 100,
  weight: 1,
  name: null,
  policy: null,
  retry_schedule_seconds: null,
  max_message_age_seconds: null,
  ...over,
});

describe("routes", () => {
  it("parses the three kinds of next hop", () => {
    expect(parseRouteTarget("mx:")).toEqual({ kind: "mx", port: null, tls: "starttls-opportunistic" });
    expect(parseRouteTarget("mx:?port=2525&tls=required")).toEqual({ kind: "mx", port: 2525, tls: "starttls-required" });
    expect(parseRouteTarget("cloudflare:")).toEqual({ kind: "cloudflare", binding: "EMAIL" });
    expect(parseRouteTarget("cloudflare:OUTBOUND")).toEqual({ kind: "cloudflare", binding: "OUTBOUND" });
    const smtp = parseRouteTarget("smtp+starttls://relay.example.net:587");
    expect(smtp.kind === "smtp" && smtp.hop).toMatchObject({ host: "relay.example.net", port: 587, tls: "starttls-required" });
    expect(() => parseRouteTarget("mx:?tls=maybe")).toThrow(/tls/);
    expect(() => parseRouteTarget("ftp://x")).toThrow();
  });

  it("fills ${SMTP_*} credentials from secrets and refuses other secret names", () => {
    const env = { SMTP_USER: "ses-user", SMTP_PASS: "p@ss/word:1" } as unknown as Env;
    const hop = resolveSmtpHop("smtps://${SMTP_USER}:${SMTP_PASS}@email-smtp.example.com:465", env);
    expect(hop).toMatchObject({ host: "email-smtp.example.com", port: 465, tls: "implicit", auth: { user: "ses-user", pass: "p@ss/word:1" } });
    expect(() => resolveSmtpHop("smtps://${SMTP_MISSING}:x@h.example:465", env)).toThrow(RouteError);
    expect(() => parseRouteTarget("smtps://${ADMIN_TOKEN}:x@evil.example:465")).toThrow(/SMTP_/);
  });

  it("orders the most specific rule's rows by priority, then by weight", () => {
    const rows = [
      row({ id: "a", priority: 10, weight: 1 }),
      row({ id: "b", priority: 10, weight: 3 }),
      row({ id: "c", priority: 20 }),
      row({ id: "wild", match_recipient_domain: "*" }),
    ];
    const firsts = new Map<string, number>();
    let x = 0;
    // A deterministic sweep of the random source over [0, 1).
    for (let i = 0; i < 400; i++) {
      const set = selectRouteSet(rows, "smtp://d:25", () => ((x = (x + 0.61803398875) % 1), x));
      expect(set.map((c) => c.id).slice(2)).toEqual(["c"]);
      expect(set.map((c) => c.id)).not.toContain("wild");
      firsts.set(set[0]!.id, (firsts.get(set[0]!.id) ?? 0) + 1);
    }
    expect(firsts.get("b")! / 400).toBeCloseTo(0.75, 1);
    expect(selectRouteSet([], "mx:")[0]).toMatchObject({ id: "default", target: { kind: "mx" } });
  });
});

describe("retry policy", () => {
  it("follows the schedule with ±10% jitter, repeating the last step", () => {
    const schedule = [60, 300, 900];
    expect(retryDelaySeconds(schedule, 1, () => 0.5)).toBe(60);
    expect(retryDelaySeconds(schedule, 2, () => 0)).toBe(270);
    expect(retryDelaySeconds(schedule, 2, () => 0.999999)).toBe(330);
    expect(retryDelaySeconds(schedule, 9, () => 0.5)).toBe(900);
  });

  it("reads the delay a reply asks for", () => {
    expect(retryHintSeconds("4.7.0 Too many messages, try again in 5 minutes")).toBe(300);
    expect(retryHintSeconds("Please retry in 30s")).toBe(30);
    expect(retryHintSeconds("try again later in 2 min")).toBe(120);
    expect(retryHintSeconds("try again after 1 hour")).toBe(3600);
    expect(retryHintSeconds("mailbox busy")).toBeUndefined();
    expect(retryHintSeconds("try again in 100 hours")).toBe(6 * 3600);
  });

  it("classifies throttling and hard address bounces", () => {
    expect(isThrottleReply(421, undefined)).toBe(true);
    expect(isThrottleReply(450, "4.7.1")).toBe(true);
    expect(isThrottleReply(451, "4.3.0")).toBe(false);
    expect(isHardAddressBounce(550, "5.1.1", "RCPT")).toBe(true);
    expect(isHardAddressBounce(550, "5.7.1", "RCPT")).toBe(false);
    expect(isHardAddressBounce(550, undefined, "RCPT")).toBe(true);
    expect(isHardAddressBounce(554, undefined, "DATA")).toBe(false);
  });
});

describe("gate policy", () => {
  it("recognises providers by MX host and layers overrides", () => {
    expect(presetForMxHosts(["aspmx.l.google.com"])?.name).toBe("google");
    expect(presetForMxHosts(["example-com.mail.protection.outlook.com"])?.name).toBe("microsoft");
    expect(presetForMxHosts(["mta5.am0.yahoodns.net."])?.name).toBe("yahoo");
    expect(presetForMxHosts(["mx01.mail.icloud.com"])?.name).toBe("apple");
    expect(presetForMxHosts(["mx.notgoogle.com"])).toBeUndefined();
    const p = mergePolicy(DEFAULT_GATE_POLICY, { ratePerSecond: 2 }, { maxConnections: 1 });
    expect(p).toMatchObject({ ratePerSecond: 2, maxConnections: 1, maxMessagesPerConnection: DEFAULT_GATE_POLICY.maxMessagesPerConnection });
    expect(parsePartialPolicy({ ratePerSecond: 0.5 })).toEqual({ ok: true, policy: { ratePerSecond: 0.5 } });
    expect(parsePartialPolicy({ maxConnections: 1.5 }).ok).toBe(false);
    expect(parsePartialPolicy({ speed: 1 }).ok).toBe(false);
  });
});

describe("MX lookup over DoH JSON", () => {
  const resolver = (answers: Record<string, unknown>, calls: string[] = []) =>
    new DohResolver("https://doh.test/dns-query", async (input) => {
      const u = new URL(String(input));
      const key = `${u.searchParams.get("name")}|${u.searchParams.get("type")}`;
      calls.push(key);
      return new Response(JSON.stringify(answers[key] ?? { Status: 3 }), { headers: { "content-type": "application/dns-json" } });
    });

  it("returns hosts by preference and caches answers by TTL", async () => {
    const calls: string[] = [];
    const r = resolver(
      {
        "a.test|MX": { Status: 0, Answer: [{ name: "a.test", type: 15, TTL: 60, data: "20 mx2.a.test." }, { name: "a.test", type: 15, TTL: 60, data: "10 mx1.a.test." }] },
      },
      calls,
    );
    expect(await r.mxHosts("a.test")).toEqual([
      { host: "mx1.a.test", preference: 10 },
      { host: "mx2.a.test", preference: 20 },
    ]);
    await r.mxHosts("a.test");
    expect(calls.filter((c) => c === "a.test|MX")).toHaveLength(1);
  });

  it("treats null MX and NXDOMAIN as permanent, SERVFAIL as temporary, and falls back to implicit MX", async () => {
    const r = resolver({
      "null.test|MX": { Status: 0, Answer: [{ name: "null.test", type: 15, TTL: 60, data: "0 ." }] },
      "sf.test|MX": { Status: 2 },
      "imp.test|MX": { Status: 0 },
      "imp.test|A": { Status: 0, Answer: [{ name: "imp.test", type: 1, TTL: 60, data: "192.0.2.1" }] },
      "imp.test|AAAA": { Status: 0 },
    });
    await expect(r.mxHosts("null.test")).rejects.toMatchObject({ permanent: true, enhanced: "5.1.10" });
    await expect(r.mxHosts("gone.test")).rejects.toMatchObject({ permanent: true, enhanced: "5.1.2" });
    await expect(r.mxHosts("sf.test")).rejects.toMatchObject({ permanent: false, enhanced: "4.4.3" });
    await expect(r.mxHosts("sf.test")).rejects.toBeInstanceOf(DnsFailure);
    expect(await r.mxHosts("imp.test")).toEqual([{ host: "imp.test", preference: 0 }]);
  });
});

describe("DSN (RFC 3464)", () => {
  it("composes a multipart/report that postal-mime reads back", async () => {
    const original = "From: a@s.example\r\nTo: b@d.example\r\nSubject: Quarterly report\r\nMessage-ID: <1@s.example>\r\n\r\nbody\r\n";
    const { raw, subject } = composeDsn({
      reportingMta: "relay.example.net",
      to: "a@s.example",
      originalMessageId: "m1",
      arrivalAt: Date.UTC(2026, 0, 2, 3, 4, 5),
      recipients: [{ address: "b@d.example", action: "failed", status: "5.1.1", remoteMta: "mx.d.example", diagnostic: "smtp; 550 5.1.1 no such user\r\nInjected: x", lastAttemptAt: Date.UTC(2026, 0, 2, 3, 4, 6), reason: "no such user" }],
      originalRaw: original,
      expired: false,
    });
    expect(subject).toBe("Undelivered Mail Returned to Sender");
    const email = await PostalMime.parse(raw, { attachmentEncoding: "utf8" } as never);
    expect(email.headers.find((h) => h.key === "content-type")!.value).toMatch(/^multipart\/report; report-type=delivery-status;/);
    expect(email.headers.find((h) => h.key === "auto-submitted")!.value).toBe("auto-replied");
    const status = email.attachments.find((a) => a.mimeType === "message/delivery-status")!.content as string;
    expect(status).toContain("Reporting-MTA: dns; relay.example.net");
    expect(status).toContain("Arrival-Date: Fri, 02 Jan 2026 03:04:05 +0000");
    expect(status).toMatch(/Final-Recipient: rfc822; b@d\.example\r?\nAction: failed\r?\nStatus: 5\.1\.1\r?\nRemote-MTA: dns; mx\.d\.example/);
    // A server's reply cannot add fields to the report.
    expect(status).toContain("Diagnostic-Code: smtp; 550 5.1.1 no such user Injected: x");
    expect(status).not.toMatch(/^Injected:/m);
    const headers = email.attachments.find((a) => a.mimeType === "text/rfc822-headers")!.content as string;
    expect(headers).toContain("Subject: Quarterly report");
    expect(headers).not.toContain("body");
    expect(email.text).toContain("<b@d.example>: no such user");
  });
});
