/**
 * Scheduled sends further ahead than a Queue delay allows (12 hours) wait as rows in `scheduled_jobs`; the cron
 * moves each to the Queue once its send time is within reach, with the remaining delay.
 */
import { MAX_QUEUE_DELAY_SECONDS } from "../config";
import { enqueueJobs } from "../queue/enqueue";
import type { DeliveryJob } from "../queue/job";
import { expireIdempotencyKeys } from "../store/idempotency";
import { expireRateCounters } from "../store/keys";

/** Enqueues due scheduled jobs; returns how many were released. */
export async function releaseScheduledJobs(env: Env, now = Date.now()): Promise<number> {
  // Release a little before the limit so a job never needs a delay above MAX_QUEUE_DELAY_SECONDS.
  const horizon = now + (MAX_QUEUE_DELAY_SECONDS - 600) * 1000;
  const { results } = await env.DB.prepare("SELECT id, release_at, job FROM scheduled_jobs WHERE release_at <= ? ORDER BY release_at LIMIT 100")
    .bind(horizon)
    .all<{ id: number; release_at: number; job: string }>();
  if (!results.length) return 0;
  await enqueueJobs(
    env,
    results.map((r) => ({ body: JSON.parse(r.job) as DeliveryJob, delaySeconds: Math.max(0, Math.ceil((r.release_at - now) / 1000)) })),
  );
  await env.DB.batch(results.map((r) => env.DB.prepare("DELETE FROM scheduled_jobs WHERE id = ?").bind(r.id)));
  return results.length;
}

/** The accept side's share of the cron: release scheduled jobs, drop expired idempotency keys and rate counters. */
export async function runAcceptHousekeeping(env: Env, now = Date.now()): Promise<void> {
  await releaseScheduledJobs(env, now);
  await expireIdempotencyKeys(env.DB, now);
  await expireRateCounters(env.DB, now);
}
