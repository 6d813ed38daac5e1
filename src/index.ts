/** Worker entry point: wires the HTTP app, the queue consumers and the Durable Object. No logic here. */
import { runAcceptHousekeeping } from "./accept/scheduled";
import { handleDeadLetters, handleOutbox } from "./delivery/consumer";
import { loadConfig } from "./config";
import { app } from "./http/app";
import { handleEmail } from "./inbound/handler";
import { runReportHousekeeping } from "./report/housekeeping";
import { expireAbandonedRecipients } from "./store/housekeeping";
import { handleWebhookBatch } from "./webhooks/consumer";

export { DomainGate } from "./gate/domain-gate";

export default {
  fetch: (request, env, ctx) => app.fetch(request, env, ctx),
  email: (message, env) => handleEmail(message, env),
  async queue(batch, env) {
    if (batch.queue.startsWith("edge-relay-webhooks")) return handleWebhookBatch(batch, env);
    if (batch.queue.endsWith("-dlq")) return handleDeadLetters(batch, env);
    return handleOutbox(batch, env);
  },
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(expireAbandonedRecipients(env.DB, loadConfig(env).maxMessageAgeSeconds));
    ctx.waitUntil(runAcceptHousekeeping(env));
    ctx.waitUntil(runReportHousekeeping(env));
  },
} satisfies ExportedHandler<Env>;
