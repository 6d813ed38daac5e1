/**
 * The cron's data-minimisation pass (issue 21): per tenant, redaction of subjects and addresses after its
 * `redact_after_days`, retention of its events and inbound records when shorter than the relay's, and the bounded
 * steps of an erase an admin asked for. One tenant's failure is logged and does not stop the others.
 */
import { eventRetentionMs, type RelayConfig } from "../config";
import { eraseTenantStep, tenantsBeingErased, type EraseProgress } from "../store/erase";
import { pruneTenantEvents, pruneTenantInbound, redactEvents, redactInbound, redactMessages } from "../store/minimisation";
import type { Redactor } from "../store/redaction";
import { tenantRetentions, type TenantRetention } from "../store/retention";

const DAY_MS = 86_400_000;
/** Messages (and inbound records) redacted per tenant per run at most: one read and at most this many row writes. */
export const REDACT_ROWS_PER_RUN = 1_000;
/** Event rows each tenant's walks scan per run (the feed has no index by tenant; rows read are cheap). */
export const EVENT_SCAN_ROWS_PER_RUN = 20_000;
/** Rows one erase step deletes at most (then the next cron run, or the next admin call, continues). */
export const ERASE_ROWS_PER_STEP = 20_000;

/** Deletes the R2 objects an erase or a prune left without a message row. */
export async function deleteBodies(env: Env, keys: string[], prefixes: string[] = []): Promise<number> {
  const all = [...keys];
  for (const prefix of prefixes) {
    let cursor: string | undefined;
    do {
      const page = await env.BODIES.list({ prefix, ...(cursor ? { cursor } : {}) });
      all.push(...page.objects.map((o) => o.key));
      cursor = page.truncated ? page.cursor : undefined;
    } while (cursor);
  }
  // R2 deletes up to 1,000 keys per call.
  for (let i = 0; i < all.length; i += 1000) await env.BODIES.delete(all.slice(i, i + 1000));
  return all.length;
}

/** One erase step with its R2 objects. */
export async function eraseStep(env: Env, tenantId: string, budget = ERASE_ROWS_PER_STEP, now = Date.now()): Promise<EraseProgress & { bodies: number }> {
  const step = await eraseTenantStep(env.DB, tenantId, budget, now);
  return { ...step, bodies: await deleteBodies(env, step.bodyKeys, step.bodyPrefixes) };
}

async function minimiseTenant(env: Env, config: RelayConfig, t: TenantRetention, now: number): Promise<void> {
  if (t.redactAfterDays !== null) {
    const r: Redactor = { mode: t.redactMode ?? "redact", tenantId: t.id, hashKey: config.redactionHashKey };
    const cutoff = now - t.redactAfterDays * DAY_MS;
    const n = (await redactMessages(env.DB, r, cutoff, REDACT_ROWS_PER_RUN, now)) + (await redactEvents(env.DB, r, cutoff, EVENT_SCAN_ROWS_PER_RUN, now)) + (await redactInbound(env.DB, r, cutoff, REDACT_ROWS_PER_RUN, now));
    if (n) console.log(`redacted ${n} rows of tenant ${t.id}`);
  }
  if (t.retentionDays !== null && t.retentionDays * DAY_MS < eventRetentionMs(env)) {
    const cutoff = now - t.retentionDays * DAY_MS;
    await pruneTenantEvents(env.DB, t.id, cutoff, EVENT_SCAN_ROWS_PER_RUN, now);
    await pruneTenantInbound(env.DB, t.id, cutoff, REDACT_ROWS_PER_RUN);
  }
}

/** The pass: every tenant with a setting, then one step of each erase in progress. */
export async function runDataMinimisation(env: Env, config: RelayConfig, now = Date.now()): Promise<void> {
  for (const t of await tenantRetentions(env.DB)) {
    if (t.redactAfterDays === null && t.retentionDays === null) continue;
    await minimiseTenant(env, config, t, now).catch((e) => console.error(`data minimisation of tenant ${t.id} failed`, e));
  }
  for (const id of await tenantsBeingErased(env.DB)) {
    const step = await eraseStep(env, id, ERASE_ROWS_PER_STEP, now).catch((e) => (console.error(`erasing tenant ${id} failed`, e), null));
    if (step?.done) console.log(`erased every row of tenant ${id}`);
  }
}
