/**
 * Which queue carries a delivery job. Transactional mail has a queue of its own (OUTBOX_PRIORITY) with its own
 * consumer, so a campaign's backlog in OUTBOX never sits in front of a password reset; broadcast mail (and jobs
 * from before streams existed that do not name theirs) uses OUTBOX. Both queues share the dead-letter queue.
 */
import { isDeliveryJob, type DeliveryJob, type Stream } from "./job";

/** Queue sendBatch takes at most 100 messages per call. */
const QUEUE_SEND_BATCH = 100;

/**
 * Several jobs in one Queue message (the batch endpoint's transactional ones, and the consumer's transactional
 * retries and jobs not due yet): Queues bill writes, reads and
 * deletes per message and 64 KB, so a bundle of ten small jobs costs a tenth of the operations. The consumer treats
 * each job on its own.
 */
export interface JobBundle {
  v: 1;
  bundle: DeliveryJob[];
}

/** Jobs per bundle at most: a consumer batch (max_batch_size 50) then holds at most 500 jobs. */
export const JOBS_PER_BUNDLE = 10;
/** Bytes of jobs per bundle at most: one 64 KB billing unit of Queues, with room for the envelope. */
export const BUNDLE_BYTES = 60 * 1024;

export function isJobBundle(x: unknown): x is JobBundle {
  const b = x as JobBundle;
  return typeof b === "object" && b !== null && b.v === 1 && Array.isArray(b.bundle);
}

/** The jobs a Queue message carries: itself, the jobs of a bundle (malformed ones left out), or none. */
export function jobsOf(body: unknown): DeliveryJob[] {
  if (isDeliveryJob(body)) return [body];
  return isJobBundle(body) ? body.bundle.filter(isDeliveryJob) : [];
}

type Outgoing = { body: DeliveryJob; delaySeconds?: number };

/** Packs jobs of the same delay into bundles (in order), each within JOBS_PER_BUNDLE and BUNDLE_BYTES. */
export function bundleJobs(jobs: readonly Outgoing[]): { body: DeliveryJob | JobBundle; delaySeconds?: number }[] {
  const out: { body: DeliveryJob | JobBundle; delaySeconds?: number }[] = [];
  let open: { jobs: DeliveryJob[]; bytes: number; delaySeconds: number } | null = null;
  const close = () => {
    if (open) out.push({ body: open.jobs.length === 1 ? open.jobs[0]! : { v: 1, bundle: open.jobs }, delaySeconds: open.delaySeconds });
    open = null;
  };
  for (const j of jobs) {
    const bytes = JSON.stringify(j.body).length;
    const delay = j.delaySeconds ?? 0;
    if (open && (open.delaySeconds !== delay || open.jobs.length >= JOBS_PER_BUNDLE || open.bytes + bytes > BUNDLE_BYTES)) close();
    open ??= { jobs: [], bytes: 0, delaySeconds: delay };
    open.jobs.push(j.body);
    open.bytes += bytes;
  }
  close();
  return out;
}

/** The stream of a job; jobs queued before streams existed carry none and count as transactional. */
export function jobStream(job: DeliveryJob): Stream {
  return job.stream === "broadcast" ? "broadcast" : "transactional";
}

/** The queue binding for a stream. */
export function queueFor(env: Env, stream: Stream): Queue {
  return stream === "transactional" ? env.OUTBOX_PRIORITY : env.OUTBOX;
}

/**
 * Enqueues jobs on their streams' queues, in the given order within each queue, 100 per call; with `bundle`, several
 * transactional jobs per Queue message (see JobBundle).
 */
export async function enqueueJobs(env: Env, jobs: readonly Outgoing[], bundle = false): Promise<void> {
  const byStream = new Map<Stream, { body: DeliveryJob; delaySeconds?: number }[]>();
  for (const j of jobs) {
    const s = jobStream(j.body);
    const list = byStream.get(s) ?? [];
    list.push(j);
    byStream.set(s, list);
  }
  for (const [stream, list] of byStream) {
    const queue = queueFor(env, stream);
    // Broadcast jobs travel one per Queue message even then: its consumer takes 50 messages per batch, and 500 jobs
    // at a rate-limited destination hold an invocation for the gate's whole horizon (20 s) while a campaign's
    // backlog queues up behind it (a paused campaign then keeps another tenant's mail waiting; streams tests).
    const messages = bundle && stream === "transactional" ? bundleJobs(list) : list;
    for (let i = 0; i < messages.length; i += QUEUE_SEND_BATCH) {
      await queue.sendBatch(
        messages.slice(i, i + QUEUE_SEND_BATCH).map((j) => ({ body: j.body, contentType: "json" as const, ...(j.delaySeconds && j.delaySeconds > 0 ? { delaySeconds: j.delaySeconds } : {}) })),
      );
    }
  }
}

/**
 * An outbox that holds the jobs of several accepts (the batch endpoint's messages) and sends them in bundles at
 * the end: `env` is the Worker's env with queues that collect, `flush` sends what was collected.
 */
export function collectingOutbox(env: Env): { env: Env; collected: DeliveryJob[]; flush: () => Promise<void> } {
  const held: Outgoing[] = [];
  const queue = {
    send: async (body: DeliveryJob, options?: QueueSendOptions) => void held.push({ body, delaySeconds: options?.delaySeconds }),
    sendBatch: async (messages: Iterable<MessageSendRequest<DeliveryJob>>) => {
      for (const m of messages) held.push({ body: m.body, delaySeconds: m.delaySeconds });
    },
  } as unknown as Queue;
  const overrides: Record<string, unknown> = { OUTBOX: queue, OUTBOX_PRIORITY: queue };
  return {
    env: new Proxy(env, { get: (t, p) => (typeof p === "string" && p in overrides ? overrides[p] : Reflect.get(t, p)) }),
    get collected() {
      return held.map((h) => h.body);
    },
    flush: async () => {
      await enqueueJobs(env, held, true);
      held.length = 0;
    },
  };
}
