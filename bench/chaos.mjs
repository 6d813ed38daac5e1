#!/usr/bin/env node
/**
 * `npm run test:chaos`: the reliability suite. The relay (workerd via Miniflare, loopback only) delivers
 * --count messages (default 5,000) to five SMTP sinks that misbehave on purpose:
 *   flaky.example    answers 451 4.3.0 to DATA at random (15%)
 *   drop.example     closes the connection in the middle of DATA at random (10%)
 *   stall.example    stalls 3 s before answering MAIL FROM at random (5%)
 *   refuse.example   refuses recipients named nouser-* permanently (550 5.1.1), about a fifth of its recipients
 *   limited.example  accepts at most 10 MAIL FROM per second by its own clock (421 4.7.0 beyond); the relay is
 *                    told that limit through the route's gate policy
 * Every tenth message has a second recipient at another domain. Retries use a short schedule (1, 2, 4 s).
 *
 * At the end it asserts: every accepted recipient is in exactly one final state (its row is final and its
 * history holds exactly one final event, of that state); every delivered recipient is at its sink; refused
 * recipients bounced; the limited sink never saw more than its limit in any 1 s window and never had to refuse
 * for rate. It prints loss (must be 0), duplicates and the time to drain, and exits 1 on any violation or when
 * the queue does not drain within --timeout seconds (default 420).
 */
import { randomBytes } from "node:crypto";
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, totalmem } from "node:os";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { bodyText } from "./lib/load.mjs";
import { startRelay } from "./lib/relay.mjs";
import { startSink } from "./lib/sink.mjs";
import { round } from "./lib/stats.mjs";

const root = join(dirname(fileURLToPath(import.meta.url)), "..");
function arg(name, fallback) {
  const i = process.argv.indexOf(name);
  return i < 0 ? fallback : Number(process.argv[i + 1]);
}
const COUNT = arg("--count", 5000);
const CONCURRENCY = arg("--concurrency", 20);
const TIMEOUT_S = arg("--timeout", 420);
const LIMIT_PER_SECOND = 10;
const FINAL = ["delivered", "bounced", "expired", "suppressed", "failed"];

const SINKS = {
  "flaky.example": { tempFailRate: 0.15, seed: 11 },
  "drop.example": { dropRate: 0.1, seed: 12 },
  "stall.example": { stallRate: 0.05, stallMs: 3000, seed: 13 },
  "refuse.example": { refuseMatch: "nouser-", seed: 14 },
  "limited.example": { ratePerSecond: LIMIT_PER_SECOND, seed: 15 },
};
const SHARE = { "flaky.example": 0.225, "drop.example": 0.225, "stall.example": 0.225, "refuse.example": 0.225, "limited.example": 0.1 };
const UNLIMITED = ["flaky.example", "drop.example", "stall.example", "refuse.example"];

/** The recipients of message i: deterministic, so a run can be repeated. */
function recipientsOf(i) {
  const domains = Object.keys(SHARE);
  let x = (i * 0.6180339887) % 1;
  let domain = domains[domains.length - 1];
  for (const d of domains) {
    if (x < SHARE[d]) {
      domain = d;
      break;
    }
    x -= SHARE[d];
  }
  const local = domain === "refuse.example" && i % 5 === 0 ? `nouser-${i}` : `c-${i}`;
  const out = [`${local}@${domain}`];
  if (i % 10 === 3) out.push(`c-${i}-b@${UNLIMITED[(i >> 1) % UNLIMITED.length] === domain ? UNLIMITED[((i >> 1) + 1) % UNLIMITED.length] : UNLIMITED[(i >> 1) % UNLIMITED.length]}`);
  return out;
}

/** Largest number of timestamps in any window of `ms`, and the gaps (ms) between the timestamps of that window. */
function peakWindow(times, ms) {
  const t = [...times].sort((a, b) => a - b);
  let best = 0;
  let at = 0;
  let j = 0;
  for (let i = 0; i < t.length; i++) {
    while (t[i] - t[j] >= ms) j++;
    if (i - j + 1 > best) {
      best = i - j + 1;
      at = j;
    }
  }
  const gaps = t.slice(at + 1, at + best).map((x, k) => x - t[at + k]);
  return { peak: best, gaps };
}
const maxInWindow = (times, ms) => peakWindow(times, ms).peak;

