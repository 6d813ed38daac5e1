/**
 * Every setting of the relay, parsed and validated once per invocation from the Worker's env.
 * Constants carry their unit in the name and say where the number comes from.
 */

import { DEFAULT_GATE_POLICY, parsePartialPolicy, type GatePolicy } from "./gate/policy";
import { isIpv4, parseDnsLists, type DnsList } from "./reputation/dns-lists";
import { parseCidr } from "./delivery/private-networks";
import { isDomainName } from "./mime/domain-name";

/** Cloudflare Queues accept messages up to 128 KB; keep headroom for the job's JSON envelope. */
export const MAX_INLINE_BODY_BYTES = 100 * 1024;
/** Cloudflare Queues cap `delaySeconds` at 12 hours. */
export const MAX_QUEUE_DELAY_SECONDS = 12 * 60 * 60;
/**
 * Retry-After on a 503 (a database or queue that failed for now): D1's own retries of a transient error take
 * seconds (its "Retry queries" guide backs off exponentially), so a client waits a little longer than that.
 */
export const UNAVAILABLE_RETRY_AFTER_SECONDS = 10;
/** API keys are 32 random bytes; this prefix makes leaked keys easy to find with secret scanners. */
export const API_KEY_PREFIX = "er_";
/** Default cap on to+cc+bcc per message, the common limit of Postmark/SES-style APIs. */
export const DEFAULT_MAX_RECIPIENTS = 50;
/** Default largest message: 25 MiB, what most mailbox providers accept (Gmail: 25 MB). */
export const DEFAULT_MAX_MESSAGE_BYTES = 25 * 1024 * 1024;

export interface NextHop {
  kind: "smtp";
  host: string;
  port: number;
  tls: "implicit" | "starttls-required" | "starttls-opportunistic" | "off";
  /** allowInsecure: AUTH over plaintext, only when the URL says `?insecure_auth=1` (a relay on a private network). */
  auth?: { user: string; pass: string; allowInsecure?: boolean };
}

export interface RelayConfig {
  relayHostname: string;
  nextHop: NextHop;
  dohUrl: string;
  maxMessageBytes: number;
  maxRecipients: number;
  /** Delay before retry n (1-based) is retrySchedule[min(n, len) - 1]. */
  retryScheduleSeconds: number[];
  maxMessageAgeSeconds: number;
  /** Send an RFC 3464 report to the envelope sender when a recipient bounces or expires. */
  dsnEnabled: boolean;
  /** Port for `mx:` routes that name none (RFC 5321: 25). */
  mxPort: number;
  /** DomainGate defaults for destinations without a preset or override. */
  gateDefaults: GatePolicy;
  /** Per-destination-key policy overrides (GATE_POLICIES), e.g. {"example.com": {"ratePerSecond": 2}}. */
  gatePolicies: Record<string, Partial<GatePolicy>>;
  /** Share of a destination's rate kept for broadcast while transactional mail wants it too (issue 12). */
  broadcastShare: number;
  /** Where MTA-STS policies are fetched, `{domain}` replaced (RFC 8461 3.3); other values are for tests only. */
  mtaStsPolicyUrl: string;
  /** Audit rows older than this are deleted by the cron (issue 21). */
  auditRetentionDays: number;
  /** Messages (and their tracking counters and tag rows) are deleted this long after acceptance once final (issue 16). */
  messageRetentionDays: number;
  /** A pending recipient with no delivery activity this long past its due time is re-driven from the ledger (issue 25). */
  redriveGraceSeconds: number;
  /** Rows the cron deletes per run at most for retention, per table (bounded steps; see store/retention.ts). */
  retentionPruneRowsPerRun: number;
  /** Transactions whose outcomes the consumer writes together (1: each durable before the next; issue 16). */
  outcomeGroupTransactions: number;
  /** HMAC key of redaction mode `hash` (REDACTION_HASH_KEY, issue 21); null: only mode `redact` is available. */
  redactionHashKey: string | null;
  /** Feedback-loop sources trusted once our MX authenticated them (FEEDBACK_LOOP_SOURCES, INBOUND_AUTHSERV_ID). */
  feedbackLoop: { sources: string[]; authservId: string };
  /** Non-public networks the relay may still connect or post to (ALLOW_PRIVATE_DESTINATIONS); empty: none. */
  allowPrivateDestinations: string[];
  /** Send only from domains verified with POST /v1/domains/:d/verify (REQUIRE_VERIFIED_DOMAINS, default true). */
  requireVerifiedDomains: boolean;
}

