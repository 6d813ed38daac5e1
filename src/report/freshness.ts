/** The "as of" line of every page that shows counts from the rollups: when they are from, and what they miss. */
import { html } from "hono/html";
import type { RollupFreshness } from "../store/rollup-freshness";
import { PAGE_ROLLUP_EVENTS } from "../store/rollups";
import { fmtCount, fmtTimeSeconds } from "./format";
import type { Html } from "./layout";

export function freshnessNote(f: RollupFreshness): Html {
  const asOf = html`<time datetime="${new Date(f.asOf).toISOString()}">${fmtTimeSeconds(f.asOf)} UTC</time>`;
  if (f.pendingEvents === 0) {
    return html`<p class="freshness muted" data-pending="0">Counts as of ${asOf}: every event so far is counted.</p>`;
  }
  const events = f.pendingEvents === 1 ? "1 newer event is" : `${fmtCount(f.pendingEvents)} newer events are`;
  return html`<p class="freshness behind" role="status" data-pending="${f.pendingEvents}">Counts as of ${asOf}: <strong>${events} not counted yet</strong>.
    The cron trigger counts them in the background; each load of this page counts up to ${fmtCount(PAGE_ROLLUP_EVENTS)} more.</p>`;
}

/** Says which ledger shards did not answer (issue 17): the numbers on the page leave their tenants out. */
export function shardsNote(failed: readonly string[]): Html | "" {
  if (!failed.length) return "";
  return html`<p class="freshness behind" role="alert" data-failed-shards="${failed.join(",")}">Ledger shard ${failed.join(", ")} did not answer: <strong>the tenants on it are left out of this page</strong>.</p>`;
}
