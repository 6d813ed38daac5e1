/** D1 access for the reputation watch: watched subjects, blocklist check states and history, DMARC and TLS reports. */
import type { DmarcReport } from "../reputation/dmarc-report";
import type { TlsReport } from "../reputation/tls-report";

export type CheckState = "clear" | "listed" | "unknown";

export interface SubjectRow {
  subject: string;
  kind: "ip" | "domain";
  source: string;
  label: string | null;
  tenant_id: string | null;
  created_at: number;
}

export interface CheckRow {
  subject: string;
  list: string;
  state: CheckState;
  codes: string | null;
  meaning: string | null;
  checked_at: number;
  changed_at: number | null;
  error: string | null;
  error_at: number | null;
}

export interface ReputationEventRow {
  id: number;
  type: "reputation.listed" | "reputation.delisted";
  subject: string;
  list: string;
  codes: string | null;
  meaning: string | null;
  tenant_id: string | null;
  at: number;
  notified_at: number | null;
}

/** Subjects watched beyond sender domains: the operator's and the learned ones (small table, read whole). */
export async function listSubjects(db: D1Database): Promise<SubjectRow[]> {
  return (await db.prepare("SELECT * FROM reputation_subjects ORDER BY subject").all<SubjectRow>()).results;
}

export async function putSubject(db: D1Database, s: Omit<SubjectRow, "created_at">, now = Date.now()): Promise<void> {
  await db
    .prepare(
      `INSERT INTO reputation_subjects (subject, kind, source, label, tenant_id, created_at) VALUES (?, ?, ?, ?, ?, ?)
       ON CONFLICT (subject) DO UPDATE SET label = excluded.label, tenant_id = excluded.tenant_id,
         source = CASE WHEN reputation_subjects.source = 'operator' THEN 'operator' ELSE excluded.source END`,
    )
    .bind(s.subject, s.kind, s.source, s.label, s.tenant_id, now)
    .run();
}

/** Removes a subject and its check states (its history stays). */
export async function deleteSubject(db: D1Database, subject: string): Promise<boolean> {
  const [r] = await db.batch([
    db.prepare("DELETE FROM reputation_subjects WHERE subject = ?").bind(subject),
    db.prepare("DELETE FROM reputation_checks WHERE subject = ?").bind(subject),
  ]);
  return (r?.meta.changes ?? 0) > 0;
}

/** Sender domains of every tenant (the domains mail is sent as). */
export async function senderDomains(db: D1Database): Promise<{ domain: string; tenant_id: string }[]> {
  return (await db.prepare("SELECT domain, tenant_id FROM sender_domains ORDER BY domain").all<{ domain: string; tenant_id: string }>()).results;
}

export async function listChecks(db: D1Database): Promise<CheckRow[]> {
  return (await db.prepare("SELECT * FROM reputation_checks ORDER BY subject, list").all<CheckRow>()).results;
}

/**
 * The statements that record one answer, for one `db.batch`. When the state changes clear ↔ listed an event row is
 * written first, conditioned on the stored state inside the same batch (D1 runs a batch as one transaction), so
 * two runs racing over the same pair (the cron and POST /admin/reputation/check) record the change once.
 * `event` is that statement (its `meta.changes` says whether it fired).
 */