/** RFC 8461 section 3.3: the policy lives at this well-known HTTPS URL of the `mta-sts.` host. */
export const DEFAULT_MTA_STS_POLICY_URL = "https://mta-sts.{domain}/.well-known/mta-sts.txt";
/** Audit trail kept 400 days by default: a year plus the slack of an annual audit (issue 21). */
export const DEFAULT_AUDIT_RETENTION_DAYS = 400;
/** MESSAGE_RETENTION_DAYS default: 30 days of message history, what SES and Postmark keep for message activity. */
export const DEFAULT_MESSAGE_RETENTION_DAYS = 30;
/**
 * REDRIVE_GRACE_SECONDS default: 15 minutes. Longer than a queue's retry of a failed batch and a gate's longest
 * "not yet" (the first retry step), so a job still travelling is not doubled; short enough that a lost job costs
 * minutes, not the 72 hours of the maximum age.
 */
export const DEFAULT_REDRIVE_GRACE_SECONDS = 900;
/** RETENTION_PRUNE_ROWS_PER_RUN default: 100,000 rows per table per cron run (5-minute cron: 333 messages/s sustained). */
export const DEFAULT_RETENTION_PRUNE_ROWS_PER_RUN = 100_000;

export class ConfigError extends Error {
  override name = "ConfigError";
}

/**
 * The URL with an inline password replaced by `***` (`smtp://user:***@host`), for anything shown or logged:
 * admin API answers, error messages. `${SMTP_...}` placeholders name a secret and are not secret themselves.
 */
export function redactUrlPassword(url: string): string {
  const scheme = /^[a-z][a-z0-9+.-]*:\/\//i.exec(url);
  if (!scheme) return url;
  // The authority ends at the first / ? # after the last @ (a password may itself hold @, / or spaces).
  const at = url.lastIndexOf("@");
  const colon = url.indexOf(":", scheme[0].length);
  if (at < 0 || colon < 0 || colon > at) return url;
  const pass = url.slice(colon + 1, at);
  if (/^\$\{[A-Z0-9_]+\}$/i.test(pass)) return url;
  return `${url.slice(0, colon + 1)}***${url.slice(at)}`;
}

/** Parses a next-hop URL: smtp://host:port (plain), smtp+starttls://, smtp+opportunistic://, smtps://; user:pass@ for AUTH. */
export function parseNextHop(url: string): NextHop {
  let u: URL;
  try {
    u = new URL(url);
  } catch {
    throw new ConfigError(`NEXT_HOP_URL is not a URL: ${redactUrlPassword(url)}`);
  }
  const schemes: Record<string, { tls: NextHop["tls"]; port: number }> = {
    "smtp:": { tls: "off", port: 25 },
    "smtp+starttls:": { tls: "starttls-required", port: 587 },
    "smtp+opportunistic:": { tls: "starttls-opportunistic", port: 25 },
    "smtps:": { tls: "implicit", port: 465 },
  };
  const scheme = schemes[u.protocol];
  if (!scheme) throw new ConfigError(`NEXT_HOP_URL scheme must be smtp, smtp+starttls, smtp+opportunistic or smtps: ${redactUrlPassword(url)}`);
  const hop: NextHop = { kind: "smtp", host: u.hostname, port: u.port ? Number(u.port) : scheme.port, tls: scheme.tls };
  if (u.username) {
    hop.auth = { user: decodeURIComponent(u.username), pass: decodeURIComponent(u.password) };
    if (u.searchParams.get("insecure_auth") === "1") hop.auth.allowInsecure = true;
  }
  return hop;
}

