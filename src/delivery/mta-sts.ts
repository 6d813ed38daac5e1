/**
 * MTA-STS (RFC 8461) for `mx:` routes: discover a recipient domain's policy (the `_mta-sts` TXT record over
 * DNS-over-HTTPS, the policy file over HTTPS), cache it until `max_age` runs out, and say which MX hosts a policy
 * allows. Parsing and matching are pure; `MtaStsResolver` does the I/O through injected functions so it runs in
 * Node too. The cache is D1 (`mta_sts_policies`, one row per domain, rewritten only when the policy changes or
 * expires) behind a per-isolate map, so a busy destination costs no D1 read per batch.
 */
import { loadMtaStsPolicy, saveMtaStsPolicy } from "../store/mta-sts";

export type MtaStsMode = "enforce" | "testing" | "none";

export interface MtaStsPolicy {
  id: string;
  mode: MtaStsMode;
  /** MX patterns: host names, or `*.example.com` matching exactly one more label on the left (section 4.1). */
  mx: string[];
  maxAgeSeconds: number;
}

/** RFC 8461 section 3.2: max_age is at most 31557600 seconds (about a year). */
export const MTA_STS_MAX_AGE_SECONDS = 31_557_600;
/** Section 3.3 suggests a policy body limit of 64 KiB; anything larger is not a policy. */
export const MTA_STS_MAX_POLICY_BYTES = 64 * 1024;
/** Section 3.3: senders should time out the policy fetch ("a minute is suggested"); we wait less per attempt. */
export const MTA_STS_FETCH_TIMEOUT_MS = 10_000;
/** Per-isolate cache entries kept; the oldest go first. */
const MAX_MEMORY_ENTRIES = 2000;
/** How long a "no policy" answer is remembered in the isolate (the TXT lookup itself is TTL-cached too). */
const NO_POLICY_MEMORY_MS = 5 * 60_000;

/** Section 3.1: the TXT record `v=STSv1; id=<1-32 alphanumerics>;`. Null unless exactly one STSv1 record is usable. */
export function parseStsTxt(records: readonly string[]): { id: string } | null {
  const sts = records.filter((r) => /^v=STSv1\s*(;|$)/.test(r));
  if (sts.length !== 1) return null;
  const fields = new Map<string, string>();
  for (const part of sts[0]!.split(";")) {
    const m = /^\s*([A-Za-z0-9_.-]+)=([\x21-\x3a\x3c\x3e-\x7e]*)\s*$/.exec(part);
    if (m && !fields.has(m[1]!)) fields.set(m[1]!, m[2]!);
  }
  const id = fields.get("id");
  return id && /^[A-Za-z0-9]{1,32}$/.test(id) ? { id } : null;
}

/** Section 3.2: the policy file, `key: value` lines. Returns an error text for anything that is not a valid policy. */
export function parseStsPolicy(text: string, id: string): { ok: true; policy: MtaStsPolicy } | { ok: false; error: string } {
  const values = new Map<string, string>();
  const mx: string[] = [];
  for (const line of text.split(/\r?\n/)) {
    if (!line.trim()) continue;
    const m = /^([A-Za-z0-9_]+):[ \t]*(.*?)[ \t]*$/.exec(line);
    if (!m) return { ok: false, error: `not a policy line: ${JSON.stringify(line.slice(0, 80))}` };
    const key = m[1]!;
    if (key === "mx") mx.push(m[2]!.toLowerCase().replace(/\.$/, ""));
    else if (!values.has(key)) values.set(key, m[2]!);
  }
  if (values.get("version") !== "STSv1") return { ok: false, error: "version is not STSv1" };
  const mode = values.get("mode");
  if (mode !== "enforce" && mode !== "testing" && mode !== "none") return { ok: false, error: `mode must be enforce, testing or none, got ${JSON.stringify(mode)}` };
  const maxAge = values.get("max_age");
  if (!maxAge || !/^\d{1,10}$/.test(maxAge)) return { ok: false, error: "max_age is missing or not a number" };
  if (mode !== "none" && !mx.length) return { ok: false, error: "an enforce or testing policy needs at least one mx line" };
  if (mx.some((p) => !/^(\*\.)?([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z0-9-]{2,63}$/.test(p))) return { ok: false, error: "an mx pattern is not a host name" };
  return { ok: true, policy: { id, mode, mx, maxAgeSeconds: Math.min(Number(maxAge), MTA_STS_MAX_AGE_SECONDS) } };
}

/** Section 4.1: whether an MX host name matches one of the policy's patterns (a wildcard covers exactly one label). */
export function mxMatchesPolicy(host: string, patterns: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/\.$/, "");
  return patterns.some((p) => {
    if (!p.startsWith("*.")) return p === h;
    const rest = p.slice(1); // ".example.com"
    return h.endsWith(rest) && h.length > rest.length && !h.slice(0, h.length - rest.length).includes(".");
  });
}

export interface CachedPolicy {
  policy: MtaStsPolicy;
  expiresAt: number;
}

