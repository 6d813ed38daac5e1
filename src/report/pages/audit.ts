/** Audit trail (issue 21): the latest configuration changes, who made them and from where; every value escaped. */
import { html } from "hono/html";
import { listAudit } from "../../store/audit";
import { ALL_TENANTS, type TenantScope } from "../../store/report";
import type { Html } from "../layout";

/** Rows shown; the admin API (`GET /admin/audit`) pages through the rest. */
const AUDIT_PAGE_ROWS = 100;

export async function auditPage(db: D1Database, tenant: TenantScope): Promise<Html> {
  const rows = await listAudit(db, { limit: AUDIT_PAGE_ROWS, before: null, tenantId: tenant === ALL_TENANTS ? null : tenant });
  return html`<div class="head"><h1>Audit trail</h1></div>
  <section class="panel" aria-labelledby="h-audit"><h2 id="h-audit">Latest changes</h2>
  ${rows.length
    ? html`<div class="table-wrap"><table><thead><tr><th>Time (UTC)</th><th>Who</th><th>Change</th><th class="num">Status</th><th>Tenant</th><th>IP</th><th>Parameters</th></tr></thead><tbody>
      ${rows.map(
        (r) => html`<tr><td class="mono nowrap">${r.at.replace("T", " ").slice(0, 19)}</td><td class="mono">${r.actor}</td><td class="mono">${r.method} ${r.path}</td><td class="num"><span class="badge ${r.status < 400 ? "ok" : "bad"}">${r.status}</span></td><td class="mono">${r.tenant_id ?? "—"}</td><td class="mono">${r.ip ?? "—"}</td><td class="mono">${r.detail === null ? "" : JSON.stringify(r.detail).slice(0, 300)}</td></tr>`,
      )}</tbody></table></div>
      <p class="muted">The newest ${AUDIT_PAGE_ROWS}; <span class="mono">GET /admin/audit</span> lists all of them (secrets are never recorded).</p>`
    : html`<p class="muted">No changes recorded yet.</p>`}
  </section>`;
}
