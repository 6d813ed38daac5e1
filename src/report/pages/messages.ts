/** Messages: search by id, recipient, sender, tag, status or stream; a message's page with its timeline. */
import { html } from "hono/html";
import { getMessage } from "../../store/messages";
import { isRedactedValue } from "../../store/redaction";
import { ADDRESS_SEARCH_FIELDS, SEARCH_FIELDS, SEARCH_LIMIT, searchMessages, type SearchField } from "../../store/report-messages";
import { ALL_TENANTS, type TenantScope } from "../../store/report";
import { rollupFreshness } from "../../store/rollup-freshness";
import { freshnessNote, shardsNote } from "../freshness";
import { across, mergeFreshness, newestFirst } from "../shards";
import { findOnShards, type LedgerShard } from "../../store/shards";
import { fmtCount, fmtTimeSeconds } from "../format";
import { href, type Html } from "../layout";

const FIELD_LABELS: Record<SearchField, string> = { id: "Message id", recipient: "Recipient", sender: "Sender", tag: "Tag", status: "Status", stream: "Stream" };

/** Marks a record whose subject and addresses were redacted (issue 21). */
const redactedBadge = html`<span class="badge" title="subject and addresses redacted (data minimisation)">redacted</span>`;

export function statusBadge(status: string): Html {
  return html`<span class="badge st-${status.replace(/[^a-z_]/g, "")}">${status.replace(/_/g, " ")}</span>`;
}

/** Guesses the field of a bare search term: an address is a recipient, a status word a status, a 21-char id an id, else a tag. */
const STATUSES = ["queued", "deferred", "delivered", "bounced", "expired", "suppressed", "failed"];

export function guessField(term: string): SearchField | null {
  if (!term) return null;
  if (term.includes("@")) return "recipient";
  if (STATUSES.includes(term.toLowerCase())) return "status";
  if (["transactional", "broadcast"].includes(term.toLowerCase())) return "stream";
  if (/^[0-9a-z]{21}$/.test(term)) return "id";
  return "tag";
}

/**
 * The search and its results. `hashKey` gives REDACTION_HASH_KEY, read only for a search by address (so a bad key
 * fails only those searches): with it they also find messages redacted in mode `hash` (issue 21).
 */
export async function messagesPage(shards: readonly LedgerShard[], tenant: TenantScope, fieldParam: string, termParam: string, hashKey: () => string | null): Promise<Html> {
  const term = termParam.trim().slice(0, 320);
  const field = (SEARCH_FIELDS as readonly string[]).includes(fieldParam) ? (fieldParam as SearchField) : guessField(term);
  const key = term && field && ADDRESS_SEARCH_FIELDS.includes(field) ? hashKey() : null;
  const byTag = Boolean(term) && field === "tag";
  // Each shard searched in parallel (issue 17), the newest of all kept (message ids are time-ordered).
  const parts = await across(shards, (db) =>
    Promise.all([
      searchMessages(db, tenant, term ? field : null, term, key),
      // The tag index is filled by the rollups, so a tag search is as current as they are.
      byTag ? rollupFreshness(db) : null,
    ]),
  );
  const results = newestFirst(parts.values.map((p) => p[0]), (m) => m.id, SEARCH_LIMIT);
  const fresh = parts.values.flatMap((p) => (p[1] ? [p[1]] : []));
  const freshness = byTag ? mergeFreshness(fresh) : null;
  return html`<div class="head"><h1>Messages</h1></div>
  <section class="panel"><form class="formrow" id="message-search" method="get" action="/dashboard/messages" role="search" aria-label="Search messages">
    ${tenant !== ALL_TENANTS ? html`<input type="hidden" name="tenant" value="${tenant}">` : ""}
    <label>Search by<select name="field">${SEARCH_FIELDS.map((f) => html`<option value="${f}" ${f === field ? "selected" : ""}>${FIELD_LABELS[f]}</option>`)}</select></label>
    <label>Value<input type="search" name="q" value="${term}" placeholder="id, address, tag, status or stream" size="34"></label>
    <button type="submit">Search</button>
  </form></section>
  ${shardsNote(parts.failed)}${freshness ? freshnessNote(freshness) : ""}
  <section class="panel" aria-labelledby="h-results"><h2 id="h-results">${term && field ? html`${fmtCount(results.length)} found for ${FIELD_LABELS[field].toLowerCase()} “${term}”` : "Newest messages"}</h2>
  ${results.length
    ? html`<div class="table-wrap"><table><thead><tr><th>Accepted (UTC)</th><th>Status</th><th>From</th><th>To</th><th>Subject</th><th>Tenant</th></tr></thead><tbody>
      ${results.map(
        (m) => html`<tr><td class="mono nowrap"><a href="${href(`/dashboard/messages/${encodeURIComponent(m.id)}`, tenant)}">${fmtTimeSeconds(m.createdAt)}</a></td><td>${statusBadge(m.status)}</td><td class="mono">${m.headerFrom ?? html`<span class="muted" title="envelope sender">${m.mailFrom}</span>`}</td><td class="mono">${m.firstRecipient ?? ""}${m.recipientCount > 1 ? html` <span class="muted">+${m.recipientCount - 1}</span>` : ""}</td><td>${isRedactedValue(m.firstRecipient) ? html`${redactedBadge} ` : ""}${m.subject ?? html`<span class="muted">(no subject)</span>`}</td><td class="mono">${m.tenantId}</td></tr>`,
      )}
      </tbody></table></div>`
    : html`<p class="muted">No messages match.</p>`}
  </section>`;
}