/** The I/O the resolver needs: TXT lookup (throws on resolver failure), policy fetch (throws on failure), cache. */
export interface MtaStsDeps {
  txt(name: string): Promise<string[]>;
  fetchPolicy(domain: string): Promise<string>;
  load(domain: string): Promise<CachedPolicy | null>;
  save(domain: string, cached: CachedPolicy, fetchedAt: number): Promise<void>;
  now(): number;
}

/** What the resolver found, and how: for the delivery event. */
export interface MtaStsLookup {
  policy: MtaStsPolicy | null;
  /** e.g. "fetched", "cached", "no TXT record", "fetch failed: ...". */
  source: string;
}

/**
 * Section 5.1: a cached, unexpired policy with the id the TXT record names is used as is; a new id (or none
 * cached) means fetching the policy. When DNS or the fetch fails, a cached unexpired policy still applies (that
 * is the point of caching: an attacker who blocks the lookup must not downgrade delivery); without one, there is
 * no policy.
 */
export class MtaStsResolver {
  private readonly memory = new Map<string, { at: number; value: CachedPolicy | null }>();

  /** `deps` per call: the D1 binding belongs to the invocation, the memory to the isolate. */
  async lookup(domain: string, deps: MtaStsDeps): Promise<MtaStsLookup> {
    const d = domain.toLowerCase();
    const now = deps.now();
    let cached = await this.cached(d, now, deps);
    if (cached && cached.expiresAt <= now) cached = null;
    let txt: { id: string } | null;
    try {
      txt = parseStsTxt(await deps.txt(`_mta-sts.${d}`));
    } catch (e) {
      return cached ? { policy: cached.policy, source: "cached (TXT lookup failed)" } : { policy: null, source: `TXT lookup failed: ${errorText(e)}` };
    }
    if (!txt) return cached ? { policy: cached.policy, source: "cached (no TXT record)" } : { policy: null, source: "no policy" };
    if (cached && cached.policy.id === txt.id) return { policy: cached.policy, source: "cached" };
    let parsed: ReturnType<typeof parseStsPolicy>;
    try {
      parsed = parseStsPolicy(await deps.fetchPolicy(d), txt.id);
    } catch (e) {
      return cached ? { policy: cached.policy, source: `cached (fetch failed: ${errorText(e)})` } : { policy: null, source: `policy fetch failed: ${errorText(e)}` };
    }
    if (!parsed.ok) return cached ? { policy: cached.policy, source: `cached (new policy invalid: ${parsed.error})` } : { policy: null, source: `invalid policy: ${parsed.error}` };
    const fresh = { policy: parsed.policy, expiresAt: now + parsed.policy.maxAgeSeconds * 1000 };
    await deps.save(d, fresh, now);
    this.remember(d, fresh, now);
    return { policy: parsed.policy, source: "fetched" };
  }

  private async cached(domain: string, now: number, deps: MtaStsDeps): Promise<CachedPolicy | null> {
    const hit = this.memory.get(domain);
    if (hit && (hit.value ? hit.value.expiresAt > now : now - hit.at < NO_POLICY_MEMORY_MS)) return hit.value;
    const value = await deps.load(domain);
    this.remember(domain, value, now);
    return value;
  }

  private remember(domain: string, value: CachedPolicy | null, now: number): void {
    if (this.memory.size >= MAX_MEMORY_ENTRIES) this.memory.delete(this.memory.keys().next().value!);
    this.memory.set(domain, { at: now, value });
  }
}

/**
 * Fetches `https://mta-sts.<domain>/.well-known/mta-sts.txt` (section 3.3): HTTPS with a valid certificate (the
 * runtime's fetch verifies it), no redirects, 200 only, text/plain, at most 64 KiB. `urlTemplate` replaces
 * `{domain}`; anything but the default is for tests (a loopback server cannot hold a publicly trusted certificate).
 */
export async function fetchPolicyText(urlTemplate: string, domain: string, fetcher: typeof fetch = (i, init) => fetch(i, init)): Promise<string> {
  const url = urlTemplate.replaceAll("{domain}", domain);
  const res = await fetcher(url, { redirect: "manual", signal: AbortSignal.timeout(MTA_STS_FETCH_TIMEOUT_MS), headers: { accept: "text/plain" } });
  if (res.status !== 200) throw new Error(`HTTP ${res.status} from ${url}`);
  if (!/^text\/plain\s*(;|$)/i.test(res.headers.get("content-type") ?? "")) throw new Error(`${url} is not text/plain`);
  const body = new Uint8Array(await res.arrayBuffer());
  if (body.byteLength > MTA_STS_MAX_POLICY_BYTES) throw new Error(`policy larger than ${MTA_STS_MAX_POLICY_BYTES} bytes`);
  return new TextDecoder().decode(body);
}

/** The D1 cache: `mta_sts_policies`. */
export const d1PolicyCache = (db: D1Database): Pick<MtaStsDeps, "load" | "save"> => ({
  load: (domain) => loadMtaStsPolicy(db, domain),
  save: (domain, cached, fetchedAt) => saveMtaStsPolicy(db, domain, cached, fetchedAt),
});

function errorText(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
