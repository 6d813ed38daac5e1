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
import { loadConfig, type RelayConfig } from "./config";
import { expireAudit } from "./store/audit";
import { runReputationWatchLogged } from "./reputation/monitor";

export { DomainGate } from "./gate/domain-gate";

/**
 * The settings are parsed here, once per invocation, and passed down (issue 19). A bad setting rejects only the
 * task that needs settings, as when each task parsed them itself.
 */
const withConfig = async <T>(env: Env, task: (config: RelayConfig) => Promise<T>): Promise<T> => task(loadConfig(env));

export default withMetering({
  fetch: (request, env, ctx) => app.fetch(request, env, ctx),
  email: (message, env, ctx) => withConfig(env, (config) => handleEmail(message, env, config, ctx)),
  async queue(batch, env, ctx) {
    if (batch.queue.startsWith("edge-relay-webhooks")) return withConfig(env, (config) => handleWebhookBatch(batch, env, config));
    // Webhooks for events written before this batch (accepts) at once, and for the batch's outcomes after it.
    const emit = () => emitNewEventsLogged(env);
    ctx.waitUntil(emit());
    const handled = batch.queue.endsWith("-dlq") ? handleDeadLetters(batch, env) : withConfig(env, (config) => handleOutbox(batch, env, config));
    ctx.waitUntil(handled.then(emit, emit));
    return handled;
  },
  async scheduled(_controller, env, ctx) {
    ctx.waitUntil(withConfig(env, (config) => runLedgerHousekeeping(env, config)));
    ctx.waitUntil(runAcceptHousekeeping(env));
    ctx.waitUntil(runReportHousekeeping(env));
    ctx.waitUntil(runInboundHousekeeping(env));
    ctx.waitUntil(withConfig(env, (config) => runReputationWatchLogged(env, config)));
    ctx.waitUntil(emitNewEventsLogged(env));
    ctx.waitUntil(withConfig(env, (config) => expireAudit(env.DB, config.auditRetentionDays)));
  },
} satisfies ExportedHandler<Env>);
