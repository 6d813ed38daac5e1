/** MTA-STS (RFC 8461): TXT and policy parsing, MX pattern matching, and the resolver's caching rules (section 5.1). */
import { describe, expect, it } from "vitest";
import { mxMatchesPolicy, MtaStsResolver, parseStsPolicy, parseStsTxt, type CachedPolicy, type MtaStsDeps } from "../../src/delivery/mta-sts";
import { mxPolicy } from "../../src/delivery/tls-policy";

const policyText = (mode: string, mx: string[], maxAge = 86400) => ["version: STSv1", `mode: ${mode}`, ...mx.map((m) => `mx: ${m}`), `max_age: ${maxAge}`].join("\r\n");

describe("MTA-STS parsing", () => {
  it("reads the TXT record, and refuses none or several", () => {
    expect(parseStsTxt(["v=STSv1; id=20261206T010203;"])).toEqual({ id: "20261206T010203" });
    expect(parseStsTxt(["v=spf1 -all", "v=STSv1;id=abc"])).toEqual({ id: "abc" });
    expect(parseStsTxt(["v=STSv1; id=a", "v=STSv1; id=b"])).toBeNull();
    expect(parseStsTxt(["v=STSv1; id=not-alnum!"])).toBeNull();
    expect(parseStsTxt(["v=STSv1; id=" + "a".repeat(33)])).toBeNull();
    expect(parseStsTxt([])).toBeNull();
  });

  it("reads a policy, caps max_age at a year, and refuses broken ones", () => {
    expect(parseStsPolicy(policyText("enforce", ["mail.example.com", "*.example.net"], 99_999_999), "id1")).toEqual({
      ok: true,
      policy: { id: "id1", mode: "enforce", mx: ["mail.example.com", "*.example.net"], maxAgeSeconds: 31_557_600 },
    });
    expect(parseStsPolicy(policyText("testing", ["MX.Example.COM."]), "x")).toMatchObject({ ok: true, policy: { mx: ["mx.example.com"] } });
    expect(parseStsPolicy("version: STSv2\nmode: enforce\nmx: a.example\nmax_age: 1", "x").ok).toBe(false);
    expect(parseStsPolicy(policyText("strict", ["a.example"]), "x").ok).toBe(false);
    expect(parseStsPolicy(policyText("enforce", []), "x").ok).toBe(false);
    expect(parseStsPolicy("version: STSv1\nmode: enforce\nmx: a.example\n", "x").ok).toBe(false);
    expect(parseStsPolicy("<html>not a policy</html>", "x").ok).toBe(false);
    expect(parseStsPolicy(policyText("none", []), "x").ok).toBe(true);
  });

  it("matches MX hosts: exact names, and a wildcard for exactly one label", () => {
    expect(mxMatchesPolicy("mail.example.com", ["mail.example.com"])).toBe(true);
    expect(mxMatchesPolicy("MAIL.example.com.", ["mail.example.com"])).toBe(true);
    expect(mxMatchesPolicy("mx1.example.net", ["*.example.net"])).toBe(true);
    expect(mxMatchesPolicy("a.mx1.example.net", ["*.example.net"])).toBe(false);
    expect(mxMatchesPolicy("example.net", ["*.example.net"])).toBe(false);
    expect(mxMatchesPolicy("evilexample.net", ["*.example.net"])).toBe(false);
  });
});

function fakeDeps(over: Partial<MtaStsDeps> & { store?: Map<string, CachedPolicy> } = {}): MtaStsDeps & { fetches: number; store: Map<string, CachedPolicy> } {
  const store = over.store ?? new Map<string, CachedPolicy>();
  const d = {
    fetches: 0,
    store,
    txt: async () => ["v=STSv1; id=one"],
    fetchPolicy: async () => {
      d.fetches++;
      return policyText("enforce", ["mx.example.org"]);
    },
    load: async (domain: string) => store.get(domain) ?? null,
    save: async (domain: string, c: CachedPolicy) => void store.set(domain, c),
    now: () => 1_000_000,
    ...over,
  };
  return d;
}

describe("MTA-STS resolver", () => {
  it("fetches once, then serves the cache while the TXT id is unchanged", async () => {
    const r = new MtaStsResolver();
    const deps = fakeDeps();
    expect(await r.lookup("example.org", deps)).toMatchObject({ source: "fetched", policy: { mode: "enforce", id: "one" } });
    expect(await r.lookup("example.org", deps)).toMatchObject({ source: "cached" });
    expect(deps.fetches).toBe(1);
    expect(deps.store.get("example.org")!.expiresAt).toBe(1_000_000 + 86400_000);
  });

  it("keeps enforcing a cached policy when an attacker blocks DNS or the policy fetch (no downgrade)", async () => {
    const store = new Map<string, CachedPolicy>([["example.org", { policy: { id: "one", mode: "enforce", mx: ["mx.example.org"], maxAgeSeconds: 86400 }, expiresAt: 2_000_000 }]]);
    const noDns = fakeDeps({ store, txt: async () => Promise.reject(new Error("SERVFAIL")) });
    expect(await new MtaStsResolver().lookup("example.org", noDns)).toMatchObject({ policy: { mode: "enforce" }, source: "cached (TXT lookup failed)" });
    const newIdNoFetch = fakeDeps({ store, txt: async () => ["v=STSv1; id=two"], fetchPolicy: async () => Promise.reject(new Error("connection reset")) });
    expect(await new MtaStsResolver().lookup("example.org", newIdNoFetch)).toMatchObject({ policy: { id: "one" }, source: expect.stringMatching(/^cached \(fetch failed/) });
    const removed = fakeDeps({ store, txt: async () => [] });
    expect(await new MtaStsResolver().lookup("example.org", removed)).toMatchObject({ policy: { id: "one" } });
    // An expired cache entry is not used.
    const later = fakeDeps({ store, txt: async () => [], now: () => 3_000_000 });
    expect(await new MtaStsResolver().lookup("example.org", later)).toEqual({ policy: null, source: "no policy" });
  });

  it("applies a policy to MX hosts: enforce filters, testing notes, TLS-Required: No skips", () => {
    const mx = [{ host: "mx.example.org", preference: 10 }, { host: "backup.other.example", preference: 20 }];
    const sts = { policy: { id: "one", mode: "enforce" as const, mx: ["mx.example.org"], maxAgeSeconds: 60 }, source: "cached" };
    expect(mxPolicy(mx, sts, { requireTls: false, tlsOptional: false })).toMatchObject({ hosts: [mx[0]], policy: { stsEnforce: true } });
    expect(mxPolicy([mx[1]!], sts, { requireTls: false, tlsOptional: false }).refusal).toMatch(/no MX host/);
    expect(mxPolicy(mx, { ...sts, policy: { ...sts.policy, mode: "testing" } }, { requireTls: false, tlsOptional: false })).toMatchObject({ hosts: mx, policy: { stsTesting: true, note: expect.stringMatching(/would fail, backup.other.example/) } });
    expect(mxPolicy(mx, sts, { requireTls: false, tlsOptional: true })).toMatchObject({ hosts: mx, policy: { stsEnforce: false } });
    expect(mxPolicy(mx, null, { requireTls: true, tlsOptional: false })).toMatchObject({ hosts: mx, policy: { requireTls: true } });
    expect(mxPolicy(mx, null, { requireTls: false, tlsOptional: false })).toEqual({ hosts: mx });
  });
});
