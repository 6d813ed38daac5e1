/** The inbound part of the cron trigger: the inbound log is kept as long as raw events (EVENT_RETENTION_DAYS). */
import { eventRetentionMs } from "../config";
import { pruneInboundLog } from "../store/inbound";

/** Deletes inbound log rows past the event retention period. */
export async function runInboundHousekeeping(env: Env, now = Date.now()): Promise<number> {
  const pruned = await pruneInboundLog(env.DB, now - eventRetentionMs(env));
  if (pruned) console.log(`pruned ${pruned} inbound log rows older than the retention period`);
  return pruned;
}
