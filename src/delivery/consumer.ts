/**
 * Queue consumer for OUTBOX: the delivery engine. For each batch it
 * 1. drops recipients that already reached a final state (Queues deliver at least once);
 * 2. groups jobs by route and destination, and resolves each destination's next hops (relay upstreams in
 *    failover order, MX hosts over DNS-over-HTTPS, or the Cloudflare send_email binding);
 * 3. asks each destination's DomainGate for permits, opens as few connections as it can (never more than
 *    MAX_CONNECTIONS_PER_INVOCATION at once) and carries several messages per connection, each message sent no
 *    earlier than the send time its permit names;
 * 4. writes every outcome to D1 in batched statements, feeds hard bounces to the suppression list, sends DSNs
 *    for bounced and expired recipients, re-enqueues deferred recipients with a delay, and acks.
 */
import { loadConfig, MAX_QUEUE_DELAY_SECONDS, type NextHop, type RelayConfig } from "../config";
import { meterStageTime } from "../metering";
import { acceptMessage } from "../accept/accept";
import type { DomainGate, GateReport, Permit } from "../gate/domain-gate";
import { mergePolicy, presetForMxHosts, type GatePolicy } from "../gate/policy";
import { openSmtpSession, SmtpError, type SmtpSession, type TlsMode } from "../smtp/client";
import { cloudflareSocketFactory } from "../smtp/cloudflare-socket";
import { MESSAGE_BY_ID, outcomeStatements, parseRecipients, recordOutcome } from "../store/messages";
import { findRoutes } from "../store/routes";
import { composeDsn, type DsnRecipient } from "./dsn";
import { flushOutcomeJournal, newOutcomes, writeOutcomes, limitsOf, type PendingOutcome } from "./outcomes";
import { errorText, failAll, newWork, postpone, sleep, type Attempted, type Work } from "./work";
import { isReturnPathAddress } from "../mime/return-path";
import { enqueueJobs, jobStream } from "./enqueue";
import { isReleaseRequest, parkJobs, releaseParkedJobs, streamGateKey, streamGatePolicy, type ReleaseRequest } from "./streams";
import { streamSettings, type StreamSettings } from "../store/streams";
import { isDeliveryJob, type DeliveryJob } from "./job";
import { DnsFailure, DohResolver } from "./mx";
import { isThrottleReply, retryHintSeconds } from "./retry";
import { resolveSmtpHop, RouteError, selectRouteSet, type RouteCandidate } from "./routes";

/** A Worker invocation may hold at most 6 simultaneous outbound connections (Workers platform limit). */
export const MAX_CONNECTIONS_PER_INVOCATION = 6;
/** How long a connection waits in a DomainGate's FIFO line before its jobs are re-queued instead. */
const GATE_WAIT_MS = 3000;
/** Send times granted at most this far ahead; messages beyond wait in the queue rather than in memory. */
const GATE_HORIZON_MS = 20_000;
/** Fresh send times a connection may ask for when it fell behind all of its own. */
const MAX_SLOT_REFRESHES = 20;
/** A gate's "not yet" shorter than this is waited out in the invocation instead of re-queueing. */
const SHORT_WAIT_MS = 5000;
/** Longest a lane waits in total for a busy gate before its jobs go back to the queue. */
const MAX_LANE_WAIT_MS = 15_000;
/** No new connection starts after this much of an invocation (queue consumers may run up to 15 minutes). */
const INVOCATION_BUDGET_MS = 5 * 60_000;
/** D1 statements per batch call. */
const D1_BATCH_STATEMENTS = 100;
/** A job that arrives this early before its due time is re-queued for the rest of the wait. */
const DUE_SLACK_MS = 1000;

type Gate = DurableObjectStub<DomainGate>;

const resolvers = new Map<string, DohResolver>();
function resolverFor(dohUrl: string): DohResolver {
  let r = resolvers.get(dohUrl);
  if (!r) resolvers.set(dohUrl, (r = new DohResolver(dohUrl)));
  return r;
}

