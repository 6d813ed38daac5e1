/**
 * The lanes and send times stage: delivers a destination's work over up to the policy's parallel connections,
 * each lane taking a connection slot from the invocation and a permit (a lease plus send times) from the
 * destination's DomainGate, then carrying messages until the permit is used up.
 */
import type { RelayConfig } from "../config";
import type { GateReport, Permit } from "../gate/domain-gate";
import { SmtpError, type SmtpSession } from "../smtp/client";
import { sendCloudflare } from "./cloudflare-send";
import { jobStream } from "../queue/enqueue";
import type { Stream } from "../queue/job";
import { isThrottleReply } from "./retry";
import { connect, fromSmtpError, hint, sendOne } from "./smtp-send";
import { gateFor, type Gate, type Target } from "./targets";
import { needsTls, tlsFailure } from "./tls-policy";
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
 * A connection is worth opening for this many messages of a batch: below it, one connection carries them (setting
 * up a connection, with TLS and AUTH to a real next hop, costs about what sending a few messages does).
 */
const MESSAGES_PER_EXTRA_LANE = 50;
/** Smallest share of the line a connection takes at a time (each share asks the gate for its send times once). */
const MIN_SHARE = 8;

/**
 * Lanes (parallel connections) for `jobs` messages to one destination: enough to keep each connection within
 * the policy's messages per connection, and one more per MESSAGES_PER_EXTRA_LANE messages so a large batch is not
 * carried down one connection while the policy allows several; never more than the policy's connections or the
 * invocation's limit.
 */
export function laneCount(policy: { maxConnections: number; maxMessagesPerConnection: number }, jobs: number, stream: Stream): number {
  const wanted = Math.max(Math.ceil(jobs / policy.maxMessagesPerConnection), Math.floor(jobs / MESSAGES_PER_EXTRA_LANE));
  // Broadcast never gets a destination's last connection (the gate keeps it for transactional mail): a lane
  // waiting for it would only wait, and stop its siblings when it gives up.
  const connections = stream === "broadcast" && policy.maxConnections > 1 ? policy.maxConnections - 1 : policy.maxConnections;
  return Math.max(1, Math.min(connections, wanted, MAX_CONNECTIONS_PER_INVOCATION));
}

/** An open connection of a lane and what it reports back to its gate. */
interface Link {
  target: Target;
  session: SmtpSession;
  host: string;
  gate: Gate;
  report: GateReport;
}

/** Why and for how long the lanes of a destination stopped taking work in this invocation. */
interface Stop {
  afterMs: number;
  why: string;
}

/** How one target answered a lane's request for a connection. */
type TargetOutcome = { kind: "used" } | { kind: "denied"; permit: Permit } | { kind: "unreachable"; failure: { error: SmtpError; host: string } };

/**
 * Delivers a destination's jobs over up to `policy.maxConnections` parallel lanes. Each lane takes a connection
 * slot from the invocation, a permit from the gate, then carries messages until its permit is used up.
 */
export async function deliverDestination(env: Env, config: RelayConfig, items: Work[], targets: Target[], slots: Semaphore, startedAt: number, holder: string, record: (w: Work) => Promise<void>): Promise<void> {
  await new DestinationRun(env, config, items, targets, slots, startedAt, holder, record).run();
}

/** The lanes of one destination in one invocation, sharing its line of work and its stop. */
class DestinationRun {
  private readonly queue: Work[];
  private stop: Stop | undefined;
  private lanes = 1;

  constructor(
    private readonly env: Env,
    private readonly config: RelayConfig,
    private readonly items: Work[],
    private readonly targets: Target[],
    private readonly slots: Semaphore,
    private readonly startedAt: number,
    private readonly holder: string,
    private readonly record: (w: Work) => Promise<void>,
  ) {
    this.queue = [...items];
  }

  /** Other lanes set the stop while this one awaits: read it through a method, which narrowing cannot cache. */
  private halted(): Stop | undefined {
    return this.stop;
  }

  async run(): Promise<void> {
    this.lanes = laneCount(this.targets[0]!.policy, this.queue.length, jobStream(this.items[0]!.job));
    await Promise.all(Array.from({ length: this.lanes }, () => this.lane()));
    const stop = this.halted();
    if (this.queue.length) postpone(this.queue, stop?.afterMs ?? 1000, stop?.why ?? "not reached in this invocation");
  }

  private async lane(): Promise<void> {
    let waited = 0;
    while (this.queue.length && !this.halted()) {
      if (Date.now() - this.startedAt > INVOCATION_BUDGET_MS) {
        this.stop = { afterMs: 0, why: "invocation time budget used" };
        break;
      }
      await this.slots.take();
      let waitMs = 0;
      try {
        waitMs = await this.connection();
      } finally {
        this.slots.give();
      }
      if (!waitMs) continue;
      // The gate asked for a short wait (next send time, a connection about to free up): wait here, not in the
      // queue — but not for long, or a busy destination would hold up the outcomes of the whole batch.
      if (waited + waitMs > MAX_LANE_WAIT_MS) {
        this.stop = { afterMs: waitMs, why: `${this.targets[0]!.gateKey}: busy` };
        break;
      }
      waited += waitMs;
      await sleep(waitMs);
    }
  }

