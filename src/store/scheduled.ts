/** `scheduled_jobs`: delivery jobs of messages whose send time is further ahead than a Queue delay allows. */

export interface ScheduledJobRow {
  id: number;
  release_at: number;
  /** The delivery job, as JSON. */
  job: string;
}

/** Stores the jobs of one message, to be released by the cron at `releaseAt`. */
export async function scheduleJobs(db: D1Database, messageId: string, releaseAt: number, jobs: readonly unknown[]): Promise<void> {
  await db.batch(jobs.map((j) => db.prepare("INSERT INTO scheduled_jobs (message_id, release_at, job) VALUES (?, ?, ?)").bind(messageId, releaseAt, JSON.stringify(j))));
}

/** Jobs due by `horizon`, oldest first. */
export async function dueScheduledJobs(db: D1Database, horizon: number, limit = 100): Promise<ScheduledJobRow[]> {
  const { results } = await db
    .prepare("SELECT id, release_at, job FROM scheduled_jobs WHERE release_at <= ? ORDER BY release_at LIMIT ?")
    .bind(horizon, limit)
    .all<ScheduledJobRow>();
  return results;
}

export async function deleteScheduledJobs(db: D1Database, ids: readonly number[]): Promise<void> {
  if (ids.length) await db.batch(ids.map((id) => db.prepare("DELETE FROM scheduled_jobs WHERE id = ?").bind(id)));
}
