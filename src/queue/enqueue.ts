/**
 * Which queue carries a delivery job. Transactional mail has a queue of its own (OUTBOX_PRIORITY) with its own
 * consumer, so a campaign's backlog in OUTBOX never sits in front of a password reset; broadcast mail (and jobs
 * from before streams existed that do not name theirs) uses OUTBOX. Both queues share the dead-letter queue.
 */
import type { DeliveryJob, Stream } from "./job";

/** Queue sendBatch takes at most 100 messages per call. */
const QUEUE_SEND_BATCH = 100;

/** The stream of a job; jobs queued before streams existed carry none and count as transactional. */
export function jobStream(job: DeliveryJob): Stream {
  return job.stream === "broadcast" ? "broadcast" : "transactional";
}

/** The queue binding for a stream. */
export function queueFor(env: Env, stream: Stream): Queue {
  return stream === "transactional" ? env.OUTBOX_PRIORITY : env.OUTBOX;
}

/** Enqueues jobs on their streams' queues, in the given order within each queue, 100 per call. */
export async function enqueueJobs(env: Env, jobs: readonly { body: DeliveryJob; delaySeconds?: number }[]): Promise<void> {
  const byStream = new Map<Stream, { body: DeliveryJob; delaySeconds?: number }[]>();
  for (const j of jobs) {
    const s = jobStream(j.body);
    const list = byStream.get(s) ?? [];
    list.push(j);
    byStream.set(s, list);
  }
  for (const [stream, list] of byStream) {
    const queue = queueFor(env, stream);
    for (let i = 0; i < list.length; i += QUEUE_SEND_BATCH) {
      await queue.sendBatch(
        list.slice(i, i + QUEUE_SEND_BATCH).map((j) => ({ body: j.body, contentType: "json" as const, ...(j.delaySeconds && j.delaySeconds > 0 ? { delaySeconds: j.delaySeconds } : {}) })),
      );
    }
  }
}
