/**
 * Queue consumer for OUTBOX: delivers each (message, destination) job to its next hop and records the outcome
 * of every recipient in D1, then acks, retries with a delay, or ends the job.
 */
import { loadConfig, MAX_QUEUE_DELAY_SECONDS, parseNextHop, type RelayConfig } from "../config";
import { recordOutcome, type RecipientOutcome } from "../store/messages";
import { findRoutes } from "../store/routes";
import { isDeliveryJob, type DeliveryJob } from "./job";
import { sendSimple } from "./simple-smtp";

/** Delay before the given retry (1-based), from the configured schedule; the last entry repeats. */
export function retryDelaySeconds(schedule: number[], retry: number): number {
  const s = schedule[Math.min(retry, schedule.length) - 1] ?? 60;
  return Math.min(s, MAX_QUEUE_DELAY_SECONDS);
}

async function loadBody(env: Env, job: DeliveryJob): Promise<string | null> {
  if (job.body !== undefined) return job.body;
  const obj = await env.BODIES.get(job.bodyKey!);
  return obj ? obj.text() : null;
}

async function deliverJob(env: Env, config: RelayConfig, job: DeliveryJob): Promise<{ retry: boolean; outcomes: RecipientOutcome[] }> {
  const attempt = job.attempt + 1;
  const started = Date.now();
  const base = { messageId: job.messageId, tenantId: job.tenantId, attempt };
  const routes = await findRoutes(env.DB, job.destination, job.tenantId);
  const hop = routes[0] ? parseNextHop(routes[0].next_hop_url) : config.nextHop;
  const raw = await loadBody(env, job);
  if (raw === null) {
    return {
      retry: false,
      outcomes: job.recipients.map((r) => ({ ...base, idx: r.idx, address: r.address, status: "failed", at: Date.now(), text: "message body missing from storage" })),
    };
  }
  const result = await sendSimple(hop.host, hop.port, config.relayHostname, job.mailFrom, job.recipients.map((r) => r.address), raw);
  const now = Date.now();
  const expired = now - job.acceptedAt >= config.maxMessageAgeSeconds * 1000;
  const outcomes: RecipientOutcome[] = job.recipients.map((r) => {
    const per = result.perRecipient.find((p) => p.address === r.address);
    let code = result.code;
    let text = result.text;
    let temporary = result.temporary;
    let ok = result.ok;
    if (per && per.code >= 400) {
      code = per.code;
      text = per.text;
      temporary = per.code < 500;
      ok = false;
    }
    const status = ok ? "delivered" : temporary ? (expired ? "expired" : "deferred") : "bounced";
    return { ...base, idx: r.idx, address: r.address, status, at: now, code: code || null, text, host: `${hop.host}:${hop.port}`, tls: false, latencyMs: now - started };
  });
  return { retry: outcomes.some((o) => o.status === "deferred"), outcomes };
}

/** Handles one batch from OUTBOX. */
export async function handleOutbox(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const config = loadConfig(env);
  for (const msg of batch.messages) {
    if (!isDeliveryJob(msg.body)) {
      console.error("outbox: dropping malformed job", msg.id);
      msg.ack();
      continue;
    }
    const job = msg.body;
    try {
      const { retry, outcomes } = await deliverJob(env, config, job);
      await env.DB.batch(outcomes.flatMap((o) => recordOutcome(env.DB, o)));
      if (retry) {
        // Re-enqueue only the recipients still pending, as a new job, so acked work is never redone.
        const pending = new Set(outcomes.filter((o) => o.status === "deferred").map((o) => o.idx));
        const next: DeliveryJob = { ...job, attempt: job.attempt + 1, recipients: job.recipients.filter((r) => pending.has(r.idx)) };
        await env.OUTBOX.send(next, { contentType: "json", delaySeconds: retryDelaySeconds(config.retryScheduleSeconds, next.attempt) });
      }
      msg.ack();
    } catch (e) {
      console.error("outbox: job failed, will retry", job.messageId, e);
      msg.retry({ delaySeconds: retryDelaySeconds(config.retryScheduleSeconds, job.attempt + 1) });
    }
  }
}

/** Dead-letter consumer: a job that exhausted the queue's retries ends `failed` for its pending recipients. */
export async function handleDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const stmts: D1PreparedStatement[] = [];
  for (const msg of batch.messages) {
    if (!isDeliveryJob(msg.body)) continue;
    const job = msg.body;
    for (const r of job.recipients) {
      stmts.push(
        ...recordOutcome(env.DB, {
          messageId: job.messageId,
          tenantId: job.tenantId,
          idx: r.idx,
          address: r.address,
          status: "failed",
          at: Date.now(),
          attempt: job.attempt + 1,
          text: "delivery job exhausted the queue's retries (dead-letter queue)",
        }),
      );
    }
  }
  if (stmts.length) await env.DB.batch(stmts);
  batch.ackAll();
}