  /** One connection (or none); returns how long to wait before the next try when the gate said "shortly". */
  private async connection(): Promise<number> {
    if (!this.queue.length || this.halted()) return 0;
    let lastFailure: { error: SmtpError; host: string; target: Target } | undefined;
    let soonest = Number.POSITIVE_INFINITY;
    let why = "";
    let denials = 0;
    for (const target of this.targets) {
      if (!this.queue.length) return 0;
      const out = await this.tryTarget(target);
      if (out.kind === "used") return 0;
      if (out.kind === "unreachable") {
        lastFailure = { ...out.failure, target };
        continue; // next upstream
      }
      // Paused, circuit open, over quota or busy: try the next upstream, if any.
      soonest = Math.min(soonest, out.permit.retryAfterMs);
      why = `${target.gateKey}: ${out.permit.reason ?? "denied"}`;
      if (out.permit.reason === "rate" || out.permit.reason === "busy") denials++;
    }
    // No target took the batch.
    if (lastFailure) {
      // Every next hop refused the connection: this is an attempt for the whole line, recorded as deferred.
      const all = this.queue.splice(0, this.queue.length);
      const policy = lastFailure.target.tlsPolicy;
      if (needsTls(policy) && lastFailure.error.kind === "tls") {
        // No STARTTLS, or the handshake (certificate verification included) failed: REQUIRETLS bounces, MTA-STS waits.
        failAll(all, { ...tlsFailure(policy!, lastFailure.error.message), host: lastFailure.host, command: "STARTTLS" });
      } else {
        failAll(all, { ...fromSmtpError(lastFailure.error, lastFailure.host, undefined), status: "deferred" });
      }
      this.stop = { afterMs: 0, why: "connection failed" };
    } else if (denials === this.targets.length && soonest <= SHORT_WAIT_MS && Date.now() - this.startedAt < INVOCATION_BUDGET_MS) {
      return Math.max(50, soonest);
    } else {
      this.stop = { afterMs: Number.isFinite(soonest) ? soonest : 1000, why };
    }
    return 0;
  }

  /** Asks one target's gate for a permit and, granted, sends the messages it covers; always reports back. */
  private async tryTarget(target: Target): Promise<TargetOutcome> {
    const gate = gateFor(this.env, target.gateKey);
    const permit: Permit = await gate.acquire(target.gateKey, {
      policy: target.policy,
      messages: this.share(),
      holder: this.holder,
      maxWaitMs: GATE_WAIT_MS,
      horizonMs: GATE_HORIZON_MS,
      leaseMs: GATE_HORIZON_MS + 5 * 60_000,
      stream: jobStream(this.items[0]!.job),
      broadcastShare: this.config.broadcastShare,
    });
    if (!permit.granted) return { kind: "denied", permit };
    const batch = this.queue.splice(0, permit.granted);
    const report: GateReport = { leaseId: permit.leaseId, delivered: 0, unused: batch.length, usedUntil: 0 };
    try {
      if (target.binding) {
        await this.sendViaBinding(target.binding, gate, permit, report, batch);
        return { kind: "used" };
      }
      return await this.sendViaSmtp(target, gate, permit, report, batch);
    } finally {
      await gate.release(report);
    }
  }

  /** The send_email route: one message at a time at its send time. */
  private async sendViaBinding(binding: string, gate: Gate, permit: Permit, report: GateReport, batch: Work[]): Promise<void> {
    let i = 0;
    const pick = slotPicker(gate, permit, report, () => batch.length - i);
    for (; i < batch.length; i++) {
      await sleep((batch[i]!.notBefore ?? 0) - Date.now());
      const slot = await pick();
      if (slot === undefined) {
        this.queue.unshift(...batch.slice(i));
        break;
      }
      await sendCloudflare(this.env, binding, batch[i]!, slot.seq);
      await this.record(batch[i]!);
      if ([...batch[i]!.results.values()].some((a) => a.status === "delivered")) report.delivered++;
    }
  }

