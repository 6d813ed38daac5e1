/**
 * Cost per million messages on Cloudflare: the billable operations counted in a bench phase (src/metering.ts),
 * per delivered message, times the published prices in bench/prices.json.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { round } from "./stats.mjs";

export function loadPrices(root) {
  return JSON.parse(readFileSync(join(root, "bench/prices.json"), "utf8"));
}

/** Sums counters whose metric (the part after the last ".") matches `metric` exactly, over every code path. */
function total(counters, metric) {
  let n = 0;
  for (const [k, v] of Object.entries(counters)) if (k.slice(k.lastIndexOf(".") + 1) === metric) n += v;
  return n;
}

/** Per-table split of a `d1_rows_written:<table>` style metric, largest first. */
function byTable(counters, prefix, messages) {
  const out = {};
  for (const [k, v] of Object.entries(counters)) {
    const metric = k.slice(k.lastIndexOf(".") + 1);
    if (!metric.startsWith(`${prefix}:`)) continue;
    const table = metric.slice(prefix.length + 1);
    out[table] = (out[table] ?? 0) + v;
  }
  return Object.fromEntries(
    Object.entries(out)
      .filter(([, v]) => v > 0)
      .sort((a, b) => b[1] - a[1])
      .map(([t, v]) => [t, round(v / messages, 2)]),
  );
}

/** Per code path share of a metric (http:POST /v1/messages, queue:..., do:...). */
function byPath(counters, metric, messages) {
  const out = {};
  for (const [k, v] of Object.entries(counters)) {
    const i = k.lastIndexOf(".");
    if (k.slice(i + 1) !== metric || !v) continue;
    out[k.slice(0, i)] = round(v / messages, 3);
  }
  return out;
}

/** The cost of one phase; null when the phase has no counters (a build without src/metering.ts). */
export function phaseCost(prices, phase) {
  const c = phase?.metering;
  if (!c || !phase.delivered) return null;
  const n = phase.delivered;
  const p = prices.items;
  const perMessage = {
    workers_requests: total(c, "worker_requests") / n,
    workers_cpu_ms: phase.runtime_cpu_seconds_per_1000, // ms per message = s per 1,000 messages
    queues_operations: (total(c, "queue_writes") + total(c, "queue_reads") + total(c, "queue_deletes")) / n,
    d1_rows_read: total(c, "d1_rows_read") / n,
    d1_rows_written: total(c, "d1_rows_written") / n,
    do_requests: total(c, "do_requests") / n,
    do_duration_gb_s: total(c, "do_gb_ms") / 1000 / n,
    do_sql_rows_read: total(c, "do_sql_rows_read") / n,
    do_sql_rows_written: total(c, "do_sql_rows_written") / n,
    r2_class_a: total(c, "r2_class_a") / n,
    r2_class_b: total(c, "r2_class_b") / n,
  };
  const labels = {
    workers_requests: "Worker requests (HTTP + queue invocations)",
    workers_cpu_ms: "Worker CPU ms (workerd process, upper bound)",
    queues_operations: "Queue operations (write+read+delete)",
    d1_rows_read: "D1 rows read",
    d1_rows_written: "D1 rows written",
    do_requests: "Durable Object requests",
    do_duration_gb_s: "Durable Object duration (GB-s)",
    do_sql_rows_read: "Durable Object SQLite rows read",
    do_sql_rows_written: "Durable Object SQLite rows written",
    r2_class_a: "R2 class A operations",
    r2_class_b: "R2 class B operations",
  };
  const breakdown = Object.entries(perMessage).map(([item, q]) => ({
    item: labels[item],
    key: item,
    per_message: round(q, 4),
    usd_per_million: (q * 1e6 * p[item].usd) / p[item].per,
  }));
  const totalUsd = breakdown.reduce((s, b) => s + b.usd_per_million, 0);
  return {
    phase: phase.name,
    messages: n,
    total_usd: round(totalUsd, 4),
    breakdown: breakdown.map((b) => ({ ...b, usd_per_million: round(b.usd_per_million, 4) })),
    d1_rows_written_per_message_by_table: byTable(c, "d1_rows_written", n),
    d1_rows_read_per_message_by_table: byTable(c, "d1_rows_read", n),
    d1_rows_written_per_message_by_path: byPath(c, "d1_rows_written", n),
  };
}

/** Cost of the single-message phase (the basis) and of the batch phase, with the prices' provenance. */
export function estimateCost(prices, relay) {
  const single = phaseCost(prices, relay?.phases.find((p) => p.name === "single"));
  if (!single) return null;
  const batch = phaseCost(prices, relay?.phases.find((p) => p.name === "batch"));
  return {
    basis: "counted operations of the one-message-per-request phase, per delivered message",
    total_usd: single.total_usd,
    breakdown: single.breakdown,
    d1_rows_written_per_message_by_table: single.d1_rows_written_per_message_by_table,
    d1_rows_read_per_message_by_table: single.d1_rows_read_per_message_by_table,
    d1_rows_written_per_message_by_path: single.d1_rows_written_per_message_by_path,
    batch_total_usd: batch?.total_usd ?? null,
    batch_breakdown: batch?.breakdown ?? null,
    batch_d1_rows_written_per_message_by_table: batch?.d1_rows_written_per_message_by_table ?? null,
    prices_source: `bench/prices.json (${prices.plan}; retrieved ${prices.retrieved})`,
    cpu_note: "CPU is the workerd process's user+system time, which also runs the local D1, Queues, R2 and Durable Object simulators: an upper bound of billed Worker CPU.",
  };
}
