/** Webhooks: the endpoints per tenant and the latest delivery attempts with their outcomes. */
import { html } from "hono/html";
import { ALL_TENANTS, type TenantScope } from "../../store/report";
import { latestAttempts, listWebhooks, parseEventTypes } from "../../store/webhooks";
import { fmtTimeSeconds } from "../format";
import { href, type Html } from "../layout";

const OUTCOME_CLASS = { delivered: "ok", retrying: "warn", failed: "bad", dropped: "" } as const;

export async function webhooksPage(db: D1Database, tenant: TenantScope): Promise<Html> {
  const scoped = tenant === ALL_TENANTS ? null : tenant;
  const [hooks, attempts] = await Promise.all([listWebhooks(db, scoped), latestAttempts(db, { tenantId: scoped }, 50)]);
  return html`<div class="head"><h1>Webhooks</h1></div>
  <section class="panel" aria-labelledby="h-endpoints"><h2 id="h-endpoints">Endpoints</h2>
  ${hooks.length
    ? html`<div class="table-wrap"><table><thead><tr><th>URL</th><th>Events</th><th>Tenant</th><th>State</th><th>Created (UTC)</th></tr></thead><tbody>
      ${hooks.map(
        (h) => html`<tr><td class="mono">${h.url}${h.description ? html`<div class="muted">${h.description}</div>` : ""}</td><td>${parseEventTypes(h.event_types).join(", ")}</td><td class="mono">${h.tenant_id}</td><td>${h.disabled_at === null ? html`<span class="badge ok">enabled</span>` : html`<span class="badge">disabled</span>`}</td><td class="mono nowrap">${fmtTimeSeconds(h.created_at)}</td></tr>`,
      )}</tbody></table></div>`
    : html`<p class="muted">No endpoints. Add one with <span class="mono">POST /admin/webhooks</span> (see docs/webhooks.md).</p>`}
  </section>
  <section class="panel" aria-labelledby="h-attempts"><h2 id="h-attempts">Latest attempts</h2>
  ${attempts.length
    ? html`<div class="table-wrap"><table><thead><tr><th>Time (UTC)</th><th>Event</th><th>Outcome</th><th class="num">Attempt</th><th class="num">HTTP</th><th class="num">Took</th><th>Message</th><th>Error</th></tr></thead><tbody>
      ${attempts.map(
        (a) => html`<tr><td class="mono nowrap">${fmtTimeSeconds(a.at)}</td><td>${a.event_type}</td><td><span class="badge ${OUTCOME_CLASS[a.outcome] ?? ""}">${a.outcome}</span></td><td class="num">${a.attempt || ""}</td><td class="num">${a.status_code ?? "—"}</td><td class="num">${a.duration_ms === null ? "—" : `${a.duration_ms} ms`}</td><td class="mono">${a.message_id ? html`<a href="${href(`/dashboard/messages/${encodeURIComponent(a.message_id)}`, tenant)}">${a.message_id}</a>` : ""}</td><td class="mono">${a.error ?? ""}</td></tr>`,
      )}</tbody></table></div>`
    : html`<p class="muted">No deliveries yet.</p>`}
  </section>`;
}
