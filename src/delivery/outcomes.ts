/**
 * The outcome stage of the delivery pipeline: turns what an attempt learnt into recorded outcomes (deferred past
 * the message's age becomes expired; hard bounces suppress the address), and writes them as each transaction
 * ends, so a consumer that dies mid-connection loses no record of a 250 already received. When the D1 write
 * fails, the outcomes go to the outcome journal (a Durable Object's own storage) before the job is acknowledged,
 * and the next batch with a retried job, or the cron, flushes them to D1: a delivered recipient is never sent twice.
 */
import { OUTCOME_GROUP_MAX_WAIT_MS, type RelayConfig } from "../config";
import type { DomainGate } from "../gate/domain-gate";
import { outcomeStatementCount, outcomeStatements, type RecipientOutcome } from "../store/messages";
import { addSuppressionStatement, type Suppression } from "../store/suppressions";
import { shardDb, shardNameOf } from "../store/shards";
import { isHardAddressBounce, retryDelaySeconds } from "./retry";
import type { Attempted, Work } from "./work";

/** The Durable Object (a DomainGate instance of its own) that holds the outcome journal. */
export const OUTCOME_JOURNAL = "ledger:outcome-journal";
/** Journal entries flushed to D1 per call. */
const JOURNAL_FLUSH_LIMIT = 500;

/** One outcome to record, with the suppression a hard bounce adds. */
export interface PendingOutcome {
  outcome: RecipientOutcome;
  suppression?: Suppression;
}

function journal(env: Env): DurableObjectStub<DomainGate> {
  return env.DOMAIN_GATE.get(env.DOMAIN_GATE.idFromName(OUTCOME_JOURNAL));
}

function dsnStatus(a: Attempted | undefined, expired: boolean): string {
  if (a?.enhanced) return a.enhanced;
  if (expired) return "4.4.7";
  return a?.code && a.code >= 500 ? "5.0.0" : "4.0.0";
}

/** The retry schedule and deadline of a job (its route's overrides, else the relay's). */
export function limitsOf(config: RelayConfig, w: Work): { deadline: number; schedule: number[] } {
  const route = w.routes[0];
  return {
    deadline: w.job.acceptedAt + (route?.maxMessageAgeSeconds ?? config.maxMessageAgeSeconds) * 1000,
    schedule: route?.retryScheduleSeconds ?? config.retryScheduleSeconds,
  };
}

/** Decides the outcome of one attempted recipient, and notes retries and DSN lines on the work. */
function decideOne(config: RelayConfig, w: Work, r: { idx: number; address: string }, a: Attempted, now: number): PendingOutcome {
  const { deadline, schedule } = limitsOf(config, w);
  const attempt = w.job.attempt + 1;
  let status: RecipientOutcome["status"] = a.status;
  let nextAttemptAt: number | null = null;
  if (a.status === "deferred" && now >= deadline) status = "expired";
  else if (a.status === "deferred") {
    const d = Math.max(1, Math.min(a.hintSeconds ?? retryDelaySeconds(schedule, attempt), Math.ceil((deadline - now) / 1000)));
    w.delaySeconds = Math.max(w.delaySeconds, d);
    nextAttemptAt = now + d * 1000;
    w.deferred.push(r);
  }
  const text = withTlsNote(status === "expired" ? `expired after ${Math.round((now - w.job.acceptedAt) / 1000)} s; last: ${a.text}` : a.text, w.tlsNote);
  const outcome: RecipientOutcome = {
    messageId: w.job.messageId,
    tenantId: w.job.tenantId,
    idx: r.idx,
    address: r.address,
    status,
    at: now,
    attempt,
    code: a.code ?? null,
    enhanced: a.enhanced ?? null,
    text,
    host: a.host ?? null,
    tls: a.tls ?? null,
    latencyMs: a.latencyMs ?? null,
    seq: a.seq ?? null,
    nextAttemptAt,
  };
  if (status === "bounced" || status === "expired") {
    w.expiredAny ||= status === "expired";
    w.dsn.push({
      address: r.address,
      action: "failed",
      status: dsnStatus(a, status === "expired"),
      remoteMta: a.host ? a.host.replace(/:\d+.*$/, "") : null,
      diagnostic: a.code ? `smtp; ${a.code}${a.enhanced ? ` ${a.enhanced}` : ""} ${a.text}` : `x-edge-relay; ${a.text}`,
      lastAttemptAt: now,
      reason: status === "expired" ? `delivery time expired (${a.text})` : a.text,
    });
  }
  if (status !== "bounced" || !isHardAddressBounce(a.code, a.enhanced, a.command)) return { outcome };
  const detail = [a.code, a.enhanced, a.text].filter((x) => x !== undefined).join(" ").slice(0, 500);
  return { outcome, suppression: { tenantId: w.job.tenantId, address: r.address, scope: "all", reason: "hard_bounce", detail, messageId: w.job.messageId, createdAt: now } };
}