export function recordCheck(
  db: D1Database,
  next: { subject: string; list: string; tenantId: string | null } & (
    | { state: "clear" | "listed"; codes: string[]; meaning: string }
    | { state: "error"; codes: string[]; meaning: string }
  ),
  now: number,
): { statements: D1PreparedStatement[]; event: D1PreparedStatement | null } {
  if (next.state === "error") {
    return {
      event: null,
      statements: [
        db
          .prepare(
            `INSERT INTO reputation_checks (subject, list, state, checked_at, error, error_at) VALUES (?, ?, 'unknown', ?, ?, ?)
             ON CONFLICT (subject, list) DO UPDATE SET checked_at = excluded.checked_at, error = excluded.error, error_at = excluded.error_at`,
          )
          .bind(next.subject, next.list, now, `${next.meaning} (${next.codes.join(", ") || "no answer"})`.slice(0, 300), now),
      ],
    };
  }
  // The first successful answer that is "clear" is not news; "listed" always is, and so is listed → clear.
  const event =
    next.state === "listed"
      ? db
          .prepare(
            `INSERT INTO reputation_events (type, subject, list, codes, meaning, tenant_id, at)
             SELECT 'reputation.listed', ?1, ?2, ?3, ?4, ?5, ?6
              WHERE NOT EXISTS (SELECT 1 FROM reputation_checks WHERE subject = ?1 AND list = ?2 AND state = 'listed')`,
          )
          .bind(next.subject, next.list, next.codes.join(",") || null, next.meaning, next.tenantId, now)
      : db
          .prepare(
            `INSERT INTO reputation_events (type, subject, list, codes, meaning, tenant_id, at)
             SELECT 'reputation.delisted', subject, list, codes, meaning, ?3, ?4 FROM reputation_checks
              WHERE subject = ?1 AND list = ?2 AND state = 'listed'`,
          )
          .bind(next.subject, next.list, next.tenantId, now);
  const upsert = db
    .prepare(
      `INSERT INTO reputation_checks (subject, list, state, codes, meaning, checked_at, changed_at, error, error_at) VALUES (?, ?, ?, ?, ?, ?, ?, NULL, NULL)
       ON CONFLICT (subject, list) DO UPDATE SET state = excluded.state, codes = excluded.codes, meaning = excluded.meaning,
         checked_at = excluded.checked_at, changed_at = CASE WHEN reputation_checks.state = excluded.state THEN reputation_checks.changed_at ELSE excluded.changed_at END,
         error = NULL, error_at = NULL`,
    )
    .bind(next.subject, next.list, next.state, next.codes.join(",") || null, next.state === "listed" ? next.meaning : null, now, now);
  return { statements: [event, upsert], event };
}

export async function pendingReputationEvents(db: D1Database, limit = 100): Promise<ReputationEventRow[]> {
  return (await db.prepare("SELECT * FROM reputation_events WHERE notified_at IS NULL ORDER BY id LIMIT ?").bind(limit).all<ReputationEventRow>()).results;
}

export async function markReputationEventsNotified(db: D1Database, ids: number[], now = Date.now()): Promise<void> {
  if (!ids.length) return;
  await db.prepare(`UPDATE reputation_events SET notified_at = ? WHERE id IN (${ids.map(() => "?").join(",")})`).bind(now, ...ids).run();
}

/** Newest first; `before` pages by id. */
export async function reputationHistory(db: D1Database, limit: number, before: number | null = null): Promise<ReputationEventRow[]> {
  return (
    await db
      .prepare("SELECT * FROM reputation_events WHERE id < ? ORDER BY id DESC LIMIT ?")
      .bind(before ?? Number.MAX_SAFE_INTEGER, limit)
      .all<ReputationEventRow>()
  ).results;
}

