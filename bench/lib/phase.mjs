/**
 * One measured phase of `npm run bench`: a load run against a started relay, waiting until the sink holds every
 * accepted message, with the runtime's CPU time read from /proc before and after.
 */
import { cpuSeconds } from "./procstat.mjs";
import { indexOfRecipient, runLoad } from "./load.mjs";
import { quantile, round } from "./stats.mjs";

/** Polls the sink until it holds `expected` messages or `timeoutMs` passed; returns when the last arrived. */
export async function waitForSink(sink, expected, timeoutMs) {
  const deadline = Date.now() + timeoutMs;
  let n = 0;
  while (Date.now() < deadline) {
    n = await sink.count();
    if (n >= expected) return { complete: true, count: n };
    await new Promise((r) => setTimeout(r, 100));
  }
  return { complete: false, count: n };
}

/**
 * @param {object} o
 * @param {{ url: string, pids: () => number[] }} o.relay
 * @param {Awaited<ReturnType<typeof import("./sink.mjs").startSink>>} o.sink
 */
export async function measurePhase({ name, relay, sink, key, tag, count, concurrency, perRequest, makeBody, drainTimeoutMs, meter }) {
  await sink.reset();
  const pids = relay.pids();
  const meterBefore = meter ? await meter() : null;
  const cpu0 = cpuSeconds(pids);
  const progress = { sent: 0 };
  // Progress every 5 s on a terminal; the timer also keeps a live handle, so the run cannot end silently while
  // work is pending.
  const ticker = setInterval(async () => {
    if (process.stderr.isTTY) process.stderr.write(`\r  .. ${name}: ${progress.sent} answered, ${await sink.count()} at the sink `);
  }, 5000);
  let load;
  let drained;
  try {
    load = await runLoad({ base: relay.url, key, count, concurrency, perRequest, makeBody, progress });
    drained = await waitForSink(sink, load.acceptedAt.filter((t) => !Number.isNaN(t)).length, drainTimeoutMs);
  } finally {
    clearInterval(ticker);
    if (process.stderr.isTTY) process.stderr.write("\r\x1b[K");
  }
  const accepted = load.acceptedAt.filter((t) => !Number.isNaN(t)).length;
  // A runtime process that went away (wrangler dev rebuilds on file changes) makes the CPU figure meaningless.
  const after = relay.pids();
  const sameProcesses = after.length === pids.length && pids.every((p) => after.includes(p));
  const cpu1 = cpuSeconds(pids);
  const meterAfter = meter ? await meter() : null;
  const report = await sink.report();

  // Accept-to-delivered per message: the sink's receive time minus the time its request was answered.
  const e2e = [];
  let last = load.started;
  let duplicates = 0;
  const seen = new Uint8Array(count);
  let bytes = 0;
  for (const [rcpt, at, size] of report.deliveries) {
    const i = indexOfRecipient(tag, rcpt);
    if (i < 0) continue;
    if (seen[i]++) duplicates++;
    else e2e.push(at - load.acceptedAt[i]);
    last = Math.max(last, at);
    bytes += size;
  }
  const acceptSeconds = (load.finished - load.started) / 1000;
  const e2eSeconds = (last - load.started) / 1000;
  const delivered = e2e.length;
  return {
    name,
    endpoint: perRequest > 1 ? "POST /v1/messages/batch" : "POST /v1/messages",
    messages_per_request: perRequest,
    concurrency,
    sent: count,
    accepted,
    refused: load.failures.length,
    refusal_sample: load.failures.slice(0, 3),
    delivered,
    duplicates,
    drained: drained.complete,
    mean_bytes_at_sink: delivered ? Math.round(bytes / report.deliveries.length) : null,
    accept_seconds: round(acceptSeconds, 2),
    end_to_end_seconds: round(e2eSeconds, 2),
    accepted_per_second: round(accepted / acceptSeconds),
    delivered_per_second: round(delivered / e2eSeconds),
    request_latency_ms: { p50: round(quantile(load.latenciesMs, 0.5)), p99: round(quantile(load.latenciesMs, 0.99)) },
    accept_to_delivered_ms: { p50: round(quantile(e2e, 0.5)), p99: round(quantile(e2e, 0.99)) },
    runtime_cpu_seconds: sameProcesses ? round(cpu1 - cpu0, 2) : null,
    runtime_cpu_seconds_per_1000: sameProcesses ? round(((cpu1 - cpu0) / Math.max(1, delivered)) * 1000, 3) : null,
    runtime_processes: pids.length,
    ...(sameProcesses ? {} : { runtime_restarted: true }),
    metering: meterBefore && meterAfter ? diffCounters(meterBefore, meterAfter) : null,
  };
}

/** after - before, per counter. */
export function diffCounters(before, after) {
  const out = {};
  for (const [k, v] of Object.entries(after)) out[k] = v - (before[k] ?? 0);
  return out;
}