function positiveInt(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new ConfigError(`${name} must be a positive integer, got ${JSON.stringify(value)}`);
  return n;
}

function parseGatePolicies(value: string | undefined): Record<string, Partial<GatePolicy>> {
  if (!value) return {};
  let parsed: unknown;
  try {
    parsed = JSON.parse(value);
  } catch {
    throw new ConfigError("GATE_POLICIES must be a JSON object of destination -> policy");
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed)) throw new ConfigError("GATE_POLICIES must be a JSON object");
  const out: Record<string, Partial<GatePolicy>> = {};
  for (const [key, v] of Object.entries(parsed)) {
    const p = parsePartialPolicy(v);
    if (!p.ok) throw new ConfigError(`GATE_POLICIES[${key}]: ${p.error}`);
    out[key.toLowerCase()] = p.policy;
  }
  return out;
}

/** Parsed settings per env object: every caller in an invocation shares one parse (the env never changes under it). */
const parsedConfigs = new WeakMap<object, RelayConfig>();
const parsedReputationConfigs = new WeakMap<object, ReputationConfig>();

/** Reads and checks the settings from the Worker's env, once per env object; throws ConfigError naming the bad setting. */
export function loadConfig(env: Env): RelayConfig {
  let config = parsedConfigs.get(env);
  if (!config) parsedConfigs.set(env, (config = parseConfig(env)));
  return config;
}

function parseConfig(env: Env): RelayConfig {
  const relayHostname = env.RELAY_HOSTNAME;
  if (!relayHostname || !relayHostname.includes(".") || /^[\d.]+$/.test(relayHostname)) {
    throw new ConfigError("RELAY_HOSTNAME must be a fully qualified domain name (used in EHLO)");
  }
  return {
    relayHostname,
    nextHop: parseNextHop(env.NEXT_HOP_URL),
    dohUrl: env.DOH_URL,
    maxMessageBytes: positiveInt("MAX_MESSAGE_BYTES", env.MAX_MESSAGE_BYTES, DEFAULT_MAX_MESSAGE_BYTES),
    retryScheduleSeconds: parseSchedule(env.RETRY_SCHEDULE_SECONDS),
    maxMessageAgeSeconds: positiveInt("MAX_MESSAGE_AGE_SECONDS", env.MAX_MESSAGE_AGE_SECONDS, 72 * 3600),
    maxRecipients: positiveInt("MAX_RECIPIENTS", (env as { MAX_RECIPIENTS?: string }).MAX_RECIPIENTS, DEFAULT_MAX_RECIPIENTS),
    dsnEnabled: (env.DSN_ENABLED ?? "true").toLowerCase() !== "false",
    mxPort: positiveInt("MX_PORT", env.MX_PORT, 25),
    gateDefaults: {
      ...DEFAULT_GATE_POLICY,
      ratePerSecond: positiveInt("GATE_RATE_PER_SECOND", env.GATE_RATE_PER_SECOND, DEFAULT_GATE_POLICY.ratePerSecond),
      burst: positiveInt("GATE_BURST", env.GATE_BURST, DEFAULT_GATE_POLICY.burst),
      maxConnections: positiveInt("GATE_MAX_CONNECTIONS", env.GATE_MAX_CONNECTIONS, DEFAULT_GATE_POLICY.maxConnections),
      maxMessagesPerConnection: positiveInt("GATE_MAX_MESSAGES_PER_CONNECTION", env.GATE_MAX_MESSAGES_PER_CONNECTION, DEFAULT_GATE_POLICY.maxMessagesPerConnection),
      backoffPauseSeconds: positiveInt("GATE_BACKOFF_PAUSE_SECONDS", env.GATE_BACKOFF_PAUSE_SECONDS, DEFAULT_GATE_POLICY.backoffPauseSeconds),
    },
    gatePolicies: parseGatePolicies(env.GATE_POLICIES),
    broadcastShare: parseShare(env.BROADCAST_RESERVED_SHARE),
    mtaStsPolicyUrl: parseMtaStsUrl((env as { MTA_STS_POLICY_URL?: string }).MTA_STS_POLICY_URL),
    auditRetentionDays: positiveInt("AUDIT_RETENTION_DAYS", (env as { AUDIT_RETENTION_DAYS?: string }).AUDIT_RETENTION_DAYS, DEFAULT_AUDIT_RETENTION_DAYS),
    feedbackLoop: { sources: parseDomainList("FEEDBACK_LOOP_SOURCES", env.FEEDBACK_LOOP_SOURCES), authservId: (env.INBOUND_AUTHSERV_ID ?? "").trim() || DEFAULT_INBOUND_AUTHSERV_ID },
    allowPrivateDestinations: parseCidrList(env.ALLOW_PRIVATE_DESTINATIONS),
    requireVerifiedDomains: parseBoolean("REQUIRE_VERIFIED_DOMAINS", env.REQUIRE_VERIFIED_DOMAINS, true),
    ...ledgerSettings(env as unknown as Record<string, string | undefined>),
  };
}

