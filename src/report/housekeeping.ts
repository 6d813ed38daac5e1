/** The reporting part of the cron trigger: catch the rollups up with the event log, then apply retention. */
import { eventRetentionMs } from "../config";
import { pruneReportData } from "../store/report-retention";
import { advanceRollups } from "../store/rollups";
import { onEveryShard } from "../store/shards";

/** Rollup passes per cron run: 20 × 10,000 events every 5 minutes is far above any relay's event rate. */
const ROLLUP_PASSES_PER_RUN = 20;

export async function runReportHousekeeping(env: Env, now = Date.now()): Promise<void> {
  const retentionMs = eventRetentionMs(env);
  // Rollups live beside the events they count, on each ledger shard (issue 17); the page sums the shards.
  await onEveryShard(env, async ({ name, db }) => {
    const progress = await advanceRollups(db, ROLLUP_PASSES_PER_RUN, now);
    const pruned = await pruneReportData(db, retentionMs, now);
    if (progress.behind > 0) console.warn(`report rollups of ${name} are ${progress.behind} events behind after this run`);
    if (pruned.events) console.log(`pruned ${pruned.events} events of ${name} older than the retention period`);
  });
}
