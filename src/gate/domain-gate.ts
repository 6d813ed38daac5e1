/**
 * DomainGate: one SQLite-backed Durable Object per destination key (a recipient domain, an MX provider such as
 * `provider:google`, or an upstream relay `upstream:<name>`). It hands out delivery permits and learns from
 * every outcome:
 * - a message rate as a token bucket, kept as GCRA (theoretical arrival time), so each granted message gets its
 *   own send time and a connection carrying ten messages cannot burst them out at once;
 * - a cap on simultaneous connections (leases), granted in FIFO order of request; a request that finds every
 *   connection busy waits in line for a bounded time;
 * - a cap on messages per connection, and an optional daily quota;
 * - a per-destination sequence number for every granted message (recorded on delivery events);
 * - adaptive backoff: a throttling reply (421, 4.7.x) halves the rate and pauses the destination; consecutive
 *   connection failures open a circuit; every successful connection restores the rate a step;
 * - stream priority (issue 12): transactional requests go ahead of broadcast ones in the line, broadcast never
 *   holds the last connection or send times more than BROADCAST_HORIZON_MS ahead, and while both streams want
 *   the destination broadcast is held to its reserved share of the rate (and transactional to short horizons),
 *   so a newsletter never delays a password reset by more than about a second and is never starved either.
 * Methods are called over RPC from the queue consumer and the admin API.
 */
import { DurableObject } from "cloudflare:workers";
import { DEFAULT_GATE_POLICY, mergePolicy, type GatePolicy } from "./policy";
import { meterDurableObjectStorage } from "../metering";
import { deleteJournalEntries, listJournalEntries, loadGateState, putJournalEntries, saveGateState } from "../store/gate-state";

export { DEFAULT_GATE_POLICY, type GatePolicy } from "./policy";

/**
 * Send times are spaced for 90% of the configured rate. The receiver counts on its own clock, and network and
 * scheduling jitter can bring sends closer there than they left here: with spacing s, rate r and jitter J, r+1
 * sends fit in one second of the receiver's clock when r*s - J < 1 s, so s must be at least (1 s + J) / r, i.e.
 * a headroom of 1 / (1 + J). The chaos suite saw J near 40 ms locally under load (11 in a second at 97%); 0.9
 * allows about 110 ms.
 */
const RATE_HEADROOM = 0.9;
/** Lowest share of the configured rate adaptive backoff goes down to. */
const MIN_RATE_FACTOR = 1 / 16;
/** Rate share given back by each successful connection after a backoff. */
const RESTORE_STEP = 0.1;
const DAY_MS = 86_400_000;
/** Extra life a lease gets each time its connection asks for more send times. */
const LEASE_RENEW_MS = 5 * 60_000;
/**
 * Broadcast send times are granted at most this far ahead: the most a transactional message can find committed
 * to broadcast before its own turn.
 */
const BROADCAST_HORIZON_MS = 600;
/**
 * While broadcast is waiting too, transactional send times are granted at most this far ahead (shorter than the
 * broadcast horizon), so broadcast's reserved share always finds a free time within its own horizon.
 */
const CONTENDED_TRANSACTIONAL_HORIZON_MS = 300;
/** A stream counts as wanting the destination for this long after its last request. */
const STREAM_ACTIVE_MS = 1500;
/** Broadcast's reserved share when the caller names none (BROADCAST_RESERVED_SHARE). */
export const DEFAULT_BROADCAST_SHARE = 0.15;

/** The two streams a gate tells apart; requests that name none are transactional. */
export type GateStream = "transactional" | "broadcast";

export interface PermitRequest {
  /** The policy the consumer computed (config, preset, route); the gate's own override wins over it. */
  policy: GatePolicy;
  /** Messages the caller wants to carry on one connection. */
  messages: number;
  /** Who asks (for the admin view). */
  holder: string;
  /** How long to wait in line when every connection is busy. */
  maxWaitMs: number;
  /** Grant only send times within this many ms from now. */
  horizonMs: number;
  /** The lease ends by itself after this long if never released (a crashed invocation). */
  leaseMs: number;
  /** The stream of the messages (default transactional): transactional goes first, broadcast keeps its share. */
  stream?: GateStream;
  /** Share of the rate kept for broadcast while transactional mail also wants it (0.05-0.5). */
  broadcastShare?: number;
}

