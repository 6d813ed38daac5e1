/** The reporting part of the cron trigger: catch the rollups up with the event log, then apply retention. */
import { eventRetentionMs } from "../config";
import { pruneReportData } from "../store/report-retention";
import { advanceRollups } from "../store/rollups";

/** Rollup passes per cron run: 20 × 10,000 events every 5 minutes is far above any relay's event rate. */
const ROLLUP_PASSES_PER_RUN = 20;

export async function runReportHousekeeping(env: Env, now = Date.now()): Promise<void> {
  const progress = await advanceRollups(env.DB, ROLLUP_PASSES_PER_RUN, now);
  const pruned = await pruneReportData(env.DB, eventRetentionMs(env), now);
  if (progress.behind > 0) console.warn(`report rollups are ${progress.behind} events behind after this run`);
  if (pruned.events) console.log(`pruned ${pruned.events} events older than the retention period`);
}
