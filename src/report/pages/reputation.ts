/**
 * Reputation: blocklist listings and their history, the bounce-side signal per provider, DMARC aggregate reports
 * per domain ("who sends as your domain", this relay's traffic apart from others) and TLS reports per receiving
 * domain. Everything shown came from strangers (report mail, DNS answers): every value goes through html``.
 */
import { html } from "hono/html";
import { loadReputationConfig, type ReputationConfig } from "../../config";
import { BOUNCE_SIGNAL_EVENTS, BOUNCE_SIGNAL_WINDOW_MS, bounceSignals } from "../../reputation/bounce-signal";
import { failureTypes } from "../../reputation/tls-report";
import { SPF_LEARN_LIST, watchedSubjects } from "../../reputation/monitor";
import type { TenantScope } from "../../store/report";
import { dmarcDomainSummaries, dmarcFailingSources, listChecks, recentFailureEvents, reputationHistory, tlsDomainSummaries, type CheckRow } from "../../store/reputation";
import { fmtCount, fmtRate, fmtTime } from "../format";
import type { Html } from "../layout";
import { across } from "../shards";
import { ledgerShards } from "../../store/shards";

/** DMARC and TLS reports are summed over this many days. */
const REPORT_DAYS = 7;

function badge(state: string, blocking: boolean): Html {
  const cls = state === "listed" ? (blocking ? "bad" : "warn") : state === "clear" ? "ok" : "";
  return html`<span class="badge ${cls}">${state}</span>`;
}

function listingsPanel(cfg: ReputationConfig, checks: CheckRow[], subjects: Awaited<ReturnType<typeof watchedSubjects>>): Html {
  const blocking = new Set(cfg.lists.filter((l) => l.blocking).map((l) => l.name));
  const listed = checks.filter((c) => c.state === "listed");
  const byKey = new Map(checks.map((c) => [`${c.subject}|${c.list}`, c]));
  const errors = checks.filter((c) => c.error && c.list !== SPF_LEARN_LIST);
  return html`<section class="panel" aria-labelledby="h-listings"><h2 id="h-listings">Blocklists</h2>
    ${listed.length
      ? html`<div class="table-wrap"><table id="listings"><thead><tr><th>Subject</th><th>List</th><th>Meaning</th><th>Codes</th><th>Listed since</th></tr></thead><tbody>
        ${listed.map((c) => html`<tr><td class="mono">${c.subject}</td><td>${badge("listed", blocking.has(c.list))} ${c.list}${blocking.has(c.list) ? " (blocking)" : ""}</td><td>${c.meaning ?? ""}</td><td class="mono">${c.codes ?? ""}</td><td>${c.changed_at ? fmtTime(c.changed_at) : "—"}</td></tr>`)}
        </tbody></table></div>`
      : html`<p>No watched IP or domain is listed.</p>`}
    <details><summary>${subjects.length} watched subjects × ${cfg.lists.length} lists</summary>
      <div class="table-wrap"><table><thead><tr><th>Subject</th><th>Why watched</th>${cfg.lists.map((l) => html`<th>${l.name}</th>`)}</tr></thead><tbody>
      ${subjects.map((s) => html`<tr><td class="mono">${s.subject}</td><td class="muted">${s.label ?? ""}</td>${cfg.lists.map((l) => {
        if (l.kind !== s.kind) return html`<td class="muted">n/a</td>`;
        const c = byKey.get(`${s.subject}|${l.name}`);
        return html`<td>${c ? badge(c.state, blocking.has(l.name)) : html`<span class="muted">not yet</span>`}</td>`;
      })}</tr>`)}
      </tbody></table></div></details>
    ${errors.length ? html`<p class="muted">Lookups that failed (state unchanged): ${errors.slice(0, 10).map((e) => html`<span class="mono">${e.subject} ${e.list}: ${e.error}</span>; `)}</p>` : ""}
  </section>`;
}

