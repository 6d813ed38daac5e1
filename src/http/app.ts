/** The Hono application: mounts the route groups and renders every error as one JSON shape. */
import { Hono } from "hono";
import { HTTPException } from "hono/http-exception";
import { EnqueueError } from "../queue/spool";
import { ConfigError, loadConfig, UNAVAILABLE_RETRY_AFTER_SECONDS, type RelayConfig } from "../config";
import { isD1Unavailable } from "../store/d1-errors";
import { admin } from "./admin";
import { adminAliases } from "./admin-aliases";
import { adminAudit, auditTrail } from "./audit";
import { adminInbound } from "./admin-inbound";
import { adminReputation } from "./admin-reputation";
import { adminGates } from "./admin-gates";
import { adminRoutes } from "./admin-routes";
import { adminStreams } from "./admin-streams";
import { adminTenantData } from "./admin-tenant-data";
import type { AppEnv } from "./auth";
import { ApiError, apiErrorOf } from "./errors";
import { Refusal } from "../accept/refusal";
import { domains } from "./domains";
import { mailchannels, mailChannelsErrorBody } from "./mailchannels";
import { messages } from "./messages";
import { openapi } from "./openapi";
import { suppressions } from "./suppressions";
import { tracking } from "./tracking";
import { dashboard } from "../report/routes";
import { webhookAdmin } from "./admin-webhooks";

export const app = new Hono<AppEnv>();

app.get("/health", (c) => c.json({ ok: true }));
// Issue 19: the settings are parsed here, once per request, and passed down from the routes (c.var.config()).
app.use("*", async (c, next) => {
  let config: RelayConfig | undefined;
  c.set("config", () => (config ??= loadConfig(c.env)));
  await next();
});
// Issue 21: every authenticated configuration change is recorded, in this one place.
app.use("*", auditTrail);
app.route("/", adminAudit);
app.route("/", messages);
app.route("/", mailchannels);
app.route("/", suppressions);
app.route("/", domains);
app.route("/", openapi);
app.route("/", adminGates);
app.route("/", adminRoutes);
app.route("/", adminStreams);
app.route("/", adminTenantData);
app.route("/", adminAliases);
app.route("/", adminInbound);
app.route("/", adminReputation);
app.route("/", dashboard);
app.route("/", webhookAdmin);
app.route("/", tracking);
app.route("/", admin);

app.notFound(() => {
  throw new ApiError(404, "not_found", "no such endpoint");
});

app.onError((err, c) => {
  // The MailChannels endpoints add MailChannels' `errors` list, which their SDK shows to the application.
  const render = (e: ApiError) => c.json(c.req.path.startsWith("/tx/v1/") ? mailChannelsErrorBody(e) : e.toJSON(), e.status, e.headers);
  if (err instanceof ApiError) return render(err);
  if (err instanceof Refusal) return render(apiErrorOf(err));
  if (err instanceof HTTPException) {
    return render(new ApiError(err.status === 413 ? 413 : 400, err.status === 413 ? "too_large" : "invalid_field", err.message));
  }
  // Both are temporary: 503 with Retry-After, so SDKs retry; any other error is a defect and stays 500.
  const retryAfter = { "retry-after": String(UNAVAILABLE_RETRY_AFTER_SECONDS) };
  if (err instanceof EnqueueError) {
    console.error(err, err.cause);
    return render(new ApiError(503, "unavailable", "the message could not be queued; retry later", undefined, retryAfter));
  }
  if (isD1Unavailable(err)) {
    // A tenant's ledger shard (or the control database) is unreachable or was reset; other shards still serve.
    console.error("database unavailable:", err);
    return render(new ApiError(503, "unavailable", "the database is unavailable for now; retry later", undefined, retryAfter));
  }
  if (err instanceof ConfigError) console.error("configuration error:", err.message);
  else console.error("unhandled error", err);
  return render(new ApiError(500, "internal_error", "internal error"));
});