/** One way to reach a destination: its gate key, policy, and either SMTP endpoints or a send_email binding. */
interface Target {
  gateKey: string;
  policy: GatePolicy;
  label: string;
  endpoints: { host: string; address: string; port: number; tls: TlsMode; auth?: NonNullable<NextHop["auth"]> }[];
  binding?: string;
}

function senderDomain(mailFrom: string): string {
  return mailFrom.includes("@") ? mailFrom.slice(mailFrom.lastIndexOf("@") + 1).toLowerCase() : "";
}

/** A counting semaphore for the invocation's connection budget. */
class Semaphore {
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

function gateFor(env: Env, key: string): Gate {
  return env.DOMAIN_GATE.get(env.DOMAIN_GATE.idFromName(key));
}

function policyFor(config: RelayConfig, key: string, route: RouteCandidate, preset?: Partial<GatePolicy>): GatePolicy {
  return mergePolicy(config.gateDefaults, preset, route.policy, config.gatePolicies[key]);
}

/** Resolves the next hops of one route for a destination. DnsFailure and RouteError propagate. */
async function targetsFor(env: Env, config: RelayConfig, route: RouteCandidate, destination: string): Promise<Target[]> {
  const t = route.target;
  if (t.kind === "cloudflare") {
    const key = `cloudflare:${t.binding}`.toLowerCase();
    return [{ gateKey: key, policy: policyFor(config, key, route), label: key, endpoints: [], binding: t.binding }];
  }
  if (t.kind === "smtp") {
    const hop = resolveSmtpHop(t.url, env);
    const key = `upstream:${route.name}`.toLowerCase();
    return [
      {
        gateKey: key,
        policy: policyFor(config, key, route),
        label: `${hop.host}:${hop.port}`,
        endpoints: [{ host: hop.host, address: hop.host, port: hop.port, tls: hop.tls, ...(hop.auth ? { auth: hop.auth } : {}) }],
      },
    ];
  }
  const resolver = resolverFor(config.dohUrl);
  const mx = await resolver.mxHosts(destination);
  const port = t.port ?? config.mxPort;
  const endpoints: Target["endpoints"] = [];
  let lastDns: DnsFailure | undefined;
  for (const h of mx) {
    try {
      for (const address of await resolver.addresses(h.host)) endpoints.push({ host: h.host, address, port, tls: t.tls });
    } catch (e) {
      if (!(e instanceof DnsFailure)) throw e;
      lastDns = e;
    }
  }
  if (!endpoints.length) throw lastDns ?? new DnsFailure(`no MX host of ${destination} has an address`, false, "4.4.4");
  const preset = presetForMxHosts(mx.map((h) => h.host));
  const key = preset ? `provider:${preset.name}` : destination;
  return [{ gateKey: key, policy: policyFor(config, key, route, preset?.policy), label: mx.map((h) => h.host).join(","), endpoints }];
}

function fromSmtpError(e: SmtpError, host: string | undefined, tls: boolean | undefined): Attempted {
  return {
    status: e.temporary ? "deferred" : "bounced",
    ...(e.code !== undefined ? { code: e.code } : {}),
    ...(e.enhanced !== undefined ? { enhanced: e.enhanced } : {}),
    text: e.reply?.text ?? e.message,
    ...(host ? { host } : {}),
    ...(tls !== undefined ? { tls } : {}),
    command: e.command,
    ...(retryHintSeconds(e.reply?.text ?? e.message) !== undefined ? { hintSeconds: retryHintSeconds(e.reply?.text ?? e.message)! } : {}),
  };
}

/** Opens a session to the first endpoint that answers (next MX / address on connection failure). */
async function connect(env: Env, config: RelayConfig, target: Target): Promise<{ session: SmtpSession; host: string } | { error: SmtpError; host: string }> {
  let last: { error: SmtpError; host: string } | undefined;
  for (const ep of target.endpoints) {
    const host = ep.address === ep.host ? `${ep.host}:${ep.port}` : `${ep.host}:${ep.port} [${ep.address}]`;
    try {
      const opening = Date.now();
      const session = await openSmtpSession({
        socketFactory: cloudflareSocketFactory,
        host: ep.address,
        port: ep.port,
        tls: ep.tls,
        heloName: config.relayHostname,
        tlsServerName: ep.host,
        ...(ep.auth ? { auth: ep.auth } : {}),
        timeouts: { connectMs: 15_000, greetingMs: 60_000, commandMs: 60_000 },
      });
      meterStageTime(env, "smtp", Date.now() - opening);
      return { session, host };
    } catch (e) {
      if (!(e instanceof SmtpError)) throw e;
      last = { error: e, host };
    }
  }
  return last ?? { error: new SmtpError({ kind: "connection", command: "CONNECT", message: `no endpoint for ${target.label}` }), host: target.label };
}

/** Delivers one job's pending recipients over an open session. Throws SmtpError when the connection failed. */
async function sendOne(env: Env, session: SmtpSession, host: string, w: Work, seq: number): Promise<void> {
  const started = Date.now();
  const rcpts = w.pending.filter((r) => !w.results.has(r.idx));
  const body = w.raw ?? (await env.BODIES.get(w.job.bodyKey!))?.body;
  if (body === undefined) {
    for (const r of rcpts) w.results.set(r.idx, { status: "bounced", enhanced: "5.3.0", text: "message body missing from storage", seq });
    return;
  }
  try {
    const result = await session.sendMail(
      { mailFrom: w.job.mailFrom, rcptTo: rcpts.map((r) => r.address), size: w.job.sizeBytes, eightBit: w.job.eightBit, smtputf8: w.job.smtputf8 },
      body,
    );
    const latencyMs = Date.now() - started;
    meterStageTime(env, "smtp", latencyMs);
    rcpts.forEach((r, i) => {
      const rr = result.recipients[i]!;
      if (rr.delivered) {
        const reply = result.dataReply;
        w.results.set(r.idx, {
          status: "delivered",
          ...(reply ? { code: reply.code, text: reply.text } : { text: "accepted" }),
          ...(reply?.enhanced ? { enhanced: reply.enhanced } : {}),
          host,
          tls: session.tls,
          latencyMs,
          seq,
        });
      } else {
        const err = rr.error ?? result.error ?? new SmtpError({ kind: "reply", command: "RCPT", reply: rr.reply });
        w.results.set(r.idx, { ...fromSmtpError(err, host, session.tls), latencyMs, seq });
      }
    });
  } catch (e) {
    if (!(e instanceof SmtpError)) throw e;
    const latencyMs = Date.now() - started;
    for (const r of rcpts) w.results.set(r.idx, { ...fromSmtpError(e, host, session.tls), status: e.temporary ? "deferred" : "bounced", latencyMs, seq });
    throw e;
  }
}

/**
 * Whether a send_email failure is permanent. The binding throws Errors with a string `code` (E_...); refusals
 * of the message or recipient are permanent. Sender and account problems (unverified sender, not entitled, rate
 * and daily limits, internal errors) are temporary, like an SMTP AUTH failure: fixing the account delivers the
 * queue. Without a code (the local simulator), the message text decides the same way.
 */
export function isPermanentSendEmailError(code: string, message: string): boolean {
  if (code) return /RECIPIENT|VALIDATION|INVALID|TOO_LARGE|TOO_MANY|SUPPRESSED|DESTINATION/.test(code) && !/SENDER|LIMIT|INTERNAL/.test(code);
  return /email to \S+ not allowed|destination|recipient|could not parse|invalid/i.test(message) && !/from \S+ not allowed|sender/i.test(message);
}

/** The address in the header From field: Email Service wants the envelope sender to match it (VERP cannot). */
function headerFromAddress(raw: string): string | undefined {
  const head = raw.slice(0, Math.max(0, raw.search(/\r?\n\r?\n/)) || raw.length);
  const m = /^From:[ \t]*((?:.*)(?:\r?\n[ \t].*)*)/im.exec(head);
  if (!m) return undefined;
  const value = m[1]!.replace(/\r?\n[ \t]/g, " ");
  const angle = /<([^<>\s]+@[^<>\s]+)>/.exec(value);
  return angle ? angle[1] : /([^\s<>",;]+@[^\s<>",;]+)/.exec(value)?.[1];
}

/**
 * The message as Email Service takes it: without our `Received` trace fields, which it refuses ("invalid
 * headers set") and adds itself.
 */
function withoutTraceFields(raw: string): string {
  const end = raw.search(/\r?\n\r?\n/);
  if (end < 0) return raw;
  const head = raw
    .slice(0, end)
    .replace(/^Received:[^\r\n]*(?:\r?\n[ \t][^\r\n]*)*\r?\n?/gim, "")
    .replace(/\r?\n$/, "");
  return head + raw.slice(end);
}

/** Delivers one job through a send_email binding, one recipient per EmailMessage. */
async function sendCloudflare(env: Env, binding: string, w: Work, seq: number): Promise<void> {
  const target = (env as unknown as Record<string, unknown>)[binding] as SendEmail | undefined;
  const { EmailMessage } = await import("cloudflare:email");
  // Email Service takes at most 25 MiB, so reading an R2 body whole here is bounded.
  const raw = w.raw ?? (await (await env.BODIES.get(w.job.bodyKey!))?.text());
  if (raw === undefined) {
    for (const r of w.pending) if (!w.results.has(r.idx)) w.results.set(r.idx, { status: "bounced", enhanced: "5.3.0", text: "message body missing from storage", seq });
    return;
  }
  const from = headerFromAddress(raw) ?? w.job.mailFrom;
  const host = `cloudflare:${binding}`;
  for (const r of w.pending) {
    if (w.results.has(r.idx)) continue;
    const started = Date.now();
    if (!target || typeof target.send !== "function") {
      w.results.set(r.idx, { status: "deferred", enhanced: "4.3.5", text: `send_email binding ${binding} is not configured`, host, seq });
      continue;
    }
    try {
      const res = await target.send(new EmailMessage(from, r.address, withoutTraceFields(raw)));
      w.results.set(r.idx, { status: "delivered", text: `accepted as ${res.messageId}`, host, tls: true, latencyMs: Date.now() - started, seq });
    } catch (e) {
      const code = typeof (e as { code?: unknown }).code === "string" ? (e as { code: string }).code : "";
      const permanent = isPermanentSendEmailError(code, errorText(e));
      w.results.set(r.idx, {
        status: permanent ? "bounced" : "deferred",
        enhanced: permanent ? "5.0.0" : "4.0.0",
        text: `${code ? `${code}: ` : ""}${errorText(e)}`,
        host,
        latencyMs: Date.now() - started,
        seq,
      });
    }
  }
}

/**
 * Delivers a destination's jobs over up to `policy.maxConnections` parallel lanes. Each lane takes a connection
 * slot from the invocation, a permit from the gate, then carries messages until its permit is used up.
 */
async function deliverDestination(env: Env, config: RelayConfig, items: Work[], targets: Target[], slots: Semaphore, startedAt: number, holder: string, record: (w: Work) => Promise<void>): Promise<void> {
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

function hint(e: SmtpError): { retryAfterSeconds?: number } {
  const h = retryHintSeconds(e.reply?.text ?? e.message);
  return h !== undefined ? { retryAfterSeconds: h } : {};
}

/** Bytes of an R2 body read for a DSN's attached header section (RFC 3464 wants headers, not the message). */
const DSN_HEAD_BYTES = 64 * 1024;

/** The start of a job's message (inline, or the first bytes of its R2 object) for DSN headers; "" when gone. */
async function messageHead(env: Env, w: Work): Promise<string> {
  if (w.raw !== undefined) return w.raw;
  const obj = await env.BODIES.get(w.job.bodyKey!, { range: { offset: 0, length: DSN_HEAD_BYTES } });
  return obj ? obj.text() : "";
}

/**
 * Final (message, idx) pairs among the batch's recipients, so duplicates of finished work are skipped: from the
 * message rows, and from the outcome journal when the batch holds a retried or re-driven job (a D1 write that
 * failed after a 250 left the outcome there).
 */
async function finalRecipients(env: Env, work: Work[]): Promise<{ done: Set<string>; dueAt: Map<string, number | null> }> {
  const done = new Set<string>();
  const dueAt = new Map<string, number | null>();
  if (work.some((w) => w.job.redrive || w.msg.attempts > 1)) {
    for (const o of await flushOutcomeJournal(env)) done.add(`${o.messageId}|${o.idx}`);
  }
  const byTenant = new Map<string, Set<string>>();
  for (const w of work) byTenant.set(w.job.tenantId, (byTenant.get(w.job.tenantId) ?? new Set()).add(w.job.messageId));
  for (const [tenant, set] of byTenant) {
    const ids = [...set];
    for (let i = 0; i < ids.length; i += 90) {
      const chunk = ids.slice(i, i + 90);
      const { results } = await env.DB.prepare(`SELECT id, rcpts, due_at FROM messages WHERE tenant_id = ? AND id IN (${chunk.map(() => "?").join(",")})`)
        .bind(tenant, ...chunk)
        .all<{ id: string; rcpts: string; due_at: number | null }>();
      for (const r of results) {
        dueAt.set(`${tenant}|${r.id}`, r.due_at);
        parseRecipients(r.rcpts).forEach((x, idx) => x.f !== undefined && x.f !== null && done.add(`${r.id}|${idx}`));
      }
    }
  }
  return { done, dueAt };
}

/**
 * Messages that go back to the queue untried (a busy or paused gate) write nothing, so their due time ages; once it
 * is half the re-drive grace old it is moved to now, so the re-drive does not take a job still travelling for a
 * lost one. One row per such message, only while a destination keeps them waiting.
 */
async function touchWaiting(env: Env, config: RelayConfig, work: Work[], dueAt: Map<string, number | null>, now: number): Promise<void> {
  const stale = now - (config.redriveGraceSeconds * 1000) / 2;
  const keys = new Set<string>();
  for (const w of work) {
    const k = `${w.job.tenantId}|${w.job.messageId}`;
    const due = dueAt.get(k);
    if (w.notAttempted.some((r) => !w.recorded.has(r.idx)) && due !== null && due !== undefined && due < stale) keys.add(k);
  }
  if (!keys.size) return;
  await env.DB.batch(
    [...keys].map((k) => {
      const [tenantId, id] = k.split("|") as [string, string];
      return env.DB.prepare("UPDATE messages SET due_at = MAX(COALESCE(due_at, 0), ?) WHERE tenant_id = ? AND id = ? AND open > 0").bind(now, tenantId, id);
    }),
  );
}

/**
 * Per-tenant stream limits (rate, daily quota): each (tenant, stream) of the batch asks its own gate for a send
 * time per job, in batch order. Jobs get their time as `notBefore`; jobs beyond the grant go back to the queue.
 */
async function applyStreamLimits(env: Env, settings: Map<string, StreamSettings>, live: Work[], holder: string): Promise<void> {
  const byStream = new Map<string, Work[]>();
  for (const w of live) {
    const k = `${w.job.tenantId}|${jobStream(w.job)}`;
    if (!streamGatePolicy(settings.get(k))) continue;
    const list = byStream.get(k) ?? [];
    list.push(w);
    byStream.set(k, list);
  }
  for (const [k, items] of byStream) {
    const { tenantId, stream } = { tenantId: items[0]!.job.tenantId, stream: jobStream(items[0]!.job) };
    const key = streamGateKey(tenantId, stream);
    const gate = gateFor(env, key);
    const permit = await gate.acquire(key, { policy: streamGatePolicy(settings.get(k))!, messages: items.length, holder, maxWaitMs: 0, horizonMs: GATE_HORIZON_MS, leaseMs: 60_000 });
    // The times are the tenant's from now on: nothing to give back, and no connection to hold.
    if (permit.granted) await gate.release({ leaseId: permit.leaseId, delivered: 0, unused: 0, usedUntil: 0 });
    items.slice(0, permit.granted).forEach((w, i) => (w.notBefore = permit.slots[i]));
    const rest = items.slice(permit.granted);
    if (rest.length) postpone(rest, Math.max(1000, permit.retryAfterMs), `tenant ${stream} stream: ${permit.reason === "quota" ? "daily quota used" : "rate limit"}`);
  }
}

/** Test seams of the consumer: called after each transaction's outcomes were recorded. */
export interface ConsumerHooks {
  afterTransaction?: (w: Work) => void | Promise<void>;
}

/** Thrown by a hook to stop the invocation where it is, as a runtime restart would (nothing is acknowledged). */
export class InvocationStopped extends Error {}

/** Handles one batch from OUTBOX. */
export async function handleOutbox(batch: MessageBatch<unknown>, env: Env, hooks: ConsumerHooks = {}): Promise<void> {
  const config = loadConfig(env);
  // Each transaction's outcomes are durable as it ends (D1, else the outcome journal), before the next one starts.
  const record = async (w: Work) => {
    await writeOutcomes(env, newOutcomes(config, w, Date.now(), false));
    await hooks.afterTransaction?.(w);
  };
  const startedAt = Date.now();
  const requeue: { body: DeliveryJob; delaySeconds: number }[] = [];
  const work: Work[] = [];
  const releases: ReleaseRequest[] = [];

  for (const msg of batch.messages) {
    if (isReleaseRequest(msg.body)) {
      // A resumed stream with more parked jobs than one invocation releases (issue 12).
      releases.push(msg.body);
      continue;
    }
    if (!isDeliveryJob(msg.body)) {
      console.error("outbox: dropping malformed job", msg.id);
      msg.ack();
      continue;
    }
    const job = msg.body;
    // Delays longer than a Queue allows are made of several hops; this one is not due yet.
    if (job.dueAt !== undefined && job.dueAt - startedAt > DUE_SLACK_MS) {
      requeue.push({ body: job, delaySeconds: Math.min(MAX_QUEUE_DELAY_SECONDS, Math.ceil((job.dueAt - startedAt) / 1000)) });
      continue;
    }
    work.push(newWork(msg, job));
  }

  const ledger = work.length ? await finalRecipients(env, work) : { done: new Set<string>(), dueAt: new Map<string, number | null>() };
  // A recipient is handled once per batch (a re-driven copy of a job may meet the original in the same batch).
  const seen = new Set<string>();
  for (const w of work) {
    w.pending = w.job.recipients.filter((r) => {
      const k = `${w.job.messageId}|${r.idx}`;
      if (ledger.done.has(k) || seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  }
  const holder = `outbox:${batch.messages[0]?.id ?? "empty"}`;

  // Streams (issue 12): a paused stream's jobs are parked until resume; a stream with limits waits for its gate.
  const unfinished = work.filter((w) => w.pending.length);
  const settings = unfinished.length ? await streamSettings(env.DB, unfinished.map((w) => w.job.tenantId)) : new Map<string, StreamSettings>();
  const paused = new Set(unfinished.filter((w) => settings.get(`${w.job.tenantId}|${jobStream(w.job)}`)?.paused));
  await parkJobs(env, [...paused].map((w) => ({ ...w.job, recipients: w.pending })));
  const live = unfinished.filter((w) => !paused.has(w));
  await applyStreamLimits(env, settings, live, holder);

  // Check bodies and load routes; group by (tenant, sender domain, destination): the route depends on all three.
  const routeCache = new Map<string, RouteCandidate[]>();
  const groups = new Map<string, Work[]>();
  for (const w of live) {
    if (w.notAttempted.length) continue; // over its stream's limit: back to the queue
    if (w.job.body !== undefined) {
      w.raw = w.job.body;
    } else if (!(await env.BODIES.head(w.job.bodyKey!))) {
      failAll([w], { status: "bounced", enhanced: "5.3.0", text: "message body missing from storage" });
      continue;
    }
    const key = `${w.job.tenantId}|${senderDomain(w.job.mailFrom)}|${w.job.destination}`;
    let routes = routeCache.get(key);
    if (!routes) {
      routes = selectRouteSet(await findRoutes(env.DB, w.job.destination, w.job.tenantId, senderDomain(w.job.mailFrom)), env.NEXT_HOP_URL);
      routeCache.set(key, routes);
    }
    w.routes = routes;
    // Streams travel on lanes of their own: the gate ranks their requests apart.
    const laneKey = `${key}|${jobStream(w.job)}`;
    const list = groups.get(laneKey) ?? [];
    list.push(w);
    groups.set(laneKey, list);
  }

  const slots = new Semaphore(MAX_CONNECTIONS_PER_INVOCATION);
  await Promise.all(
    [...groups.values()].map(async (items) => {
      const destination = items[0]!.job.destination;
      const targets: Target[] = [];
      try {
        for (const route of items[0]!.routes) targets.push(...(await targetsFor(env, config, route, destination)));
        if (!targets.length) throw new RouteError(`no usable route for ${destination}`);
      } catch (e) {
        if (e instanceof DnsFailure) {
          failAll(items, { status: e.permanent ? "bounced" : "deferred", enhanced: e.enhanced, text: e.message, command: "DNS" });
          return;
        }
        if (e instanceof RouteError) {
          failAll(items, { status: "deferred", enhanced: "4.3.5", text: e.message });
          return;
        }
        throw e;
      }
      try {
        await deliverDestination(env, config, items, targets, slots, startedAt, holder, record);
      } catch (e) {
        if (e instanceof InvocationStopped) throw e;
        // An unexpected failure (a gate RPC, storage) must not throw away what other destinations delivered in
        // this batch: this destination's untried recipients wait a little; finished ones keep their outcomes.
        console.error("outbox: delivery to", destination, "failed", e);
        postpone(items, 5000, `internal error: ${errorText(e)}`);
      }
    }),
  );

  // Outcomes not recorded as their transaction ended (failures before or without a connection, expiry).
  const now = Date.now();
  const rest: PendingOutcome[] = [];
  for (const w of work) rest.push(...newOutcomes(config, w, now, true));
  await writeOutcomes(env, rest);
  for (const w of work) requeue.push(...retriesOf(config, w, now));
  await touchWaiting(env, config, work, ledger.dueAt, now);
  const dsns = work.filter((w) => w.dsn.length && config.dsnEnabled && w.job.mailFrom !== "");
  // Back to the queue of each job's stream (transactional jobs to OUTBOX_PRIORITY).
  await enqueueJobs(env, requeue);
  for (const w of dsns) await sendDsn(env, config, w, w.dsn, w.expiredAny);
  for (const r of releases) await releaseParkedJobs(env, r.release.tenantId, r.release.stream);
  await deleteFinishedBodies(env, work);
  batch.ackAll();
}

/** The jobs that carry a work item's recipients again: deferred ones after their delay, untried ones soon. */
function retriesOf(config: RelayConfig, w: Work, now: number): { body: DeliveryJob; delaySeconds: number }[] {
  const { deadline, schedule } = limitsOf(config, w);
  const out: { body: DeliveryJob; delaySeconds: number }[] = [];
  // Untried recipients go back without an attempt counted (unless their time is up: expired above). Looked at again
  // after the gate's wait or the first retry step, whichever is sooner, so an operator's reset takes effect quickly.
  const untried = w.notAttempted.filter((r) => !w.recorded.has(r.idx));
  if (untried.length) {
    const d = Math.max(1, Math.ceil(Math.min(w.notAttemptedAfterMs, deadline - now, (schedule[0] ?? 60) * 1000) / 1000));
    out.push(nextJob({ ...w.job, recipients: untried }, d, now));
  }
  if (w.deferred.length) out.push(nextJob({ ...w.job, recipients: w.deferred, attempt: w.job.attempt + 1 }, w.delaySeconds, now));
  return out;
}

/**
 * R2 bodies of messages whose every recipient is now final are deleted (inline bodies die with their job): the
 * shared body `bodies/<id>` and, for messages composed per recipient (tracking), every `bodies/<id>/<idx>`, whichever
 * job happens to finish last.
 */
async function deleteFinishedBodies(env: Env, work: Work[]): Promise<void> {
  const messages = new Set<string>();
  for (const w of work) if (w.job.bodyKey && w.results.size) messages.add(`${w.job.tenantId}|${w.job.messageId}`);
  for (const key of messages) {
    const [tenantId, messageId] = key.split("|") as [string, string];
    const row = await env.DB.prepare("SELECT json_array_length(rcpts) AS n, open FROM messages WHERE tenant_id = ? AND id = ?")
      .bind(tenantId, messageId)
      .first<{ n: number; open: number }>();
    if (!row || row.open > 0) continue;
    const keys = [`bodies/${messageId}`, ...Array.from({ length: row.n }, (_, idx) => `bodies/${messageId}/${idx}`)];
    // R2 deletes up to 1,000 keys per call.
    for (let i = 0; i < keys.length; i += 1000) await env.BODIES.delete(keys.slice(i, i + 1000));
  }
}

/** The job that carries `job`'s recipients again after `delaySeconds`; longer than a Queue delay: via dueAt. */
function nextJob(job: DeliveryJob, delaySeconds: number, now: number): { body: DeliveryJob; delaySeconds: number } {
  const { dueAt: _previous, ...rest } = job;
  const body: DeliveryJob = delaySeconds > MAX_QUEUE_DELAY_SECONDS ? { ...rest, dueAt: now + delaySeconds * 1000 } : rest;
  return { body, delaySeconds: Math.min(delaySeconds, MAX_QUEUE_DELAY_SECONDS) };
}

/** Sends an RFC 3464 report to the envelope sender through the normal accept and delivery path. */
async function sendDsn(env: Env, config: RelayConfig, w: Work, recipients: DsnRecipient[], expired: boolean): Promise<void> {
  const to = w.job.notifyAddress ?? w.job.mailFrom;
  // A report to our own VERP address would only come back to the email() handler; the outcome is recorded anyway.
  if (to === "" || isReturnPathAddress(to)) return;
  const dsn = composeDsn({
    reportingMta: config.relayHostname,
    to,
    originalMessageId: w.job.messageId,
    arrivalAt: w.job.acceptedAt,
    recipients,
    originalRaw: await messageHead(env, w),
    expired,
  });
  try {
    await acceptMessage(env, {
      tenantId: w.job.tenantId,
      mailFrom: "",
      headerFrom: dsn.from,
      subject: dsn.subject,
      messageIdHeader: dsn.messageId,
      raw: dsn.raw,
      recipients: [to],
      tags: ["dsn"],
      metadata: { dsn_for: w.job.messageId },
    });
  } catch (e) {
    // The outcome is recorded either way; a lost DSN must not redeliver the original.
    console.error("outbox: could not queue the DSN for", w.job.messageId, e);
  }
}

/** Dead-letter consumer: a job that exhausted the queue's retries ends `failed` for its pending recipients. */
export async function handleDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const stmts: D1PreparedStatement[] = [];
  for (const msg of batch.messages) {
    if (!isDeliveryJob(msg.body)) continue;
    const job = msg.body;
    for (const r of job.recipients) {
      stmts.push(
        ...recordOutcome(env.DB, {
          messageId: job.messageId,
          tenantId: job.tenantId,
          idx: r.idx,
          address: r.address,
          status: "failed",
          at: Date.now(),
          attempt: job.attempt + 1,
          text: "delivery job exhausted the queue's retries (dead-letter queue)",
        }),
      );
    }
  }
  for (let i = 0; i < stmts.length; i += D1_BATCH_STATEMENTS) await env.DB.batch(stmts.slice(i, i + D1_BATCH_STATEMENTS));
  batch.ackAll();
}