export type DenyReason = "paused" | "circuit_open" | "busy" | "quota" | "rate";

export interface Permit {
  /** Messages granted (0: denied). */
  granted: number;
  leaseId: string;
  /** Sequence number of the first granted message; message i has seq + i. */
  seq: number;
  /**
   * Epoch ms before which message i must not be sent; each send time owns the window up to slots[i] + intervalMs.
   * A message that cannot be sent inside its window must not use it (see the consumer's slot picker).
   */
  slots: number[];
  intervalMs: number;
  /** How late a send may use its time: half a window, or the bucket's burst allowance when that is larger. */
  lateToleranceMs: number;
  /** When denied (or partly granted), when to ask again. */
  retryAfterMs: number;
  reason?: DenyReason;
}

export interface GateReport {
  leaseId: string;
  /** Messages the next hop accepted. */
  delivered: number;
  /** Granted send times not used (the connection ended early or fell behind). */
  unused: number;
  /**
   * End of the window of the last send time used (0: none). Times after it are given back when nothing was
   * granted after them, so a failed connection costs no rate.
   */
  usedUntil: number;
  /** The connection could not be opened (refused, timeout, TLS, greeting 4xx/5xx). */
  connectionFailed?: boolean;
  /** The next hop throttled us (421 or 4.7.x); retryAfterSeconds when the reply named a delay. */
  throttled?: { retryAfterSeconds?: number; text?: string };
}

export interface GateState {
  destination: string;
  policy: GatePolicy;
  override: Partial<GatePolicy> | null;
  rateFactor: number;
  effectiveRatePerSecond: number;
  effectiveMaxConnections: number;
  activeConnections: number;
  waiting: number;
  pausedUntil: string | null;
  circuit: "closed" | "open" | "half-open";
  circuitOpenUntil: string | null;
  consecutiveConnectionFailures: number;
  sequence: number;
  quotaUsedToday: number;
  totals: { granted: number; delivered: number; throttles: number; connectionFailures: number; denied: number };
  lastThrottle: { at: string; text: string | null } | null;
  leases: { id: string; holder: string; stream: GateStream; granted: number; since: string; expiresAt: string }[];
  /** Stream priority: the reserved share, which streams want the destination now, and grants per stream. */
  streams: {
    broadcastShare: number;
    transactional: { active: boolean; activeConnections: number; waiting: number; granted: number };
    broadcast: { active: boolean; activeConnections: number; waiting: number; granted: number };
  };
}

interface Lease {
  id: string;
  holder: string;
  granted: number;
  since: number;
  expiresAt: number;
  /** The gate's `tat` right after this grant, to tell whether unused times can be given back. */
  tatAfter: number;
  interval: number;
  stream?: GateStream;
}

interface Persisted {
  destination: string;
  policy: GatePolicy;
  override: Partial<GatePolicy> | null;
  tat: number;
  rateFactor: number;
  pausedUntil: number;
  circuitOpenUntil: number;
  consecutiveFailures: number;
  seq: number;
  day: number;
  dayCount: number;
  leases: Lease[];
  totals: GateState["totals"];
  lastThrottle: { at: number; text: string | null } | null;
  /** Broadcast's own timeline (GCRA at its reserved share), used while transactional mail wants the destination. */
  broadcastTat: number;
  /** Epoch ms until which each stream counts as wanting the destination. */
  activeUntil: Record<GateStream, number>;
  broadcastShare: number;
  grantedByStream: Record<GateStream, number>;
}

interface Waiter {
  stream: GateStream;
  wake: () => void;
}

const STREAM_DEFAULTS = {
  broadcastTat: 0,
  activeUntil: { transactional: 0, broadcast: 0 },
  broadcastShare: DEFAULT_BROADCAST_SHARE,
  grantedByStream: { transactional: 0, broadcast: 0 },
} satisfies Partial<Persisted>;

export class DomainGate extends DurableObject<Env> {
  private s: Persisted;
  private readonly waiters: Waiter[] = [];

