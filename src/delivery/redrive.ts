/**
 * Re-drive from the ledger (issue 25): D1 is the record of what must still be delivered, the queue only a means.
 * Every message row keeps, until its last recipient is final, the delivery jobs that carry it (`pending`, with the
 * body when it travelled inline), and `due_at`, when the ledger next expects delivery activity. The cron finds
 * messages with recipients still pending past `due_at` plus a grace period (their job was lost: a restart of the
 * local runtime, a platform failure) and enqueues their jobs again, each re-drive an event with its reason.
 * Recipients the next hop already accepted are final in the row (outcomes are written as each transaction ends,
 * or kept by the outcome journal until D1 has them, which the cron flushes first), so a re-drive never resends them.
 */
import { enqueueJobs } from "../queue/enqueue";
import type { DeliveryJob, PendingWork } from "../queue/job";
import { findOverdueMessages, markRedriven, type OverdueMessage } from "../store/redrive";

/** The jobs that carry the still-pending recipients of an overdue message, marked as re-driven. */
export function jobsFor(m: OverdueMessage): DeliveryJob[] {
  if (!m.pending) return [];
  const work = JSON.parse(m.pending) as PendingWork;
  const open = new Set(m.openRecipients);
  const jobs: DeliveryJob[] = [];
  for (const job of work.j) {
    const recipients = job.recipients.filter((r) => open.has(r.idx));
    if (!recipients.length) continue;
    const { dueAt: _due, ...rest } = job;
    jobs.push({
      ...rest,
      recipients,
      ...(job.body === undefined && job.bodyKey === undefined && work.b !== undefined ? { body: work.b } : {}),
      attempt: Math.max(job.attempt, m.attempts),
      redrive: true,
    });
  }
  return jobs;
}

export interface RedriveResult {
  messages: number;
  jobs: number;
  /** Overdue messages with nothing left to send them with (pending work missing): left for expiry. */
  unrecoverable: number;
}

/**
 * Enqueues the jobs of messages whose pending recipients saw no delivery activity for `graceMs` past their due
 * time, at most `limit` messages per call (the cron calls it every run). Each re-drive is recorded (an event and
 * a log entry with the reason) and pushes the message's due time forward by the grace period, so a message is
 * re-driven at most once per grace period.
 */
export async function redriveOverdue(env: Env, graceMs: number, maxAgeMs: number, now = Date.now(), limit = 200): Promise<RedriveResult> {
  const overdue = await findOverdueMessages(env.DB, now - graceMs, now - maxAgeMs - graceMs, limit);
  const result: RedriveResult = { messages: 0, jobs: 0, unrecoverable: 0 };
  for (const m of overdue) {
    const jobs = jobsFor(m);
    if (!jobs.length) {
      result.unrecoverable++;
      continue;
    }
    const reason = `no delivery activity for ${Math.round((now - m.dueAt) / 1000)} s after its due time (queue job lost?); re-driven from the ledger`;
    // Recorded first: a crash between the two leaves a recorded re-drive whose jobs the next run enqueues again.
    await markRedriven(env.DB, m, reason, now, now + graceMs);
    await enqueueJobs(env, jobs.map((body) => ({ body })));
    result.messages++;
    result.jobs += jobs.length;
  }
  return result;
}
