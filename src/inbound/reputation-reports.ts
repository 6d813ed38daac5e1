/**
 * Report mailboxes at the bounce domain: `dmarc@bounces.<domain>` (DMARC aggregate reports, RFC 7489 section
 * 7.2) and `tls-rpt@bounces.<domain>` (SMTP TLS reports, RFC 8460 section 5.3). Reports come from strangers: they
 * are size-limited at every step, never change delivery state, and are stored only for a domain of the tenant
 * that owns the mailbox. Whether the report mail passed DKIM/SPF is recorded as the receiving side (Email
 * Routing) reported it in Authentication-Results.
 */
import PostalMime from "postal-mime";
import { parseDkimKeys } from "../accept/dkim-keys";
import { dkimKeysSecret, loadReputationConfig } from "../config";
import { parseDmarcXml, ReportError, unpackAttachment, type DmarcRecord } from "../reputation/dmarc-report";
import { parseTlsReport } from "../reputation/tls-report";
import { logInbound, type InboundLogEntry } from "../store/inbound";
import { listSubjects, reportsReceivedSince, storeDmarcReport, storeTlsReport } from "../store/reputation";
import { readRaw, type InboundEmail } from "./read-raw";

/** Report mail larger than this is refused (5.3.4): a compressed report of a large sender is well under 1 MB. */
export const MAX_REPORT_MAIL_BYTES = 10 * 1024 * 1024;
/**
 * Reports stored per tenant a day. A domain gets one aggregate report a day from each of a few dozen reporters;
 * the cap stops anyone who can send mail from writing D1 rows without bound (refused mail is retried by honest
 * reporters the next day).
 */
export const MAX_REPORTS_PER_TENANT_PER_DAY = 1000;
/** Attachments looked at per mail (a report mail carries one). */
const MAX_ATTACHMENTS = 4;

const DMARC_BOXES = new Set(["dmarc", "dmarc-reports", "rua"]);
const TLS_BOXES = new Set(["tls-rpt", "tlsrpt", "tls-reports"]);

export type ReportMailbox = "dmarc" | "tls";

/** Which report mailbox a local part names, if any. */
export function reportMailbox(local: string): ReportMailbox | null {
  if (DMARC_BOXES.has(local)) return "dmarc";
  if (TLS_BOXES.has(local)) return "tls";
  return null;
}

/** "dkim=pass spf=pass dmarc=pass" from the first Authentication-Results header (the receiving side's). */
export function authenticationSummary(headers: Headers): string | null {
  const ar = headers.get("authentication-results");
  if (!ar) return null;
  const found = ["dkim", "spf", "dmarc"].map((m) => {
    const r = new RegExp(`(?:^|[;\\s])${m}=([a-z]+)`, "i").exec(ar);
    return r ? `${m}=${r[1]!.toLowerCase()}` : null;
  });
  return found.filter(Boolean).join(" ") || null;
}

interface Ctx {
  env: Env;
  tenantId: string;
  domain: string;
  base: Pick<InboundLogEntry, "envelopeFrom" | "envelopeTo" | "sizeBytes">;
}

/** The domain a report is about must be the mailbox's domain or below it (a tenant cannot file reports for others). */
function coversDomain(mailboxDomain: string, reportDomain: string): boolean {
  return reportDomain === mailboxDomain || reportDomain.endsWith(`.${mailboxDomain}`);
}

/** Handles one report mail; refuses (with an enhanced status code) what is too big or not a report. */
export async function handleReportMail(message: InboundEmail, env: Env, box: ReportMailbox, tenantId: string, domain: string, base: Ctx["base"]): Promise<void> {
  const ctx: Ctx = { env, tenantId, domain, base };
  const log = (outcome: "recorded" | "duplicate" | "rejected" | "ignored", detail: string) =>
    logInbound(env.DB, { ...base, kind: box === "dmarc" ? "dmarc_report" : "tls_report", outcome, tenantId, detail: detail.slice(0, 500) });
  const refuse = async (reason: string, detail: string) => {
    message.setReject(reason);
    await log("rejected", `${detail}: ${reason}`);
  };
  if ((await reportsReceivedSince(env.DB, tenantId, Date.now() - 86400_000)) >= MAX_REPORTS_PER_TENANT_PER_DAY) {
    return refuse("4.7.0 Too many reports for this domain today; try again tomorrow", "daily report cap");
  }
  if (message.rawSize > MAX_REPORT_MAIL_BYTES) return refuse(`5.3.4 Message too big for a report: the limit is ${MAX_REPORT_MAIL_BYTES} bytes`, "size limit");
  const read = await readRaw(message.raw, MAX_REPORT_MAIL_BYTES, "refuse");
  if (!read.ok) return refuse(`5.3.4 Message too big for a report: the limit is ${MAX_REPORT_MAIL_BYTES} bytes`, "size limit");
  let docs: Uint8Array[];
  try {
    docs = await reportDocuments(read.bytes);
  } catch (e) {
    return refuse(`5.6.0 The report could not be read: ${e instanceof Error ? e.message : String(e)}`.slice(0, 300), "unreadable");
  }
  if (!docs.length) return refuse("5.6.0 No report found in this message (expected a gzip, zip or XML/JSON attachment)", "no report");
  const auth = authenticationSummary(message.headers);
  const notes: string[] = [];
  let stored = 0;
  for (const d of docs) {
    try {
      const r = box === "dmarc" ? await storeDmarc(ctx, d, auth) : await storeTls(ctx, d, auth);
      notes.push(r.note);
      if (r.stored) stored++;
    } catch (e) {
      if (!(e instanceof ReportError)) throw e;
      notes.push(`refused: ${e.message}`);
    }
  }
  if (!stored && notes.every((n) => n.startsWith("refused"))) return refuse(`5.6.0 ${notes[0]!.slice(9, 250)}`, "bad report");
  await log(stored ? "recorded" : "duplicate", `${notes.join("; ")}${auth ? ` [${auth}]` : ""}`);
}