/**
 * OUTCOME_GROUP_TRANSACTIONS default: 8 transactions' outcomes per D1 write (one events row for all), about 2.1 D1
 * rows written per message instead of 3; a runtime that dies mid-batch may send up to this many messages again.
 */
export const DEFAULT_OUTCOME_GROUP_TRANSACTIONS = 8;

/**
 * Outcomes wait at most this long for their group before they are written anyway (a slow next hop sends fewer
 * than a group's transactions in that time).
 */
export const OUTCOME_GROUP_MAX_WAIT_MS = 250;

/** The ledger's retention and re-drive settings (issue 16, 25). */
function ledgerSettings(env: Record<string, string | undefined>): Pick<RelayConfig, "messageRetentionDays" | "redriveGraceSeconds" | "retentionPruneRowsPerRun" | "redactionHashKey" | "outcomeGroupTransactions"> {
  return {
    redactionHashKey: redactionHashKey(env),
    messageRetentionDays: positiveInt("MESSAGE_RETENTION_DAYS", env.MESSAGE_RETENTION_DAYS, DEFAULT_MESSAGE_RETENTION_DAYS),
    redriveGraceSeconds: positiveInt("REDRIVE_GRACE_SECONDS", env.REDRIVE_GRACE_SECONDS, DEFAULT_REDRIVE_GRACE_SECONDS),
    retentionPruneRowsPerRun: positiveInt("RETENTION_PRUNE_ROWS_PER_RUN", env.RETENTION_PRUNE_ROWS_PER_RUN, DEFAULT_RETENTION_PRUNE_ROWS_PER_RUN),
    outcomeGroupTransactions: Math.min(50, positiveInt("OUTCOME_GROUP_TRANSACTIONS", env.OUTCOME_GROUP_TRANSACTIONS, DEFAULT_OUTCOME_GROUP_TRANSACTIONS)),
  };
}

/**
 * REDACTION_HASH_KEY (issue 21), the key of redaction mode `hash`, or null. Part of `loadConfig`; the reporting
 * page's address search reads it alone, so the page still needs no other setting.
 */
export function redactionHashKey(env: { REDACTION_HASH_KEY?: string }): string | null {
  const hashKey = env.REDACTION_HASH_KEY ?? "";
  // A short key makes the hashes of likely addresses cheap to guess (16 bytes: the HMAC key size NIST SP 800-107 asks as a minimum security strength of 128 bits).
  if (hashKey !== "" && hashKey.length < 16) throw new ConfigError("REDACTION_HASH_KEY must be at least 16 characters (e.g. openssl rand -base64 32)");
  return hashKey === "" ? null : hashKey;
}

