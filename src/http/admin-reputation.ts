/**
 * Admin API for the reputation watch (behind ADMIN_TOKEN):
 * - GET /admin/reputation: every watched subject's state per list, current listings, the newest history, and
 *   the bounce-side signal per provider;
 * - GET /admin/reputation/history: listing/delisting events, newest first (cursor);
 * - POST /admin/reputation/subjects, DELETE /admin/reputation/subjects/:subject: the operator's sending IPs
 *   (per route: `label`) and extra domains;
 * - POST /admin/reputation/check: one run of the watch now (the same bounded run as the cron's);
 * - GET /admin/reputation/dmarc and /admin/reputation/tls: DMARC aggregate and TLS report summaries.
 */
import { Hono } from "hono";
import { ConfigError, loadReputationConfig } from "../config";
import { BOUNCE_SIGNAL_EVENTS, BOUNCE_SIGNAL_WINDOW_MS, bounceSignals } from "../reputation/bounce-signal";
import { runReputationWatch, SPF_LEARN_LIST, watchedSubjects } from "../reputation/monitor";
import { failureTypes } from "../reputation/tls-report";
import {
  deleteSubject,
  dmarcDomainSummaries,
  dmarcFailingSources,
  listChecks,
  putSubject,
  recentFailureEvents,
  reputationHistory,
  tlsDomainSummaries,
  type ReputationEventRow,
} from "../store/reputation";
import { requireAdmin, type AppEnv } from "./auth";
import { ReputationSubjectAdd, parseBody } from "./bodies";
import { ApiError } from "./errors";
import { limitParam, stringParam, readJsonObject } from "./request";
import { tenantExists } from "../store/tenants";
import { onEveryShard } from "../store/shards";

const TENANT = /^[a-z0-9][a-z0-9-]{0,62}$/;

function config(env: Env) {
  try {
    return loadReputationConfig(env);
  } catch (e) {
    if (e instanceof ConfigError) throw new ApiError(500, "internal_error", `reputation configuration: ${e.message}`);
    throw e;
  }
}

export function historyJson(e: ReputationEventRow) {
  return { id: e.id, type: e.type, subject: e.subject, list: e.list, codes: e.codes ? e.codes.split(",") : [], meaning: e.meaning, tenant_id: e.tenant_id, at: new Date(e.at).toISOString() };
}

function daysParam(v: string | undefined): number {
  if (v === undefined) return 7;
  if (!/^\d{1,3}$/.test(v) || Number(v) < 1 || Number(v) > 365) throw new ApiError(400, "invalid_field", "days must be 1-365", "days");
  return Number(v);
}

export const adminReputation = new Hono<AppEnv>();
adminReputation.use("/admin/reputation", requireAdmin);
adminReputation.use("/admin/reputation/*", requireAdmin);

adminReputation.get("/admin/reputation", async (c) => {
  const cfg = config(c.env);
  const now = Date.now();
  const [subjects, checks, history, failures] = await Promise.all([
    watchedSubjects(c.env.DB, cfg),
    listChecks(c.env.DB),
    reputationHistory(c.env.DB, 20),
    onEveryShard(c.env, ({ db }) => recentFailureEvents(db, now - BOUNCE_SIGNAL_WINDOW_MS, BOUNCE_SIGNAL_EVENTS)).then((r) => r.flat()),
  ]);
  // Checks of subjects no longer watched (a removed sender domain) stay in the table but are not shown.
  const watched = new Set(subjects.map((x) => x.subject));
  const current = checks.filter((k) => watched.has(k.subject));
  const bySubject = new Map<string, typeof checks>();
  for (const k of current) if (k.list !== SPF_LEARN_LIST) bySubject.set(k.subject, [...(bySubject.get(k.subject) ?? []), k]);
  const iso = (t: number | null) => (t === null ? null : new Date(t).toISOString());
  return c.json({
    lists: cfg.lists.map((l) => ({ name: l.name, zone: l.zone, kind: l.kind, blocking: l.blocking === true })),
    subjects: subjects.map((s) => ({
      subject: s.subject,
      kind: s.kind,
      label: s.label,
      tenant_id: s.tenantId,
      checks: (bySubject.get(s.subject) ?? []).map((k) => ({ list: k.list, state: k.state, codes: k.codes ? k.codes.split(",") : [], meaning: k.meaning, checked_at: iso(k.checked_at), changed_at: iso(k.changed_at), error: k.error })),
    })),
    listings: current.filter((k) => k.state === "listed").map((k) => ({ subject: k.subject, list: k.list, codes: k.codes ? k.codes.split(",") : [], meaning: k.meaning, since: iso(k.changed_at), blocking: cfg.lists.find((l) => l.name === k.list)?.blocking === true })),
    history: history.map(historyJson),
    bounce_signal: bounceSignals(failures, { warnShare: cfg.bounceWarnShare, alertShare: cfg.bounceAlertShare, minFailures: cfg.bounceMinFailures }),
  });
});

