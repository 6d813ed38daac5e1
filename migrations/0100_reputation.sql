-- Reputation watch (issue 20): blocklist monitoring, DMARC aggregate and SMTP TLS reports.
-- Numbered 0100 so it sorts after the other branches' migrations of the same weeks.

-- IPs and domains watched besides the tenants' sender domains: the operator's (admin API, per route) and
-- learned ones (SPF ip4: of sender domains). Small: read whole by the cron.
CREATE TABLE reputation_subjects (
  subject TEXT PRIMARY KEY,
  kind TEXT NOT NULL,              -- ip | domain
  source TEXT NOT NULL,            -- operator | spf
  label TEXT,                      -- route name or note
  tenant_id TEXT,                  -- NULL: relay-wide (every tenant's webhooks may hear about it)
  created_at INTEGER NOT NULL
) WITHOUT ROWID;

-- The last answer of each (subject, list): state clear | listed | unknown (never checked successfully).
-- An error answer only sets error/error_at; state stays. Read whole by the cron and the page (subjects × lists).
CREATE TABLE reputation_checks (
  subject TEXT NOT NULL,
  list TEXT NOT NULL,
  state TEXT NOT NULL,
  codes TEXT,
  meaning TEXT,
  checked_at INTEGER NOT NULL,
  changed_at INTEGER,
  error TEXT,
  error_at INTEGER,
  PRIMARY KEY (subject, list)
) WITHOUT ROWID;

-- Listing and delisting history; webhooks are sent for rows with notified_at NULL.
CREATE TABLE reputation_events (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  type TEXT NOT NULL,              -- reputation.listed | reputation.delisted
  subject TEXT NOT NULL,
  list TEXT NOT NULL,
  codes TEXT,
  meaning TEXT,
  tenant_id TEXT,
  at INTEGER NOT NULL,
  notified_at INTEGER
);
CREATE INDEX reputation_events_pending ON reputation_events(id) WHERE notified_at IS NULL;

-- One row per DMARC aggregate report received (deduplicated by reporter and report id).
CREATE TABLE dmarc_reports (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL,
  domain TEXT NOT NULL,
  org_name TEXT NOT NULL,
  reporter_email TEXT,
  report_id TEXT NOT NULL,
  begin_at INTEGER NOT NULL,
  end_at INTEGER NOT NULL,
  policy TEXT,
  envelope_from TEXT,
  authenticated TEXT,              -- what the receiving side said about the report mail (dkim=pass spf=pass ...)
  dropped_count INTEGER NOT NULL DEFAULT 0,
  received_at INTEGER NOT NULL,
  UNIQUE (org_name, report_id, domain)
);
CREATE INDEX dmarc_reports_end ON dmarc_reports(end_at);
-- The per-tenant daily cap on stored reports (report mail comes from anyone).
CREATE INDEX dmarc_reports_tenant_received ON dmarc_reports(tenant_id, received_at);

-- Per report and source IP: messages, disposition, DKIM/SPF results and alignment; own = sent by this relay.
CREATE TABLE dmarc_records (
  report INTEGER NOT NULL REFERENCES dmarc_reports(id),
  source_ip TEXT NOT NULL,
  count INTEGER NOT NULL,
  disposition TEXT NOT NULL,
  dkim_aligned INTEGER NOT NULL,
  spf_aligned INTEGER NOT NULL,
  header_from TEXT,
  envelope_from TEXT,
  dkim TEXT,                       -- JSON [{domain, selector, result}]
  spf TEXT,                        -- JSON [{domain, result}]
  own INTEGER NOT NULL
);
CREATE INDEX dmarc_records_report ON dmarc_records(report);

-- SMTP TLS reports (RFC 8460), one row per report, and one per policy (receiving domain) in it.
CREATE TABLE tls_reports (
  id INTEGER PRIMARY KEY AUTOINCREMENT,
  tenant_id TEXT NOT NULL,
  org_name TEXT NOT NULL,
  report_id TEXT NOT NULL,
  contact TEXT,
  begin_at INTEGER NOT NULL,
  end_at INTEGER NOT NULL,
  authenticated TEXT,
  received_at INTEGER NOT NULL,
  UNIQUE (org_name, report_id)
);
CREATE INDEX tls_reports_end ON tls_reports(end_at);
CREATE INDEX tls_reports_tenant_received ON tls_reports(tenant_id, received_at);

CREATE TABLE tls_report_policies (
  report INTEGER NOT NULL REFERENCES tls_reports(id),
  policy_domain TEXT NOT NULL,
  policy_type TEXT,
  success INTEGER NOT NULL,
  failure INTEGER NOT NULL,
  failures TEXT                    -- JSON [{resultType, count, receivingMx, receivingIp}]
);
CREATE INDEX tls_report_policies_report ON tls_report_policies(report);