/** Default EVENT_RETENTION_DAYS: 30 days of raw events, what SES and most providers keep for event history. */
export const DEFAULT_EVENT_RETENTION_DAYS = 30;

/**
 * EVENT_RETENTION_DAYS in ms: how long raw events and the inbound log are kept. Read apart from loadConfig, so a bad
 * value stops only the cron's pruning, never delivery.
 */
export function eventRetentionMs(env: Env): number {
  const raw = env.EVENT_RETENTION_DAYS;
  const days = raw === undefined || raw === "" ? DEFAULT_EVENT_RETENTION_DAYS : Number(raw);
  if (!Number.isFinite(days) || days <= 0) throw new ConfigError(`EVENT_RETENTION_DAYS must be a positive number of days, got ${JSON.stringify(raw)}`);
  return days * 86_400_000;
}

/** Cloudflare Email Routing's inbound MX names itself so in Authentication-Results (its Postmaster page). */
export const DEFAULT_INBOUND_AUTHSERV_ID = "mx.cloudflare.net";

function parseDomainList(name: string, value: string | undefined): string[] {
  const list = (value ?? "").split(",").map((d) => d.trim().toLowerCase().replace(/\.$/, "")).filter(Boolean);
  for (const d of list) {
    if (!isDomainName(d)) throw new ConfigError(`${name}: ${JSON.stringify(d)} is not a domain name`);
  }
  return list;
}

function parseCidrList(value: string | undefined): string[] {
  const list = (value ?? "").split(",").map((c) => c.trim()).filter(Boolean);
  for (const c of list) {
    if (!parseCidr(c)) throw new ConfigError(`ALLOW_PRIVATE_DESTINATIONS: ${JSON.stringify(c)} is not a CIDR (e.g. 127.0.0.0/8, ::1/128)`);
  }
  return list;
}

function parseBoolean(name: string, value: string | undefined, fallback: boolean): boolean {
  if (value === undefined || value.trim() === "") return fallback;
  const v = value.trim().toLowerCase();
  if (v === "true" || v === "1") return true;
  if (v === "false" || v === "0") return false;
  throw new ConfigError(`${name} must be "true" or "false", got ${JSON.stringify(value)}`);
}

/** MTA_STS_POLICY_URL (test-only): an http(s) URL template containing {domain}. */
function parseMtaStsUrl(value: string | undefined): string {
  if (value === undefined || value === "") return DEFAULT_MTA_STS_POLICY_URL;
  if (!/^https?:\/\/[^\s]*\{domain\}/.test(value)) throw new ConfigError(`MTA_STS_POLICY_URL must be an http(s) URL containing {domain}, got ${JSON.stringify(value)}`);
  return value;
}

/** BROADCAST_RESERVED_SHARE: 0.05-0.5; default 0.15 (Postmark-style streams; enough that a campaign keeps moving). */
function parseShare(value: string | undefined): number {
  if (value === undefined || value === "") return 0.15;
  const n = Number(value);
  if (!Number.isFinite(n) || n < 0.05 || n > 0.5) throw new ConfigError(`BROADCAST_RESERVED_SHARE must be a number from 0.05 to 0.5, got ${JSON.stringify(value)}`);
  return n;
}

function parseSchedule(value: string | undefined): number[] {
  if (!value) return [60, 300, 900, 1800, 3600, 7200, 14400];
  const parts = value.split(",").map((p) => Number(p.trim()));
  if (!parts.length || parts.some((n) => !Number.isFinite(n) || n < 0)) {
    throw new ConfigError(`RETRY_SCHEDULE_SECONDS must be comma-separated non-negative seconds, got ${JSON.stringify(value)}`);
  }
  return parts;
}

