/**
 * SMTP TLS reports (RFC 8460 section 4): the JSON a sending MTA mails to the `rua` of a domain's `_smtp._tls`
 * record, summarised per policy (receiving domain): successful and failed sessions and the failure types.
 * Pure; sizes bounded.
 */
import { ReportError } from "./dmarc-report";

export interface TlsFailure {
  resultType: string;
  count: number;
  receivingMx: string;
  receivingIp: string;
}

export interface TlsPolicySummary {
  policyDomain: string;
  policyType: string;
  success: number;
  failure: number;
  failures: TlsFailure[];
}

export interface TlsReport {
  orgName: string;
  reportId: string;
  contact: string;
  beginAt: number;
  endAt: number;
  policies: TlsPolicySummary[];
}

/** Policies and failure details kept per report. */
const MAX_POLICIES = 50;
const MAX_FAILURE_DETAILS = 20;

function str(v: unknown, max = 255): string {
  return typeof v === "string" ? v.slice(0, max) : "";
}

function nonNegative(v: unknown): number {
  return typeof v === "number" && Number.isSafeInteger(v) && v >= 0 ? v : 0;
}

function record(v: unknown): Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v) ? (v as Record<string, unknown>) : {};
}

function time(v: unknown, what: string): number {
  const t = typeof v === "string" ? Date.parse(v) : NaN;
  if (!Number.isFinite(t)) throw new ReportError(`${what} is not an RFC 3339 date-time`);
  return t;
}

/** Parses the JSON of one TLS report. */
export function parseTlsReport(json: string): TlsReport {
  let doc: Record<string, unknown>;
  try {
    doc = record(JSON.parse(json));
  } catch {
    throw new ReportError("the TLS report is not JSON");
  }
  const range = record(doc["date-range"]);
  const orgName = str(doc["organization-name"]);
  const reportId = str(doc["report-id"]);
  if (!orgName || !reportId) throw new ReportError("the TLS report lacks organization-name or report-id");
  if (!Array.isArray(doc.policies)) throw new ReportError("the TLS report has no policies array");
  const policies = doc.policies.slice(0, MAX_POLICIES).map((p): TlsPolicySummary => {
    const pr = record(p);
    const policy = record(pr.policy);
    const summary = record(pr.summary);
    const details = Array.isArray(pr["failure-details"]) ? pr["failure-details"] : [];
    return {
      policyDomain: str(policy["policy-domain"]).toLowerCase(),
      policyType: str(policy["policy-type"], 20),
      success: nonNegative(summary["total-successful-session-count"]),
      failure: nonNegative(summary["total-failure-session-count"]),
      failures: details.slice(0, MAX_FAILURE_DETAILS).map((d) => {
        const dr = record(d);
        return {
          resultType: str(dr["result-type"], 60),
          count: nonNegative(dr["failed-session-count"]),
          receivingMx: str(dr["receiving-mx-hostname"]),
          receivingIp: str(dr["receiving-ip"], 45),
        };
      }),
    };
  });
  return {
    orgName,
    reportId,
    contact: str(doc["contact-info"], 320),
    beginAt: time(range["start-datetime"], "date-range/start-datetime"),
    endAt: time(range["end-datetime"], "date-range/end-datetime"),
    policies: policies.filter((p) => p.policyDomain !== ""),
  };
}

/** Failure counts by result type over stored failure details (a JSON array of per-report arrays). */
export function failureTypes(json: string | null): Record<string, number> {
  const out: Record<string, number> = {};
  let lists: unknown;
  try {
    lists = JSON.parse(json ?? "[]");
  } catch {
    return out;
  }
  for (const l of Array.isArray(lists) ? lists : []) {
    for (const f of Array.isArray(l) ? l : []) {
      const t = typeof f?.resultType === "string" ? f.resultType : "unknown";
      out[t] = (out[t] ?? 0) + (typeof f?.count === "number" ? f.count : 0);
    }
  }
  return out;
}