/** Outcomes of recipients nobody tried whose time is up: expired, with a DSN line each. */
function expireUntried(config: RelayConfig, w: Work, now: number): PendingOutcome[] {
  if (!w.notAttempted.length || now < limitsOf(config, w).deadline) return [];
  w.expiredAny = true;
  return w.notAttempted.map((r) => {
    w.dsn.push({ address: r.address, action: "failed", status: "4.4.7", lastAttemptAt: now, reason: `delivery time expired (${w.notAttemptedWhy})` });
    return {
      outcome: { messageId: w.job.messageId, tenantId: w.job.tenantId, idx: r.idx, address: r.address, status: "expired", at: now, attempt: w.job.attempt, enhanced: "4.4.7", text: `expired before a delivery slot was free (${w.notAttemptedWhy})` },
    };
  });
}

/** The outcomes of a work item not recorded yet (attempted recipients; with `final`, also expired untried ones). */
export function newOutcomes(config: RelayConfig, w: Work, now: number, final: boolean): PendingOutcome[] {
  const out: PendingOutcome[] = [];
  for (const r of w.pending) {
    const a = w.results.get(r.idx);
    if (!a || w.recorded.has(r.idx)) continue;
    w.recorded.add(r.idx);
    out.push(decideOne(config, w, r, a, now));
  }
  if (final) {
    const untried = expireUntried(config, w, now).filter((p) => !w.recorded.has(p.outcome.idx));
    for (const p of untried) w.recorded.add(p.outcome.idx);
    out.push(...untried);
  }
  return out;
}

function statementsOf(db: D1Database, items: PendingOutcome[]): D1PreparedStatement[] {
  const stmts = outcomeStatements(db, items.map((p) => p.outcome));
  for (const p of items) if (p.suppression) stmts.push(addSuppressionStatement(db, p.suppression));
  return stmts;
}

/** D1 statements per batch call. */
const D1_BATCH_STATEMENTS = 100;

/**
 * Splits outcomes into packs whose statements fit one `db.batch` (one transaction), never splitting a message:
 * a pack's event rows and its message updates commit together or not at all.
 */
export function packOutcomes(items: PendingOutcome[]): PendingOutcome[][] {
  const byMessage = new Map<string, PendingOutcome[]>();
  for (const p of items) {
    const k = `${p.outcome.tenantId ?? ""}|${p.outcome.messageId}`;
    byMessage.set(k, [...(byMessage.get(k) ?? []), p]);
  }
  const packs: PendingOutcome[][] = [];
  let pack: PendingOutcome[] = [];
  const size = (list: PendingOutcome[]) => outcomeStatementCount(list.map((p) => p.outcome)) + list.filter((p) => p.suppression).length;
  for (const group of byMessage.values()) {
    if (pack.length && size([...pack, ...group]) > D1_BATCH_STATEMENTS) {
      packs.push(pack);
      pack = [];
    }
    pack.push(...group);
  }
  if (pack.length) packs.push(pack);
  return packs;
}

async function writePacks(db: D1Database, items: PendingOutcome[]): Promise<void> {
  for (const pack of packOutcomes(items)) {
    const stmts = statementsOf(db, pack);
    // A single message with more recipients than one batch holds is written in several calls.
    for (let i = 0; i < stmts.length; i += D1_BATCH_STATEMENTS) await db.batch(stmts.slice(i, i + D1_BATCH_STATEMENTS));
  }
}

/**
 * Writes outcomes (and the suppressions they cause) to their tenants' ledger shards (issue 17); answers the items
 * of shards that refused them (each shard apart, so one failing shard does not hold up the others).
 */
