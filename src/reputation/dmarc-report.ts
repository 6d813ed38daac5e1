/**
 * DMARC aggregate reports (RFC 7489 section 7.2 and appendix C): from the attachment bytes (gzip, zip or plain
 * XML) to a checked, bounded summary. Namespace-tolerant (DMARCbis reports carry a default namespace), tolerant of
 * the variations large reporters produce (Google, Microsoft, Yahoo), strict about sizes. Pure.
 */
import { DecompressError, gunzip, isGzip, isZip, unzip, type InflateLimits } from "./decompress";
import { child, childrenNamed, parseXml, textAt, XmlError, type XmlNode } from "./xml-lite";

export interface DmarcAuthResult {
  domain: string;
  selector?: string;
  result: string;
}

export interface DmarcRecord {
  sourceIp: string;
  count: number;
  disposition: string;
  /** DMARC's evaluation: the aligned DKIM/SPF result ("pass" or "fail"). */
  dkimAligned: boolean;
  spfAligned: boolean;
  headerFrom: string;
  envelopeFrom: string;
  dkim: DmarcAuthResult[];
  spf: DmarcAuthResult[];
  /** Policy override reasons (forwarded, mailing_list, local_policy, ...). */
  reasons: string[];
}

export interface DmarcReport {
  orgName: string;
  reporterEmail: string;
  reportId: string;
  beginAt: number;
  endAt: number;
  domain: string;
  policy: string;
  records: DmarcRecord[];
  /** Records beyond MAX_DMARC_RECORDS were summed here instead of being stored one by one. */
  droppedRecords: number;
  droppedCount: number;
}

/** Records stored per report; larger reports keep the biggest sources (by count) and sum the rest. */
export const MAX_DMARC_RECORDS = 500;
/** Decompression limits for report attachments: a report for a large sender is a few MB of XML. */
export const REPORT_INFLATE_LIMITS: InflateLimits = { maxBytes: 20 * 1024 * 1024, maxRatio: 200 };

export class ReportError extends Error {
  override name = "ReportError";
}

/** The document inside an attachment: gunzipped, unzipped (first .xml/.json entry) or as is. */
export async function unpackAttachment(bytes: Uint8Array, limits: InflateLimits = REPORT_INFLATE_LIMITS): Promise<Uint8Array> {
  try {
    if (isGzip(bytes)) return await gunzip(bytes, limits);
    if (isZip(bytes)) {
      const entries = await unzip(bytes, limits);
      const doc = entries.find((e) => /\.(xml|json)$/i.test(e.name)) ?? entries[0];
      if (!doc) throw new ReportError("the zip archive is empty");
      return doc.data;
    }
    return bytes;
  } catch (e) {
    if (e instanceof DecompressError) throw new ReportError(e.message);
    throw e;
  }
}

const IPV4 = /^\d{1,3}(\.\d{1,3}){3}$/;
const IPV6 = /^[0-9a-f:.]{2,45}$/i;

function short(s: string, max = 255): string {
  return s.length > max ? s.slice(0, max) : s;
}

function time(s: string, what: string): number {
  if (!/^\d{1,12}$/.test(s)) throw new ReportError(`${what} is not a Unix time`);
  return Number(s) * 1000;
}

/** Parses the XML of one aggregate report. */
export function parseDmarcXml(xml: string): DmarcReport {
  const records: DmarcRecord[] = [];
  let doc;
  try {
    // Records are read as each one ends and then dropped from the tree (a big report has tens of thousands).
    doc = parseXml(xml, undefined, (node, depth) => {
      if (depth !== 1 || node.name.toLowerCase() !== "record") return false;
      records.push(recordOf(node));
      return true;
    });
  } catch (e) {
    if (e instanceof XmlError) throw new ReportError(`not well-formed XML: ${e.message}`);
    throw e;
  }
  if (doc.name.toLowerCase() !== "feedback") throw new ReportError(`the root element is <${doc.name}>, not <feedback>`);
  const meta = child(doc, "report_metadata");
  const published = child(doc, "policy_published");
  const orgName = short(textAt(meta, "org_name"));
  const reportId = short(textAt(meta, "report_id"));
  const domain = textAt(published, "domain").toLowerCase().replace(/\.$/, "");
  if (!orgName || !reportId) throw new ReportError("report_metadata lacks org_name or report_id");
  if (!/^[a-z0-9.-]{1,253}$/.test(domain)) throw new ReportError("policy_published lacks a domain");
  records.sort((a, b) => b.count - a.count);
  const kept = records.slice(0, MAX_DMARC_RECORDS);
  const dropped = records.slice(MAX_DMARC_RECORDS);
  return {
    orgName,
    reporterEmail: short(textAt(meta, "email"), 320),
    reportId,
    beginAt: time(textAt(meta, "date_range", "begin"), "date_range/begin"),
    endAt: time(textAt(meta, "date_range", "end"), "date_range/end"),
    domain,
    policy: short(textAt(published, "p").toLowerCase(), 20),
    records: kept,
    droppedRecords: dropped.length,
    droppedCount: dropped.reduce((s, r) => s + r.count, 0),
  };
}

function recordOf(r: XmlNode): DmarcRecord {
  const row = child(r, "row");
  const ip = textAt(row, "source_ip");
  const count = Number(textAt(row, "count"));
  if (!(IPV4.test(ip) || (ip.includes(":") && IPV6.test(ip))) || !Number.isSafeInteger(count) || count < 0) {
    throw new ReportError(`a record has a bad source_ip or count (${short(ip, 60)})`);
  }
  const evaluated = child(row, "policy_evaluated");
  const auth = child(r, "auth_results");
  return {
    sourceIp: ip.toLowerCase(),
    count,
    disposition: short(textAt(evaluated, "disposition").toLowerCase(), 20) || "none",
    dkimAligned: textAt(evaluated, "dkim").toLowerCase() === "pass",
    spfAligned: textAt(evaluated, "spf").toLowerCase() === "pass",
    headerFrom: short(textAt(r, "identifiers", "header_from").toLowerCase()),
    envelopeFrom: short(textAt(r, "identifiers", "envelope_from").toLowerCase()),
    dkim: childrenNamed(auth, "dkim").slice(0, 5).map((d) => ({ domain: short(textAt(d, "domain").toLowerCase()), selector: short(textAt(d, "selector"), 63) || undefined, result: short(textAt(d, "result").toLowerCase(), 20) })),
    spf: childrenNamed(auth, "spf").slice(0, 5).map((x) => ({ domain: short(textAt(x, "domain").toLowerCase()), result: short(textAt(x, "result").toLowerCase(), 20) })),
    reasons: childrenNamed(evaluated, "reason").slice(0, 5).map((x) => short(textAt(x, "type").toLowerCase(), 40)).filter(Boolean),
  };
}

/** A record passes DMARC when DKIM or SPF passed aligned (RFC 7489 section 6.6.2). */
export function dmarcPass(r: Pick<DmarcRecord, "dkimAligned" | "spfAligned">): boolean {
  return r.dkimAligned || r.spfAligned;
}
