#!/usr/bin/env node
/**
 * `npm run bench`: the whole relay on the local Workers runtime (workerd through Miniflare, no dev proxy) with
 * a local SMTP sink as its next hop. Sends --count messages (default 5,000, ~2 KB each) through the HTTP API
 * one message per request from --concurrency clients (default 20), then again through the batch endpoint, and
 * prints/writes accepted/s, delivered/s end to end, latencies, runtime CPU per 1,000 messages, peak memory, the
 * cost per million messages on Cloudflare from counted billable operations, and -- side by side in the same
 * run -- `wrangler dev` (to show what its proxy costs) and Debian's Postfix relaying to the same sink.
 *
 * Options: --count N  --concurrency N  --size BYTES  --batch-size N  --dev-count N (0 skips wrangler dev)
 *          --no-postfix  --out FILE  --drain-timeout SECONDS
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { estimateCost, loadPrices } from "./lib/cost.mjs";
import { bodyText, sendRequest } from "./lib/load.mjs";
import { measurePhase } from "./lib/phase.mjs";
import { runPostfixPhase } from "./lib/postfix.mjs";
import { peakRssBytes } from "./lib/procstat.mjs";
import { startRelay } from "./lib/relay.mjs";
import { startSink } from "./lib/sink.mjs";
import { round } from "./lib/stats.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");

function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  if (i < 0) return fallback;
  const v = Number(process.argv[i + 1]);
  if (!Number.isFinite(v) || v < 0) throw new Error(`${name} needs a non-negative number`);
  return v;
}
const flag = (name) => process.argv.includes(name);
const strArg = (name) => {
  const i = process.argv.indexOf(name);
  return i < 0 ? undefined : process.argv[i + 1];
};

const COUNT = arg("--count", 5000);
const CONCURRENCY = arg("--concurrency", 20);
const SIZE = arg("--size", 2048);
const BATCH_SIZE = arg("--batch-size", 100);
const DEV_COUNT = arg("--dev-count", Math.min(1000, COUNT));
const DRAIN_TIMEOUT_MS = arg("--drain-timeout", 300) * 1000;
const WARMUP = Math.min(200, Math.max(20, Math.round(COUNT / 25)));
const FROM = "bench@bench.example";
const RECIPIENT_DOMAIN = "sink.example";

/** Relay settings for the bench: the sink as next hop, and a gate policy fit for an upstream smart host. */
function relayVars(sinkPort, adminToken) {
  return {
    NEXT_HOP_URL: `smtp://127.0.0.1:${sinkPort}`,
    ADMIN_TOKEN: adminToken,
    DOH_URL: "http://127.0.0.1:9/dns-query",
    DSN_ENABLED: "false",
    // The default route's gate ("upstream:default"): a local smart host takes as much as we send, the way
    // Postfix's relayhost has no rate limit. Connections are capped by the 6-per-invocation platform limit.
    GATE_POLICIES: JSON.stringify({ "upstream:default": { ratePerSecond: 100000, burst: 10000, maxConnections: 6, maxMessagesPerConnection: 1000 } }),
    METERING: "1",
  };
}

async function admin(base, token, path, body) {
  const r = await fetch(`${base}${path}`, {
    method: "POST",
    headers: { authorization: `Bearer ${token}`, "content-type": "application/json" },
    body: JSON.stringify(body),
  });
  const json = await r.json().catch(() => ({}));
  if (r.status >= 300 && r.status !== 409) throw new Error(`${path}: ${r.status} ${JSON.stringify(json)}`);
  return json;
}

async function setupTenant(base, token) {
  await admin(base, token, "/admin/tenants", { id: "bench", name: "Benchmark", domains: ["bench.example"] });
  const { key } = await admin(base, token, "/admin/tenants/bench/keys", { name: "bench" });
  return key;
}

/** Reads the billable-operation counters (src/metering.ts) when the build has them; null otherwise. */
function meterReader(base, token) {
  return async () => {
    const r = await fetch(`${base}/__metering`, { headers: { authorization: `Bearer ${token}` } });
    if (r.status !== 200) return null;
    return r.json();
  };
}

function machine() {
  const c = cpus();
  return { nproc: c.length, cpu_model: c[0]?.model ?? "unknown", ram_gb: round(totalmem() / 2 ** 30, 1), node: process.version, platform: `${process.platform} ${process.arch}` };
}