async function writeToLedgers(env: Env, items: PendingOutcome[]): Promise<{ failed: PendingOutcome[]; error?: unknown }> {
  const byShard = new Map<string, PendingOutcome[]>();
  for (const p of items) {
    const name = await shardNameOf(env, p.outcome.tenantId);
    byShard.set(name, [...(byShard.get(name) ?? []), p]);
  }
  const failed: PendingOutcome[] = [];
  let error: unknown;
  await Promise.all(
    [...byShard].map(async ([name, group]) => {
      try {
        const db = shardDb(env, name);
        await writePacks(db, group);
      } catch (e) {
        failed.push(...group);
        error ??= e;
      }
    }),
  );
  return { failed, error };
}

/**
 * Writes outcomes to D1; what a shard refused goes to the outcome journal. Throws only when both fail (the job is
 * then retried and nothing was acknowledged).
 */
export async function writeOutcomes(env: Env, items: PendingOutcome[]): Promise<"d1" | "journal" | "none"> {
  if (!items.length) return "none";
  const { failed, error } = await writeToLedgers(env, items);
  if (!failed.length) return "d1";
  console.error("outbox: D1 refused outcomes; keeping them in the outcome journal", error);
  await journal(env).journalPut(failed.map((p) => ({ key: journalKey(p.outcome), value: JSON.stringify(p) })));
  return "journal";
}

/** Writes outcomes for one consumer invocation (see `outcomeWriter`). */
export interface OutcomeWriter {
  /** Resolves once these outcomes are durable (D1 or the journal); rejects only when both refused them. */
  write(items: PendingOutcome[]): Promise<void>;
  /** Writes what is waiting for its group now. */
  flush(): void;
}

/**
 * Group commit for one consumer invocation: outcomes wait until `group` transactions' outcomes are waiting (or
 * `maxWaitMs` passed, or `flush`), and outcomes handed in while a write is in flight join the next one; each write
 * is one D1 round trip and one `events` row per tenant. With `group` 1 each transaction's outcomes are written at
 * once (sharing a write only with those that end while one is in flight).
 */
export function outcomeWriter(env: Env, group = 1, maxWaitMs = OUTCOME_GROUP_MAX_WAIT_MS): OutcomeWriter {
  let waiting: { items: PendingOutcome[]; done: () => void; failed: (e: unknown) => void }[] = [];
  let writing = false;
  let wanted = false;
  let timer: ReturnType<typeof setTimeout> | undefined;
  const drain = async () => {
    writing = true;
    while (waiting.length && (wanted || waiting.length >= group)) {
      wanted = false;
      clearTimeout(timer);
      timer = undefined;
      const taken = waiting;
      waiting = [];
      try {
        await writeOutcomes(env, taken.flatMap((t) => t.items));
        for (const t of taken) t.done();
      } catch (e) {
        for (const t of taken) t.failed(e);
      }
    }
    writing = false;
    if (waiting.length) timer ??= setTimeout(flush, maxWaitMs);
  };
  const flush = () => {
    wanted = true;
    if (!writing) void drain();
  };
  return {
    write: (items) => {
      if (!items.length) return Promise.resolve();
      return new Promise<void>((done, failed) => {
        waiting.push({ items, done, failed });
        if (waiting.length >= group) flush();
        else timer ??= setTimeout(flush, maxWaitMs);
      });
    },
    flush,
  };
}

function journalKey(o: RecipientOutcome): string {
  return `${o.at.toString(36).padStart(9, "0")}|${o.tenantId ?? ""}|${o.messageId}|${o.idx}`;
}

/**
 * Moves journal entries to D1 (outcomes are idempotent: a recipient already final is left alone). Returns the
 * outcomes still only in the journal (D1 still failing), which callers must treat as recorded.
 */
export async function flushOutcomeJournal(env: Env): Promise<RecipientOutcome[]> {
  const stub = journal(env);
  const entries = await stub.journalList(JOURNAL_FLUSH_LIMIT);
  if (!entries.length) return [];
  const items = entries.map((e) => JSON.parse(e.value) as PendingOutcome);
  const { failed, error } = await writeToLedgers(env, items);
  if (failed.length) console.error("outcome journal: D1 still refuses some outcomes; they stay in the journal", error);
  const kept = new Set(failed.map((p) => journalKey(p.outcome)));
  const written = entries.filter((e) => !kept.has(e.key));
  if (written.length) await stub.journalDelete(written.map((e) => e.key));
  return failed.map((p) => p.outcome);
}

/** The event text with the TLS policy that applied (REQUIRETLS, MTA-STS mode and id), unless it already says so. */
function withTlsNote(text: string, note: string | undefined): string {
  return note && !text.includes(note) ? `${text} [${note}]` : text;
}
