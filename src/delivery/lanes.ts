/**
 * The lanes and send times stage: delivers a destination's work over up to the policy's parallel connections,
 * each lane taking a connection slot from the invocation and a permit (a lease plus send times) from the
 * destination's DomainGate, then carrying messages until the permit is used up.
 */
import type { RelayConfig } from "../config";
import type { GateReport, Permit } from "../gate/domain-gate";
import { SmtpError } from "../smtp/client";
import { sendCloudflare } from "./cloudflare-send";
import { jobStream } from "./enqueue";
import { isThrottleReply } from "./retry";
import { connect, fromSmtpError, hint, sendOne } from "./smtp-send";
import { gateFor, type Gate, type Target } from "./targets";
import { failAll, postpone, sleep, type Work } from "./work";

/** A Worker invocation may hold at most 6 simultaneous outbound connections (Workers platform limit). */
export const MAX_CONNECTIONS_PER_INVOCATION = 6;
/** How long a connection waits in a DomainGate's FIFO line before its jobs are re-queued instead. */
const GATE_WAIT_MS = 3000;
/** Send times granted at most this far ahead; messages beyond wait in the queue rather than in memory. */
export const GATE_HORIZON_MS = 20_000;
/** Fresh send times a connection may ask for when it fell behind all of its own. */
const MAX_SLOT_REFRESHES = 20;
/** A gate's "not yet" shorter than this is waited out in the invocation instead of re-queueing. */
const SHORT_WAIT_MS = 5000;
/** Longest a lane waits in total for a busy gate before its jobs go back to the queue. */
const MAX_LANE_WAIT_MS = 15_000;
/** No new connection starts after this much of an invocation (queue consumers may run up to 15 minutes). */
export const INVOCATION_BUDGET_MS = 5 * 60_000;

/** A counting semaphore for the invocation's connection budget. */
export class Semaphore {
  private waiting: (() => void)[] = [];
  constructor(private free: number) {}
  async take(): Promise<void> {
    if (this.free > 0) {
      this.free--;
      return;
    }
    await new Promise<void>((r) => this.waiting.push(r));
  }
  give(): void {
    const next = this.waiting.shift();
    if (next) next();
    else this.free++;
  }
}

/**
 * Delivers a destination's jobs over up to `policy.maxConnections` parallel lanes. Each lane takes a connection
 * slot from the invocation, a permit from the gate, then carries messages until its permit is used up.
 */
