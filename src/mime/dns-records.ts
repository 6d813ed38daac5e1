/**
 * The DNS records a sending domain publishes for Edge Relay, and a check of what is actually published.
 *
 * - DKIM: one TXT per selector at `<selector>._domainkey.<domain>` (RFC 6376 section 3.6.2).
 * - Bounce domain (`bounces.<domain>`, the VERP return path's domain): MX to Cloudflare Email Routing so bounces
 *   reach the Worker's `email()` handler, and SPF for the servers that send with that envelope sender.
 *   SPF is checked against the envelope sender's domain, which DMARC's relaxed alignment accepts as aligned
 *   with `<domain>`.
 * - DMARC at `_dmarc.<domain>`, MTA-STS and TLS-RPT: suggestions; we only check that something is published.
 *
 * Pure: the caller passes the resolver (the Worker uses DNS-over-HTTPS).
 */

export type DnsRecordType = "TXT" | "MX";
export type DnsRecordPurpose = "dkim" | "spf" | "dmarc" | "bounce-mx" | "mta-sts" | "tls-rpt";

export interface DnsRecord {
  purpose: DnsRecordPurpose;
  type: DnsRecordType;
  /** Fully qualified name, no trailing dot. */
  name: string;
  /** TXT text, or the MX exchange host. */
  value: string;
  /** MX preference. */
  priority?: number;
  /** False for suggestions that mail flows without. */
  required: boolean;
  /** One sentence for the user. */
  note: string;
}

export interface RequiredDnsRecordsInput {
  /** The From domain mail is sent as. */
  domain: string;
  /** DKIM selectors with their TXT values (from `publicKeyRecord`). */
  selectors: readonly { selector: string; publicKeyTxt: string }[];
  /** The VERP return-path domain, usually `bounceDomainFor(domain)`. */
  bounceDomain: string;
  /** SPF include(s) of the upstream relay that sends for us, e.g. "amazonses.com". */
  spfInclude?: string | readonly string[];
  /**
   * Where DMARC and TLS reports go; default `dmarc@<bounce domain>` and `tls-rpt@<bounce domain>`, which Email
   * Routing hands to the relay's report mailboxes (same organisational domain, so no RFC 7489 7.1 authorisation
   * record is needed).
   */
  reportAddress?: string;
  /** MTA-STS policy id (RFC 8461 section 3.1); default "1". */
  mtaStsId?: string;
}

/** Cloudflare Email Routing's MX hosts (from the records Email Routing asks a zone to publish). */
export const EMAIL_ROUTING_MX_HOSTS: readonly { exchange: string; priority: number }[] = [
  { exchange: "route1.mx.cloudflare.net", priority: 13 },
  { exchange: "route2.mx.cloudflare.net", priority: 86 },
  { exchange: "route3.mx.cloudflare.net", priority: 24 },
];
/** SPF include for Cloudflare's mail servers, which Email Routing also asks for on a routed domain. */
export const EMAIL_ROUTING_SPF_INCLUDE = "_spf.mx.cloudflare.net";

