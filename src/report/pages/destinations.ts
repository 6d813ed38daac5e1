/** Destinations: per recipient domain and per next hop, with the DomainGate's state for the busiest domains. */
import { html } from "hono/html";
import { destinations, type DestinationRow, type ReportWindow, type TenantScope } from "../../store/report";
import { rollupFreshness } from "../../store/rollup-freshness";
import { fmtCount, fmtDuration, fmtRate } from "../format";
import { freshnessNote, shardsNote } from "../freshness";
import { across, mergeDestinations, mergeFreshness } from "../shards";
import type { LedgerShard } from "../../store/shards";
import { href, type Html } from "../layout";
import { windowPicker } from "./overview";

/** Gate state is fetched for this many domains (one Durable Object call each). */
const GATE_LOOKUPS = 15;
const GATE_TIMEOUT_MS = 1_000;

interface GateSummary {
  rate: string;
  paused: string | null;
  circuit: string;
}

/** The DomainGate's state over RPC; null (shown as "—") when the gate has no state method or does not answer. */
async function gateSummary(env: Env, domain: string): Promise<GateSummary | null> {
  try {
    const stub = env.DOMAIN_GATE.get(env.DOMAIN_GATE.idFromName(domain)) as unknown as { state(): Promise<unknown> };
    const timeout = new Promise<null>((r) => setTimeout(() => r(null), GATE_TIMEOUT_MS));
    const s = await Promise.race([stub.state(), timeout]);
    if (typeof s !== "object" || s === null) return null;
    const st = s as Record<string, unknown>;
    const rate = typeof st.effectiveRatePerSecond === "number" ? `${st.effectiveRatePerSecond.toFixed(st.effectiveRatePerSecond < 10 ? 1 : 0)}/s` : "—";
    return {
      rate,
      paused: typeof st.pausedUntil === "string" ? st.pausedUntil : null,
      circuit: typeof st.circuit === "string" ? st.circuit : "—",
    };
  } catch (e) {
    console.warn("dashboard: no DomainGate state for", domain, String(e));
    return null;
  }
}

function table(rows: DestinationRow[], level: "domain" | "route", gates: Map<string, GateSummary | null>): Html {
  if (!rows.length) return html`<p class="muted">Nothing in this window.</p>`;
  return html`<div class="table-wrap"><table>
    <thead><tr><th>${level === "domain" ? "Recipient domain" : "Next hop"}</th><th class="num">${level === "domain" ? "Recipients" : "Attempts"}</th><th class="num">Delivered</th><th class="num">Delivery rate</th><th class="num">Deferral rate</th><th class="num">Bounced</th><th class="num">Median latency</th>${level === "domain" ? html`<th>Gate</th>` : ""}</tr></thead>
    <tbody>${rows.map((r) => {
      const g = gates.get(r.key);
      const gate =
        level === "domain"
          ? html`<td>${g
              ? html`<span class="badge ${g.circuit === "open" ? "bad" : g.paused ? "warn" : "ok"}">${g.circuit === "open" ? "circuit open" : g.paused ? "paused" : "open"}</span> <span class="muted">${g.rate}${g.paused ? html`, until ${g.paused.slice(11, 19)}` : ""}</span>`
              : html`<span class="muted">—</span>`}</td>`
          : "";
      return html`<tr><td class="mono">${r.key}</td><td class="num">${fmtCount(r.volume)}</td><td class="num">${fmtCount(r.counts.delivered)}</td><td class="num">${fmtRate(r.rates.delivery)}</td><td class="num">${fmtRate(r.rates.deferral)}</td><td class="num">${fmtCount(r.counts.bounced)}</td><td class="num">${fmtDuration(r.medianLatencyMs)}</td>${gate}</tr>`;
    })}</tbody></table></div>`;
}

export async function destinationsPage(env: Env, shards: readonly LedgerShard[], tenant: TenantScope, window: ReportWindow, now = Date.now()): Promise<Html> {
  const parts = await across(shards, (db) =>
    Promise.all([destinations(db, tenant, "domain", window, 100, now), destinations(db, tenant, "route", window, 50, now), rollupFreshness(db, now)]),
  );
  const domains = mergeDestinations(parts.values.map((p) => p[0]), 100);
  const routes = mergeDestinations(parts.values.map((p) => p[1]), 50);
  const freshness = mergeFreshness(parts.values.map((p) => p[2]), now);
  const gates = new Map<string, GateSummary | null>();
  await Promise.all(domains.slice(0, GATE_LOOKUPS).map(async (d) => gates.set(d.key, await gateSummary(env, d.key))));
  return html`<div class="head"><h1>Destinations</h1>${windowPicker("/dashboard/destinations", tenant, window)}</div>
  ${shardsNote(parts.failed)}${freshnessNote(freshness)}
  <section class="panel" aria-labelledby="h-domains"><h2 id="h-domains">By recipient domain</h2>${table(domains, "domain", gates)}
    <p class="muted">Gate: the DomainGate's current state (rate, pause, circuit) for the ${GATE_LOOKUPS} busiest domains.</p></section>
  <section class="panel" aria-labelledby="h-routes"><h2 id="h-routes">By next hop</h2>${table(routes, "route", gates)}</section>
  <p class="muted"><a href="${href("/dashboard/messages", tenant, { field: "status", q: "deferred" })}">Deferred messages</a></p>`;
}
