import { describe, expect, it } from "vitest";
import { DEFAULT_DNS_LISTS, interpretAnswer, parseDnsLists, queryName, type DnsList } from "../../src/reputation/dns-lists";
import { duePairs, spfAddresses, type WatchedSubject } from "../../src/reputation/monitor";
import type { ReputationConfig } from "../../src/config";
import type { CheckRow, FailureEventRow } from "../../src/store/reputation";
import { bounceSignals } from "../../src/reputation/bounce-signal";

const list = (name: string): DnsList => DEFAULT_DNS_LISTS.find((l) => l.name === name)!;

describe("DNS list answers", () => {
  it("builds reversed-IP and domain query names, and refuses subjects of the wrong kind", () => {
    expect(queryName(list("spamhaus-zen"), "203.0.113.7")).toBe("7.113.0.203.zen.spamhaus.org");
    expect(queryName(list("spamhaus-dbl"), "Example.COM")).toBe("example.com.dbl.spamhaus.org");
    expect(queryName(list("spamhaus-zen"), "example.com")).toBeNull();
    expect(queryName(list("spamhaus-dbl"), "203.0.113.7")).toBeNull();
    expect(queryName(list("spamhaus-zen"), "203.0.113.07")).toBeNull();
  });

  it("reads Spamhaus listings and treats 127.255.255.x as errors, not listings", () => {
    expect(interpretAnswer(list("spamhaus-zen"), [])).toEqual({ state: "clear" });
    const sbl = interpretAnswer(list("spamhaus-zen"), ["127.0.0.2", "127.0.0.4"]);
    expect(sbl.state).toBe("listed");
    expect(sbl.state === "listed" && sbl.meaning).toMatch(/SBL.*XBL/);
    for (const code of ["127.255.255.254", "127.255.255.255", "127.255.255.252", "127.255.255.250"]) {
      expect(interpretAnswer(list("spamhaus-zen"), [code]).state).toBe("error");
    }
    // An error code beside a listing code still makes the answer untrustworthy.
    expect(interpretAnswer(list("spamhaus-zen"), ["127.0.0.2", "127.255.255.254"]).state).toBe("error");
    expect(interpretAnswer(list("spamhaus-dbl"), ["127.0.1.255"]).state).toBe("error");
    expect(interpretAnswer(list("spamhaus-dbl"), ["127.0.1.2"])).toMatchObject({ state: "listed", meaning: "DBL: low-reputation (spam) domain" });
  });

  it("decodes URIBL and SURBL bitmasks, and 127.0.0.1 (query refused) is an error", () => {
    expect(interpretAnswer(list("uribl"), ["127.0.0.1"]).state).toBe("error");
    expect(interpretAnswer(list("surbl"), ["127.0.0.1"]).state).toBe("error");
    expect(interpretAnswer(list("uribl"), ["127.0.0.6"])).toMatchObject({ state: "listed", meaning: "URIBL black; URIBL grey" });
    expect(interpretAnswer(list("surbl"), ["127.0.0.80"])).toMatchObject({ state: "listed", meaning: "SURBL MW: malware; SURBL ABUSE: spam" });
  });

  it("an answer outside 127/8 (an NXDOMAIN-rewriting resolver) is an error", () => {
    expect(interpretAnswer(list("spamcop"), ["198.51.100.1"]).state).toBe("error");
    expect(interpretAnswer(list("barracuda"), ["127.0.0.2"]).state).toBe("listed");
    expect(interpretAnswer(list("barracuda"), ["127.0.0.9"])).toMatchObject({ state: "listed", meaning: "listed (undocumented code 127.0.0.9)" });
  });

  it("parses REPUTATION_LISTS: defaults by name (with a DQS zone), custom lists, and clear errors", () => {
    const lists = parseDnsLists(JSON.stringify([{ use: "spamhaus-zen", zone: "KEY123.zen.dq.spamhaus.net", blocking: false }, { name: "mine", zone: "bl.example.net", kind: "ip", listed: { "127.0.0.2": "mine" } }]));
    expect(lists.map((l) => [l.name, l.zone, l.blocking])).toEqual([
      ["spamhaus-zen", "key123.zen.dq.spamhaus.net", false],
      ["mine", "bl.example.net", false],
    ]);
    expect(parseDnsLists("")).toHaveLength(DEFAULT_DNS_LISTS.length);
    expect(() => parseDnsLists("{")).toThrow(/JSON array/);
    expect(() => parseDnsLists(JSON.stringify([{ use: "nope" }]))).toThrow(/no default list/);
    expect(() => parseDnsLists(JSON.stringify([{ name: "x", zone: "bl.example.net", kind: "ip" }]))).toThrow(/listed/);
    expect(() => parseDnsLists(JSON.stringify([{ name: "x", zone: "bl.example.net", kind: "ip", listed: { "10.0.0.1": "x" } }]))).toThrow(/bad entry/);
  });
});