async function relayPhases({ mode, sink, count, tag, withBatch }) {
  const persistDir = mkdtempSync(join(tmpdir(), `edge-relay-bench-${mode}-`));
  const token = `bench-admin-${randomBytes(12).toString("hex")}`;
  const relay = await startRelay({ root, mode, vars: relayVars(sink.port, token), persistDir });
  const text = bodyText(SIZE - 450); // the relay adds ~450 bytes of headers (From, To, Subject, Date, Message-ID, MIME)
  const out = { mode, url: relay.url, phases: [] };
  try {
    const key = await setupTenant(relay.url, token);
    const meter = meterReader(relay.url, token);
    const metered = (await meter()) !== null;
    out.metering = metered ? "in-process counters (src/metering.ts, METERING=1)" : "unavailable: this build has no /__metering endpoint";
    const common = { relay, sink, key, concurrency: CONCURRENCY, drainTimeoutMs: DRAIN_TIMEOUT_MS, meter: metered ? meter : null };
    // Warm-up (not reported): JIT, D1 page cache, the gate's Durable Object.
    await measurePhase({ ...common, name: "warm-up", tag: `w${tag}`, count: WARMUP, perRequest: 1, makeBody: (i) => sendRequest(`w${tag}`, i, text, FROM, RECIPIENT_DOMAIN) });
    process.stdout.write(`[${mode}] single: ${count} messages, ${CONCURRENCY} clients ... `);
    const single = await measurePhase({ ...common, name: "single", tag: `s${tag}`, count, perRequest: 1, makeBody: (i) => sendRequest(`s${tag}`, i, text, FROM, RECIPIENT_DOMAIN) });
    console.log(`${single.accepted_per_second} accepted/s, ${single.delivered_per_second} delivered/s`);
    out.phases.push(single);
    if (withBatch) {
      const probe = await fetch(`${relay.url}/v1/messages/batch`, { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body: "{}" });
      if (probe.status === 404 || probe.status === 405) {
        out.batch_skipped = `POST /v1/messages/batch answered ${probe.status}: this build has no batch endpoint`;
        console.log(`[${mode}] batch phase skipped: ${out.batch_skipped}`);
      } else {
        process.stdout.write(`[${mode}] batch: ${count} messages, ${BATCH_SIZE} per request, ${CONCURRENCY} clients ... `);
        const batch = await measurePhase({ ...common, name: "batch", tag: `b${tag}`, count, perRequest: BATCH_SIZE, makeBody: (i) => sendRequest(`b${tag}`, i, text, FROM, RECIPIENT_DOMAIN) });
        console.log(`${batch.accepted_per_second} accepted/s, ${batch.delivered_per_second} delivered/s`);
        out.phases.push(batch);
      }
    }
    out.peak_memory_mb = round(peakRssBytes(relay.pids()) / 2 ** 20, 1);
    out.runtime_processes = relay.pids().length;
  } finally {
    await relay.dispose();
    rmSync(persistDir, { recursive: true, force: true });
  }
  return out;
}

async function main() {
  const started = new Date();
  const m = machine();
  console.log(`Edge Relay benchmark: ${COUNT} messages of ~${SIZE} bytes, ${CONCURRENCY} concurrent clients`);
  console.log(`machine: ${m.nproc} x ${m.cpu_model}, ${m.ram_gb} GB RAM, Node ${m.node}`);
  const sink = await startSink();
  const result = { date: started.toISOString(), command: `npm run bench -- ${process.argv.slice(2).join(" ")}`.trim(), machine: m, settings: { count: COUNT, concurrency: CONCURRENCY, size_bytes: SIZE, batch_size: BATCH_SIZE, dev_count: DEV_COUNT } };
  try {
    result.relay = await relayPhases({ mode: "miniflare", sink, count: COUNT, tag: "m", withBatch: true });
    if (DEV_COUNT > 0) {
      result.wrangler_dev = await relayPhases({ mode: "wrangler-dev", sink, count: DEV_COUNT, tag: "d", withBatch: false });
    }
    if (!flag("--no-postfix")) {
      const targetBytes = result.relay.phases.find((p) => p.name === "single")?.mean_bytes_at_sink ?? SIZE;
      result.postfix = await runPostfixPhase({ sink, count: COUNT, concurrency: CONCURRENCY, size: SIZE, targetBytes, drainTimeoutMs: DRAIN_TIMEOUT_MS });
    }
  } finally {
    await sink.stop();
  }
  result.cost = estimateCost(loadPrices(root), result.relay);
  result.summary = summarize(result);
  printSummary(result);
  const out = strArg("--out") ?? join(root, "bench/results", `${started.toISOString().slice(0, 10)}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwritten: ${out}`);
}