export async function reputationPage(env: Env, tenant: TenantScope, now = Date.now()): Promise<Html> {
  let cfg: ReputationConfig;
  try {
    cfg = loadReputationConfig(env);
  } catch (e) {
    return html`<h1>Reputation</h1><p role="alert">The reputation settings are not valid: ${String(e instanceof Error ? e.message : e)}</p>`;
  }
  const t = tenant === "*" ? null : tenant;
  const since = now - REPORT_DAYS * 86400_000;
  const [subjects, checks, history, failures, dmarc, failing, tls] = await Promise.all([
    watchedSubjects(env.DB, cfg),
    listChecks(env.DB),
    reputationHistory(env.DB, 20),
    // Failure events are in every ledger shard's feed (issue 17); the newest of each, together.
    across(ledgerShards(env), (db) => recentFailureEvents(db, now - BOUNCE_SIGNAL_WINDOW_MS, BOUNCE_SIGNAL_EVENTS)).then((r) => r.values.flat()),
    dmarcDomainSummaries(env.DB, since, t),
    dmarcFailingSources(env.DB, since, t, 30),
    tlsDomainSummaries(env.DB, since, t),
  ]);
  const watched = new Set(subjects.map((x) => x.subject));
  const current = checks.filter((c) => watched.has(c.subject));
  const signals = bounceSignals(failures, { warnShare: cfg.bounceWarnShare, alertShare: cfg.bounceAlertShare, minFailures: cfg.bounceMinFailures });
  return html`<div class="head"><h1>Reputation</h1></div>
  ${listingsPanel(cfg, current, subjects)}
  <section class="panel" aria-labelledby="h-history"><h2 id="h-history">Listing history</h2>
    ${history.length
      ? html`<div class="table-wrap"><table id="history"><thead><tr><th>When</th><th>Event</th><th>Subject</th><th>List</th><th>Meaning</th></tr></thead><tbody>
        ${history.map((e) => html`<tr><td>${fmtTime(e.at)}</td><td>${e.type === "reputation.listed" ? badge("listed", false) : badge("clear", false)} ${e.type}</td><td class="mono">${e.subject}</td><td>${e.list}</td><td>${e.meaning ?? ""}</td></tr>`)}
        </tbody></table></div>`
      : html`<p class="muted">No listing or delisting yet.</p>`}
  </section>
  <section class="panel" aria-labelledby="h-bounces"><h2 id="h-bounces">Bounce-side signal (last 24 h)</h2>
    ${signals.length
      ? html`<div class="table-wrap"><table id="bounce-signal"><thead><tr><th>Provider</th><th class="num">Failures</th><th class="num">Reputation-type</th><th class="num">Share</th><th>Level</th><th>Reasons</th></tr></thead><tbody>
        ${signals.map((s) => html`<tr><td class="mono">${s.provider}</td><td class="num">${fmtCount(s.failures)}</td><td class="num">${fmtCount(s.reputationFailures)}</td><td class="num">${fmtRate(s.share)}</td><td><span class="badge ${s.level === "alert" ? "bad" : s.level === "warn" ? "warn" : s.level === "ok" ? "ok" : ""}">${s.level === "few" ? "too few" : s.level}</span></td><td>${Object.entries(s.reasons).map(([r, n]) => `${r} ${n}`).join(", ")}</td></tr>`)}
        </tbody></table></div>`
      : html`<p class="muted">No failures in the last 24 hours.</p>`}
    <p class="muted">Share of failures whose reason is blocked, badreputation, spamdetected, rejected or policyviolation; warn at ${fmtRate(cfg.bounceWarnShare)}, alert at ${fmtRate(cfg.bounceAlertShare)}, from ${cfg.bounceMinFailures} failures.</p>
  </section>
  <section class="panel" aria-labelledby="h-dmarc"><h2 id="h-dmarc">DMARC aggregate reports (last ${REPORT_DAYS} days)</h2>
    ${dmarc.length
      ? html`<div class="table-wrap"><table id="dmarc-domains"><thead><tr><th>Domain</th><th class="num">Reports</th><th class="num">Authenticated</th><th class="num">Messages</th><th class="num">DMARC pass</th><th class="num">Via this relay</th><th class="num">Relay pass</th><th class="num">Others</th></tr></thead><tbody>
        ${dmarc.map((d) => html`<tr><td class="mono">${d.domain}</td><td class="num">${fmtCount(d.reports)}</td><td class="num">${fmtCount(d.authenticated_reports)}</td><td class="num">${fmtCount(d.volume)}</td><td class="num">${fmtRate(d.volume ? d.passed / d.volume : null)}</td><td class="num">${fmtCount(d.own_volume)}</td><td class="num">${fmtRate(d.own_volume ? d.own_passed / d.own_volume : null)}</td><td class="num">${fmtCount(d.volume - d.own_volume)}</td></tr>`)}
        </tbody></table></div>
        <p class="muted">Authenticated: reports whose mail passed DKIM when it reached Email Routing; anyone can mail a report, so weigh the others accordingly.</p>
        <h3>Sources failing DMARC — who sends as your domain</h3>
        ${failing.length
          ? html`<div class="table-wrap"><table id="dmarc-failing"><thead><tr><th>Domain</th><th>Source IP</th><th>Sender</th><th class="num">Failed</th><th class="num">Messages</th><th>Disposition</th><th>DKIM</th><th>SPF</th><th>Reported by</th></tr></thead><tbody>
            ${failing.map((f) => html`<tr><td class="mono">${f.domain}</td><td class="mono">${f.source_ip}</td><td>${f.own ? html`<span class="badge bad">this relay</span>` : html`<span class="badge">other</span>`}</td><td class="num">${fmtCount(f.failed)}</td><td class="num">${fmtCount(f.volume)}</td><td>${f.dispositions}</td><td class="mono">${authText(f.dkim)}</td><td class="mono">${authText(f.spf)}</td><td>${f.reporters}</td></tr>`)}
            </tbody></table></div>`
          : html`<p>Every reported source passed DMARC.</p>`}`
      : html`<p class="muted">No DMARC aggregate reports yet. Publish <span class="mono">rua=mailto:dmarc@bounces.&lt;your domain&gt;</span> (GET /v1/domains/:domain/dns shows the record).</p>`}
  </section>
  <section class="panel" aria-labelledby="h-tls"><h2 id="h-tls">TLS reports (last ${REPORT_DAYS} days)</h2>
    ${tls.length
      ? html`<div class="table-wrap"><table id="tls-domains"><thead><tr><th>Receiving domain</th><th class="num">Reports</th><th class="num">Successful sessions</th><th class="num">Failed sessions</th><th>Failure types</th></tr></thead><tbody>
        ${tls.map((r) => html`<tr><td class="mono">${r.policy_domain}</td><td class="num">${fmtCount(r.reports)}</td><td class="num">${fmtCount(r.success)}</td><td class="num">${fmtCount(r.failure)}</td><td>${Object.entries(failureTypes(r.failures)).map(([k, n]) => `${k} ${n}`).join(", ")}</td></tr>`)}
        </tbody></table></div>`
      : html`<p class="muted">No TLS reports yet. Publish <span class="mono">_smtp._tls</span> with <span class="mono">rua=mailto:tls-rpt@bounces.&lt;your domain&gt;</span>.</p>`}
  </section>`;
}

/** "example.com=pass, other.example=fail" from a stored JSON array of auth results. */
function authText(json: string | null): string {
  try {
    const a = JSON.parse(json ?? "[]") as { domain?: string; result?: string }[];
    return a.map((x) => `${x.domain ?? "?"}=${x.result ?? "?"}`).join(", ");
  } catch {
    return "";
  }
}
