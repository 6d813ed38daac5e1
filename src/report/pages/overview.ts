/** Overview: totals, rates against thresholds, the time series, latency percentiles and queue health. */
import { html } from "hono/html";
import {
  deliveryRates,
  quantile,
  queueHealth,
  RATE_THRESHOLDS,
  REPORT_WINDOWS,
  windowLatency,
  windowSeries,
  windowTotals,
  type ReportWindow,
  type TenantScope,
} from "../../store/report";
import { rollupFreshness } from "../../store/rollup-freshness";
import { seriesChart } from "../chart";
import { freshnessNote, shardsNote } from "../freshness";
import { across, mergeFreshness, mergeQueueHealth, sumCounts, sumHistograms, sumSeries } from "../shards";
import type { LedgerShard } from "../../store/shards";
import { fmtAgo, fmtCount, fmtDuration, fmtRate, fmtTime } from "../format";
import { href, type Html } from "../layout";

const WINDOW_LABELS: Record<ReportWindow, string> = { "1h": "Last hour", "24h": "Last 24 hours", "7d": "Last 7 days", "30d": "Last 30 days" };

export function windowPicker(path: string, tenant: string, current: ReportWindow): Html {
  return html`<nav class="seg" aria-label="Time window">${REPORT_WINDOWS.map(
    (w) => html`<a href="${href(path, tenant, { window: w })}" aria-current="${w === current ? "true" : "false"}">${w}</a>`,
  )}</nav>`;
}

function rateRow(label: string, value: number | null, ok: boolean | null, target: string, failing = "over threshold"): Html {
  const badge = ok === null ? html`<span class="badge">no data</span>` : ok ? html`<span class="badge ok">ok</span>` : html`<span class="badge bad">${failing}</span>`;
  return html`<div class="rate"><div><div>${label}</div><div class="muted">${target}</div></div><div><span class="v">${fmtRate(value)}</span> ${badge}</div></div>`;
}

export async function overviewPage(shards: readonly LedgerShard[], tenant: TenantScope, window: ReportWindow, now = Date.now()): Promise<Html> {
  // Every shard in parallel (issue 17), each answering its five reads in parallel too.
  const parts = await across(shards, (db) =>
    Promise.all([windowTotals(db, tenant, window, now), windowSeries(db, tenant, window, now), windowLatency(db, tenant, window, now), queueHealth(db, tenant), rollupFreshness(db, now)]),
  );
  const totals = sumCounts(parts.values.map((p) => p[0]));
  const series = sumSeries(parts.values.map((p) => p[1]));
  const latency = sumHistograms(parts.values.map((p) => p[2]));
  const queue = mergeQueueHealth(parts.values.map((p) => p[3]));
  const freshness = mergeFreshness(parts.values.map((p) => p[4]), now);
  const rates = deliveryRates(totals);
  const card = (label: string, type: string, sub: string) =>
    html`<div class="card" data-metric="${type}"><div class="label">${label}</div><div class="value">${fmtCount(totals[type])}</div><div class="sub">${sub}</div></div>`;
  const oldest = queue.oldestPending;
  return html`<div class="head"><h1>Overview <span class="muted">· ${WINDOW_LABELS[window]}</span></h1>${windowPicker("/dashboard", tenant, window)}</div>
  ${shardsNote(parts.failed)}${freshnessNote(freshness)}
  <div class="cards">
    ${card("Accepted", "accepted", "messages")}
    ${card("Delivered", "delivered", "recipients")}
    ${card("Deferred", "deferred", "attempts, retried")}
    ${card("Bounced", "bounced", "permanent failures")}
    ${card("Complained", "complained", "spam reports")}
    ${card("Suppressed", "suppressed", "not sent")}
  </div>
  <section class="panel" aria-labelledby="h-chart"><h2 id="h-chart">Delivery outcomes over time</h2>${seriesChart(series, `Outcomes per step, ${WINDOW_LABELS[window].toLowerCase()}`)}</section>
  <div class="grid2">
    <section class="panel" aria-labelledby="h-rates"><h2 id="h-rates">Rates</h2>
      ${rateRow("Delivery rate", rates.delivery, rates.delivery === null ? null : rates.delivery > RATE_THRESHOLDS.deliveryMin, "target above 95%", "below target")}
      ${rateRow("Hard bounce rate", rates.bounce, rates.bounce === null ? null : rates.bounce < RATE_THRESHOLDS.bounceMax, "keep below 2%")}
      ${rateRow("Complaint rate", rates.complaint, rates.complaint === null ? null : rates.complaint < RATE_THRESHOLDS.complaintMax, "keep below 0.1%")}
      <div class="rate"><div><div>Deferral rate</div><div class="muted">temporary failures per attempt</div></div><div><span class="v">${fmtRate(rates.deferral)}</span></div></div>
    </section>
    <section class="panel" aria-labelledby="h-latency"><h2 id="h-latency">Accept to delivery</h2>
      <div class="rate"><div>Median</div><div class="v" data-metric="p50">${fmtDuration(quantile(latency, 0.5))}</div></div>
      <div class="rate"><div>95th percentile</div><div class="v" data-metric="p95">${fmtDuration(quantile(latency, 0.95))}</div></div>
      <div class="rate"><div>Delivered recipients measured</div><div class="v">${fmtCount(latency.total)}</div></div>
      <p class="muted">From a histogram of delivery times; precise to its bucket bounds.</p>
    </section>
  </div>
  <section class="panel" aria-labelledby="h-queue"><h2 id="h-queue">Queue health</h2>
    <div class="cards">
      <div class="card" data-metric="queue-queued"><div class="label">Queued</div><div class="value">${fmtCount(queue.queued)}</div><div class="sub">waiting for a first attempt</div></div>
      <div class="card" data-metric="queue-deferred"><div class="label">Deferred backlog</div><div class="value">${fmtCount(queue.deferred)}</div><div class="sub">waiting for a retry</div></div>
      <div class="card"><div class="label">Oldest pending</div><div class="value">${oldest ? fmtAgo(oldest.acceptedAt, now) : "—"}</div><div class="sub">${oldest ? html`<a href="${href(`/dashboard/messages/${encodeURIComponent(oldest.messageId)}`, tenant)}">${oldest.address}</a>` : "nothing pending"}</div></div>
    </div>
    ${oldest
      ? html`<p class="muted">Oldest pending recipient: ${oldest.address}, ${oldest.status}, ${fmtCount(oldest.attempts)} attempts, accepted ${fmtTime(oldest.acceptedAt)} UTC${oldest.lastText ? html`; last reply: <span class="mono">${oldest.lastText}</span>` : ""}${oldest.nextAttemptAt ? html`; next attempt ${fmtTime(oldest.nextAttemptAt)} UTC` : ""}.</p>`
      : ""}
    ${queue.deferredByDomain.length
      ? html`<div class="table-wrap"><table><caption class="muted">Deferred recipients by domain</caption><thead><tr><th>Domain</th><th class="num">Deferred</th></tr></thead><tbody>
          ${queue.deferredByDomain.map((d) => html`<tr><td>${d.domain}</td><td class="num">${fmtCount(d.n)}</td></tr>`)}
        </tbody></table></div>`
      : ""}
  </section>`;
}
