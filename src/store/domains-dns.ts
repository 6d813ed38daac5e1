/** A DNS-over-HTTPS resolver (JSON API, `application/dns-json`) for domain checks, through `fetch`. */
import type { DnsRecordType, DnsResolver } from "../mime/dns-records";

const TYPE_CODES: Record<DnsRecordType, number> = { TXT: 16, MX: 15 };
/** DoH answers come in well under a second; a stuck resolver must not hold the request. */
export const DOH_TIMEOUT_MS = 5_000;

/** Resolver over the DoH JSON API at `url` (Cloudflare and Google both speak it). */
export function dohResolver(url: string): DnsResolver {
  return async (name, type) => {
    const u = new URL(url);
    u.searchParams.set("name", name);
    u.searchParams.set("type", type);
    const res = await fetch(u, { headers: { accept: "application/dns-json" }, signal: AbortSignal.timeout(DOH_TIMEOUT_MS) });
    if (!res.ok) throw new Error(`DoH resolver answered HTTP ${res.status}`);
    const body = (await res.json()) as { Status?: number; Answer?: { type: number; data: string }[] };
    if (body.Status === 3) return [];
    if (body.Status !== 0) throw new Error(`DoH resolver answered DNS status ${String(body.Status)}`);
    return (body.Answer ?? []).filter((a) => a.type === TYPE_CODES[type]).map((a) => a.data);
  };
}