describe("watch scheduling", () => {
  const cfg = { lists: [...DEFAULT_DNS_LISTS], learnSpf: true, checkIntervalSeconds: 3600 } as ReputationConfig;
  const subjects: WatchedSubject[] = [
    { subject: "203.0.113.7", kind: "ip", tenantId: null, label: null },
    { subject: "example.com", kind: "domain", tenantId: "t", label: null },
  ];

  it("takes at most the budget, never-checked first, and skips pairs checked within the interval", () => {
    const now = 10_000_000;
    const all = duePairs(subjects, cfg, new Map(), now, 100, new Set(["example.com"]));
    // 3 IP lists + 3 domain lists + SPF learning of the sender domain.
    expect(all).toHaveLength(7);
    const checks = new Map<string, CheckRow>([
      ["203.0.113.7|spamhaus-zen", { checked_at: now - 1000 } as CheckRow],
      ["203.0.113.7|barracuda", { checked_at: now - 7_200_000 } as CheckRow],
    ]);
    const due = duePairs(subjects, cfg, checks, now, 3, new Set());
    expect(due).toHaveLength(3);
    expect(due.some((p) => typeof p.list !== "string" && p.list.name === "spamhaus-zen" && p.subject.kind === "ip")).toBe(false);
    expect(duePairs(subjects, cfg, checks, now, 100, new Set()).at(-1)?.subject.subject).toBe("203.0.113.7");
  });

  it("learns only single ip4 addresses from SPF", () => {
    expect(spfAddresses(['"v=spf1 ip4:198.51.100.7 ip4:198.51.100.8/32 ip4:10.0.0.0/8 include:_spf.google.com ~all"'])).toEqual(["198.51.100.7", "198.51.100.8"]);
    expect(spfAddresses(['"google-site-verification=x"'])).toEqual([]);
    expect(spfAddresses(['"v=spf1 " "ip4:192.0.2.1 -all"'])).toEqual(["192.0.2.1"]);
  });
});

describe("bounce-side signal", () => {
  const ev = (recipient: string, host: string, code: number, enhanced: string, text: string, data: string | null = null): FailureEventRow => ({ type: "bounced", recipient, host, code, enhanced, text, data });
  const t = { warnShare: 0.1, alertShare: 0.25, minFailures: 4 };

  it("grades providers by the share of reputation-type failures, with a minimum number of failures", () => {
    const events = [
      ...Array.from({ length: 3 }, () => ev("a@gmail.com", "gmail-smtp-in.l.google.com:25", 550, "5.7.1", "Our system has detected that this message is likely unsolicited mail. To reduce the amount of spam sent to Gmail, this message has been blocked.")),
      ...Array.from({ length: 5 }, () => ev("b@gmail.com", "gmail-smtp-in.l.google.com:25", 550, "5.1.1", "The email account that you tried to reach does not exist.")),
      ev("c@small.example", "mx.small.example:25", 554, "5.7.1", "Service unavailable; Client host [192.0.2.10] blocked using zen.spamhaus.org"),
      // An inbound (asynchronous) bounce carries the reason its parser found.
      ...Array.from({ length: 4 }, () => ev("d@yahoo.com", "", 0, "", "", JSON.stringify({ async: true, reason: "userunknown" }))),
    ];
    const s = bounceSignals(events, t);
    const google = s.find((x) => x.provider === "google")!;
    expect(google).toMatchObject({ failures: 8, reputationFailures: 3, level: "alert" });
    expect(google.share).toBeCloseTo(3 / 8);
    expect(s.find((x) => x.provider === "small.example")).toMatchObject({ failures: 1, reputationFailures: 1, level: "few" });
    expect(s.find((x) => x.provider === "yahoo.com")).toMatchObject({ failures: 4, reputationFailures: 0, level: "ok" });
    expect(s[0]!.provider).toBe("google");
  });
});