/** Settings of the reputation watch (issue 20), read apart from loadConfig so a bad list never stops delivery. */
export interface ReputationConfig {
  lists: DnsList[];
  /** Sending IPs the operator lists (REPUTATION_IPS): `ip` or `label=ip`, e.g. the upstream relay's egress. */
  ips: { ip: string; label: string | null }[];
  /** Extra domains to watch against domain lists (link and tracking domains); sender domains are always watched. */
  domains: string[];
  /** DNS queries per cron run, all lists together; the rest wait for the next run (oldest check first). */
  queriesPerRun: number;
  /** A (subject, list) pair is asked again after this long. */
  checkIntervalSeconds: number;
  /** Learn single ip4: addresses from the sender domains' SPF records. */
  learnSpf: boolean;
  /** Bounce-side signal: a provider is flagged when this share of its recent failures are reputation-type. */
  bounceWarnShare: number;
  bounceAlertShare: number;
  /** ... and it had at least this many failures in the window (no alarms on 1 of 2). */
  bounceMinFailures: number;
  /** DMARC and TLS reports are deleted this long after their period ended. */
  reportRetentionDays: number;
}

/** Spamhaus' free-use terms and similar lists expect modest volumes; 30 queries per 5-minute run is ~9k a day. */
export const DEFAULT_REPUTATION_QUERIES_PER_RUN = 30;
/** Listings change on the order of hours; asking each pair hourly finds one within the hour. */
export const DEFAULT_REPUTATION_CHECK_INTERVAL_SECONDS = 3600;

function share(name: string, value: string | undefined, fallback: number): number {
  if (value === undefined || value === "") return fallback;
  const n = Number(value);
  if (!Number.isFinite(n) || n <= 0 || n > 1) throw new ConfigError(`${name} must be a number above 0 and at most 1, got ${JSON.stringify(value)}`);
  return n;
}

/** Reads the REPUTATION_* settings, once per env object; throws ConfigError naming the bad one. */
export function loadReputationConfig(env: Env): ReputationConfig {
  let config = parsedReputationConfigs.get(env);
  if (!config) parsedReputationConfigs.set(env, (config = parseReputationConfig(env)));
  return config;
}

function parseReputationConfig(env: Env): ReputationConfig {
  let lists: DnsList[];
  try {
    lists = parseDnsLists((env as { REPUTATION_LISTS?: string }).REPUTATION_LISTS);
  } catch (err) {
    throw new ConfigError(err instanceof Error ? err.message : String(err));
  }
  const ips = ((env as { REPUTATION_IPS?: string }).REPUTATION_IPS ?? "")
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((entry) => {
      const eq = entry.lastIndexOf("=");
      const ip = entry.slice(eq + 1);
      const label = eq > 0 ? entry.slice(0, eq) : null;
      if (!isIpv4(ip) || (label !== null && !/^[\w.:-]{1,64}$/.test(label))) throw new ConfigError(`REPUTATION_IPS: ${JSON.stringify(entry)} is not an IPv4 address or label=address`);
      return { ip, label };
    });
  const domains = ((env as { REPUTATION_DOMAINS?: string }).REPUTATION_DOMAINS ?? "")
    .split(/[\s,]+/)
    .filter(Boolean)
    .map((d) => {
      const v = d.toLowerCase().replace(/\.$/, "");
      if (!isDomainName(v, { maxLength: 200, letterTld: true })) throw new ConfigError(`REPUTATION_DOMAINS: ${JSON.stringify(d)} is not a domain`);
      return v;
    });
  const warn = share("REPUTATION_BOUNCE_WARN_SHARE", (env as { REPUTATION_BOUNCE_WARN_SHARE?: string }).REPUTATION_BOUNCE_WARN_SHARE, 0.1);
  return {
    lists,
    ips,
    domains,
    queriesPerRun: positiveInt("REPUTATION_QUERIES_PER_RUN", (env as { REPUTATION_QUERIES_PER_RUN?: string }).REPUTATION_QUERIES_PER_RUN, DEFAULT_REPUTATION_QUERIES_PER_RUN),
    checkIntervalSeconds: positiveInt("REPUTATION_CHECK_INTERVAL_SECONDS", (env as { REPUTATION_CHECK_INTERVAL_SECONDS?: string }).REPUTATION_CHECK_INTERVAL_SECONDS, DEFAULT_REPUTATION_CHECK_INTERVAL_SECONDS),
    learnSpf: ((env as { REPUTATION_LEARN_SPF?: string }).REPUTATION_LEARN_SPF ?? "true").toLowerCase() !== "false",
    bounceWarnShare: warn,
    bounceAlertShare: Math.max(warn, share("REPUTATION_BOUNCE_ALERT_SHARE", (env as { REPUTATION_BOUNCE_ALERT_SHARE?: string }).REPUTATION_BOUNCE_ALERT_SHARE, 0.25)),
    bounceMinFailures: positiveInt("REPUTATION_BOUNCE_MIN_FAILURES", (env as { REPUTATION_BOUNCE_MIN_FAILURES?: string }).REPUTATION_BOUNCE_MIN_FAILURES, 20),
    reportRetentionDays: positiveInt("REPUTATION_REPORT_RETENTION_DAYS", (env as { REPUTATION_REPORT_RETENTION_DAYS?: string }).REPUTATION_REPORT_RETENTION_DAYS, 180),
  };
}

