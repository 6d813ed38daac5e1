/** Webhook delivery settings, read from the Worker's env. */

/** Default retry delays (s): 10 retries add up to about a day (86,070 s), then the DLQ records failure. */
export const DEFAULT_WEBHOOK_RETRY_SCHEDULE_S = [10, 60, 300, 900, 1800, 3600, 7200, 14400, 28800, 28800];
/** A receiver that has not answered in this long counts as failed (and is retried). */
export const WEBHOOK_TIMEOUT_MS = 10_000;
/** Cloudflare Queues cap retry delays at 12 hours. */
const MAX_DELAY_S = 12 * 3600;
/** Stored error texts and response snippets are cut to this length. */
export const WEBHOOK_ERROR_MAX_CHARS = 300;

export function webhookRetrySchedule(env: { WEBHOOK_RETRY_SCHEDULE_SECONDS?: string }): number[] {
  const raw = env.WEBHOOK_RETRY_SCHEDULE_SECONDS;
  if (!raw) return DEFAULT_WEBHOOK_RETRY_SCHEDULE_S;
  const parts = raw.split(",").map((p) => Number(p.trim()));
  if (!parts.length || parts.some((n) => !Number.isFinite(n) || n < 0)) {
    throw new Error(`WEBHOOK_RETRY_SCHEDULE_SECONDS must be comma-separated non-negative seconds, got ${JSON.stringify(raw)}`);
  }
  return parts;
}

/** Delay before retry n (1-based); the last entry repeats. */
export function webhookRetryDelay(schedule: number[], retry: number): number {
  return Math.min(schedule[Math.min(retry, schedule.length) - 1] ?? 60, MAX_DELAY_S);
}
