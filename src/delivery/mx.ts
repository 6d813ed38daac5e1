/**
 * MX lookup over DNS-over-HTTPS (the JSON API served by Cloudflare, Google and others, `application/dns-json`),
 * with a per-isolate cache that honours record TTLs. Follows RFC 5321 section 5.1: MX records in preference
 * order; no MX records means the domain itself is the mail host (implicit MX, its A/AAAA); a null MX (RFC 7505)
 * and a non-existent domain are permanent failures; a resolver failure (SERVFAIL, timeout) is temporary.
 */

export interface MxHost {
  host: string;
  preference: number;
}

/** A DNS answer that decides delivery: permanent (bounce) or temporary (retry). */
export class DnsFailure extends Error {
  override name = "DnsFailure";
  constructor(
    message: string,
    readonly permanent: boolean,
    /** Enhanced status code for the event (RFC 3463 / RFC 7505). */
    readonly enhanced: string,
  ) {
    super(message);
  }
}

/** DoH JSON answer (the subset we read). */
interface DohAnswer {
  Status: number;
  Answer?: { name: string; type: number; TTL: number; data: string }[];
}

const TYPE = { A: 1, MX: 15, TXT: 16, AAAA: 28 } as const;
/** DNS RCODEs (RFC 1035 4.1.1). */
const NOERROR = 0;
const SERVFAIL = 2;
const NXDOMAIN = 3;
/** Negative answers are cached briefly (RFC 2308 allows the SOA minimum; we do not read the SOA). */
const NEGATIVE_TTL_SECONDS = 60;
/** A hostile or broken resolver must not make us try hundreds of hosts. */
const MAX_MX_HOSTS = 10;
const MAX_ADDRESSES_PER_HOST = 4;
/** Entries kept per isolate; the oldest go first. */
const MAX_CACHE_ENTRIES = 2000;
const DOH_TIMEOUT_MS = 5000;

interface CacheEntry {
  expiresAt: number;
  value: DohAnswer;
}

/** Resolver with a TTL cache; one per isolate is enough (module scope in the consumer). */
export class DohResolver {
  private readonly cache = new Map<string, CacheEntry>();

  constructor(
    private readonly dohUrl: string,
    private readonly fetcher: typeof fetch = (input, init) => fetch(input, init),
    private readonly now: () => number = Date.now,
  ) {}

  private async query(name: string, type: keyof typeof TYPE): Promise<DohAnswer> {
    const key = `${this.dohUrl}|${name}|${type}`;
    const hit = this.cache.get(key);
    if (hit && hit.expiresAt > this.now()) return hit.value;
    const url = new URL(this.dohUrl);
    url.searchParams.set("name", name);
    url.searchParams.set("type", type);
    let answer: DohAnswer;
    try {
      const res = await this.fetcher(url.toString(), { headers: { accept: "application/dns-json" }, signal: AbortSignal.timeout(DOH_TIMEOUT_MS) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      answer = (await res.json()) as DohAnswer;
      if (typeof answer.Status !== "number") throw new Error("not a DNS JSON answer");
    } catch (e) {
      throw new DnsFailure(`DNS ${type} lookup of ${name} failed: ${e instanceof Error ? e.message : String(e)}`, false, "4.4.3");
    }
    if (answer.Status === SERVFAIL || (answer.Status !== NOERROR && answer.Status !== NXDOMAIN)) {
      // Not cached: a resolver failure should be asked again on the next attempt.
      return answer;
    }
    const ttls = (answer.Answer ?? []).map((a) => a.TTL);
    const ttl = ttls.length ? Math.max(0, Math.min(...ttls)) : NEGATIVE_TTL_SECONDS;
    if (this.cache.size >= MAX_CACHE_ENTRIES) this.cache.delete(this.cache.keys().next().value!);
    this.cache.set(key, { expiresAt: this.now() + ttl * 1000, value: answer });
    return answer;
  }

  /** MX hosts of a domain in preference order; throws DnsFailure for null MX, NXDOMAIN, SERVFAIL. */
  async mxHosts(domain: string): Promise<MxHost[]> {
    const answer = await this.query(domain, "MX");
    if (answer.Status === NXDOMAIN) throw new DnsFailure(`domain ${domain} does not exist (NXDOMAIN)`, true, "5.1.2");
    if (answer.Status !== NOERROR) throw new DnsFailure(`DNS MX lookup of ${domain} failed (rcode ${answer.Status})`, false, "4.4.3");
    const records = (answer.Answer ?? [])
      .filter((a) => a.type === TYPE.MX)
      .map((a) => {
        const [pref, host] = a.data.trim().split(/\s+/);
        return { preference: Number(pref), host: (host ?? "").toLowerCase().replace(/\.$/, "") };
      })
      .filter((r) => Number.isInteger(r.preference));
    // RFC 7505: a single MX with preference 0 and exchange "." says the domain accepts no mail.
    if (records.some((r) => r.host === "")) {
      throw new DnsFailure(`domain ${domain} accepts no mail (null MX, RFC 7505)`, true, "5.1.10");
    }
    if (!records.length) {
      // RFC 5321 5.1: no MX records, so the domain itself is the host if it has an address.
      const addresses = await this.addresses(domain);
      if (!addresses.length) throw new DnsFailure(`domain ${domain} has no MX and no address records`, true, "5.1.2");
      return [{ host: domain, preference: 0 }];
    }
    // Equal preferences are tried in random order (RFC 5321 5.1).
    return records
      .map((r) => ({ r, k: Math.random() }))
      .sort((a, b) => a.r.preference - b.r.preference || a.k - b.k)
      .map((x) => x.r)
      .slice(0, MAX_MX_HOSTS);
  }

  /**
   * TXT records of a name, each with its character-strings joined (RFC 7208 3.3 style); [] for NXDOMAIN or no
   * records. A resolver failure throws a temporary DnsFailure.
   */
  async txt(name: string): Promise<string[]> {
    const answer = await this.query(name, "TXT");
    if (answer.Status === NXDOMAIN) return [];
    if (answer.Status !== NOERROR) throw new DnsFailure(`DNS TXT lookup of ${name} failed (rcode ${answer.Status})`, false, "4.4.3");
    return (answer.Answer ?? [])
      .filter((a) => a.type === TYPE.TXT)
      .map((a) => {
        const parts = a.data.match(/"((?:[^"\\]|\\.)*)"/g);
        return parts ? parts.map((p) => p.slice(1, -1).replace(/\\(.)/g, "$1")).join("") : a.data;
      });
  }

  /** IPv4 then IPv6 addresses of a host (empty when it has none). SERVFAIL on both throws a temporary DnsFailure. */
  async addresses(host: string): Promise<string[]> {
    const [a, aaaa] = await Promise.all([this.query(host, "A"), this.query(host, "AAAA")]);
    const pick = (ans: DohAnswer, type: number) => (ans.Answer ?? []).filter((r) => r.type === type).map((r) => r.data.trim());
    const out = [...pick(a, TYPE.A), ...pick(aaaa, TYPE.AAAA)].slice(0, MAX_ADDRESSES_PER_HOST);
    if (!out.length && a.Status === SERVFAIL && aaaa.Status === SERVFAIL) {
      throw new DnsFailure(`DNS address lookup of ${host} failed (SERVFAIL)`, false, "4.4.3");
    }
    return out;
  }
}