  constructor(ctx: DurableObjectState, env: Env) {
    super(ctx, env);
    meterDurableObjectStorage(ctx, env, "DomainGate"); // counts SQLite rows for the cost benchmark when METERING=1
    const row = loadGateState(ctx.storage.sql);
    // State saved before streams existed lacks their fields.
    this.s = row
      ? { ...STREAM_DEFAULTS, ...(JSON.parse(row) as Persisted) }
      : {
          ...STREAM_DEFAULTS,
          destination: "",
          policy: DEFAULT_GATE_POLICY,
          override: null,
          tat: 0,
          rateFactor: 1,
          pausedUntil: 0,
          circuitOpenUntil: 0,
          consecutiveFailures: 0,
          seq: 0,
          day: 0,
          dayCount: 0,
          leases: [],
          totals: { granted: 0, delivered: 0, throttles: 0, connectionFailures: 0, denied: 0 },
          lastThrottle: null,
        };
  }

  /** Asks for one connection carrying up to `messages` messages. Waits in FIFO order when connections are busy. */
  async acquire(destination: string, req: PermitRequest): Promise<Permit> {
    this.s.destination = destination;
    this.s.policy = req.policy;
    const stream: GateStream = req.stream === "broadcast" ? "broadcast" : "transactional";
    if (req.broadcastShare !== undefined) this.s.broadcastShare = Math.min(0.5, Math.max(0.05, req.broadcastShare));
    const deadline = Date.now() + req.maxWaitMs;
    this.s.activeUntil[stream] = Date.now() + Math.max(STREAM_ACTIVE_MS, req.maxWaitMs);
    // FIFO within a stream, transactional ahead of broadcast: a newcomer goes behind anyone it must not overtake;
    // a waiter woken by a release has its turn.
    let turn = stream === "transactional" ? !this.waiters.some((w) => w.stream === "transactional") : this.waiters.length === 0;
    for (;;) {
      const now = Date.now();
      this.expireLeases(now);
      const policy = this.policy();
      const blocked = this.blocked(now, policy);
      if (blocked) {
        if (turn) this.wakeNext();
        return this.deny(blocked.reason, blocked.retryAfterMs);
      }
      if (turn && this.s.leases.length < this.connectionsFor(stream, policy)) {
        const permit = this.grant(now, policy, req, stream);
        // Capacity may remain (several connections allowed): let the next in line try too.
        if (this.s.leases.length < this.effectiveMaxConnections(policy)) this.wakeNext();
        return permit;
      }
      if (now >= deadline) return this.deny("busy", this.busyHint(now));
      turn = await this.waitInLine(deadline, turn, stream);
    }
  }

  /**
   * Connections a request of `stream` may find taken and still get one: broadcast never takes the last one of
   * several, so a transactional message never waits for a campaign's connection to finish.
   */
  private connectionsFor(stream: GateStream, policy: GatePolicy): number {
    const max = this.effectiveMaxConnections(policy);
    if (stream === "transactional" || max < 2) return max;
    return Math.min(max, this.s.leases.filter((l) => l.stream !== "broadcast").length + max - 1);
  }

  /** Waits until woken by a release (true) or until the deadline (false). One who had its turn keeps the front. */
  private waitInLine(deadline: number, front: boolean, stream: GateStream): Promise<boolean> {
    return new Promise<boolean>((resolve) => {
      const waiter: Waiter = { stream, wake: () => undefined };
      const timer = setTimeout(() => {
        const i = this.waiters.indexOf(waiter);
        if (i >= 0) this.waiters.splice(i, 1);
        resolve(false);
      }, Math.max(1, deadline - Date.now()));
      waiter.wake = () => {
        clearTimeout(timer);
        resolve(true);
      };
      if (front) this.waiters.unshift(waiter);
      else this.waiters.push(waiter);
    });
  }

  /**
   * More send times for a live lease (its connection fell behind the ones it had, e.g. during connection setup).
   * Denied like acquire when the destination is paused, its circuit is open or its quota is used up.
   */
  async more(leaseId: string, messages: number, horizonMs: number): Promise<Permit> {
    const now = Date.now();
    this.expireLeases(now);
    const lease = this.s.leases.find((l) => l.id === leaseId);
    if (!lease) return this.deny("busy", 0);
    const stream: GateStream = lease.stream ?? "transactional";
    this.s.activeUntil[stream] = now + STREAM_ACTIVE_MS;
    // A broadcast connection ends when transactional mail waits for a connection: it goes first.
    if (stream === "broadcast" && this.waiters.some((w) => w.stream === "transactional")) return this.deny("busy", 0);
    const policy = this.policy();
    const blocked = this.blocked(now, policy);
    if (blocked) return this.deny(blocked.reason, blocked.retryAfterMs);
    const permit = this.schedule(now, policy, Math.min(messages, policy.maxMessagesPerConnection), horizonMs, stream);
    if (!permit.granted) return permit;
    lease.granted += permit.granted;
    lease.tatAfter = this.s.tat;
    // A connection still asking for send times is alive: keep its lease at least as long as a new one.
    lease.expiresAt = Math.max(lease.expiresAt, now + horizonMs + LEASE_RENEW_MS);
    this.save();
    return { ...permit, leaseId };
  }