/** Stores a parsed DMARC report; false when the same report (reporter, id, domain) was stored before. */
export async function storeDmarcReport(
  db: D1Database,
  r: DmarcReport,
  meta: { tenantId: string; envelopeFrom: string; authenticated: string | null; ownRecord: (rec: DmarcReport["records"][number]) => boolean },
  now = Date.now(),
): Promise<{ stored: boolean; id: number | null }> {
  const head = await db
    .prepare(
      `INSERT OR IGNORE INTO dmarc_reports (tenant_id, domain, org_name, reporter_email, report_id, begin_at, end_at, policy, envelope_from, authenticated, dropped_count, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    )
    .bind(meta.tenantId, r.domain, r.orgName, r.reporterEmail || null, r.reportId, r.beginAt, r.endAt, r.policy || null, meta.envelopeFrom.slice(0, 320), meta.authenticated, r.droppedCount, now)
    .first<{ id: number }>();
  if (!head) return { stored: false, id: null };
  const rows = r.records.map((x) =>
    db
      .prepare(
        `INSERT INTO dmarc_records (report, source_ip, count, disposition, dkim_aligned, spf_aligned, header_from, envelope_from, dkim, spf, own)
         VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)`,
      )
      .bind(head.id, x.sourceIp, x.count, x.disposition, x.dkimAligned ? 1 : 0, x.spfAligned ? 1 : 0, x.headerFrom || null, x.envelopeFrom || null, JSON.stringify(x.dkim), JSON.stringify(x.spf), meta.ownRecord(x) ? 1 : 0),
  );
  for (let i = 0; i < rows.length; i += 50) await db.batch(rows.slice(i, i + 50));
  return { stored: true, id: head.id };
}

export async function storeTlsReport(db: D1Database, r: TlsReport, meta: { tenantId: string; authenticated: string | null }, now = Date.now()): Promise<{ stored: boolean }> {
  const head = await db
    .prepare(
      `INSERT OR IGNORE INTO tls_reports (tenant_id, org_name, report_id, contact, begin_at, end_at, authenticated, received_at)
       VALUES (?, ?, ?, ?, ?, ?, ?, ?) RETURNING id`,
    )
    .bind(meta.tenantId, r.orgName, r.reportId, r.contact || null, r.beginAt, r.endAt, meta.authenticated, now)
    .first<{ id: number }>();
  if (!head) return { stored: false };
  if (r.policies.length) {
    await db.batch(
      r.policies.map((p) =>
        db
          .prepare("INSERT INTO tls_report_policies (report, policy_domain, policy_type, success, failure, failures) VALUES (?, ?, ?, ?, ?, ?)")
          .bind(head.id, p.policyDomain, p.policyType || null, p.success, p.failure, JSON.stringify(p.failures)),
      ),
    );
  }
  return { stored: true };
}

export interface DmarcDomainSummary {
  domain: string;
  reports: number;
  /** Reports whose mail passed DKIM at the receiving side (Authentication-Results), so the reporter is who it says. */
  authenticated_reports: number;
  volume: number;
  passed: number;
  own_volume: number;
  own_passed: number;
}

/** Per domain since `since` (report end time): volume, DMARC pass, and the share sent by this relay. */
export async function dmarcDomainSummaries(db: D1Database, since: number, tenant: string | null): Promise<DmarcDomainSummary[]> {
  return (
    await db
      .prepare(
        `SELECT p.domain, COUNT(DISTINCT p.id) AS reports,
                COUNT(DISTINCT CASE WHEN p.authenticated LIKE '%dkim=pass%' THEN p.id END) AS authenticated_reports, COALESCE(SUM(r.count), 0) AS volume,
                COALESCE(SUM(CASE WHEN r.dkim_aligned = 1 OR r.spf_aligned = 1 THEN r.count ELSE 0 END), 0) AS passed,
                COALESCE(SUM(CASE WHEN r.own = 1 THEN r.count ELSE 0 END), 0) AS own_volume,
                COALESCE(SUM(CASE WHEN r.own = 1 AND (r.dkim_aligned = 1 OR r.spf_aligned = 1) THEN r.count ELSE 0 END), 0) AS own_passed
           FROM dmarc_reports p LEFT JOIN dmarc_records r ON r.report = p.id
          WHERE p.end_at >= ? AND (? IS NULL OR p.tenant_id = ?)
          GROUP BY p.domain ORDER BY volume DESC LIMIT 100`,
      )
      .bind(since, tenant, tenant)
      .all<DmarcDomainSummary>()
  ).results;
}

export interface DmarcSourceRow {
  domain: string;
  source_ip: string;
  own: number;
  volume: number;
  failed: number;
  dispositions: string;
  reporters: string;
  dkim: string | null;
  spf: string | null;
}

/** Sources whose mail failed DMARC, biggest first ("who sends as your domain"). */
export async function dmarcFailingSources(db: D1Database, since: number, tenant: string | null, limit = 50): Promise<DmarcSourceRow[]> {
  return (
    await db
      .prepare(
        `SELECT p.domain, r.source_ip, MAX(r.own) AS own, SUM(r.count) AS volume,
                SUM(CASE WHEN r.dkim_aligned = 0 AND r.spf_aligned = 0 THEN r.count ELSE 0 END) AS failed,
                GROUP_CONCAT(DISTINCT r.disposition) AS dispositions, GROUP_CONCAT(DISTINCT p.org_name) AS reporters,
                MAX(r.dkim) AS dkim, MAX(r.spf) AS spf
           FROM dmarc_reports p JOIN dmarc_records r ON r.report = p.id
          WHERE p.end_at >= ? AND (? IS NULL OR p.tenant_id = ?)
          GROUP BY p.domain, r.source_ip HAVING failed > 0 ORDER BY failed DESC LIMIT ?`,
      )
      .bind(since, tenant, tenant, limit)
      .all<DmarcSourceRow>()
  ).results;
}

export interface TlsDomainSummary {
  policy_domain: string;
  reports: number;
  success: number;
  failure: number;
  failures: string | null;
}

/** Per receiving domain since `since`: sessions and the failure details of the newest reports. */
export async function tlsDomainSummaries(db: D1Database, since: number, tenant: string | null): Promise<TlsDomainSummary[]> {
  return (
    await db
      .prepare(
        `SELECT t.policy_domain, COUNT(*) AS reports, SUM(t.success) AS success, SUM(t.failure) AS failure,
                json_group_array(json(t.failures)) AS failures
           FROM tls_reports p JOIN tls_report_policies t ON t.report = p.id
          WHERE p.end_at >= ? AND (? IS NULL OR p.tenant_id = ?)
          GROUP BY t.policy_domain ORDER BY failure DESC, success DESC LIMIT 100`,
      )
      .bind(since, tenant, tenant)
      .all<TlsDomainSummary>()
  ).results;
}

export interface FailureEventRow {
  type: string;
  recipient: string | null;
  host: string | null;
  code: number | null;
  enhanced: string | null;
  text: string | null;
  data: string | null;
}

/** The newest bounce and deferral events since `since` (the event log, batch rows expanded: see the event_log view), at most `limit`. */
export async function recentFailureEvents(db: D1Database, since: number, limit: number): Promise<FailureEventRow[]> {
  return (
    await db
      .prepare("SELECT type, recipient, host, code, enhanced, text, data FROM event_log WHERE at >= ? AND type IN ('bounced', 'deferred') ORDER BY at DESC LIMIT ?")
      .bind(since, limit)
      .all<FailureEventRow>()
  ).results;
}

/** Deletes DMARC and TLS reports whose period ended before `before`, at most `limit` reports of each a call. */
export async function pruneReports(db: D1Database, before: number, limit = 200): Promise<number> {
  const old = `SELECT id FROM %T WHERE end_at < ? ORDER BY end_at LIMIT ?`;
  const r = await db.batch([
    db.prepare(`DELETE FROM dmarc_records WHERE report IN (${old.replace("%T", "dmarc_reports")})`).bind(before, limit),
    db.prepare(`DELETE FROM dmarc_reports WHERE id IN (${old.replace("%T", "dmarc_reports")})`).bind(before, limit),
    db.prepare(`DELETE FROM tls_report_policies WHERE report IN (${old.replace("%T", "tls_reports")})`).bind(before, limit),
    db.prepare(`DELETE FROM tls_reports WHERE id IN (${old.replace("%T", "tls_reports")})`).bind(before, limit),
  ]);
  return (r[1]?.meta.changes ?? 0) + (r[3]?.meta.changes ?? 0);
}

/** Reports of a tenant stored since `since` (DMARC and TLS together), for the daily cap. */
export async function reportsReceivedSince(db: D1Database, tenantId: string, since: number): Promise<number> {
  const r = await db
    .prepare("SELECT (SELECT COUNT(*) FROM dmarc_reports WHERE tenant_id = ?1 AND received_at >= ?2) + (SELECT COUNT(*) FROM tls_reports WHERE tenant_id = ?1 AND received_at >= ?2) AS n")
    .bind(tenantId, since)
    .first<{ n: number }>();
  return r?.n ?? 0;
}