/** The control plane's D1 binding: tenants, keys, settings, and the ledger of tenants placed before shards existed. */
export const CONTROL_DB_BINDING = "DB";

/**
 * The D1 bindings holding the per-message ledger, from LEDGER_SHARDS (comma-separated binding names, default
 * "DB"): each must be a D1 binding of this Worker, listed once. The order is the tie-break of placement.
 */
export function ledgerShardNames(env: Env): string[] {
  const names = (env.LEDGER_SHARDS ?? CONTROL_DB_BINDING)
    .split(",")
    .map((s) => s.trim())
    .filter(Boolean);
  if (!names.length) throw new ConfigError("LEDGER_SHARDS must name at least one D1 binding");
  const seen = new Set<string>();
  for (const name of names) {
    if (!/^[A-Za-z_][A-Za-z0-9_]{0,63}$/.test(name)) throw new ConfigError(`LEDGER_SHARDS: ${JSON.stringify(name)} is not a binding name`);
    if (seen.has(name)) throw new ConfigError(`LEDGER_SHARDS: ${name} is listed twice`);
    seen.add(name);
    const binding = (env as unknown as Record<string, { prepare?: unknown } | undefined>)[name];
    if (typeof binding?.prepare !== "function") throw new ConfigError(`LEDGER_SHARDS: ${name} is not a D1 binding of this Worker (add a [[d1_databases]] block for it)`);
  }
  return names;
}

/*
 * Secrets and settings that other modules use as given or parse with their own code (key lists, tokens, URLs):
 * read here, so that config.ts is the one module that reads env variables (bindings are not settings and are read
 * where they are used). test/unit/config-reads.test.ts holds every other module to that.
 */

/** ADMIN_TOKEN: the admin API's bearer token and the reporting page's sign-in; unset, both are closed. */
export function adminToken(env: Env): string | undefined {
  return env.ADMIN_TOKEN || undefined;
}

/** SIGNING_SECRET as set, or undefined (the page's session cookies fall back to ADMIN_TOKEN). */
export function signingSecretSetting(env: Env): string | undefined {
  return env.SIGNING_SECRET || undefined;
}

/** The relay's own secret for return paths and unsubscribe tokens, when configured (16 characters at least). */
export function signingSecret(env: Env): string | null {
  return env.SIGNING_SECRET && env.SIGNING_SECRET.length >= 16 ? env.SIGNING_SECRET : null;
}

/** PUBLIC_BASE_URL as set (links in mail), or undefined. */
export function publicBaseUrlSetting(env: Env): string | undefined {
  return env.PUBLIC_BASE_URL || undefined;
}