/** Everything a user should publish for `domain`, required records first. */
export function requiredDnsRecords(input: RequiredDnsRecordsInput): DnsRecord[] {
  const domain = normalizeName(input.domain);
  const bounceDomain = normalizeName(input.bounceDomain);
  const includes = [EMAIL_ROUTING_SPF_INCLUDE, ...[input.spfInclude ?? []].flat().map(normalizeName)];
  const uniqueIncludes = [...new Set(includes)];
  const records: DnsRecord[] = [];

  for (const { selector, publicKeyTxt } of input.selectors) {
    records.push({
      purpose: "dkim",
      type: "TXT",
      name: `${selector.toLowerCase()}._domainkey.${domain}`,
      value: publicKeyTxt,
      required: true,
      note: `DKIM public key for selector ${selector}; mail is signed with d=${domain}. Publish it as one value; DNS providers split values over 255 characters into several strings.`,
    });
  }
  for (const mx of EMAIL_ROUTING_MX_HOSTS) {
    records.push({
      purpose: "bounce-mx",
      type: "MX",
      name: bounceDomain,
      value: mx.exchange,
      priority: mx.priority,
      required: true,
      note: `Bounces to ${bounceDomain} go to Cloudflare Email Routing, which hands them to Edge Relay.`,
    });
  }
  records.push({
    purpose: "spf",
    type: "TXT",
    name: bounceDomain,
    value: `v=spf1 ${uniqueIncludes.map((i) => `include:${i}`).join(" ")} ~all`,
    required: true,
    note: `SPF for the return-path domain ${bounceDomain}; it aligns with ${domain} under relaxed DMARC alignment.`,
  });

  const reports = input.reportAddress;
  records.push({
    purpose: "dmarc",
    type: "TXT",
    name: `_dmarc.${domain}`,
    value: `v=DMARC1; p=none; rua=mailto:${reports ?? `dmarc@${bounceDomain}`}; adkim=r; aspf=r`,
    required: false,
    note: `Suggested starting DMARC policy; Gmail and Yahoo require some DMARC record of bulk senders. Aggregate reports to dmarc@${bounceDomain} are read by Edge Relay (reporting page, Reputation). Tighten p= once reports look clean.`,
  });
  records.push({
    purpose: "mta-sts",
    type: "TXT",
    name: `_mta-sts.${domain}`,
    value: `v=STSv1; id=${input.mtaStsId ?? "1"}`,
    required: false,
    note: `Optional (RFC 8461): protects mail to ${domain}; also serve https://mta-sts.${domain}/.well-known/mta-sts.txt and change id= whenever that policy changes.`,
  });
  records.push({
    purpose: "tls-rpt",
    type: "TXT",
    name: `_smtp._tls.${domain}`,
    value: `v=TLSRPTv1; rua=mailto:${reports ?? `tls-rpt@${bounceDomain}`}`,
    required: false,
    note: `Optional (RFC 8460): daily reports of TLS failures delivering to your domain, read by Edge Relay at tls-rpt@${bounceDomain}.`,
  });
  return records;
}

/**
 * Answers for one name and type. TXT: one string per record (a DoH JSON `data` value such as
 * `"v=spf1 " "include:x ~all"` is accepted; quotes are removed and strings joined). MX: `"<priority> <exchange>"`
 * or just the exchange. An empty array means no records (NXDOMAIN or NODATA).
 */
export type DnsResolver = (name: string, type: DnsRecordType) => Promise<readonly string[]>;

export type DnsCheckStatus = "ok" | "missing" | "mismatch" | "error";

export interface DnsCheckResult {
  record: DnsRecord;
  status: DnsCheckStatus;
  /** The relevant answers found (normalized). */
  found: string[];
  /** What is wrong and how to fix it; empty when ok. */
  message: string;
}

export interface DnsCheckReport {
  /** True when every required record is ok. */
  ok: boolean;
  results: DnsCheckResult[];
}

/** Looks every record up (each name and type once) and says what is missing or wrong. */
export async function checkDnsRecords(records: readonly DnsRecord[], resolver: DnsResolver): Promise<DnsCheckReport> {
  const lookups = new Map<string, Promise<{ answers: string[] } | { error: string }>>();
  const lookup = (name: string, type: DnsRecordType) => {
    const key = `${type} ${name}`;
    let pending = lookups.get(key);
    if (!pending) {
      pending = resolver(name, type).then(
        (answers) => ({ answers: answers.map((a) => (type === "TXT" ? normalizeTxt(a) : a)) }),
        (error: unknown) => ({ error: error instanceof Error ? error.message : String(error) }),
      );
      lookups.set(key, pending);
    }
    return pending;
  };

  const mxChecked = new Map<string, Promise<DnsCheckResult>>();
  const results = await Promise.all(
    records.map(async (record): Promise<DnsCheckResult> => {
      const answer = await lookup(record.name, record.type);
      if ("error" in answer) {
        return { record, status: "error", found: [], message: `DNS lookup of ${record.type} ${record.name} failed: ${answer.error}` };
      }
      switch (record.purpose) {
        case "dkim":
          return checkDkim(record, answer.answers);
        case "spf":
          return checkSpf(record, answer.answers);
        case "bounce-mx": {
          // One verdict per bounce domain, shared by its three MX rows.
          let verdict = mxChecked.get(record.name);
          if (!verdict) {
            const expected = records.filter((r) => r.purpose === "bounce-mx" && r.name === record.name).map((r) => r.value);
            verdict = Promise.resolve(checkMx(record, expected, answer.answers));
            mxChecked.set(record.name, verdict);
          }
          return { ...(await verdict), record };
        }
        case "dmarc":
          return checkPresent(record, answer.answers, /^v=DMARC1\s*(;|$)/i, "a DMARC record");
        case "mta-sts":
          return checkPresent(record, answer.answers, /^v=STSv1\s*(;|$)/i, "an MTA-STS record");
        case "tls-rpt":
          return checkPresent(record, answer.answers, /^v=TLSRPTv1\s*(;|$)/i, "a TLS-RPT record");
      }
    }),
  );
  return { ok: results.every((r) => !r.record.required || r.status === "ok"), results };
}

