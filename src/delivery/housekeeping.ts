/**
 * The ledger's share of the cron (issues 16 and 25): flush the outcome journal to D1 first (so the re-drive sees
 * every 250 already received), re-drive recipients whose job was lost, expire what is past the maximum age, and
 * prune history past the retention (per tenant, with redaction and erasure: minimisation.ts).
 */
import type { RelayConfig } from "../config";
import { expireAbandonedRecipients } from "../store/housekeeping";
import { pruneLedger } from "../store/retention";
import { deleteBodies, runDataMinimisation } from "./minimisation";
import { flushOutcomeJournal } from "./outcomes";
import { redriveOverdue } from "./redrive";
import { onEveryShard } from "../store/shards";

export async function runLedgerHousekeeping(env: Env, config: RelayConfig, now = Date.now()): Promise<void> {
  const unflushed = await flushOutcomeJournal(env);
  // With outcomes still only in the journal, a re-drive could resend them: wait for D1 to take them first.
  if (!unflushed.length) {
    const r = await redriveOverdue(env, config.redriveGraceSeconds * 1000, config.maxMessageAgeSeconds * 1000, now);
    if (r.messages) console.log(`re-drove ${r.messages} messages (${r.jobs} jobs) whose delivery job was lost`);
  }
  // Each ledger shard on its own (issue 17): one that fails does not stop the others' expiry and retention.
  await onEveryShard(env, async ({ name, db }) => {
    await expireAbandonedRecipients(db, config.maxMessageAgeSeconds, now);
    const pruned = await pruneLedger(db, config.messageRetentionDays * 86_400_000, config.retentionPruneRowsPerRun, now);
    if (pruned.messages) console.log(`pruned ${pruned.messages} messages older than the retention period (${name})`);
    if (pruned.bodyKeys.length) await deleteBodies(env, pruned.bodyKeys);
  });
  // Issue 21: per-tenant redaction, shorter retention and erase steps.
  await runDataMinimisation(env, config, now);
}