function summarize(r) {
  const single = r.relay.phases.find((p) => p.name === "single");
  const batch = r.relay.phases.find((p) => p.name === "batch");
  const dev = r.wrangler_dev?.phases.find((p) => p.name === "single");
  const pf = r.postfix && !r.postfix.skipped ? r.postfix : null;
  const best = Math.max(single?.delivered_per_second ?? 0, batch?.delivered_per_second ?? 0);
  return {
    delivered_per_second_single: single?.delivered_per_second ?? null,
    delivered_per_second_batch: batch?.delivered_per_second ?? null,
    wrangler_dev_vs_direct_accept_ratio: dev && single ? round(dev.accepted_per_second / single.accepted_per_second, 2) : null,
    postfix_delivered_per_second: pf?.delivered_per_second ?? null,
    edge_relay_vs_postfix_single: pf && single ? round(single.delivered_per_second / pf.delivered_per_second, 2) : null,
    edge_relay_vs_postfix_best: pf ? round(best / pf.delivered_per_second, 2) : null,
    postfix_target_met: pf ? (single?.delivered_per_second ?? 0) >= pf.delivered_per_second : null,
    cost_per_million_usd: r.cost?.total_usd ?? null,
    cost_target_met: r.cost ? r.cost.total_usd < 5 : null,
  };
}

function printSummary(r) {
  const rows = [];
  const add = (label, p) =>
    rows.push([label, p.accepted_per_second, p.delivered_per_second, `${p.request_latency_ms.p50}/${p.request_latency_ms.p99}`, `${p.accept_to_delivered_ms.p50}/${p.accept_to_delivered_ms.p99}`, p.runtime_cpu_seconds_per_1000, `${p.delivered}/${p.accepted}`]);
  for (const p of r.relay.phases) add(`edge-relay ${p.name} (workerd direct)`, p);
  for (const p of r.wrangler_dev?.phases ?? []) add(`edge-relay ${p.name} (wrangler dev)`, p);
  const pad = (s, n) => String(s ?? "-").padStart(n);
  console.log("");
  console.log(`${"run".padEnd(36)} ${pad("accepted/s", 10)} ${pad("delivered/s", 11)} ${pad("accept ms p50/p99", 18)} ${pad("to-sink ms p50/p99", 19)} ${pad("CPU s/1k", 9)} ${pad("delivered", 11)}`);
  for (const row of rows) console.log(`${row[0].padEnd(36)} ${pad(row[1], 10)} ${pad(row[2], 11)} ${pad(row[3], 18)} ${pad(row[4], 19)} ${pad(row[5], 9)} ${pad(row[6], 11)}`);
  if (r.postfix?.skipped) console.log(`postfix: skipped (${r.postfix.skipped})`);
  else if (r.postfix) console.log(`${"postfix relayhost (smtp-source)".padEnd(36)} ${pad(r.postfix.accepted_per_second, 10)} ${pad(r.postfix.delivered_per_second, 11)} ${pad("-", 18)} ${pad("-", 19)} ${pad(r.postfix.cpu_seconds_per_1000, 9)} ${pad(`${r.postfix.delivered}/${r.postfix.sent}`, 11)}`);
  if (r.relay.batch_skipped) console.log(`batch phase skipped: ${r.relay.batch_skipped}`);
  console.log(`peak memory of workerd: ${r.relay.peak_memory_mb} MB (direct)${r.wrangler_dev ? `, ${r.wrangler_dev.peak_memory_mb} MB over ${r.wrangler_dev.runtime_processes} workerd processes (wrangler dev)` : ""}`);
  const s = r.summary;
  if (s.wrangler_dev_vs_direct_accept_ratio !== null) console.log(`wrangler dev accepts at ${s.wrangler_dev_vs_direct_accept_ratio}x the rate of workerd direct (its proxy worker sits in front)`);
  if (s.postfix_delivered_per_second !== null) {
    console.log(`Edge Relay vs Postfix, end to end: ${s.edge_relay_vs_postfix_single}x (single), ${s.edge_relay_vs_postfix_best}x (best of single/batch): target "at least as fast" ${s.postfix_target_met ? "MET" : "NOT MET"}`);
  }
  if (r.cost) {
    console.log(`\nCost per million ~${SIZE}-byte messages on Cloudflare (${r.cost.basis}):`);
    for (const line of r.cost.breakdown) console.log(`  ${line.item.padEnd(44)} ${String(line.per_message).padStart(9)} /msg  $${line.usd_per_million.toFixed(4)}`);
    console.log(`  ${"total".padEnd(44)} ${"".padStart(9)}       $${r.cost.total_usd.toFixed(4)}  target < $5: ${s.cost_target_met ? "MET" : "NOT MET"}`);
    if (r.cost.batch_total_usd !== null) console.log(`  through the batch endpoint: $${r.cost.batch_total_usd.toFixed(4)} per million`);
    const tables = Object.entries(r.cost.d1_rows_written_per_message_by_table).map(([t, n]) => `${t} ${n}`).join(", ");
    console.log(`  D1 rows written per message by table: ${tables}`);
    console.log(`  prices: ${r.cost.prices_source}`);
  }
}

await main();
