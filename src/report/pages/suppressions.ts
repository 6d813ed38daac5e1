/** Suppressions: list and filter live entries; add and remove them through CSRF-protected forms. */
import { html } from "hono/html";
import { listSuppressionsForReport } from "../../store/report-messages";
import { across, newestFirst } from "../shards";
import type { LedgerShard } from "../../store/shards";
import { ALL_TENANTS, type TenantScope } from "../../store/report";
import { SUPPRESSION_REASONS, SUPPRESSION_SCOPES } from "../../store/suppressions";
import { fmtCount, fmtTime } from "../format";
import { type Html } from "../layout";

/** Notices the page may show after a form post (a closed list: the query parameter never reaches the page). */
export const SUPPRESSION_NOTICES = {
  added: { text: "Suppression added.", error: false },
  removed: { text: "Suppression removed.", error: false },
  invalid: { text: "That is not a valid address, scope or tenant.", error: true },
  csrf: { text: "The form expired; try again.", error: true },
} as const;
export type SuppressionNotice = keyof typeof SUPPRESSION_NOTICES;

export async function suppressionsPage(
  shards: readonly LedgerShard[],
  tenant: TenantScope,
  tenants: { id: string; name: string }[],
  filter: string,
  csrf: string,
  notice: SuppressionNotice | null,
): Promise<Html> {
  // Suppressions live with their tenant's ledger (issue 17): every shard's newest, the newest 200 of all kept.
  const parts = await across(shards, (db) => listSuppressionsForReport(db, tenant, filter));
  const rows = newestFirst(parts.values, (r) => r.created_at, 200);
  const n = notice ? SUPPRESSION_NOTICES[notice] : null;
  const tenantField =
    tenant === ALL_TENANTS
      ? html`<label>Tenant<select name="tenant_id" required>${tenants.map((t) => html`<option value="${t.id}">${t.name} (${t.id})</option>`)}</select></label>`
      : html`<input type="hidden" name="tenant_id" value="${tenant}">`;
  return html`<div class="head"><h1>Suppressions</h1></div>
  ${n ? html`<div class="notice ${n.error ? "error" : ""}" role="status">${n.text}</div>` : ""}
  <section class="panel" aria-labelledby="h-add"><h2 id="h-add">Add a suppression</h2>
    <form class="formrow" method="post" action="/dashboard/suppressions">
      <input type="hidden" name="csrf" value="${csrf}">
      ${tenant !== ALL_TENANTS ? html`<input type="hidden" name="tenant" value="${tenant}">` : ""}
      ${tenantField}
      <label>Address<input type="email" name="address" required maxlength="320" placeholder="someone@example.net"></label>
      <label>Scope<select name="scope">${SUPPRESSION_SCOPES.map((s) => html`<option value="${s}" ${s === "all" ? "selected" : ""}>${s}</option>`)}</select></label>
      <label>Reason<select name="reason">${SUPPRESSION_REASONS.map((r) => html`<option value="${r}" ${r === "manual" ? "selected" : ""}>${r.replace(/_/g, " ")}</option>`)}</select></label>
      <label>Note<input type="text" name="detail" maxlength="200" placeholder="optional"></label>
      <button type="submit">Add</button>
    </form>
  </section>
  <section class="panel" aria-labelledby="h-list"><h2 id="h-list">${fmtCount(rows.length)} ${rows.length === 200 ? "newest " : ""}entries</h2>
    <form class="formrow" method="get" action="/dashboard/suppressions" role="search" aria-label="Filter suppressions">
      ${tenant !== ALL_TENANTS ? html`<input type="hidden" name="tenant" value="${tenant}">` : ""}
      <label>Address contains<input type="search" name="q" value="${filter}"></label><button class="secondary" type="submit">Filter</button>
    </form>
    ${rows.length
      ? html`<div class="table-wrap"><table><thead><tr><th>Address</th><th>Scope</th><th>Reason</th><th>Detail</th><th>Tenant</th><th>Added (UTC)</th><th>Expires</th><th><span class="muted">Action</span></th></tr></thead><tbody>
        ${rows.map(
          (r) => html`<tr><td class="mono">${r.address}</td><td>${r.scope}</td><td>${r.reason.replace(/_/g, " ")}</td><td>${r.detail ?? ""}</td><td class="mono">${r.tenant_id}</td><td class="mono nowrap">${fmtTime(r.created_at)}</td><td class="mono nowrap">${r.expires_at ? fmtTime(r.expires_at) : "never"}</td>
          <td><form method="post" action="/dashboard/suppressions/remove">
            <input type="hidden" name="csrf" value="${csrf}">
            ${tenant !== ALL_TENANTS ? html`<input type="hidden" name="tenant" value="${tenant}">` : ""}
            <input type="hidden" name="tenant_id" value="${r.tenant_id}"><input type="hidden" name="address" value="${r.address}"><input type="hidden" name="scope" value="${r.scope}">
            <button class="danger" type="submit" aria-label="Remove ${r.address} (${r.scope})">Remove</button></form></td></tr>`,
        )}
        </tbody></table></div>`
      : html`<p class="muted">No suppressions${filter ? " match" : ""}.</p>`}
  </section>`;
}
