/** Webhook delivery limits; the retry schedule (WEBHOOK_RETRY_SCHEDULE_SECONDS) is read in src/config.ts. */

/** A receiver that has not answered in this long counts as failed (and is retried). */
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** Cloudflare Queues cap retry delays at 12 hours. */
const MAX_DELAY_S = 12 * 3600;
/** Stored error texts and response snippets are cut to this length. */
export const WEBHOOK_ERROR_MAX_CHARS = 300;

/** Delay before retry n (1-based); the last entry repeats. */
export function webhookRetryDelay(schedule: number[], retry: number): number {
  return Math.min(schedule[Math.min(retry, schedule.length) - 1] ?? 60, MAX_DELAY_S);
}
