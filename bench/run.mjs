#!/usr/bin/env node
/**
 * `npm run bench`: the whole relay on the local Workers runtime (workerd through Miniflare, no dev proxy) with
 * a local SMTP sink as its next hop. Sends --count messages (default 5,000, ~2 KB each) through the HTTP API
 * one message per request from --concurrency clients (default 20), then again through the batch endpoint, and
 * prints/writes accepted/s, delivered/s end to end, latencies, runtime CPU per 1,000 messages, peak memory, the
 * cost per million messages on Cloudflare from counted billable operations, and -- side by side in the same
 * run -- `wrangler dev` (to show what its proxy costs) and Debian's Postfix relaying to the same sink.
 *
 * Options: --count N  --concurrency N  --size BYTES  --batch-size N  --rounds N (default 3; figures are medians)
 *          --dev-count N (messages through `wrangler dev`, 0 skips it)  --no-postfix  --out FILE  --drain-timeout SECONDS
 *          --shards N (default 1): N ledger shards (DB, LEDGER_1, ...) and one tenant on each; requests take turns
 *          --tenants N (default: --shards): tenants taking turns, tenant t on shard t mod --shards (a control run)
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { estimateCost, loadPrices } from "./lib/cost.mjs";
import { consumerBreakdown, d1UsedBytes, storageFigures } from "./lib/ledger.mjs";
import { bodyText, sendRequest } from "./lib/load.mjs";
import { measurePhase } from "./lib/phase.mjs";
import { POSTFIX_SETUP, postfixRound, startPostfix } from "./lib/postfix.mjs";
import { peakRssBytes } from "./lib/procstat.mjs";
import { startRelay } from "./lib/relay.mjs";
import { startSink } from "./lib/sink.mjs";
import { workerBundleSize } from "./lib/bundle-size.mjs";
import { median, round } from "./lib/stats.mjs";

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
const ROUNDS = Math.max(1, arg("--rounds", 3));
const DRAIN_TIMEOUT_MS = arg("--drain-timeout", 300) * 1000;
const SHARDS = Math.max(1, arg("--shards", 1));
const TENANTS = Math.max(SHARDS, arg("--tenants", SHARDS));
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

/** The sender of tenant t (one tenant per ledger shard with --shards). */
const fromOf = (t) => (t === 0 ? FROM : `bench@bench${t + 1}.example`);

