/**
 * Queue consumer for OUTBOX and OUTBOX_PRIORITY: orchestrates the delivery pipeline over one work type (work.ts).
 * For each batch it
 * 1. drops recipients already final in the ledger (Queues deliver at least once; the outcome journal counts too);
 * 2. parks jobs of paused streams and applies tenant stream limits (streams.ts);
 * 3. groups jobs by route and destination and resolves their targets (targets.ts);
 * 4. delivers each destination over lanes with DomainGate send times (lanes.ts), by SMTP (smtp-send.ts) or the
 *    send_email binding (cloudflare-send.ts), recording each transaction's outcomes as it ends (outcomes.ts);
 * 5. records what is left, re-queues deferred and untried recipients, sends DSNs, deletes finished bodies, acks.
 */
import { MAX_QUEUE_DELAY_SECONDS, nextHopUrl, type RelayConfig } from "../config";
import { acceptMessage } from "../queue/spool";
import { recordOutcome } from "../store/messages";
import { finalStateOf, openRecipientCount, touchDueAt } from "../store/delivery-state";
import { ledgerOf } from "../store/shards";
import { findRoutes } from "../store/routes";
import { composeDsn, type DsnRecipient } from "./dsn";
import { deliverDestination, GATE_HORIZON_MS, MAX_CONNECTIONS_PER_INVOCATION, Semaphore } from "./lanes";
import { flushOutcomeJournal, newOutcomes, outcomeWriter, writeOutcomes, limitsOf, type PendingOutcome } from "./outcomes";
import { errorText, failAll, newWork, postpone, type Work } from "./work";
import { isReturnPathAddress } from "../mime/return-path";
import { enqueueJobs, jobsOf, jobStream } from "../queue/enqueue";
import { announceParked, announceWait, waitFromPostponement } from "./waits";
import { isReleaseRequest, parkJobs, releaseParkedJobs, streamGateKey, streamGatePolicy, type ReleaseRequest } from "./streams";
import { streamSettings, type StreamSettings } from "../store/streams";
import type { DeliveryJob } from "../queue/job";
import { DnsFailure } from "./mx";
import { RouteError, selectRouteSet, type RouteCandidate } from "./routes";
import { gateFor, senderDomain, StsRefusal, targetsFor, type Target } from "./targets";
import { BodyKeyError, openInlineBody, readStoredText } from "../store/body-crypto";

export { MAX_CONNECTIONS_PER_INVOCATION } from "./lanes";
export { isPermanentSendEmailError } from "./cloudflare-send";

/** D1 statements per batch call. */
const D1_BATCH_STATEMENTS = 100;
/** A job that arrives this early before its due time is re-queued for the rest of the wait. */
const DUE_SLACK_MS = 1000;

/** Bytes of an R2 body read for a DSN's attached header section (RFC 3464 wants headers, not the message). */
const DSN_HEAD_BYTES = 64 * 1024;

/** The start of a job's message (inline, or the first bytes of its R2 object) for DSN headers; "" when gone. */
async function messageHead(env: Env, w: Work): Promise<string> {
  if (w.raw !== undefined) return w.raw;
  return (await readStoredText(env, w.job.bodyKey!, DSN_HEAD_BYTES).catch(() => undefined)) ?? "";
}

/**
 * Final (message, idx) pairs among the batch's recipients, so duplicates of finished work are skipped: from the
 * message rows, and from the outcome journal when the batch holds a retried or re-driven job (a D1 write that
 * failed after a 250 left the outcome there).
 */
async function finalRecipients(env: Env, work: Work[]): Promise<BatchLedger> {
  const done = new Set<string>();
  const dueAt = new Map<string, number | null>();
  const ledgers = new Map<string, D1Database>();
  const unreachable = new Set<string>();
  if (work.some((w) => w.job.redrive || w.msg.attempts > 1)) {
    for (const o of await flushOutcomeJournal(env)) done.add(`${o.messageId}|${o.idx}`);
  }
  const byTenant = new Map<string, Set<string>>();
  for (const w of work) byTenant.set(w.job.tenantId, (byTenant.get(w.job.tenantId) ?? new Set()).add(w.job.messageId));
  // Each tenant's ledger shard apart (issue 17): a shard that fails only sends its own tenants' jobs back.
  await Promise.all(
    [...byTenant].map(async ([tenant, set]) => {
      try {
        const db = await ledgerOf(env, tenant);
        await finalStateOf(db, tenant, [...set], done, dueAt);
        ledgers.set(tenant, db);
      } catch (e) {
        console.error(`outbox: the ledger of tenant ${tenant} is unavailable; its jobs wait`, e);
        unreachable.add(tenant);
      }
    }),
  );
  // No row: the message is gone (its tenant's data was erased, issue 21; retention only deletes final messages), so
  // its job is dropped without sending. Not for a tenant whose shard failed: its jobs wait for the shard.
  for (const w of work) {
    if (unreachable.has(w.job.tenantId) || dueAt.has(`${w.job.tenantId}|${w.job.messageId}`)) continue;
    console.log(`outbox: dropping a job of message ${w.job.messageId}: its record was erased`);
    for (const r of w.job.recipients) done.add(`${w.job.messageId}|${r.idx}`);
  }
  return { done, dueAt, ledgers, unreachable };
}

