/**
 * DNS blocklists (DNSBL for IPs, RHSBL/URI lists for domains): which lists are watched, how a query name is built,
 * and what each list's answers mean. Pure: no Workers imports.
 *
 * A list answers with A records in 127.0.0.0/8. Each list documents its own codes, and some of them are not
 * listings at all: Spamhaus answers 127.255.255.252/254/255 for a typo in the zone, a query through a public
 * resolver and too many queries (their 2019 "return codes: technical update"), DBL answers 127.0.1.255 to IP
 * queries, and URIBL and SURBL answer 127.0.0.1 ("query refused") — bit 0x1 is never a classification in their
 * bitmasks. Those are errors: the subject's state stays what it was.
 */
import { isDomainName } from "../mime/domain-name";


export type ListKind = "ip" | "domain";

export interface DnsList {
  /** Short name shown on the page and in events, e.g. "spamhaus-zen". */
  name: string;
  /** The zone queried: `<reversed ip>.<zone>` or `<domain>.<zone>`. */
  zone: string;
  kind: ListKind;
  /** Exact answers that are listings, with their meaning. */
  listed?: Record<string, string>;
  /** Bitmask lists (SURBL, URIBL multi): bit value of the last octet → meaning. */
  bits?: Record<string, string>;
  /** Exact answers that are errors (refused, rate-limited, misuse), with their meaning. */
  errors?: Record<string, string>;
  /** Answers starting with this prefix are errors too (Spamhaus: "127.255.255."). */
  errorPrefix?: string;
  /** The operator marks a list as blocking: a listing there is shown as critical. */
  blocking?: boolean;
}

const SPAMHAUS_ERRORS = {
  "127.255.255.252": "error: typing error in the DNSBL name",
  "127.255.255.254": "error: query through a public or open resolver (use your own resolver or a DQS key)",
  "127.255.255.255": "error: excessive number of queries",
};

/** The lists watched when REPUTATION_LISTS is not set; codes from each list's documentation. */
export const DEFAULT_DNS_LISTS: readonly DnsList[] = [
  {
    name: "spamhaus-zen",
    zone: "zen.spamhaus.org",
    kind: "ip",
    blocking: true,
    listed: {
      "127.0.0.2": "SBL: Spamhaus block list",
      "127.0.0.3": "SBL CSS: low-reputation sending (automated)",
      "127.0.0.4": "XBL: exploited or infected host",
      "127.0.0.9": "DROP: hijacked network",
      "127.0.0.10": "PBL: dynamic/end-user range (ISP-maintained)",
      "127.0.0.11": "PBL: dynamic/end-user range (Spamhaus-maintained)",
      "127.0.0.30": "BCL: botnet controller",
    },
    errors: SPAMHAUS_ERRORS,
    errorPrefix: "127.255.255.",
  },
  { name: "barracuda", zone: "b.barracudacentral.org", kind: "ip", blocking: true, listed: { "127.0.0.2": "Barracuda reputation block list" } },
  { name: "spamcop", zone: "bl.spamcop.net", kind: "ip", listed: { "127.0.0.2": "SpamCop block list (spam reports)" } },
  {
    name: "spamhaus-dbl",
    zone: "dbl.spamhaus.org",
    kind: "domain",
    blocking: true,
    listed: {
      "127.0.1.2": "DBL: low-reputation (spam) domain",
      "127.0.1.4": "DBL: phishing domain",
      "127.0.1.5": "DBL: malware domain",
      "127.0.1.6": "DBL: botnet C&C domain",
      "127.0.1.102": "DBL: abused legitimate domain (spam)",
      "127.0.1.103": "DBL: abused redirector",
      "127.0.1.104": "DBL: abused legitimate domain (phishing)",
      "127.0.1.105": "DBL: abused legitimate domain (malware)",
      "127.0.1.106": "DBL: abused legitimate domain (C&C)",
    },
    errors: { ...SPAMHAUS_ERRORS, "127.0.1.255": "error: IP queries are not allowed on DBL" },
    errorPrefix: "127.255.255.",
  },
  {
    name: "surbl",
    zone: "multi.surbl.org",
    kind: "domain",
    bits: { "8": "SURBL PH: phishing", "16": "SURBL MW: malware", "64": "SURBL ABUSE: spam", "128": "SURBL CR: cracked site" },
    errors: { "127.0.0.1": "error: query refused (public resolver or over the free limit)" },
  },
  {
    name: "uribl",
    zone: "multi.uribl.com",
    kind: "domain",
    bits: { "2": "URIBL black", "4": "URIBL grey", "8": "URIBL red" },
    errors: { "127.0.0.1": "error: query refused (public resolver or over the free limit)" },
  },
];

export class ListConfigError extends Error {
  override name = "ListConfigError";
}

const NAME = /^[a-z0-9][a-z0-9-]{0,39}$/;
const ANSWER = /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/;

function stringMap(v: unknown, what: string, key: (k: string) => boolean): Record<string, string> | undefined {
  if (v === undefined) return undefined;
  if (typeof v !== "object" || v === null || Array.isArray(v)) throw new ListConfigError(`${what} must be an object`);
  const out: Record<string, string> = {};
  for (const [k, m] of Object.entries(v)) {
    if (!key(k) || typeof m !== "string" || m.length > 200) throw new ListConfigError(`${what}: bad entry ${JSON.stringify(k)}`);
    out[k] = m;
  }
  return out;
}