/** The unpacked report documents of a mail: its attachments, or the body itself when it is the XML/JSON. */
async function reportDocuments(raw: Uint8Array): Promise<Uint8Array[]> {
  const email = await PostalMime.parse(raw, { maxNestingDepth: 10 });
  const candidates: Uint8Array[] = email.attachments.slice(0, MAX_ATTACHMENTS).map((a) => (typeof a.content === "string" ? new TextEncoder().encode(a.content) : new Uint8Array(a.content)));
  if (!candidates.length && email.text && /^\s*(<\?xml|<([\w-]+:)?feedback|\{)/.test(email.text)) candidates.push(new TextEncoder().encode(email.text));
  const out: Uint8Array[] = [];
  // A zip bomb or corrupt archive in any attachment refuses the whole mail (ReportError).
  for (const c of candidates) out.push(await unpackAttachment(c));
  return out;
}

function text(bytes: Uint8Array): string {
  return new TextDecoder("utf-8").decode(bytes);
}

async function storeDmarc(ctx: Ctx, doc: Uint8Array, auth: string | null): Promise<{ stored: boolean; note: string }> {
  const report = parseDmarcXml(text(doc));
  if (!coversDomain(ctx.domain, report.domain)) throw new ReportError(`the report is about ${report.domain}, not ${ctx.domain}`);
  const own = await ownTraffic(ctx.env);
  const r = await storeDmarcReport(ctx.env.DB, report, { tenantId: ctx.tenantId, envelopeFrom: ctx.base.envelopeFrom ?? "", authenticated: auth, ownRecord: own });
  const volume = report.records.reduce((s, x) => s + x.count, 0) + report.droppedCount;
  return { stored: r.stored, note: `${r.stored ? "DMARC report" : "duplicate DMARC report"} ${report.reportId} from ${report.orgName} for ${report.domain}: ${report.records.length} sources, ${volume} messages` };
}

async function storeTls(ctx: Ctx, doc: Uint8Array, auth: string | null): Promise<{ stored: boolean; note: string }> {
  const report = parseTlsReport(text(doc));
  report.policies = report.policies.filter((p) => coversDomain(ctx.domain, p.policyDomain));
  if (!report.policies.length) throw new ReportError(`the TLS report names no policy for ${ctx.domain}`);
  const r = await storeTlsReport(ctx.env.DB, report, { tenantId: ctx.tenantId, authenticated: auth });
  return { stored: r.stored, note: `${r.stored ? "TLS report" : "duplicate TLS report"} ${report.reportId} from ${report.orgName}: ${report.policies.map((p) => `${p.policyDomain} ${p.success} ok/${p.failure} failed`).join(", ")}` };
}

/**
 * Mail sent by this relay: from an IP the relay watches as its own (REPUTATION_IPS, subjects added by the
 * operator or learned from SPF), or DKIM-signed with one of the relay's own selectors for that domain.
 */
async function ownTraffic(env: Env): Promise<(r: DmarcRecord) => boolean> {
  const ips = new Set<string>();
  try {
    for (const x of loadReputationConfig(env).ips) ips.add(x.ip);
  } catch {
    // A bad REPUTATION_* setting is reported by the cron; here it only means fewer addresses are known.
  }
  for (const s of await listSubjects(env.DB)) if (s.kind === "ip") ips.add(s.subject);
  let selectors = new Set<string>();
  try {
    selectors = new Set(parseDkimKeys(dkimKeysSecret(env)).map((k) => `${k.domain.toLowerCase()}|${k.selector.toLowerCase()}`));
  } catch {
    // Without readable DKIM keys the relay signs nothing, so no DKIM result can be its own.
  }
  return (r) => ips.has(r.sourceIp) || r.dkim.some((d) => d.result === "pass" && d.selector !== undefined && selectors.has(`${d.domain}|${d.selector.toLowerCase()}`));
}