async function main() {
  const started = Date.now();
  const deadline = started + TIMEOUT_S * 1000;
  console.log(`chaos: ${COUNT} messages, ${CONCURRENCY} clients, five misbehaving sinks, drain bound ${TIMEOUT_S} s`);
  const sinks = {};
  for (const [domain, behaviour] of Object.entries(SINKS)) sinks[domain] = await startSink(behaviour);
  const persistDir = mkdtempSync(join(tmpdir(), "edge-relay-chaos-"));
  const token = `chaos-admin-${randomBytes(12).toString("hex")}`;
  const violations = [];
  const summary = { date: new Date(started).toISOString(), command: `npm run test:chaos${process.argv.length > 2 ? ` -- ${process.argv.slice(2).join(" ")}` : ""}`, machine: { nproc: cpus().length, cpu_model: cpus()[0]?.model ?? "unknown", ram_gb: round(totalmem() / 2 ** 30, 1) }, sinks: SINKS };
  let relay;
  try {
    relay = await startRelay({
      root,
      mode: "miniflare",
      persistDir,
      vars: {
        ADMIN_TOKEN: token,
        NEXT_HOP_URL: `smtp://127.0.0.1:${sinks["flaky.example"].port}`,
        DOH_URL: "http://127.0.0.1:9/dns-query",
        DSN_ENABLED: "false",
        RETRY_SCHEDULE_SECONDS: "1,2,4",
        MAX_MESSAGE_AGE_SECONDS: String(TIMEOUT_S * 4),
        GATE_RATE_PER_SECOND: "1000",
        GATE_BURST: "100",
        GATE_MAX_CONNECTIONS: "3",
        GATE_MAX_MESSAGES_PER_CONNECTION: "50",
        GATE_BACKOFF_PAUSE_SECONDS: "2",
      },
    });
    const admin = async (path, body) => {
      const r = await fetch(`${relay.url}${path}`, { method: "POST", headers: { authorization: `Bearer ${token}`, "content-type": "application/json" }, body: JSON.stringify(body) });
      if (r.status >= 300) throw new Error(`${path}: ${r.status} ${await r.text()}`);
      return r.json();
    };
    await admin("/admin/tenants", { id: "chaos", name: "Chaos", domains: ["chaos.example"] });
    const { key } = await admin("/admin/tenants/chaos/keys", { name: "chaos" });
    // One route per destination. Written straight into D1 because the route's gate policy (the limited
    // destination's published rate) and name are columns the admin API does not take yet.
    const now = Date.now();
    for (const [domain, sink] of Object.entries(sinks)) {
      const name = domain.split(".")[0];
      const policy = domain === "limited.example" ? JSON.stringify({ ratePerSecond: LIMIT_PER_SECOND, burst: 1, maxConnections: 2 }) : null;
      await relay.db
        .prepare("INSERT INTO routes (id, tenant_id, match_recipient_domain, match_sender_domain, next_hop_url, priority, weight, name, policy, created_at) VALUES (?, NULL, ?, '*', ?, 100, 1, ?, ?, ?)")
        .bind(`chaos-${name}`, domain, `smtp://127.0.0.1:${sink.port}`, name, policy, now)
        .run();
    }

    // Accept.
    const text = bodyText(1500);
    const accepted = new Map(); // address -> message id
    const acceptStarted = Date.now();
    let next = 0;
    let refused = 0;
    await Promise.all(
      Array.from({ length: CONCURRENCY }, async () => {
        while (next < COUNT) {
          const i = next++;
          const to = recipientsOf(i);
          const r = await fetch(`${relay.url}/v1/messages`, {
            method: "POST",
            headers: { authorization: `Bearer ${key}`, "content-type": "application/json" },
            body: JSON.stringify({ from: "chaos@chaos.example", to, subject: `chaos #${i}`, text }),
          });
          const body = await r.json().catch(() => ({}));
          if (r.status !== 202) {
            refused++;
            continue;
          }
          for (const rc of body.recipients ?? []) accepted.set(rc.address.toLowerCase(), body.id);
        }
      }),
    );
    const acceptSeconds = (Date.now() - acceptStarted) / 1000;
    console.log(`accepted ${accepted.size} recipients of ${COUNT} messages in ${round(acceptSeconds, 1)} s (${refused} requests refused)`);

    // Drain: until every recipient row is final, or the bound.
    const pendingCount = async () => (await relay.db.prepare("SELECT COUNT(*) AS n FROM recipients WHERE final_at IS NULL").first()).n;
    let pending = await pendingCount();
    let lastPrint = 0;
    while (pending > 0 && Date.now() < deadline) {
      await new Promise((r) => setTimeout(r, 1000));
      pending = await pendingCount();
      if (Date.now() - lastPrint > 10_000) {
        lastPrint = Date.now();
        console.log(`  .. ${pending} recipients not final yet (${round((Date.now() - started) / 1000, 0)} s)`);
      }
    }
    const drainSeconds = (Date.now() - acceptStarted) / 1000;
    if (pending > 0) violations.push(`${pending} recipients not in a final state after ${TIMEOUT_S} s`);

    // Checks.
    const { results: rows } = await relay.db.prepare("SELECT message_id, idx, address, status, final_at FROM recipients").all();
    const { results: finals } = await relay.db
      .prepare(`SELECT message_id, recipient_idx AS idx, type, COUNT(*) AS n FROM event_log WHERE type IN (${FINAL.map(() => "?").join(",")}) GROUP BY message_id, recipient_idx, type`)
      .bind(...FINAL)
      .all();
    const finalEvents = new Map();
    for (const f of finals) {
      const k = `${f.message_id}|${f.idx}`;
      const list = finalEvents.get(k) ?? [];
      list.push(`${f.type}x${f.n}`);
      finalEvents.set(k, { list, total: (finalEvents.get(k)?.total ?? 0) + f.n, types: [...(finalEvents.get(k)?.types ?? []), f.type] });
    }
    const atSink = new Map(); // address -> [domain of sink, ...]
    const sinkReports = {};
    for (const [domain, sink] of Object.entries(sinks)) {
      const rep = await sink.report();
      sinkReports[domain] = rep;
      for (const [address] of rep.deliveries) {
        const a = address.toLowerCase();
        atSink.set(a, [...(atSink.get(a) ?? []), domain]);
      }
    }
    const byStatus = {};
    let loss = 0;
    const lossSamples = [];
    let notExactlyOne = 0;
    const notExactlyOneSamples = [];
    let wrongSink = 0;
    let refusedDelivered = 0;
    for (const r of rows) {
      byStatus[r.status] = (byStatus[r.status] ?? 0) + 1;
      const address = r.address.toLowerCase();
      const ev = finalEvents.get(`${r.message_id}|${r.idx}`);
      const isFinal = FINAL.includes(r.status) && r.final_at !== null;
      if (!isFinal || (r.status === "delivered" && !atSink.has(address))) {
        loss++;
        if (lossSamples.length < 5) lossSamples.push(`${address}: ${r.status}${r.status === "delivered" ? " but not at its sink" : ""}`);
      }
      if (isFinal && (!ev || ev.total !== 1 || ev.types[0] !== r.status)) {
        notExactlyOne++;
        if (notExactlyOneSamples.length < 5) notExactlyOneSamples.push(`${address}: row ${r.status}, final events ${ev ? ev.list.join(" ") : "none"}`);
      }
      if (r.status === "delivered" && atSink.has(address) && !atSink.get(address).includes(address.slice(address.indexOf("@") + 1))) wrongSink++;
      if (address.startsWith("nouser-") && r.status !== "bounced") refusedDelivered++;
    }
    const missingRows = [...accepted.keys()].filter((a) => !rows.some((r) => r.address.toLowerCase() === a)).length;
    loss += missingRows;
    let duplicates = 0;
    for (const list of atSink.values()) duplicates += list.length - 1;
    const limited = sinkReports["limited.example"];
    const limitedPeak = maxInWindow(limited.mailTimes, 1000);

    if (loss > 0) violations.push(`loss: ${loss} accepted recipients neither in a final state nor (if delivered) at their sink${missingRows ? ` (${missingRows} without a row)` : ""}: ${lossSamples.join("; ")}`);
    if (notExactlyOne > 0) violations.push(`${notExactlyOne} recipients whose history does not hold exactly one final event matching their state: ${notExactlyOneSamples.join("; ")}`);
    if (wrongSink > 0) violations.push(`${wrongSink} recipients delivered to another destination's sink`);
    if (refusedDelivered > 0) violations.push(`${refusedDelivered} permanently refused recipients did not end bounced`);
    if (limited.rateRefusals > 0 || limitedPeak > LIMIT_PER_SECOND) {
      violations.push(
        `rate limit of limited.example exceeded by its own clock: peak ${limitedPeak} MAIL FROM in 1 s (limit ${LIMIT_PER_SECOND}), ${limited.rateRefusals} refused for rate; gaps in the busiest second (ms): ${peakWindow(limited.mailTimes, 1000).gaps.join(" ")}`,
      );
    }

    const pad = (s, n) => String(s).padStart(n);
    console.log("");
    console.log(`${"sink".padEnd(16)} ${pad("accepted", 8)} ${pad("451", 5)} ${pad("drops", 5)} ${pad("stalls", 6)} ${pad("550", 5)} ${pad("421 rate", 8)} ${pad("peak/1s", 7)}`);
    for (const [d, r] of Object.entries(sinkReports)) {
      console.log(`${d.padEnd(16)} ${pad(r.accepted, 8)} ${pad(r.tempFails, 5)} ${pad(r.drops, 5)} ${pad(r.stalls, 6)} ${pad(r.permanentRefusals, 5)} ${pad(r.rateRefusals, 8)} ${pad(maxInWindow(r.mailTimes, 1000), 7)}`);
    }
    console.log("");
    console.log(`recipients accepted: ${accepted.size}; final states: ${Object.entries(byStatus).map(([s, n]) => `${s} ${n}`).join(", ")}`);
    console.log(`loss: ${loss}   duplicates at the sinks: ${duplicates}   time to drain: ${round(drainSeconds, 1)} s (accepting took ${round(acceptSeconds, 1)} s)`);
    console.log(`limited.example: peak ${limitedPeak} messages in any 1 s by the sink's clock (limit ${LIMIT_PER_SECOND}), ${limited.rateRefusals} refused for rate`);
    Object.assign(summary, {
      messages: COUNT,
      recipients_accepted: accepted.size,
      final_states: byStatus,
      loss,
      duplicates,
      drain_seconds: round(drainSeconds, 1),
      accept_seconds: round(acceptSeconds, 1),
      limited_peak_per_second: limitedPeak,
      limited_rate_refusals: limited.rateRefusals,
      sink_counts: Object.fromEntries(Object.entries(sinkReports).map(([d, r]) => [d, { accepted: r.accepted, temp_fails: r.tempFails, drops: r.drops, stalls: r.stalls, permanent_refusals: r.permanentRefusals, rate_refusals: r.rateRefusals }])),
    });
  } finally {
    await relay?.dispose();
    for (const s of Object.values(sinks)) await s.stop();
    rmSync(persistDir, { recursive: true, force: true });
  }
  summary.violations = violations;
  const out = join(root, "bench/results", `chaos-${new Date(started).toISOString().slice(0, 10)}.json`);
  mkdirSync(dirname(out), { recursive: true });
  writeFileSync(out, `${JSON.stringify(summary, null, 2)}\n`);
  console.log(`\nwritten: ${out}`);
  if (violations.length) {
    console.log(`\nFAILED (${violations.length}):`);
    for (const v of violations) console.log(`  - ${v}`);
    process.exit(1);
  }
  console.log("\nOK: no loss, every accepted recipient in exactly one final state, every delivery at its sink, rate limit kept");
}

await main();