  /**
   * One SMTP connection carrying the permit's messages, each at its send time. When they are sent and the line
   * still has work, the connection takes another share of it (work stealing) with send times on the same lease,
   * up to the policy's messages per connection, so a lane that finished early keeps its connection busy instead
   * of the batch waiting for the slowest lane.
   */
  private async sendViaSmtp(target: Target, gate: Gate, permit: Permit, report: GateReport, batch: Work[]): Promise<TargetOutcome> {
    const opened = await connect(this.env, this.config, target);
    if ("error" in opened) {
      report.connectionFailed = true;
      this.queue.unshift(...batch);
      if (opened.error.code && isThrottleReply(opened.error.code, opened.error.enhanced)) {
        report.throttled = { text: opened.error.reply?.text ?? opened.error.message, ...hint(opened.error) };
      }
      return { kind: "unreachable", failure: opened };
    }
    const link: Link = { target, session: opened.session, host: opened.host, gate, report };
    let chunk: Work[] | undefined = batch;
    let times = permit;
    let carried = 0;
    try {
      while (chunk) {
        carried += chunk.length;
        if (!(await this.carry(link, times, chunk))) break;
        chunk = this.steal(target.policy.maxMessagesPerConnection - carried);
        // No send times yet for the stolen share: the slot picker asks the gate for them on this lease.
        times = { ...permit, granted: 0, slots: [] };
      }
    } finally {
      await link.session.quit();
    }
    return { kind: "used" };
  }

  /** Sends a share of work on an open connection; true when all of it was handled and the connection can take more. */
  private async carry(link: Link, permit: Permit, batch: Work[]): Promise<boolean> {
    const { target, session, host } = link;
    const tlsNote = target.tlsPolicy ? `${target.tlsPolicy.note}${target.tlsPolicy.stsTesting && !session.tls ? ": would fail, no TLS" : ""}` : undefined;
    let i = 0;
    const pick = slotPicker(link.gate, permit, link.report, () => batch.length - i);
    for (; i < batch.length; i++) {
      const w = batch[i]!;
      const halt = this.halted();
      if (halt) {
        // Another connection of this invocation was throttled by the same destination: stop here too.
        postpone(batch.slice(i), halt.afterMs, halt.why);
        return false;
      }
      await sleep((w.notBefore ?? 0) - Date.now());
      const slot = await pick();
      if (slot === undefined || !session.usable) {
        // Out of send times (the connection fell behind its schedule) or the connection broke.
        this.queue.unshift(...batch.slice(i));
        return false;
      }
      if (tlsNote) w.tlsNote = tlsNote;
      if (needsTls(target.tlsPolicy) && !session.tls) {
        // Never reached with STARTTLS required; kept so a bug there cannot send such mail in the clear.
        failAll([w], { ...tlsFailure(target.tlsPolicy!, "the session is not encrypted"), host, seq: slot.seq });
        continue;
      }
      if (!(await this.sendMessage(target, session, host, w, slot.seq, link.report, batch.slice(i + 1)))) return false;
    }
    return session.usable && !this.halted();
  }

  /**
   * The share of the line a connection takes next: the rest divided by the lanes (guided self-scheduling, so
   * shares shrink towards the end and the lanes finish together), at least a few messages to spare gate calls.
   */
  private share(): number {
    return Math.min(this.queue.length, Math.max(MIN_SHARE, Math.ceil(this.queue.length / this.lanes)));
  }

  /** Takes another share of the line for a connection that may carry `room` more messages; none when done. */
  private steal(room: number): Work[] | undefined {
    if (room <= 0 || !this.queue.length || this.halted()) return undefined;
    return this.queue.splice(0, Math.min(room, this.share()));
  }

  /** Sends one work item on the connection; false when the connection must not carry more (throttled, broken). */
  private async sendMessage(target: Target, session: SmtpSession, host: string, w: Work, seq: number, report: GateReport, rest: Work[]): Promise<boolean> {
    try {
      await sendOne(this.env, session, host, w, seq);
      await this.record(w);
      if ([...w.results.values()].some((a) => a.status === "delivered")) report.delivered++;
      const throttle = [...w.results.values()].find((a) => a.status === "deferred" && isThrottleReply(a.code, a.enhanced));
      if (!throttle) return true;
      report.throttled = { text: throttle.text, ...(throttle.hintSeconds ? { retryAfterSeconds: throttle.hintSeconds } : {}) };
      this.throttled(target, rest, (throttle.hintSeconds ?? target.policy.backoffPauseSeconds) * 1000);
      return false;
    } catch (e) {
      if (!(e instanceof SmtpError)) throw e;
      if (isThrottleReply(e.code, e.enhanced)) {
        report.throttled = { text: e.reply?.text ?? e.message, ...hint(e) };
        this.throttled(target, rest, (hint(e).retryAfterSeconds ?? target.policy.backoffPauseSeconds) * 1000);
      } else {
        // The connection broke (drop, timeout): the rest of the batch goes back for another connection.
        this.queue.unshift(...rest);
      }
      return false;
    }
  }

  /** The destination throttled us: the rest of this connection's messages wait, and so do the other lanes. */
  private throttled(target: Target, rest: Work[], pauseMs: number): void {
    postpone(rest, pauseMs, `${target.gateKey}: throttled`);
    this.stop = { afterMs: pauseMs, why: `${target.gateKey}: throttled` };
  }
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