function checkDkim(record: DnsRecord, answers: readonly string[]): DnsCheckResult {
  const expectedKey = tagValue(record.value, "p");
  const keys = answers.filter((a) => tagValue(a, "p") !== undefined);
  if (keys.length === 0) return missing(record, answers);
  if (keys.some((a) => tagValue(a, "p") === expectedKey)) return ok(record, keys);
  return {
    record,
    status: "mismatch",
    found: keys,
    message: `${record.name} publishes a different DKIM key; replace it with: ${record.value}`,
  };
}

function checkSpf(record: DnsRecord, answers: readonly string[]): DnsCheckResult {
  const spf = answers.filter((a) => /^v=spf1(\s|$)/i.test(a));
  if (spf.length === 0) return missing(record, answers);
  if (spf.length > 1) {
    return { record, status: "mismatch", found: spf, message: `${record.name} has ${spf.length} SPF records; RFC 7208 section 4.5 makes that a permerror. Merge them into one.` };
  }
  const published = new Set(
    (spf[0] ?? "")
      .split(/\s+/)
      .filter((t) => /^[+?~-]?include:/i.test(t))
      .map((t) => t.replace(/^[+?~-]?include:/i, "").toLowerCase().replace(/\.$/, "")),
  );
  const absent = record.value
    .split(/\s+/)
    .filter((t) => t.startsWith("include:"))
    .map((t) => t.slice("include:".length))
    .filter((i) => !published.has(i));
  if (absent.length === 0) return ok(record, spf);
  return {
    record,
    status: "mismatch",
    found: spf,
    message: `SPF for ${record.name} lacks ${absent.map((i) => `include:${i}`).join(" ")}; expected something like: ${record.value}`,
  };
}

function checkMx(record: DnsRecord, expected: readonly string[], answers: readonly string[]): DnsCheckResult {
  const hosts = answers.map((a) => normalizeName(a.trim().split(/\s+/).pop() ?? ""));
  if (hosts.length === 0) return missing(record, answers);
  const absent = expected.filter((h) => !hosts.includes(h));
  const foreign = hosts.filter((h) => !expected.includes(h));
  if (absent.length === 0 && foreign.length === 0) return ok(record, hosts);
  const problems = [
    absent.length > 0 ? `missing ${absent.join(", ")}` : "",
    foreign.length > 0 ? `other hosts ${foreign.join(", ")} would receive some bounces` : "",
  ].filter(Boolean);
  return { record, status: "mismatch", found: hosts, message: `MX of ${record.name}: ${problems.join("; ")}.` };
}

function checkPresent(record: DnsRecord, answers: readonly string[], pattern: RegExp, what: string): DnsCheckResult {
  const found = answers.filter((a) => pattern.test(a));
  if (found.length === 0) return { record, status: "missing", found: [], message: `No ${what} at ${record.name}; suggested: ${record.value}` };
  return ok(record, found);
}

function ok(record: DnsRecord, found: readonly string[]): DnsCheckResult {
  return { record, status: "ok", found: [...found], message: "" };
}

function missing(record: DnsRecord, answers: readonly string[]): DnsCheckResult {
  return {
    record,
    status: "missing",
    found: [...answers],
    message: `No ${record.purpose.toUpperCase()} ${record.type} record at ${record.name}; publish: ${record.type === "MX" ? `${record.priority ?? 10} ` : ""}${record.value}`,
  };
}

/** `"a" "b"` (presentation form of a TXT record with several strings) becomes `ab`; plain text stays. */
function normalizeTxt(text: string): string {
  const trimmed = text.trim();
  if (!trimmed.startsWith('"')) return trimmed;
  const strings = trimmed.match(/"((?:[^"\\]|\\.)*)"/g) ?? [];
  return strings.map((s) => s.slice(1, -1).replace(/\\(.)/g, "$1")).join("");
}

/** The value of `tag=` in a tag=value list (DKIM, DMARC), whitespace removed; undefined when absent. */
function tagValue(text: string, tag: string): string | undefined {
  for (const part of text.split(";")) {
    const eq = part.indexOf("=");
    if (eq > 0 && part.slice(0, eq).trim().toLowerCase() === tag) return part.slice(eq + 1).replace(/\s+/g, "");
  }
  return undefined;
}

function normalizeName(name: string): string {
  return name.trim().toLowerCase().replace(/\.$/, "");
}
