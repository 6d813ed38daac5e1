/**
 * Visible waits (issue 22): when the relay holds a recipient back without trying it — the next hop's circuit is
 * open, its gate is paused after throttling, a daily quota is used up, the tenant's stream is paused or over its
 * limits — the recipient gets a `waiting` event whose text says why and when the next try is, so
 * `GET /v1/messages/:id` shows more than `queued`.
 *
 * Cost: one event row and one message-row update per recipient per wait, not per look. A job carries the wait it last announced
 * (`DeliveryJob.waiting`); looking again under the same wait before its announced end writes nothing.
 * Short waits that are the normal spacing of sends (gate busy, rate pacing, the invocation's time budget) are
 * not announced.
 */
import { appendToLog, insertEvent, type EventRecord } from "../store/messages";
import type { DeliveryJob, Stream } from "../queue/job";

export type WaitReason = "circuit_open" | "paused" | "quota" | "throttled" | "stream_paused" | "stream_quota" | "stream_rate";

export interface Wait {
  reason: WaitReason;
  /** What is waited on: a gate key (`upstream:<name>`, `provider:google`, a domain) or `<stream> stream`. */
  scope: string;
  /** Epoch ms when the wait ends and the next try is due; null: until an operator acts (a paused stream). */
  until: number | null;
}

/** A stream's rate limit is announced only when it holds a message back this long; shorter is normal pacing. */
export const WAIT_EVENT_MIN_PACING_MS = 60_000;
/** Longer than this is not a time anyone waits for: said as "until an operator acts". */
const OPEN_ENDED_WAIT_MS = 30 * 24 * 3600_000;

const GATE_REASONS: Record<string, WaitReason> = { circuit_open: "circuit_open", paused: "paused", quota: "quota", throttled: "throttled" };

/**
 * The wait behind a postponement of the consumer, from its `why` ("<gate key>: <deny reason>" or
 * "tenant <stream> stream: daily quota used | rate limit") and how long it asked to wait; null for waits that
 * are not announced.
 */
export function waitFromPostponement(why: string, afterMs: number, now: number): Wait | null {
  const until = afterMs > OPEN_ENDED_WAIT_MS ? null : now + Math.max(0, afterMs);
  const stream = /^tenant (\w+) stream: (daily quota used|rate limit)$/.exec(why);
  if (stream) {
    if (stream[2] === "rate limit" && afterMs < WAIT_EVENT_MIN_PACING_MS) return null;
    return { reason: stream[2] === "rate limit" ? "stream_rate" : "stream_quota", scope: `${stream[1]} stream`, until };
  }
  const gate = /^(.+): (\w+)$/.exec(why);
  const reason = gate ? GATE_REASONS[gate[2]!] : undefined;
  return gate && reason ? { reason, scope: gate[1]!, until } : null;
}

/** The wait of a job parked because its stream is paused. */
export function streamPausedWait(stream: Stream): Wait {
  return { reason: "stream_paused", scope: `${stream} stream`, until: null };
}

/** The event text: the reason in words and the time of the next try. */
export function waitText(w: Wait): string {
  const next = w.until === null ? "next try when an operator resumes it" : `next try at ${new Date(w.until).toISOString()}`;
  switch (w.reason) {
    case "circuit_open":
      return `waiting: ${w.scope} refused repeated connections, so its circuit is open; ${next}`;
    case "paused":
      return `waiting: delivery through ${w.scope} is paused after it asked to slow down; ${next}`;
    case "throttled":
      return `waiting: ${w.scope} asked to slow down (421 or 4.7.x); ${next}`;
    case "quota":
      return `waiting: the daily quota of ${w.scope} is used up; ${next}`;
    case "stream_paused":
      return `waiting: the tenant's ${w.scope} is paused; ${next}`;
    case "stream_quota":
      return `waiting: the tenant's ${w.scope} used its daily quota; ${next}`;
    case "stream_rate":
      return `waiting: the tenant's ${w.scope} is at its rate limit; ${next}`;
  }
}

/** Whether `job` already announced this wait (same reason and scope, its end not yet passed). */
function announced(job: DeliveryJob, key: string, now: number): boolean {
  const last = job.waiting;
  return last !== undefined && last.key === key && (last.until === null || now < last.until);
}

/**
 * The `waiting` events for the recipients of `job` (those it carries) and the job to queue again, marked with
 * the wait so that the next look under the same wait writes nothing. Nothing to write when the wait is not
 * announced or was announced already.
 */
export function announceWait(db: D1Database, job: DeliveryJob, wait: Wait | null, now: number): { statements: D1PreparedStatement[]; job: DeliveryJob } {
  if (!wait) return { statements: [], job };
  const key = `${wait.reason}|${wait.scope}`;
  if (announced(job, key, now)) return { statements: [], job };
  const text = waitText(wait);
  const data = { reason: wait.reason, scope: wait.scope, next_try_at: wait.until === null ? null : new Date(wait.until).toISOString() };
  // The event feeds webhooks and /v1/events; the log entry puts the wait in the message's timeline (issue 16).
  const statements = job.recipients.flatMap((r) => {
    const event: EventRecord = { messageId: job.messageId, tenantId: job.tenantId, recipientIdx: r.idx, recipient: r.address, type: "waiting", at: now, attempt: job.attempt, text, data };
    return [insertEvent(db, event), appendToLog(db, event)];
  });
  return { statements, job: { ...job, waiting: { key, until: wait.until } } };
}

/** Records the `waiting` events of jobs parked because their stream is paused (one batch). */
export async function announceParked(db: D1Database, jobs: readonly DeliveryJob[], now: number): Promise<void> {
  const statements = jobs.flatMap((j) => announceWait(db, j, streamPausedWait(j.stream ?? "transactional"), now).statements);
  if (statements.length) await db.batch(statements);
}