export async function messagePage(env: Env, shards: readonly LedgerShard[], tenant: TenantScope, id: string): Promise<Html | null> {
  // A message id names no tenant: across tenants, every shard is asked (one primary-key seek per tenant each).
  const found = await findOnShards(env, (db) => getMessage(db, id, tenant === ALL_TENANTS ? null : tenant), shards);
  const m = found?.value;
  if (!m) return null;
  return html`<div class="head"><h1>${m.subject ?? "(no subject)"}</h1>${statusBadge(m.status)}${m.redacted ? html` ${redactedBadge}` : ""}</div>
  ${m.redacted ? html`<p class="muted" id="redacted-note">Subject and addresses of this message were redacted under the tenant's data-minimisation setting: they read [redacted] or [hmac:…] (a keyed hash); addresses keep their domain.</p>` : ""}
  <div class="grid2">
    <section class="panel" aria-labelledby="h-msg"><h2 id="h-msg">Message</h2><dl class="kv">
      <dt>Id</dt><dd class="mono">${m.id}</dd>
      <dt>Tenant</dt><dd class="mono">${m.tenant_id}</dd>
      <dt>From header</dt><dd class="mono">${m.header_from ?? ""}</dd>
      <dt>Envelope sender (return path)</dt><dd class="mono">${m.mail_from || "<> (null sender)"}</dd>
      <dt>Message-ID</dt><dd class="mono">${m.message_id_header ?? ""}</dd>
      <dt>Accepted</dt><dd>${fmtTimeSeconds(m.created_at)} UTC</dd>
      <dt>Stream</dt><dd>${m.stream}</dd>
      <dt>Size</dt><dd>${fmtCount(m.size_bytes)} bytes</dd>
      <dt>Tags</dt><dd>${m.tags.length ? m.tags.map((t) => html`<a class="badge" href="${href("/dashboard/messages", tenant, { field: "tag", q: t })}">${t}</a> `) : html`<span class="muted">none</span>`}</dd>
    </dl></section>
    <section class="panel" aria-labelledby="h-rcpt"><h2 id="h-rcpt">Recipients</h2><div class="table-wrap"><table>
      <thead><tr><th>Address</th><th>Status</th><th class="num">Attempts</th><th>Last reply</th></tr></thead><tbody>
      ${m.recipients.map(
        (r) => html`<tr><td class="mono">${r.address}</td><td>${statusBadge(r.status)}</td><td class="num">${r.attempts}</td><td class="mono">${r.last_code ?? ""} ${r.last_enhanced ?? ""} ${r.last_text ?? ""}</td></tr>`,
      )}
      </tbody></table></div></section>
  </div>
  <section class="panel" aria-labelledby="h-timeline"><h2 id="h-timeline">Timeline</h2><ol class="timeline">
    ${m.events.map(
      (e) => html`<li><time datetime="${e.at}" class="mono">${fmtTimeSeconds(e.at)}</time><div>${statusBadge(e.type)}</div><div>
        ${e.recipient ? html`<div class="mono">${e.recipient}</div>` : ""}
        ${e.code !== null || e.text ? html`<div class="mono">${e.code ?? ""} ${e.enhanced ?? ""} ${e.text ?? ""}</div>` : ""}
        <div class="muted">${[
          e.attempt !== null ? `attempt ${e.attempt}` : "",
          e.host ? `next hop ${e.host}` : "",
          e.tls === null ? "" : e.tls ? "TLS" : "no TLS",
          e.latency_ms !== null ? `${e.latency_ms} ms` : "",
          e.seq !== null ? `gate seq ${e.seq}` : "",
        ]
          .filter(Boolean)
          .join(" · ")}</div></div></li>`,
    )}
  </ol></section>
  <p><a href="${href("/dashboard/messages", tenant)}">← All messages</a></p>`;
}