/** Creates the tenants (one per ledger shard, each placed on its own) and their keys; one key without --shards. */
async function setupTenant(base, token, shards, tenants) {
  const keys = [];
  for (let t = 0; t < tenants; t++) {
    const id = t === 0 ? "bench" : `bench${t + 1}`;
    const shard = tenants > 1 ? (t % shards === 0 ? "DB" : `LEDGER_${t % shards}`) : undefined;
    await admin(base, token, "/admin/tenants", { id, name: `Benchmark ${t + 1}`, domains: [fromOf(t).split("@")[1]], ...(shard ? { shard } : {}) });
    keys.push((await admin(base, token, `/admin/tenants/${id}/keys`, { name: "bench" })).key);
  }
  return tenants > 1 ? keys : keys[0];
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

/** Starts the relay in `mode`, creates the tenant and key, and warms it up (not reported). */
async function openRelay(mode, sink) {
  const persistDir = mkdtempSync(join(tmpdir(), `edge-relay-bench-${mode}-`));
  const token = `bench-admin-${randomBytes(12).toString("hex")}`;
  // Ledger shards (issue 17) on the direct runtime only; the wrangler dev comparison keeps one database.
  const shards = mode === "miniflare" ? SHARDS : 1;
  const tenants = mode === "miniflare" ? TENANTS : 1;
  const relay = await startRelay({ root, mode, vars: relayVars(sink.port, token), persistDir, shards });
  const ctx = { mode, relay, persistDir, shards, tenants, text: bodyText(SIZE - 450) }; // the relay adds ~450 bytes of headers
  try {
    ctx.key = await setupTenant(relay.url, token, shards, tenants);
    // D1 bytes before the first message: the schema, the tenant and its key (subtracted from bytes per message).
    ctx.d1BytesBefore = d1UsedBytes(persistDir);
    const meter = meterReader(relay.url, token);
    ctx.meter = (await meter()) !== null ? meter : null;
    ctx.metering = ctx.meter ? "in-process counters (src/metering.ts, METERING=1)" : "unavailable: this build has no /__metering endpoint";
    const probe = await fetch(`${relay.url}/v1/messages/batch`, { method: "POST", headers: { authorization: `Bearer ${ctx.key}`, "content-type": "application/json" }, body: "{}" });
    ctx.batchMissing = probe.status === 404 || probe.status === 405 ? `POST /v1/messages/batch answered ${probe.status}: this build has no batch endpoint` : null;
    // Warm-up: JIT, D1 page cache, the gate's Durable Object.
    ctx.warmup = await phase(ctx, sink, "warm-up", `w${mode[0]}`, WARMUP, 1);
  } catch (e) {
    await closeRelay(ctx);
    throw e;
  }
  return ctx;
}

async function closeRelay(ctx) {
  await ctx.relay.dispose();
  // D1 bytes per message (issue 16): read once the runtime closed the database (from its log when it left one).
  if (ctx.relayed) ctx.storage = storageFigures(ctx.d1BytesBefore ?? 0, d1UsedBytes(ctx.persistDir), ctx.relayed);
  rmSync(ctx.persistDir, { recursive: true, force: true });
}

function phase(ctx, sink, name, tag, count, perRequest) {
  return measurePhase({
    relay: ctx.relay,
    sink,
    key: ctx.key,
    concurrency: CONCURRENCY,
    drainTimeoutMs: DRAIN_TIMEOUT_MS,
    meter: ctx.meter,
    name,
    tag,
    count,
    perRequest,
    // Request r goes to tenant r mod tenants (load.mjs picks the key the same way).
    makeBody: (i) => sendRequest(tag, i, ctx.text, fromOf(Math.floor(i / perRequest) % ctx.tenants), RECIPIENT_DOMAIN),
  });
}

async function loggedPhase(ctx, sink, name, tag, count, perRequest) {
  process.stdout.write(`[${ctx.mode}] ${name}: ${count} messages, ${perRequest > 1 ? `${perRequest} per request, ` : ""}${CONCURRENCY} clients ... `);
  const p = await phase(ctx, sink, name, tag, count, perRequest);
  console.log(`${p.accepted_per_second} accepted/s, ${p.delivered_per_second} delivered/s${p.drained ? "" : ` -- NOT DRAINED (${p.delivered}/${p.accepted})`}`);
  return p;
}

/** Medians over rounds of the figures a phase reports. */
function medians(list) {
  const pick = (f) => median(list.map(f).filter((x) => x !== null && x !== undefined));
  return {
    rounds: list.length,
    accepted_per_second: round(pick((p) => p.accepted_per_second)),
    delivered_per_second: round(pick((p) => p.delivered_per_second)),
    request_latency_ms: list[0]?.request_latency_ms ? { p50: round(pick((p) => p.request_latency_ms.p50)), p99: round(pick((p) => p.request_latency_ms.p99)) } : undefined,
    accept_to_delivered_ms: list[0]?.accept_to_delivered_ms ? { p50: round(pick((p) => p.accept_to_delivered_ms.p50)), p99: round(pick((p) => p.accept_to_delivered_ms.p99)) } : undefined,
    cpu_seconds_per_1000: round(pick((p) => p.runtime_cpu_seconds_per_1000 ?? p.cpu_seconds_per_1000), 3),
    mean_bytes_at_sink: round(pick((p) => p.mean_bytes_at_sink), 0),
    delivered: list.reduce((s, p) => s + p.delivered, 0),
    sent: list.reduce((s, p) => s + p.sent, 0),
    duplicates: list.reduce((s, p) => s + (p.duplicates ?? 0), 0),
    all_drained: list.every((p) => p.drained),
  };
}

async function main() {
  const started = new Date();
  const m = machine();
  console.log(`Edge Relay benchmark: ${COUNT} messages of ~${SIZE} bytes, ${CONCURRENCY} concurrent clients, ${ROUNDS} round(s)`);
  console.log(`machine: ${m.nproc} x ${m.cpu_model}, ${m.ram_gb} GB RAM, Node ${m.node}`);
  const bundle = await workerBundleSize(root);
  console.log(`Worker bundle: ${round(bundle.bytes / 1024, 1)} KiB, ${round(bundle.gzip_bytes / 1024, 1)} KiB gzipped (esbuild, as run here; wrangler deploy's upload is ~11 KiB gzipped more)`);
  const sink = await startSink();
  const result = {
    bundle,
    date: started.toISOString(),
    command: `npm run bench${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`,
    machine: m,
    settings: { count: COUNT, concurrency: CONCURRENCY, size_bytes: SIZE, batch_size: BATCH_SIZE, rounds: ROUNDS, dev_count: DEV_COUNT, shards: SHARDS, tenants: TENANTS },
    setup: {
      relay: "workerd through Miniflare directly (bundled with esbuild; clients talk to workerd's own socket, no dev proxy); bindings from wrangler.toml; local D1/Queues/DO/R2 persisted in a temp dir; migrations applied",
      relay_vars: relayVars(0, "<admin token>"),
      sink: "smtp-server in its own process, answers 250 to everything",
    },
    rounds: [],
  };
  let ctx;
  let pf = null;
  try {
    ctx = await openRelay("miniflare", sink);
    result.metering = ctx.metering;
    if (ctx.batchMissing) console.log(`[miniflare] batch phase skipped: ${ctx.batchMissing}`);
    if (!flag("--no-postfix")) {
      pf = await startPostfix({ sink, concurrency: CONCURRENCY, targetBytes: ctx.warmup.mean_bytes_at_sink ?? SIZE, drainTimeoutMs: DRAIN_TIMEOUT_MS });
      if (pf.skipped) {
        result.postfix_skipped = pf.skipped;
        pf = null;
      } else {
        result.setup.postfix = `Postfix ${pf.version}: ${POSTFIX_SETUP}`;
      }
    } else {
      result.postfix_skipped = "--no-postfix";
    }
    // Rounds interleave the contenders, so a noisy neighbour hurts all of them alike.
    for (let r = 1; r <= ROUNDS; r++) {
      const one = { round: r };
      one.single = await loggedPhase(ctx, sink, "single", `s${r}`, COUNT, 1);
      if (!ctx.batchMissing) one.batch = await loggedPhase(ctx, sink, "batch", `b${r}`, COUNT, BATCH_SIZE);
      if (pf) one.postfix = await postfixRound(pf, { sink, count: COUNT, concurrency: CONCURRENCY, drainTimeoutMs: DRAIN_TIMEOUT_MS });
      result.rounds.push(one);
    }
    result.batch_skipped = ctx.batchMissing ?? undefined;
    result.peak_memory_mb = round(peakRssBytes(ctx.relay.pids()) / 2 ** 20, 1);
    ctx.relayed = WARMUP + result.rounds.reduce((n, r) => n + (r.single?.delivered ?? 0) + (r.batch?.delivered ?? 0), 0);
    result.consumer_breakdown = {
      single: consumerBreakdown(result.rounds[0]?.single?.metering ?? null),
      batch: consumerBreakdown(result.rounds[0]?.batch?.metering ?? null),
    };
    result.runtime_processes = ctx.relay.pids().length;
  } finally {
    if (ctx) await closeRelay(ctx);
    pf?.stop();
  }
  result.storage = ctx?.storage ?? null;
  try {
    if (DEV_COUNT > 0) {
      // The dev tooling's share: a fresh workerd-direct relay and a fresh `wrangler dev` relay, both up, taking
      // turns with the same load (two turns each), so both have the same database size and the same neighbours.
      const direct = await openRelay("miniflare", sink);
      let dev;
      try {
        dev = await openRelay("wrangler-dev", sink);
        const turns = { direct: [], dev: [] };
        for (let t = 1; t <= 2; t++) {
          turns.direct.push(await loggedPhase(direct, sink, "single", `x${t}`, DEV_COUNT, 1));
          turns.dev.push(await loggedPhase(dev, sink, "single", `d${t}`, DEV_COUNT, 1));
        }
        result.wrangler_dev = {
          note: "same load through a fresh workerd-direct relay and a fresh wrangler dev relay, alternating, two turns each",
          direct: medians(turns.direct),
          dev: medians(turns.dev),
          turns,
          peak_memory_mb: round(peakRssBytes(dev.relay.pids()) / 2 ** 20, 1),
          runtime_processes: dev.relay.pids().length,
        };
      } finally {
        if (dev) await closeRelay(dev);
        await closeRelay(direct);
      }
    }
  } finally {
    await sink.stop();
  }
  const rounds = result.rounds;
  result.median = {
    single: medians(rounds.map((r) => r.single)),
    ...(rounds[0]?.batch ? { batch: medians(rounds.map((r) => r.batch)) } : {}),
    ...(rounds[0]?.postfix ? { postfix: medians(rounds.map((r) => r.postfix)) } : {}),
  };
  const prices = loadPrices(root);
  const costs = rounds.map((r) => estimateCost(prices, { phases: [r.single, r.batch].filter(Boolean) })).filter(Boolean);
  // The round whose cost is the median, with its breakdown.
  costs.sort((a, b) => a.total_usd - b.total_usd);
  result.cost = costs.length ? costs[(costs.length - 1) >> 1] : null;
  result.summary = summarize(result);
  printSummary(result);
  const out = strArg("--out") ?? join(root, "bench/results", `${started.toISOString().slice(0, 10)}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(result, null, 2)}\n`);
  console.log(`\nwritten: ${out}`);
}

function summarize(r) {
  const single = r.median.single;
  const batch = r.median.batch;
  const pf = r.median.postfix;
  const dev = r.wrangler_dev?.dev;
  const devDirect = r.wrangler_dev?.direct;
  // Ratios per round (each measured side by side), then their median.
  const ratio = (f) => median(r.rounds.filter((x) => x.postfix).map((x) => f(x) / x.postfix.delivered_per_second));
  const best = (x) => Math.max(x.single.delivered_per_second, x.batch?.delivered_per_second ?? 0);
  return {
    delivered_per_second_single: single.delivered_per_second,
    delivered_per_second_batch: batch?.delivered_per_second ?? null,
    wrangler_dev_vs_direct_accept_ratio: dev ? round(dev.accepted_per_second / devDirect.accepted_per_second, 2) : null,
    wrangler_dev_vs_direct_delivered_ratio: dev ? round(dev.delivered_per_second / devDirect.delivered_per_second, 2) : null,
    wrangler_dev_vs_direct_cpu_ratio: dev ? round(dev.cpu_seconds_per_1000 / devDirect.cpu_seconds_per_1000, 2) : null,
    postfix_delivered_per_second: pf?.delivered_per_second ?? null,
    edge_relay_vs_postfix_single: pf ? round(ratio((x) => x.single.delivered_per_second), 2) : null,
    edge_relay_vs_postfix_best: pf ? round(ratio(best), 2) : null,
    postfix_target_met: pf ? ratio(best) >= 1 : null,
    cost_per_million_usd: r.cost?.total_usd ?? null,
    cost_target_met: r.cost ? r.cost.total_usd < 5 : null,
  };
}

function printSummary(r) {
  const pad = (s, n) => String(s ?? "-").padStart(n);
  const row = (label, p, cpu) =>
    console.log(
      `${label.padEnd(38)} ${pad(p.accepted_per_second, 10)} ${pad(p.delivered_per_second, 11)} ${pad(p.request_latency_ms ? `${p.request_latency_ms.p50}/${p.request_latency_ms.p99}` : "-", 18)} ${pad(p.accept_to_delivered_ms ? `${p.accept_to_delivered_ms.p50}/${p.accept_to_delivered_ms.p99}` : "-", 19)} ${pad(cpu, 9)} ${pad(`${p.delivered}/${p.sent}`, 12)}`,
    );
  console.log("");
  console.log(`medians of ${r.rounds.length} round(s)`);
  console.log(`${"run".padEnd(38)} ${pad("accepted/s", 10)} ${pad("delivered/s", 11)} ${pad("accept ms p50/p99", 18)} ${pad("to-sink ms p50/p99", 19)} ${pad("CPU s/1k", 9)} ${pad("delivered", 12)}`);
  row("edge-relay single (workerd direct)", r.median.single, r.median.single.cpu_seconds_per_1000);
  if (r.median.batch) row(`edge-relay batch of ${r.settings.batch_size} (workerd direct)`, r.median.batch, r.median.batch.cpu_seconds_per_1000);
  if (r.median.postfix) row("postfix relayhost (smtp-source)", r.median.postfix, r.median.postfix.cpu_seconds_per_1000);
  if (r.wrangler_dev) {
    row(`  ${r.settings.dev_count} msgs: workerd direct`, r.wrangler_dev.direct, r.wrangler_dev.direct.cpu_seconds_per_1000);
    row(`  ${r.settings.dev_count} msgs: wrangler dev`, r.wrangler_dev.dev, r.wrangler_dev.dev.cpu_seconds_per_1000);
  }
  if (r.batch_skipped) console.log(`batch phase skipped: ${r.batch_skipped}`);
  if (r.postfix_skipped) console.log(`postfix skipped: ${r.postfix_skipped}`);
  console.log(`peak memory (VmHWM) of workerd: ${r.peak_memory_mb} MB direct${r.wrangler_dev ? `; ${r.wrangler_dev.peak_memory_mb} MB over ${r.wrangler_dev.runtime_processes} workerd processes under wrangler dev` : ""}`);
  const s = r.summary;
  if (s.wrangler_dev_vs_direct_accept_ratio !== null) {
    console.log(
      `wrangler dev vs workerd direct (same load, alternating): ${s.wrangler_dev_vs_direct_accept_ratio}x the accept rate, ${s.wrangler_dev_vs_direct_delivered_ratio}x the delivery rate, ${s.wrangler_dev_vs_direct_cpu_ratio}x the CPU per message (its proxy worker, in a second workerd, sits in front of every request)`,
    );
  }
  if (s.postfix_delivered_per_second !== null) {
    console.log(`Edge Relay / Postfix, end to end (median of per-round ratios): ${s.edge_relay_vs_postfix_single}x single, ${s.edge_relay_vs_postfix_best}x best of single/batch -- target "at least as fast": ${s.postfix_target_met ? "MET" : "NOT MET"}`);
  }
  if (r.cost) {
    console.log(`\nCost per million ~${r.settings.size_bytes}-byte messages on Cloudflare (${r.cost.basis}):`);
    for (const line of r.cost.breakdown) console.log(`  ${line.item.padEnd(44)} ${String(line.per_message).padStart(9)} /msg  $${line.usd_per_million.toFixed(4)}`);
    console.log(`  ${"total".padEnd(44)} ${"".padStart(9)}       $${r.cost.total_usd.toFixed(4)}  -- target < $5: ${s.cost_target_met ? "MET" : "NOT MET"}`);
    if (r.cost.batch_total_usd !== null) {
      console.log(`  through the batch endpoint: $${r.cost.batch_total_usd.toFixed(4)} per million -- target < $3: ${r.cost.batch_total_usd < 3 ? "met" : "NOT MET"}`);
      for (const b of r.cost.batch_breakdown ?? []) if (b.usd_per_million >= 0.005) console.log(`    ${b.item.padEnd(45)} ${String(b.per_message).padStart(9)} /msg  $${b.usd_per_million.toFixed(4)}`);
      console.log(`    D1 rows written per message, by table: ${Object.entries(r.cost.batch_d1_rows_written_per_message_by_table ?? {}).map(([t, n]) => `${t} ${n}`).join(", ")}`);
    }
    const tables = Object.entries(r.cost.d1_rows_written_per_message_by_table).map(([t, n]) => `${t} ${n}`).join(", ");
    console.log(`  D1 rows written per message, by table: ${tables}`);
    console.log(`  prices: ${r.cost.prices_source}`);
  } else {
    console.log(`\nCost: not computed (${r.metering ?? "no metering"})`);
  }
  if (r.storage) {
    const st = r.storage;
    console.log(`\nD1 bytes per message after delivery: ${st.bytes_per_message} (target <= 400: ${st.bytes_per_message <= 400 ? "MET" : "NOT MET"}; ${st.method}); ${st.with_schema_bytes_per_message} with the schema's ${st.schema_bytes} bytes`);
    console.log(`  capacity of one 10 GB D1 database: ${st.messages_per_10gb.toLocaleString("en")} messages of history; ${st.sustained_messages_per_day_at_default_retention.toLocaleString("en")} messages/day sustained at ${st.retention_days}-day retention`);
  }
  for (const [name, b] of Object.entries(r.consumer_breakdown ?? {})) {
    if (!b) continue;
    console.log(`consumer time per batch (${name}, ${b.batches} batches): wall ${b.wall_ms_per_batch} ms = D1 ${b.d1_ms_per_batch} + DomainGate ${b.domain_gate_ms_per_batch} + SMTP ${b.smtp_ms_per_batch} + other ${b.other_ms_per_batch} ms (${b.note})`);
  }
}

await main();
