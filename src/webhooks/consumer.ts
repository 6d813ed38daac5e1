/**
 * Queue consumer for WEBHOOKS (and its dead-letter queue): signs each event, POSTs it to its endpoint, records
 * the attempt, and retries failures with growing delays (WEBHOOK_RETRY_SCHEDULE_SECONDS, about a day in all).
 */
import { webhookRetrySchedule, type RelayConfig } from "../config";
import { destinationAllowed } from "../delivery/private-networks";
import { getWebhook, insertAttempt, type AttemptOutcome, type WebhookRow } from "../store/webhooks";
import { isWebhookJob, type WebhookJob } from "./emit";
import { SIGNATURE_HEADER, signWebhook } from "./signature";
import { WEBHOOK_ERROR_MAX_CHARS, WEBHOOK_TIMEOUT_MS, webhookRetryDelay } from "./settings";

export interface PostResult {
  ok: boolean;
  statusCode: number | null;
  error: string | null;
  durationMs: number;
}

/** POSTs one signed event; any 2xx is success, anything else (3xx included: redirects are not followed) a failure. */
export async function postWebhook(hook: Pick<WebhookRow, "url" | "secret">, job: WebhookJob, attempt: number, now = Date.now(), allowPrivate: readonly string[] = []): Promise<PostResult> {
  const body = JSON.stringify(job.payload);
  const started = Date.now();
  // Checked again at delivery: an endpoint stored before the filter, or before the allow-list changed.
  const host = new URL(hook.url).hostname;
  if (!destinationAllowed(host === "localhost" ? "127.0.0.1" : host, allowPrivate)) {
    return { ok: false, statusCode: null, error: `refused: ${host} is not a public address (ALLOW_PRIVATE_DESTINATIONS)`, durationMs: 0 };
  }
  try {
    const res = await fetch(hook.url, {
      method: "POST",
      redirect: "manual",
      signal: AbortSignal.timeout(WEBHOOK_TIMEOUT_MS),
      headers: {
        "content-type": "application/json",
        "user-agent": "EdgeRelay-Webhooks/1",
        [SIGNATURE_HEADER]: await signWebhook(hook.secret, body, Math.floor(now / 1000)),
        "Edge-Relay-Event": job.payload.type,
        "Edge-Relay-Delivery": job.payload.id,
        "Edge-Relay-Attempt": String(attempt),
      },
      body,
    });
    const ok = res.status >= 200 && res.status < 300;
    const snippet = ok ? null : (await res.text()).slice(0, WEBHOOK_ERROR_MAX_CHARS) || null;
    if (ok) await res.body?.cancel();
    return { ok, statusCode: res.status, error: ok ? null : `HTTP ${res.status}${snippet ? `: ${snippet}` : ""}`, durationMs: Date.now() - started };
  } catch (e) {
    return { ok: false, statusCode: null, error: String(e).slice(0, WEBHOOK_ERROR_MAX_CHARS), durationMs: Date.now() - started };
  }
}

/** Handles a batch from the webhook queue or its dead-letter queue. */
export async function handleWebhookBatch(batch: MessageBatch<unknown>, env: Env, config: RelayConfig): Promise<void> {
  if (batch.queue.endsWith("-dlq")) return handleWebhookDeadLetters(batch, env);
  const schedule = webhookRetrySchedule(env);
  const hooks = new Map<string, Promise<WebhookRow | null>>();
  const attempts: D1PreparedStatement[] = [];
  await Promise.all(
    batch.messages.map(async (msg) => {
      if (!isWebhookJob(msg.body)) {
        console.error("webhooks: dropping malformed job", msg.id);
        msg.ack();
        return;
      }
      const job = msg.body;
      if (!hooks.has(job.webhookId)) hooks.set(job.webhookId, getWebhook(env.DB, job.webhookId));
      const hook = await hooks.get(job.webhookId)!;
      if (!hook) {
        // Deleted, or erased with its tenant: no attempt row, which would name the tenant and its message again.
        console.log(`webhooks: dropping a job of deleted endpoint ${job.webhookId}`);
        msg.ack();
        return;
      }
      const record = (outcome: AttemptOutcome, r: Partial<PostResult>) =>
        attempts.push(
          insertAttempt(env.DB, {
            webhookId: job.webhookId,
            tenantId: hook.tenant_id,
            deliveryId: job.payload.id,
            eventType: job.payload.type,
            messageId: job.payload.message_id,
            attempt: msg.attempts,
            outcome,
            statusCode: r.statusCode ?? null,
            error: r.error ?? null,
            durationMs: r.durationMs ?? null,
            at: Date.now(),
          }),
        );
      if (hook.disabled_at !== null) {
        record("dropped", { error: "endpoint disabled" });
        msg.ack();
        return;
      }
      const result = await postWebhook(hook, job, msg.attempts, Date.now(), config.allowPrivateDestinations);
      if (result.ok) {
        record("delivered", result);
        msg.ack();
      } else {
        record("retrying", result);
        msg.retry({ delaySeconds: webhookRetryDelay(schedule, msg.attempts) });
      }
    }),
  );
  if (attempts.length) {
    try {
      await env.DB.batch(attempts);
    } catch (e) {
      // The deliveries themselves are settled (acked or retrying); only their log is lost.
      console.error("webhooks: could not record attempts", e);
    }
  }
}

/** Deliveries that exhausted their retries: recorded as failed so the page shows the endpoint gave up. */
async function handleWebhookDeadLetters(batch: MessageBatch<unknown>, env: Env): Promise<void> {
  const stmts: D1PreparedStatement[] = [];
  for (const msg of batch.messages) {
    if (!isWebhookJob(msg.body)) continue;
    const job = msg.body;
    stmts.push(
      insertAttempt(env.DB, {
        webhookId: job.webhookId,
        tenantId: job.payload.tenant_id,
        deliveryId: job.payload.id,
        eventType: job.payload.type,
        messageId: job.payload.message_id,
        attempt: 0,
        outcome: "failed",
        statusCode: null,
        error: "gave up: the delivery exhausted its retries",
        durationMs: null,
        at: Date.now(),
      }),
    );
  }
  if (stmts.length) await env.DB.batch(stmts);
  batch.ackAll();
}
