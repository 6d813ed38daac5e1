/**
 * Which IP addresses are public. The relay connects to hosts that strangers name (a recipient domain's MX and
 * A/AAAA records, a webhook URL), so without a filter a tenant can make it talk to loopback, the private network
 * it runs in or a cloud metadata service (169.254.169.254). Non-public destinations are refused unless the
 * operator lists them in ALLOW_PRIVATE_DESTINATIONS (the tests and `npm start` list loopback).
 *
 * CIDRs are parsed strictly: `10.0.0.0/8/garbage` or `10.0.0.1/8` (host bits set) are errors, not /8.
 * Pure: no Workers imports.
 */

export interface Cidr {
  version: 4 | 6;
  /** The network address as a big integer (32 or 128 bits). */
  network: bigint;
  prefix: number;
}

/** IANA special-purpose registries (RFC 6890 and updates): not reachable on the public Internet, or not mail hosts. */
const NON_PUBLIC = [
  "0.0.0.0/8", // "this network"
  "10.0.0.0/8", // RFC 1918
  "100.64.0.0/10", // CGNAT, RFC 6598
  "127.0.0.0/8", // loopback
  "169.254.0.0/16", // link-local, cloud metadata
  "172.16.0.0/12", // RFC 1918
  "192.0.0.0/24", // IETF protocol assignments
  "192.0.2.0/24", // TEST-NET-1
  "192.88.99.0/24", // 6to4 relay anycast (deprecated)
  "192.168.0.0/16", // RFC 1918
  "198.18.0.0/15", // benchmarking
  "198.51.100.0/24", // TEST-NET-2
  "203.0.113.0/24", // TEST-NET-3
  "224.0.0.0/4", // multicast
  "240.0.0.0/4", // reserved, broadcast
  "::/128", // unspecified
  "::1/128", // loopback
  "::ffff:0:0/96", // IPv4-mapped: checked as the IPv4 address instead
  "64:ff9b:1::/48", // local-use NAT64
  "100::/64", // discard
  "2001:db8::/32", // documentation
  "fc00::/7", // unique local (ULA)
  "fe80::/10", // link-local
  "fec0::/10", // site-local (deprecated)
  "ff00::/8", // multicast
].map((c) => parseCidr(c)!);

function parseIpv4(text: string): bigint | null {
  const parts = text.split(".");
  if (parts.length !== 4) return null;
  let n = 0n;
  for (const p of parts) {
    if (!/^(0|[1-9][0-9]{0,2})$/.test(p) || Number(p) > 255) return null;
    n = (n << 8n) | BigInt(p);
  }
  return n;
}

function parseIpv6(text: string): bigint | null {
  let t = text.toLowerCase();
  if (t.startsWith("[") && t.endsWith("]")) t = t.slice(1, -1);
  if (!/^[0-9a-f:.]+$/.test(t) || (t.match(/::/g)?.length ?? 0) > 1) return null;
  let tail: bigint[] = [];
  const lastColon = t.lastIndexOf(":");
  if (t.includes(".")) {
    const v4 = parseIpv4(t.slice(lastColon + 1));
    if (v4 === null) return null;
    tail = [v4 >> 16n, v4 & 0xffffn];
    t = t.slice(0, lastColon + 1) + (t.endsWith("::") || t.slice(0, lastColon).endsWith(":") ? "" : "0");
    if (t.endsWith(":0")) t = t.slice(0, -2);
    else if (t.endsWith(":") && !t.endsWith("::")) t = t.slice(0, -1);
  }
  const [head = "", rest] = t.split("::");
  const groups = (s: string) => (s === "" ? [] : s.split(":"));
  const h = groups(head);
  const r = rest === undefined ? [] : groups(rest);
  const words = [...h, ...r];
  if (words.some((w) => !/^[0-9a-f]{1,4}$/.test(w))) return null;
  const total = words.length + tail.length;
  if (rest === undefined ? total !== 8 : total > 7) return null;
  const all = [...h.map((w) => BigInt(`0x${w}`)), ...Array<bigint>(8 - total).fill(0n), ...r.map((w) => BigInt(`0x${w}`)), ...tail];
  return all.reduce((acc, w) => (acc << 16n) | w, 0n);
}

/** An IPv4 or IPv6 address as (version, integer), or null. */
export function parseIp(text: string): { version: 4 | 6; value: bigint } | null {
  const v4 = parseIpv4(text);
  if (v4 !== null) return { version: 4, value: v4 };
  const v6 = parseIpv6(text);
  return v6 !== null ? { version: 6, value: v6 } : null;
}

/** Strict `address/prefix`; the address must be the network address (no host bits). Null when malformed. */
export function parseCidr(text: string): Cidr | null {
  const m = /^([^/\s]+)\/(0|[1-9][0-9]{0,2})$/.exec(text.trim());
  if (!m) return null;
  const ip = parseIp(m[1]!);
  const prefix = Number(m[2]);
  if (!ip) return null;
  const bits = ip.version === 4 ? 32 : 128;
  if (prefix > bits) return null;
  const hostMask = (1n << BigInt(bits - prefix)) - 1n;
  if ((ip.value & hostMask) !== 0n) return null;
  return { version: ip.version, network: ip.value, prefix };
}

function contains(c: Cidr, ip: { version: 4 | 6; value: bigint }): boolean {
  if (c.version !== ip.version) return false;
  const bits = c.version === 4 ? 32 : 128;
  return ip.value >> BigInt(bits - c.prefix) === c.network >> BigInt(bits - c.prefix);
}

/** An IPv4-mapped IPv6 address (::ffff:a.b.c.d) is that IPv4 address. */
function unmap(ip: { version: 4 | 6; value: bigint }): { version: 4 | 6; value: bigint } {
  if (ip.version === 6 && ip.value >> 32n === 0xffffn) return { version: 4, value: ip.value & 0xffffffffn };
  return ip;
}

/** True when `address` (an IP literal) is on the public Internet. */
export function isPublicAddress(address: string): boolean {
  const ip = parseIp(address);
  if (!ip) return false;
  const u = unmap(ip);
  return !NON_PUBLIC.some((c) => contains(c, u));
}

/**
 * Whether the relay may connect to `host`: a public IP, an IP inside an allowed CIDR, or (for names) not a
 * name that always means this machine. Names are checked again once resolved, where the caller resolves them.
 */
export function destinationAllowed(host: string, allow: readonly string[]): boolean {
  const h = host.toLowerCase().replace(/^\[|\]$/g, "").replace(/\.$/, "");
  const ip = parseIp(h);
  if (!ip) return !(h === "localhost" || h.endsWith(".localhost"));
  const u = unmap(ip);
  if (!NON_PUBLIC.some((c) => contains(c, u))) return true;
  return allow.some((text) => {
    const c = parseCidr(text);
    return c !== null && (contains(c, u) || contains(c, ip));
  });
}