adminReputation.get("/admin/reputation/history", async (c) => {
  const limit = limitParam(c);
  const cursor = stringParam(c, "cursor", /^\d{1,15}$/, "a cursor returned by this endpoint");
  const rows = await reputationHistory(c.env.DB, limit, cursor === null ? null : Number(cursor));
  return c.json({ data: rows.map(historyJson), next_cursor: rows.length === limit ? String(rows[rows.length - 1]!.id) : null });
});

adminReputation.post("/admin/reputation/subjects", async (c) => {
  const { subject: { subject, kind }, label, tenant_id: tenantId } = parseBody(ReputationSubjectAdd, await readJsonObject(c.req.raw));
  if (tenantId && !(await tenantExists(c.env.DB, tenantId))) throw new ApiError(404, "not_found", "no such tenant", "tenant_id");
  await putSubject(c.env.DB, { subject, kind, source: "operator", label, tenant_id: tenantId });
  return c.json({ subject, kind, label, tenant_id: tenantId }, 201);
});

adminReputation.delete("/admin/reputation/subjects/:subject", async (c) => {
  const subject = c.req.param("subject").toLowerCase();
  if (!(await deleteSubject(c.env.DB, subject))) throw new ApiError(404, "not_found", "no such subject (REPUTATION_IPS, REPUTATION_DOMAINS and sender domains are removed where they are set)");
  return c.json({ subject, deleted: true });
});

adminReputation.post("/admin/reputation/check", async (c) => {
  config(c.env);
  const r = await runReputationWatch(c.env, c.var.config());
  return c.json(r);
});

adminReputation.get("/admin/reputation/dmarc", async (c) => {
  const since = Date.now() - daysParam(c.req.query("days")) * 86400_000;
  const tenant = stringParam(c, "tenant_id", TENANT, "a tenant id");
  const [domains, failing] = await Promise.all([dmarcDomainSummaries(c.env.DB, since, tenant), dmarcFailingSources(c.env.DB, since, tenant)]);
  return c.json({
    domains: domains.map((d) => ({ ...d, pass_rate: d.volume ? d.passed / d.volume : null })),
    failing_sources: failing.map((f) => ({ domain: f.domain, source_ip: f.source_ip, own: f.own === 1, volume: f.volume, failed: f.failed, dispositions: (f.dispositions ?? "").split(","), reporters: (f.reporters ?? "").split(","), dkim: JSON.parse(f.dkim ?? "[]"), spf: JSON.parse(f.spf ?? "[]") })),
  });
});

adminReputation.get("/admin/reputation/tls", async (c) => {
  const since = Date.now() - daysParam(c.req.query("days")) * 86400_000;
  const tenant = stringParam(c, "tenant_id", TENANT, "a tenant id");
  const rows = await tlsDomainSummaries(c.env.DB, since, tenant);
  return c.json({ domains: rows.map((r) => ({ policy_domain: r.policy_domain, reports: r.reports, success: r.success, failure: r.failure, failure_types: failureTypes(r.failures) })) });
});