  /** Ends a lease and feeds the outcome into the adaptive state. */
  async release(report: GateReport): Promise<void> {
    const now = Date.now();
    const i = this.s.leases.findIndex((l) => l.id === report.leaseId);
    const lease = i >= 0 ? this.s.leases.splice(i, 1)[0] : undefined;
    const policy = this.policy();
    // Give unused send times back when nothing was granted after them, so a failed connection costs no rate.
    if (lease && report.unused > 0 && this.s.tat === lease.tatAfter) {
      this.s.tat = Math.min(this.s.tat, Math.max(now, report.usedUntil));
    }
    this.s.totals.delivered += report.delivered;
    if (report.connectionFailed) {
      this.s.totals.connectionFailures++;
      this.s.consecutiveFailures++;
      if (this.s.consecutiveFailures >= policy.circuitFailures) this.s.circuitOpenUntil = now + policy.circuitOpenSeconds * 1000;
    } else {
      this.s.consecutiveFailures = 0;
      this.s.circuitOpenUntil = 0;
    }
    if (report.throttled) {
      this.s.totals.throttles++;
      this.s.rateFactor = Math.max(MIN_RATE_FACTOR, this.s.rateFactor / 2);
      const pauseMs = (report.throttled.retryAfterSeconds ?? policy.backoffPauseSeconds) * 1000;
      this.s.pausedUntil = Math.max(this.s.pausedUntil, now + pauseMs);
      this.s.tat = Math.max(this.s.tat, this.s.pausedUntil);
      this.s.lastThrottle = { at: now, text: report.throttled.text ?? null };
    } else if (report.delivered > 0 && !report.connectionFailed) {
      this.s.rateFactor = Math.min(1, Math.round((this.s.rateFactor + RESTORE_STEP) * 1000) / 1000);
    }
    this.save();
    this.wakeNext();
  }

  /** Sets (or with null clears) this destination's policy override, which wins over config and presets. */
  async setOverride(destination: string, override: Partial<GatePolicy> | null): Promise<GateState> {
    this.s.destination = destination;
    this.s.override = override;
    this.save();
    this.wakeNext();
    return this.state();
  }

  /** Clears backoff, circuit and pause (an operator fixed the cause). */
  async resetBackoff(): Promise<GateState> {
    this.s.rateFactor = 1;
    this.s.pausedUntil = 0;
    this.s.circuitOpenUntil = 0;
    this.s.consecutiveFailures = 0;
    this.save();
    this.wakeNext();
    return this.state();
  }

  /**
   * The outcome journal (issue 16): delivery outcomes the consumer could not write to D1 (the write failed after
   * the next hop had accepted the message) wait here until the cron or a later consumer batch flushes them, so a
   * retried or re-driven job never sends a recipient twice. Only written when D1 fails, so it costs nothing else.
   */
  async journalPut(entries: { key: string; value: string }[]): Promise<void> {
    putJournalEntries(this.ctx.storage.sql, entries);
  }

  /** Journal entries, oldest key first, at most `limit`. */
  async journalList(limit: number): Promise<{ key: string; value: string }[]> {
    return listJournalEntries(this.ctx.storage.sql, limit);
  }

  /** Drops journal entries D1 now has. */
  async journalDelete(keys: string[]): Promise<void> {
    deleteJournalEntries(this.ctx.storage.sql, keys);
  }