/** TRACKING_BASE_URL, trimmed, or undefined. */
export function trackingBaseUrlSetting(env: Env): string | undefined {
  return env.TRACKING_BASE_URL?.trim() || undefined;
}

/** The DKIM_KEYS secret (JSON; parsed by src/accept/dkim-keys.ts), or undefined. */
export function dkimKeysSecret(env: Env): string | undefined {
  return env.DKIM_KEYS;
}

/** SPF_INCLUDE: the include: mechanisms to publish in a sending domain's SPF record; null when unset. */
export function spfIncludes(env: Env): string[] | null {
  return env.SPF_INCLUDE ? env.SPF_INCLUDE.split(",").map((s) => s.trim()) : null;
}

/** BODY_ENCRYPTION_KEYS (parsed by src/store/body-crypto.ts), or undefined when unset or blank. */
export function bodyEncryptionKeysSecret(env: Env): string | undefined {
  const v = (env as { BODY_ENCRYPTION_KEYS?: string }).BODY_ENCRYPTION_KEYS;
  return v && v.trim() ? v : undefined;
}

/** NEXT_HOP_URL as written (routes without their own URL fall back to it). */
export function nextHopUrl(env: Env): string {
  return env.NEXT_HOP_URL;
}

/** Only secrets with this prefix may be referenced from a route URL, so a route cannot exfiltrate ADMIN_TOKEN. */
export const ROUTE_SECRET_PREFIX = "SMTP_";

/** The value of a route secret (`${SMTP_...}` in a route URL), or undefined when the name or the secret is not one. */
export function routeSecret(env: Env, name: string): string | undefined {
  const v = (env as unknown as Record<string, unknown>)[name];
  return name.startsWith(ROUTE_SECRET_PREFIX) && typeof v === "string" ? v : undefined;
}

/** True when the Worker runs with METERING="1" (the benchmark's counters, src/metering.ts). */
export function meteringEnabled(env: unknown): boolean {
  return (env as { METERING?: unknown } | null)?.METERING === "1";
}

/** The metering endpoint's token: ADMIN_TOKEN, read from an env of any shape. */
export function meteringToken(env: unknown): string | undefined {
  return (env as { ADMIN_TOKEN?: string } | null)?.ADMIN_TOKEN || undefined;
}

/** Cloudflare Access in front of the reporting page: its team domain and application audience. */
export interface AccessSettings {
  teamDomain: string;
  aud: string;
}

/** Access settings from the env, or null when Access is not configured (then the admin-token login is used). */
export function accessSettings(env: Env): AccessSettings | null {
  const vars = env as unknown as Record<string, unknown>;
  const teamDomain = vars.ACCESS_TEAM_DOMAIN;
  const aud = vars.ACCESS_AUD;
  if (typeof teamDomain !== "string" || !teamDomain || typeof aud !== "string" || !aud) return null;
  return { teamDomain: teamDomain.replace(/^https?:\/\//, "").replace(/\/$/, ""), aud };
}

/** Default webhook retry delays (s): 10 retries add up to about a day (86,070 s), then the DLQ records failure. */
export const DEFAULT_WEBHOOK_RETRY_SCHEDULE_S = [10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 28800];

/** WEBHOOK_RETRY_SCHEDULE_SECONDS: delays before webhook retries 1, 2, ... (the last repeats). */
export function webhookRetrySchedule(env: { WEBHOOK_RETRY_SCHEDULE_SECONDS?: string }): number[] {
  const raw = env.WEBHOOK_RETRY_SCHEDULE_SECONDS;
  if (!raw) return DEFAULT_WEBHOOK_RETRY_SCHEDULE_S;
  const parts = raw.split(",").map((p) => Number(p.trim()));
  if (!parts.length || parts.some((n) => !Number.isFinite(n) || n < 0)) {
    throw new ConfigError(`WEBHOOK_RETRY_SCHEDULE_SECONDS must be comma-separated non-negative seconds, got ${JSON.stringify(raw)}`);
  }
  return parts;
}
