/**
 * The batch endpoint's outbox (issue 16): the delivery jobs of a batch's messages are held while each message is
 * accepted and recorded, then sent to the queue together, several jobs per Queue message (see JobBundle in
 * queue/enqueue.ts), so a batch costs a fraction of the queue operations of as many single sends.
 */
import { collectingOutbox } from "../queue/enqueue";
import { writeOutcomes } from "../delivery/outcomes";
import { EnqueueError } from "../queue/spool";

export type BatchOutbox = ReturnType<typeof collectingOutbox>;

/** An outbox for one batch request: pass `outbox.env` to the accepts, then `flushBatchOutbox`. */
export function batchOutbox(env: Env): BatchOutbox {
  return collectingOutbox(env);
}

/**
 * Sends a batch's collected jobs; if the queue refuses them, their recipients end `failed` (none is left pending)
 * and the request fails with 503, as a single message's would.
 */
export async function flushBatchOutbox(env: Env, outbox: BatchOutbox): Promise<void> {
  try {
    await outbox.flush();
  } catch (e) {
    const jobs = outbox.collected;
    const failedAt = Date.now();
    await writeOutcomes(
      env,
      jobs.flatMap((j) =>
        j.recipients.map((r) => ({
          outcome: { messageId: j.messageId, tenantId: j.tenantId, idx: r.idx, address: r.address, status: "failed" as const, at: failedAt, attempt: 0, text: `could not enqueue: ${String(e)}` },
        })),
      ),
    );
    throw new EnqueueError(jobs[0]?.messageId ?? "batch", e);
  }
}