  /** The gate's current state for the admin API. */
  async state(): Promise<GateState> {
    const now = Date.now();
    this.expireLeases(now);
    const policy = this.policy();
    const iso = (ms: number) => (ms > now ? new Date(ms).toISOString() : null);
    return {
      destination: this.s.destination,
      policy,
      override: this.s.override,
      rateFactor: this.s.rateFactor,
      effectiveRatePerSecond: policy.ratePerSecond * this.s.rateFactor * RATE_HEADROOM,
      effectiveMaxConnections: this.effectiveMaxConnections(policy),
      activeConnections: this.s.leases.length,
      waiting: this.waiters.length,
      pausedUntil: iso(this.s.pausedUntil),
      circuit: this.circuit(now, policy),
      circuitOpenUntil: iso(this.s.circuitOpenUntil),
      consecutiveConnectionFailures: this.s.consecutiveFailures,
      sequence: this.s.seq,
      quotaUsedToday: this.s.day === Math.floor(now / DAY_MS) ? this.s.dayCount : 0,
      totals: { ...this.s.totals },
      lastThrottle: this.s.lastThrottle ? { at: new Date(this.s.lastThrottle.at).toISOString(), text: this.s.lastThrottle.text } : null,
      leases: this.s.leases.map((l) => ({
        id: l.id,
        holder: l.holder,
        stream: l.stream ?? "transactional",
        granted: l.granted,
        since: new Date(l.since).toISOString(),
        expiresAt: new Date(l.expiresAt).toISOString(),
      })),
      streams: {
        broadcastShare: this.s.broadcastShare,
        transactional: this.streamState("transactional", now),
        broadcast: this.streamState("broadcast", now),
      },
    };
  }

  private streamState(stream: GateStream, now: number): GateState["streams"]["transactional"] {
    return {
      active: this.s.activeUntil[stream] > now,
      activeConnections: this.s.leases.filter((l) => (l.stream ?? "transactional") === stream).length,
      waiting: this.waiters.filter((w) => w.stream === stream).length,
      granted: this.s.grantedByStream[stream],
    };
  }

  private policy(): GatePolicy {
    return mergePolicy(this.s.policy, this.s.override ?? undefined);
  }

  private circuit(now: number, policy: GatePolicy): GateState["circuit"] {
    if (this.s.consecutiveFailures < policy.circuitFailures) return "closed";
    return this.s.circuitOpenUntil > now ? "open" : "half-open";
  }

  /** While backing off, connections shrink with the rate (never below one). */
  private effectiveMaxConnections(policy: GatePolicy): number {
    if (this.circuit(Date.now(), policy) === "half-open") return 1;
    return Math.max(1, Math.floor(policy.maxConnections * this.s.rateFactor));
  }

  private blocked(now: number, policy: GatePolicy): { reason: DenyReason; retryAfterMs: number } | undefined {
    if (this.circuit(now, policy) === "open") return { reason: "circuit_open", retryAfterMs: this.s.circuitOpenUntil - now };
    if (this.s.pausedUntil > now) return { reason: "paused", retryAfterMs: this.s.pausedUntil - now };
    if (policy.quotaPerDay > 0) {
      const day = Math.floor(now / DAY_MS);
      if (this.s.day !== day) {
        this.s.day = day;
        this.s.dayCount = 0;
      }
      if (this.s.dayCount >= policy.quotaPerDay) return { reason: "quota", retryAfterMs: (day + 1) * DAY_MS - now };
    }
    return undefined;
  }

  private grant(now: number, policy: GatePolicy, req: PermitRequest, stream: GateStream): Permit {
    let wanted = Math.min(req.messages, policy.maxMessagesPerConnection);
    if (policy.quotaPerDay > 0) wanted = Math.min(wanted, policy.quotaPerDay - this.s.dayCount);
    const permit = this.schedule(now, policy, wanted, req.horizonMs, stream);
    if (!permit.granted) return permit;
    const lease: Lease = {
      id: crypto.randomUUID(),
      holder: req.holder,
      granted: permit.granted,
      since: now,
      expiresAt: now + req.leaseMs,
      tatAfter: this.s.tat,
      interval: permit.intervalMs,
      stream,
    };
    this.s.leases.push(lease);
    this.save();
    return { ...permit, leaseId: lease.id };
  }