/** Parses REPUTATION_LISTS (a JSON array of lists) or returns the defaults when empty. */
export function parseDnsLists(value: string | undefined): DnsList[] {
  if (!value || !value.trim()) return [...DEFAULT_DNS_LISTS];
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new ListConfigError("REPUTATION_LISTS must be a JSON array of lists");
  }
  if (!Array.isArray(parsed) || parsed.length > 30) throw new ListConfigError("REPUTATION_LISTS must be a JSON array of at most 30 lists");
  const seen = new Set<string>();
  return parsed.map((raw, i) => {
    const at = `REPUTATION_LISTS[${i}]`;
    if (typeof raw === "object" && raw !== null && typeof (raw as { use?: unknown }).use === "string") {
      // {"use": "spamhaus-zen", "blocking": false}: a default list by name, optionally re-marked.
      const r = raw as { use: string; blocking?: unknown; zone?: unknown };
      const base = DEFAULT_DNS_LISTS.find((l) => l.name === r.use);
      if (!base) throw new ListConfigError(`${at}: no default list named ${JSON.stringify(r.use)}`);
      const list: DnsList = { ...base, blocking: typeof r.blocking === "boolean" ? r.blocking : base.blocking };
      // A Spamhaus DQS zone (<key>.zen.dq.spamhaus.net) replaces the public one.
      if (typeof r.zone === "string") {
        if (!isDomainName(r.zone, { maxLength: 200 })) throw new ListConfigError(`${at}.zone is not a DNS name`);
        list.zone = r.zone.toLowerCase();
      }
      if (seen.has(list.name)) throw new ListConfigError(`${at}: duplicate name ${list.name}`);
      seen.add(list.name);
      return list;
    }
    if (typeof raw !== "object" || raw === null) throw new ListConfigError(`${at} must be an object`);
    const r = raw as Record<string, unknown>;
    if (typeof r.name !== "string" || !NAME.test(r.name) || seen.has(r.name)) throw new ListConfigError(`${at}.name must be a unique short name (a-z, 0-9, -)`);
    if (typeof r.zone !== "string" || !isDomainName(r.zone, { maxLength: 200 })) throw new ListConfigError(`${at}.zone must be a DNS zone`);
    if (r.kind !== "ip" && r.kind !== "domain") throw new ListConfigError(`${at}.kind must be "ip" or "domain"`);
    const list: DnsList = {
      name: r.name,
      zone: r.zone.toLowerCase(),
      kind: r.kind,
      listed: stringMap(r.listed, `${at}.listed`, (k) => ANSWER.test(k)),
      bits: stringMap(r.bits, `${at}.bits`, (k) => /^(2|4|8|16|32|64|128)$/.test(k)),
      errors: stringMap(r.errors, `${at}.errors`, (k) => ANSWER.test(k)),
      errorPrefix: typeof r.errorPrefix === "string" && /^127\.[\d.]*$/.test(r.errorPrefix) ? r.errorPrefix : undefined,
      blocking: r.blocking === true,
    };
    if (!list.listed && !list.bits) throw new ListConfigError(`${at} needs "listed" codes or "bits"`);
    seen.add(list.name);
    return list;
  });
}

/** An IPv4 address in dotted quad form (IPv6 lists are not queried: most lists do not serve IPv6). */
export function isIpv4(s: string): boolean {
  const p = s.split(".");
  return p.length === 4 && p.every((x) => /^\d{1,3}$/.test(x) && Number(x) <= 255 && (x === "0" || !x.startsWith("0")));
}

/** The name to look up: `4.3.2.1.<zone>` for 1.2.3.4, `<domain>.<zone>` for a domain; null if the subject does not fit the list. */
export function queryName(list: DnsList, subject: string): string | null {
  const s = subject.toLowerCase();
  if (list.kind === "ip") return isIpv4(s) ? `${s.split(".").reverse().join(".")}.${list.zone}` : null;
  return isDomainName(s, { maxLength: 200, letterTld: true }) ? `${s}.${list.zone}` : null;
}

/** What one lookup says. `error` leaves the subject's state unchanged. */
export type ListVerdict =
  | { state: "clear" }
  | { state: "listed"; codes: string[]; meaning: string }
  | { state: "error"; codes: string[]; meaning: string };

/**
 * Interprets the A records of one lookup (`answers` empty = NXDOMAIN/NODATA = not listed). Any error code in the
 * answer makes the whole answer an error; an answer outside 127.0.0.0/8 (a resolver that rewrites NXDOMAIN to an
 * advertising page) is an error too, never a listing.
 */
export function interpretAnswer(list: DnsList, answers: readonly string[]): ListVerdict {
  const codes = [...new Set(answers.map((a) => a.trim()))].sort();
  if (!codes.length) return { state: "clear" };
  const meanings: string[] = [];
  for (const code of codes) {
    const err = list.errors?.[code] ?? (list.errorPrefix && code.startsWith(list.errorPrefix) ? "error: list refused the query" : undefined);
    if (err) return { state: "error", codes, meaning: err };
    if (!ANSWER.test(code)) return { state: "error", codes, meaning: "error: not a DNSBL answer (the resolver may rewrite NXDOMAIN)" };
    const exact = list.listed?.[code];
    if (exact) {
      meanings.push(exact);
      continue;
    }
    if (list.bits) {
      const last = Number(code.split(".")[3]);
      const hit = Object.entries(list.bits).filter(([bit]) => (last & Number(bit)) !== 0).map(([, m]) => m);
      if (hit.length) {
        meanings.push(...hit);
        continue;
      }
    }
    meanings.push(`listed (undocumented code ${code})`);
  }
  return { state: "listed", codes, meaning: meanings.join("; ") };
}