/** What the batch read from the ledger: final recipients, due times, each tenant's shard, tenants whose shard failed. */
interface BatchLedger {
  done: Set<string>;
  dueAt: Map<string, number | null>;
  ledgers: Map<string, D1Database>;
  unreachable: Set<string>;
}

/** A tenant whose ledger shard failed: its jobs go back to the queue untouched, to be tried again after this. */
const UNREACHABLE_LEDGER_RETRY_SECONDS = 30;

/**
 * Messages that go back to the queue untried (a busy or paused gate) write nothing, so their due time ages; once it
 * is half the re-drive grace old it is moved to now, so the re-drive does not take a job still travelling for a
 * lost one. One row per such message, only while a destination keeps them waiting.
 */
async function touchWaiting(config: RelayConfig, work: Work[], ledger: BatchLedger, now: number): Promise<void> {
  const { dueAt } = ledger;
  const stale = now - (config.redriveGraceSeconds * 1000) / 2;
  const keys = new Set<string>();
  for (const w of work) {
    const k = `${w.job.tenantId}|${w.job.messageId}`;
    const due = dueAt.get(k);
    if (w.notAttempted.some((r) => !w.recorded.has(r.idx)) && due !== null && due !== undefined && due < stale) keys.add(k);
  }
  if (!keys.size) return;
  const byShard = new Map<D1Database, { tenantId: string; id: string }[]>();
  for (const k of keys) {
    const [tenantId, id] = k.split("|") as [string, string];
    const db = ledger.ledgers.get(tenantId)!;
    byShard.set(db, [...(byShard.get(db) ?? []), { tenantId, id }]);
  }
  for (const [db, messages] of byShard) await touchDueAt(db, messages, now);
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

/** What a batch holds: work to deliver, jobs not due yet, and parked-job release requests. */
interface Intake {
  work: Work[];
  requeue: { body: DeliveryJob; delaySeconds: number }[];
  releases: ReleaseRequest[];
}

/** Sorts a batch's messages; malformed ones are acknowledged and dropped with a log line. */
function intake(batch: MessageBatch<unknown>, startedAt: number): Intake {
  const out: Intake = { work: [], requeue: [], releases: [] };
  for (const msg of batch.messages) {
    if (isReleaseRequest(msg.body)) {
      // A resumed stream with more parked jobs than one invocation releases (issue 12).
      out.releases.push(msg.body);
      continue;
    }
    const jobs = jobsOf(msg.body);
    if (!jobs.length) {
      console.error("outbox: dropping malformed job", msg.id);
      msg.ack();
      continue;
    }
    // A bundle's jobs (the batch endpoint's) are work items of their own: retried, deferred and recorded apart.
    for (const job of jobs) {
      // Delays longer than a Queue allows are made of several hops; this one is not due yet.
      if (job.dueAt !== undefined && job.dueAt - startedAt > DUE_SLACK_MS) {
        out.requeue.push({ body: job, delaySeconds: Math.min(MAX_QUEUE_DELAY_SECONDS, Math.ceil((job.dueAt - startedAt) / 1000)) });
        continue;
      }
      out.work.push(newWork(msg, job));
    }
  }
  return out;
}

/** Leaves on each work item only the recipients still pending in the ledger, each once per batch. */
function keepPending(work: Work[], done: Set<string>): void {
  // A re-driven copy of a job may meet the original in the same batch.
  const seen = new Set<string>();
  for (const w of work) {
    w.pending = w.job.recipients.filter((r) => {
      const k = `${w.job.messageId}|${r.idx}`;
      if (done.has(k) || seen.has(k)) return false;
      seen.add(k);
      return true;
    });
  }
}

/** Streams (issue 12): parks a paused stream's jobs until resume; a stream with limits waits for its gate. */
async function applyStreams(env: Env, work: Work[], ledgers: Map<string, D1Database>, holder: string): Promise<Work[]> {
  const unfinished = work.filter((w) => w.pending.length);
  const settings = unfinished.length ? await streamSettings(env.DB, unfinished.map((w) => w.job.tenantId)) : new Map<string, StreamSettings>();
  const paused = new Set(unfinished.filter((w) => settings.get(`${w.job.tenantId}|${jobStream(w.job)}`)?.paused));
  const parked = [...paused].map((w) => ({ ...w.job, recipients: w.pending }));
  await parkJobs(env, parked);
  const parkedByShard = new Map<D1Database, DeliveryJob[]>();
  for (const j of parked) parkedByShard.set(ledgers.get(j.tenantId)!, [...(parkedByShard.get(ledgers.get(j.tenantId)!) ?? []), j]);
  for (const [db, jobs] of parkedByShard) await announceParked(db, jobs, Date.now());
  const live = unfinished.filter((w) => !paused.has(w));
  await applyStreamLimits(env, settings, live, holder);
  return live;
}

/**
 * Checks bodies and loads routes; groups work by (tenant, sender domain, destination), on which the route depends,
 * and stream, since streams travel on lanes of their own (the gate ranks their requests apart).
 */
async function groupByLane(env: Env, live: Work[]): Promise<Work[][]> {
  const routeCache = new Map<string, RouteCandidate[]>();
  const groups = new Map<string, Work[]>();
  for (const w of live) {
    if (w.notAttempted.length) continue; // over its stream's limit: back to the queue
    if (w.job.body !== undefined) {
      try {
        w.raw = await openInlineBody(env, w.job.body, w.job.messageId);
      } catch (e) {
        if (!(e instanceof BodyKeyError)) throw e;
        // A retired key: the mail waits (and expires in the end) until the operator lists the key again.
        failAll([w], { status: "deferred", enhanced: "4.3.0", text: `stored body cannot be opened: ${e.message}` });
        continue;
      }
    } else if (!(await env.BODIES.head(w.job.bodyKey!))) {
      failAll([w], { status: "bounced", enhanced: "5.3.0", text: "message body missing from storage" });
      continue;
    }
    const key = `${w.job.tenantId}|${senderDomain(w.job.mailFrom)}|${w.job.destination}`;
    let routes = routeCache.get(key);
    if (!routes) {
      routes = selectRouteSet(await findRoutes(env.DB, w.job.destination, w.job.tenantId, senderDomain(w.job.mailFrom)), nextHopUrl(env));
      routeCache.set(key, routes);
    }
    w.routes = routes;
    const laneKey = `${key}|${jobStream(w.job)}|${w.job.requireTls ? "requiretls" : w.job.tlsOptional ? "tls-optional" : ""}`;
    groups.set(laneKey, [...(groups.get(laneKey) ?? []), w]);
  }
  return [...groups.values()];
}

/** Resolves a lane's targets; on DNS or route failure records it on the work and returns none. */
async function laneTargets(env: Env, config: RelayConfig, items: Work[]): Promise<Target[]> {
  const destination = items[0]!.job.destination;
  const targets: Target[] = [];
  const wishes = { requireTls: items[0]!.job.requireTls === true, tlsOptional: items[0]!.job.tlsOptional === true };
  try {
    for (const route of items[0]!.routes) targets.push(...(await targetsFor(env, config, route, destination, wishes)));
    if (!targets.length && wishes.requireTls && items[0]!.routes.length) {
      failAll(items, { status: "bounced", enhanced: "5.7.10", text: `REQUIRETLS: no route to ${destination} can guarantee TLS (send_email bindings cannot)` });
      return [];
    }
    if (!targets.length) throw new RouteError(`no usable route for ${destination}`);
  } catch (e) {
    if (e instanceof StsRefusal) failAll(items, { status: "deferred", enhanced: "4.7.5", text: `MTA-STS: ${e.message}` });
    else if (e instanceof DnsFailure) failAll(items, { status: e.permanent ? "bounced" : "deferred", enhanced: e.enhanced, text: e.message, command: "DNS" });
    else if (e instanceof RouteError) failAll(items, { status: "deferred", enhanced: "4.3.5", text: e.message });
    else throw e;
    return [];
  }
  return targets;
}

/** Delivers every lane, at most MAX_CONNECTIONS_PER_INVOCATION connections at once across them. */
async function deliverLanes(env: Env, config: RelayConfig, lanes: Work[][], startedAt: number, holder: string, record: (w: Work) => Promise<void>): Promise<void> {
  const slots = new Semaphore(MAX_CONNECTIONS_PER_INVOCATION);
  await Promise.all(
    lanes.map(async (items) => {
      const targets = await laneTargets(env, config, items);
      if (!targets.length) return;
      try {
        await deliverDestination(env, config, items, targets, slots, startedAt, holder, record);
      } catch (e) {
        if (e instanceof InvocationStopped) throw e;
        // An unexpected failure (a gate RPC, storage) must not throw away what other destinations delivered in
        // this batch: this destination's untried recipients wait a little; finished ones keep their outcomes.
        console.error("outbox: delivery to", items[0]!.job.destination, "failed", e);
        postpone(items, 5000, `internal error: ${errorText(e)}`);
      }
    }),
  );
}

/** Records what is left, re-queues deferred and untried recipients, sends DSNs, releases parked jobs, cleans up. */
async function finish(env: Env, config: RelayConfig, batchIntake: Intake, ledger: BatchLedger): Promise<void> {
  const { work, requeue, releases } = batchIntake;
  // Outcomes not recorded as their transaction ended (failures before or without a connection, expiry).
  const now = Date.now();
  const rest: PendingOutcome[] = [];
  for (const w of work) rest.push(...newOutcomes(config, w, now, true));
  await writeOutcomes(env, rest);
  // The `waiting` events go to each tenant's shard, one set of batches per shard.
  const waitsByShard = new Map<D1Database, D1PreparedStatement[]>();
  for (const w of work) {
    const db = ledger.ledgers.get(w.job.tenantId)!;
    const waits = waitsByShard.get(db) ?? [];
    waitsByShard.set(db, waits);
    requeue.push(...retriesOf(db, config, w, now, waits));
  }
  for (const [db, waits] of waitsByShard) for (let i = 0; i < waits.length; i += D1_BATCH_STATEMENTS) await db.batch(waits.slice(i, i + D1_BATCH_STATEMENTS));
  await touchWaiting(config, work, ledger, now);
  // Back to the queue of each job's stream (transactional jobs to OUTBOX_PRIORITY); transactional jobs of the same
  // delay travel ten per Queue message, as the batch endpoint's do (a tenth of the queue operations per retry).
  requeue.sort((a, b) => a.delaySeconds - b.delaySeconds); // stable: jobs of one delay keep their order
  await enqueueJobs(env, requeue, true);
  for (const w of work) if (w.dsn.length && config.dsnEnabled && w.job.mailFrom !== "") await sendDsn(env, config, w, w.dsn, w.expiredAny);
  for (const r of releases) await releaseParkedJobs(env, r.release.tenantId, r.release.stream);
  await deleteFinishedBodies(env, work, ledger.ledgers);
}

/** Handles one batch from OUTBOX or OUTBOX_PRIORITY. */
export async function handleOutbox(batch: MessageBatch<unknown>, env: Env, config: RelayConfig, hooks: ConsumerHooks = {}): Promise<void> {
  const startedAt = Date.now();
  // Outcomes are written by group commit (OUTCOME_GROUP_TRANSACTIONS transactions per write, one events row),
  // double-buffered: connections go on with their next messages while fewer than two groups of the invocation's
  // transactions are unwritten (one being written, one filling), so they do not idle during each D1 write; with
  // groups of 1 each outcome is durable before the next message. Nothing is acknowledged before every write is
  // done (D1, else the outcome journal).
  const group = config.outcomeGroupTransactions;
  const unwrittenLimit = group === 1 ? 1 : 2 * group;
  const writer = outcomeWriter(env, group);
  const unwritten = new Set<Promise<void>>();
  const record = async (w: Work) => {
    const p = writer.write(newOutcomes(config, w, Date.now(), false));
    unwritten.add(p);
    void p.then(
      () => unwritten.delete(p),
      () => undefined,
    );
    while (unwritten.size >= unwrittenLimit) await Promise.race(unwritten);
    await hooks.afterTransaction?.(w);
  };
  const sorted = intake(batch, startedAt);
  const ledger = sorted.work.length ? await finalRecipients(env, sorted.work) : { done: new Set<string>(), dueAt: new Map<string, number | null>(), ledgers: new Map<string, D1Database>(), unreachable: new Set<string>() };
  if (ledger.unreachable.size) {
    for (const w of sorted.work) if (ledger.unreachable.has(w.job.tenantId)) sorted.requeue.push({ body: w.job, delaySeconds: UNREACHABLE_LEDGER_RETRY_SECONDS });
    sorted.work = sorted.work.filter((w) => !ledger.unreachable.has(w.job.tenantId));
  }
  keepPending(sorted.work, ledger.done);
  const holder = `outbox:${batch.messages[0]?.id ?? "empty"}`;
  const live = await applyStreams(env, sorted.work, ledger.ledgers, holder);
  try {
    await deliverLanes(env, config, await groupByLane(env, live), startedAt, holder, record);
  } finally {
    // Outcomes already received are written even when delivery stops here (the batch is then not acknowledged).
    writer.flush();
    await Promise.allSettled(unwritten);
  }
  // A write that reached neither D1 nor the journal: nothing is acknowledged, the queue delivers the batch again.
  await Promise.all(unwritten);
  await finish(env, config, sorted, ledger);
  batch.ackAll();
}

/**
 * The jobs that carry a work item's recipients again: deferred ones after their delay, untried ones soon; `waits`
 * receives the `waiting` events of untried ones held back for a reason worth showing (issue 22).
 */
function retriesOf(ledger: D1Database, config: RelayConfig, w: Work, now: number, waits: D1PreparedStatement[]): { body: DeliveryJob; delaySeconds: number }[] {
  const { deadline, schedule } = limitsOf(config, w);
  const out: { body: DeliveryJob; delaySeconds: number }[] = [];
  // Untried recipients go back without an attempt counted (unless their time is up: expired above). Looked at again
  // after the gate's wait or the first retry step, whichever is sooner, so an operator's reset takes effect quickly.
  const untried = w.notAttempted.filter((r) => !w.recorded.has(r.idx));
  if (untried.length) {
    const d = Math.max(1, Math.ceil(Math.min(w.notAttemptedAfterMs, deadline - now, (schedule[0] ?? 60) * 1000) / 1000));
    // Issue 22: the wait shows on the recipient (a `waiting` event with reason and next try, once per wait).
    const waited = announceWait(ledger, { ...w.job, recipients: untried }, waitFromPostponement(w.notAttemptedWhy, w.notAttemptedAfterMs, now), now);
    waits.push(...waited.statements);
    out.push(nextJob(waited.job, d, now));
  }
  if (w.deferred.length) out.push(nextJob({ ...w.job, recipients: w.deferred, attempt: w.job.attempt + 1 }, w.delaySeconds, now));
  return out;
}

/**
 * R2 bodies of messages whose every recipient is now final are deleted (inline bodies die with their job): the
 * shared body `bodies/<id>` and, for messages composed per recipient (tracking), every `bodies/<id>/<idx>`, whichever
 * job happens to finish last.
 */
async function deleteFinishedBodies(env: Env, work: Work[], ledgers: Map<string, D1Database>): Promise<void> {
  const messages = new Set<string>();
  for (const w of work) if (w.job.bodyKey && w.results.size) messages.add(`${w.job.tenantId}|${w.job.messageId}`);
  for (const key of messages) {
    const [tenantId, messageId] = key.split("|") as [string, string];
    const row = await openRecipientCount(ledgers.get(tenantId)!, tenantId, messageId);
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
      // RFC 8689 section 5: a report about a REQUIRETLS message quotes it, so it travels under REQUIRETLS too.
      ...(w.job.requireTls ? { requireTls: true } : {}),
    });
  } catch (e) {
    // The outcome is recorded either way; a lost DSN must not redeliver the original.
    console.error("outbox: could not queue the DSN for", w.job.messageId, e);
  }
}

/** Dead-letter consumer: a job that exhausted the queue's retries ends `failed` for its pending recipients. */
export async function handleDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const byShard = new Map<D1Database, D1PreparedStatement[]>();
  for (const msg of batch.messages) {
    for (const job of jobsOf(msg.body)) {
      const db = await ledgerOf(env, job.tenantId);
      const stmts = byShard.get(db) ?? [];
      byShard.set(db, stmts);
      for (const r of job.recipients) {
        stmts.push(
          ...recordOutcome(db, {
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
  }
  for (const [db, stmts] of byShard) for (let i = 0; i < stmts.length; i += D1_BATCH_STATEMENTS) await db.batch(stmts.slice(i, i + D1_BATCH_STATEMENTS));
  batch.ackAll();
}