  /**
   * Reserves up to `wanted` send times (GCRA) within the horizon and numbers them. Every stream draws from the one
   * timeline, so the destination never sees more than its rate; broadcast draws only a short way ahead, and while
   * transactional mail wants the destination too, also no faster than its reserved share (its own timeline).
   */
  private schedule(now: number, policy: GatePolicy, wanted: number, horizonMs: number, stream: GateStream): Permit {
    const rate = policy.ratePerSecond * this.s.rateFactor * RATE_HEADROOM;
    const interval = 1000 / rate;
    // Backing off: no bursts until the rate is fully restored.
    const burst = this.s.rateFactor < 1 ? 1 : policy.burst;
    const tau = (burst - 1) * interval;
    if (policy.quotaPerDay > 0) wanted = Math.min(wanted, policy.quotaPerDay - this.s.dayCount);
    const other: GateStream = stream === "broadcast" ? "transactional" : "broadcast";
    const contended = this.s.activeUntil[other] > now;
    const horizon = stream === "broadcast" ? Math.min(horizonMs, BROADCAST_HORIZON_MS) : contended ? Math.min(horizonMs, CONTENDED_TRANSACTIONAL_HORIZON_MS) : horizonMs;
    const shareInterval = stream === "broadcast" && contended ? interval / this.s.broadcastShare : 0;
    const slots: number[] = [];
    let tat = Math.max(this.s.tat, now - tau);
    let broadcastTat = this.s.broadcastTat;
    /** When to ask again for the first time that was not granted. */
    let retryAt = now;
    for (let i = 0; i < wanted; i++) {
      const t = Math.max(now, tat - tau);
      // The time must fit in the horizon; held to its share, broadcast also waits for its own next time (and
      // never takes a later time on the shared timeline instead, which would leave the times between unused).
      // The share's own GCRA tolerates one interval of lateness, so time lost between requests is made up.
      if (t > now + horizon || (shareInterval && t < broadcastTat - shareInterval)) {
        retryAt = Math.max(t - horizon, shareInterval ? broadcastTat - shareInterval - (t - now) : 0);
        break;
      }
      slots.push(Math.ceil(t));
      tat = Math.max(tat, t) + interval;
      if (shareInterval) broadcastTat = Math.max(broadcastTat, t) + shareInterval;
    }
    // Told to come back later, the stream still wants the destination until then: the other stream must leave
    // room for it (short horizons, the reserved share) in the meantime.
    if (slots.length < wanted) this.s.activeUntil[stream] = Math.max(this.s.activeUntil[stream], retryAt + STREAM_ACTIVE_MS);
    if (!slots.length) return this.deny("rate", Math.max(1, Math.ceil(retryAt - now)));
    this.s.tat = tat;
    if (shareInterval) this.s.broadcastTat = broadcastTat;
    const seq = this.s.seq + 1;
    this.s.seq += slots.length;
    this.s.dayCount += slots.length;
    this.s.totals.granted += slots.length;
    this.s.grantedByStream[stream] += slots.length;
    this.save();
    const partial = slots.length < wanted;
    return { granted: slots.length, leaseId: "", seq, slots, intervalMs: Math.floor(interval), lateToleranceMs: Math.max(interval / 2, tau), retryAfterMs: partial ? Math.max(0, Math.ceil(retryAt - now)) : 0 };
  }

  private deny(reason: DenyReason, retryAfterMs: number): Permit {
    this.s.totals.denied++;
    this.save();
    return { granted: 0, leaseId: "", seq: 0, slots: [], intervalMs: 0, lateToleranceMs: 0, retryAfterMs: Math.max(0, Math.ceil(retryAfterMs)), reason };
  }

  private busyHint(now: number): number {
    const soonest = Math.min(...this.s.leases.map((l) => l.expiresAt));
    return Number.isFinite(soonest) ? Math.min(5000, Math.max(250, soonest - now)) : 250;
  }

  private expireLeases(now: number): void {
    const before = this.s.leases.length;
    this.s.leases = this.s.leases.filter((l) => l.expiresAt > now);
    if (this.s.leases.length !== before) this.wakeNext();
  }

  /** Wakes the first transactional waiter, or the first waiter when none is transactional. */
  private wakeNext(): void {
    const i = this.waiters.findIndex((w) => w.stream === "transactional");
    const [w] = this.waiters.splice(i >= 0 ? i : 0, 1);
    w?.wake();
  }

  private save(): void {
    saveGateState(this.ctx.storage.sql, JSON.stringify(this.s));
  }
}
