/** Worker entry point: wires the HTTP app, the queue consumers and the Durable Object. No logic here. */
import { runAcceptHousekeeping } from "./accept/scheduled";
import { handleDeadLetters, handleOutbox } from "./delivery/consumer";
import { app } from "./http/app";
import { handleEmail } from "./inbound/handler";
import { runInboundHousekeeping } from "./inbound/housekeeping";
import { runReportHousekeeping } from "./report/housekeeping";
import { runLedgerHousekeeping } from "./delivery/housekeeping";
import { handleWebhookBatch } from "./webhooks/consumer";
import { emitNewEventsLogged } from "./webhooks/emit";
import { withMetering } from "./metering";
import { loadConfig } from "./config";
import { expireAudit } from "./store/audit";
import { runReputationWatchLogged } from "./reputation/monitor";

export { DomainGate } from "./gate/domain-gate";

export default withMetering({
  fetch: (request, env, ctx) => app.fetch(request, env, ctx),
  email: (message, env, ctx) => handleEmail(message, env, ctx),
  async queue(batch, env, ctx) {
    if (batch.queue.startsWith("edge-relay-webhooks")) return handleWebhookBatch(batch, env);
    // Webhooks for events written before this batch (accepts) at once, and for the batch's outcomes after it.
    const emit = () => emitNewEventsLogged(env);
    ctx.waitUntil(emit());
    const handled = batch.queue.endsWith("-dlq") ? handleDeadLetters(batch, env) : handleOutbox(batch, env);
    ctx.waitUntil(handled.then(emit, emit));
    return handled;
  },
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(runLedgerHousekeeping(env));
    ctx.waitUntil(runAcceptHousekeeping(env));
    ctx.waitUntil(runReportHousekeeping(env));
    ctx.waitUntil(runInboundHousekeeping(env));
    ctx.waitUntil(runReputationWatchLogged(env));
    ctx.waitUntil(emitNewEventsLogged(env));
    ctx.waitUntil(expireAudit(env.DB, loadConfig(env).auditRetentionDays));
  },
} satisfies ExportedHandler<Env>);