export async function deliverDestination(env: Env, config: RelayConfig, items: Work[], targets: Target[], slots: Semaphore, startedAt: number, holder: string, record: (w: Work) => Promise<void>): Promise<void> {
  const queue = [...items];
  const first = targets[0]!;
  const lanes = Math.max(1, Math.min(first.policy.maxConnections, Math.ceil(queue.length / first.policy.maxMessagesPerConnection), MAX_CONNECTIONS_PER_INVOCATION));
  let stop: { afterMs: number; why: string } | undefined;
  // Read through a function: other lanes set `stop` while this one awaits, which narrowing cannot see.
  const stopped = () => stop;

  const lane = async () => {
    let waited = 0;
    while (queue.length && !stop) {
      if (Date.now() - startedAt > INVOCATION_BUDGET_MS) {
        stop = { afterMs: 0, why: "invocation time budget used" };
        break;
      }
      await slots.take();
      let waitMs = 0;
      try {
        waitMs = await connection();
      } finally {
        slots.give();
      }
      if (!waitMs) continue;
      // The gate asked for a short wait (next send time, a connection about to free up): wait here, not in the
      // queue — but not for long, or a busy destination would hold up the outcomes of the whole batch.
      if (waited + waitMs > MAX_LANE_WAIT_MS) {
        stop = { afterMs: waitMs, why: `${first.gateKey}: busy` };
        break;
      }
      waited += waitMs;
      await sleep(waitMs);
    }
  };

  /** One connection (or none); returns how long to wait before the next try when the gate said "shortly". */
  const connection = async (): Promise<number> => {
    if (!queue.length || stop) return 0;
    let lastFailure: { error: SmtpError; host: string } | undefined;
    let soonest = Number.POSITIVE_INFINITY;
    let why = "";
    let denials = 0;
    for (const target of targets) {
      if (!queue.length) return 0;
      const gate = gateFor(env, target.gateKey);
      const permit: Permit = await gate.acquire(target.gateKey, {
        policy: target.policy,
        messages: queue.length,
        holder,
        maxWaitMs: GATE_WAIT_MS,
        horizonMs: GATE_HORIZON_MS,
        leaseMs: GATE_HORIZON_MS + 5 * 60_000,
        stream: jobStream(items[0]!.job),
        broadcastShare: config.broadcastShare,
      });
      if (!permit.granted) {
        // Paused, circuit open, over quota or busy: try the next upstream, if any.
        soonest = Math.min(soonest, permit.retryAfterMs);
        why = `${target.gateKey}: ${permit.reason ?? "denied"}`;
        if (permit.reason === "rate" || permit.reason === "busy") denials++;
        continue;
      }
      const batch = queue.splice(0, permit.granted);
      const report: GateReport = { leaseId: permit.leaseId, delivered: 0, unused: batch.length, usedUntil: 0 };
      try {
        if (target.binding) {
          let i = 0;
          const pick = slotPicker(gate, permit, report, () => batch.length - i);
          for (; i < batch.length; i++) {
            await sleep((batch[i]!.notBefore ?? 0) - Date.now());
            const slot = await pick();
            if (slot === undefined) {
              queue.unshift(...batch.slice(i));
              break;
            }
            await sendCloudflare(env, target.binding, batch[i]!, slot.seq);
            await record(batch[i]!);
            if ([...batch[i]!.results.values()].some((a) => a.status === "delivered")) report.delivered++;
          }
          return 0;
        }
        const opened = await connect(env, config, target);
        if ("error" in opened) {
          report.connectionFailed = true;
          lastFailure = opened;
          queue.unshift(...batch);
          if (opened.error.code && isThrottleReply(opened.error.code, opened.error.enhanced)) {
            report.throttled = { text: opened.error.reply?.text ?? opened.error.message, ...hint(opened.error) };
          }
          continue; // next upstream
        }
        const { session, host } = opened;
        let i = 0;
        const pick = slotPicker(gate, permit, report, () => batch.length - i);
        try {
          for (; i < batch.length; i++) {
            const w = batch[i]!;
            const halt = stopped();
            if (halt) {
              // Another connection of this invocation was throttled by the same destination: stop here too.
              postpone(batch.slice(i), halt.afterMs, halt.why);
              break;
            }
            await sleep((w.notBefore ?? 0) - Date.now());
            const slot = await pick();
            if (slot === undefined || !session.usable) {
              // Out of send times (the connection fell behind its schedule) or the connection broke.
              queue.unshift(...batch.slice(i));
              break;
            }
            try {
              await sendOne(env, session, host, w, slot.seq);
              await record(w);
              if ([...w.results.values()].some((a) => a.status === "delivered")) report.delivered++;
              const throttle = [...w.results.values()].find((a) => a.status === "deferred" && isThrottleReply(a.code, a.enhanced));
              if (throttle) {
                report.throttled = { text: throttle.text, ...(throttle.hintSeconds ? { retryAfterSeconds: throttle.hintSeconds } : {}) };
                postpone(batch.slice(i + 1), (throttle.hintSeconds ?? target.policy.backoffPauseSeconds) * 1000, `${target.gateKey}: throttled`);
                stop = { afterMs: (throttle.hintSeconds ?? target.policy.backoffPauseSeconds) * 1000, why: `${target.gateKey}: throttled` };
                break;
              }
            } catch (e) {
              if (!(e instanceof SmtpError)) throw e;
              if (isThrottleReply(e.code, e.enhanced)) {
                report.throttled = { text: e.reply?.text ?? e.message, ...hint(e) };
                const pause = (hint(e).retryAfterSeconds ?? target.policy.backoffPauseSeconds) * 1000;
                postpone(batch.slice(i + 1), pause, `${target.gateKey}: throttled`);
                stop = { afterMs: pause, why: `${target.gateKey}: throttled` };
              } else {
                // The connection broke (drop, timeout): the rest of the batch goes back for another connection.
                queue.unshift(...batch.slice(i + 1));
              }
              break;
            }
          }
        } finally {
          await session.quit();
        }
        return 0;
      } finally {
        await gate.release(report);
      }
    }
    // No target took the batch.
    if (lastFailure) {
      // Every next hop refused the connection: this is an attempt for the whole line, recorded as deferred.
      const all = queue.splice(0, queue.length);
      failAll(all, { ...fromSmtpError(lastFailure.error, lastFailure.host, undefined), status: "deferred" });
      stop = { afterMs: 0, why: "connection failed" };
    } else if (denials === targets.length && soonest <= SHORT_WAIT_MS && Date.now() - startedAt < INVOCATION_BUDGET_MS) {
      return Math.max(50, soonest);
    } else {
      stop = { afterMs: Number.isFinite(soonest) ? soonest : 1000, why };
    }
    return 0;
  };

  await Promise.all(Array.from({ length: lanes }, lane));
  if (queue.length) postpone(queue, stop?.afterMs ?? 1000, stop?.why ?? "not reached in this invocation");
}

/**
 * Hands out a permit's send times in order. Each time owns the window up to the next one (GCRA emission
 * interval); a sender that fell behind (connection setup, a slow server) skips the times already past instead
 * of catching up in a burst, so the next hop never sees more than the gate granted (plus at most the burst
 * the bucket allows), across all connections. When every time it holds is past, it asks the gate for fresh
 * ones on the same lease.
 */
function slotPicker(gate: Gate, permit: Permit, report: GateReport, remaining: () => number): () => Promise<{ seq: number } | undefined> {
  let current = permit;
  let next = 0;
  let refreshes = 0;
  let waitedMs = 0;
  return async () => {
    for (;;) {
      const now = Date.now();
      // Lateness up to the permit's tolerance is fine: half a window (the send still lands closer to its own time
      // than to the next), or the burst the bucket allows anyway.
      while (next < current.slots.length && current.slots[next]! + current.lateToleranceMs <= now) next++;
      if (next < current.slots.length) {
        const j = next++;
        report.unused--;
        report.usedUntil = current.slots[j]! + current.intervalMs;
        refreshes = 0;
        await sleep(current.slots[j]! - now);
        return { seq: current.seq + j };
      }
      if (refreshes++ >= MAX_SLOT_REFRESHES) return undefined;
      current = await gate.more(permit.leaseId, remaining(), GATE_HORIZON_MS);
      next = 0;
      // "Not yet" (broadcast held to its share, short horizons): keep the connection and ask again shortly.
      if (!current.granted && current.reason === "rate" && current.retryAfterMs <= SHORT_WAIT_MS && waitedMs + current.retryAfterMs <= MAX_LANE_WAIT_MS) {
        waitedMs += current.retryAfterMs;
        await sleep(current.retryAfterMs);
        continue;
      }
      if (!current.granted) return undefined;
      report.unused += current.slots.length;
    }
  };
}
