/**
 * The OpenAPI 3.1 document of the HTTP API, served at GET /openapi.json. The request bodies' schemas are
 * generated from the valibot schemas that validate them (mime/validate.ts for the send request, bodies.ts for
 * the others); the response schemas are written here, and tests validate real responses against them with a
 * JSON Schema validator (test/workers/api-schema.ts), so the document stays true.
 */
import { toJsonSchemaDefs } from "@valibot/to-json-schema";
import { Hono } from "hono";
import { mailChannelsSchema } from "../mime/mailchannels";
import { sendRequestSchema } from "../mime/validate";
import type { AppEnv } from "./auth";
import { REQUEST_BODIES } from "./bodies";
import { ERROR_CODES } from "./errors";

type Schema = Record<string, unknown>;
const ref = (name: string): Schema => ({ $ref: `#/components/schemas/${name}` });
const str: Schema = { type: "string" };
const nstr: Schema = { type: ["string", "null"] };
const int: Schema = { type: "integer" };
const nint: Schema = { type: ["integer", "null"] };
const time: Schema = { type: "string", format: "date-time" };
const ntime: Schema = { type: ["string", "null"], format: "date-time" };
const obj = (properties: Record<string, Schema>, required: string[] = Object.keys(properties), extra = false): Schema => ({
  type: "object",
  properties,
  required,
  additionalProperties: extra,
});
const RECIPIENT_STATUS = ["queued", "deferred", "delivered", "bounced", "expired", "suppressed", "failed"];
/** Event types of a timeline. `delayed`: a remote MTA's delay warning (it still retries); it never changes a recipient's status. */
const EVENT_TYPES = [...RECIPIENT_STATUS, "accepted", "complained", "opened", "clicked", "auto_replied", "delayed"];
const eventType: Schema = { type: "string", description: `One of ${EVENT_TYPES.join(", ")} (more may be added; clients should ignore types they do not know).`, examples: EVENT_TYPES };

/**
 * The request bodies as JSON Schema, from the schemas that validate them. Refinements (address syntax, header
 * rules, base64, dates) have no JSON Schema form and are left out; their rules are in the descriptions and docs.
 */
function requestBodies(): Record<string, Schema> {
  return toJsonSchemaDefs(
    { SendRequest: sendRequestSchema(), MailChannelsSend: mailChannelsSchema(), ...REQUEST_BODIES },
    { target: "draft-2020-12", errorMode: "ignore", overrideRef: ({ referenceId }) => `#/components/schemas/${referenceId}` },
  ) as unknown as Record<string, Schema>;
}

/** The response schemas. */
const responseSchemas: Record<string, Schema> = {
  Error: obj({ error: obj({ code: { type: "string", enum: [...ERROR_CODES] }, message: str, field: str }, ["code", "message"]) }),
  RecipientResult: obj({ address: str, status: { type: "string", enum: RECIPIENT_STATUS } }),
  SendResult: obj({ id: str, status: { enum: ["accepted", "scheduled"] }, message_id: str, recipients: { type: "array", items: ref("RecipientResult") } }),
  BatchResult: obj({
    accepted: int,
    failed: int,
    results: {
      type: "array",
      items: {
        oneOf: [
          obj({ index: int, id: str, status: { enum: ["accepted", "scheduled"] }, message_id: str, recipients: { type: "array", items: ref("RecipientResult") } }),
          obj({ index: int, status: { const: "failed" }, error: obj({ code: { type: "string", enum: [...ERROR_CODES] }, message: str, field: str, status: int }, ["code", "message", "status"]) }),
        ],
      },
    },
  }),
  Message: obj({
    id: str,
    tenant_id: str,
    mail_from: str,
    header_from: nstr,
    subject: nstr,
    message_id_header: nstr,
    stream: str,
    size_bytes: int,
    tags: { type: "array", items: str },
    metadata: { type: "object", additionalProperties: str },
    created_at: time,
    status: str,
    redacted: { type: "boolean", description: "Subjects and addresses of this record were redacted (issue 21): they read [redacted] or [hmac:...], addresses keep @domain" },
    recipients: {
      type: "array",
      items: obj({ address: str, status: { type: "string", enum: RECIPIENT_STATUS }, attempts: int, last_code: nint, last_enhanced: nstr, last_text: nstr, updated_at: time }),
    },
    events: {
      type: "array",
      items: obj({ type: eventType, at: time, recipient: nstr, attempt: nint, code: nint, enhanced: nstr, text: nstr, host: nstr, tls: { type: ["boolean", "null"] }, latency_ms: nint, seq: nint }),
    },
  }),
  MessageSummary: obj({
    id: str,
    created_at: time,
    send_at: ntime,
    from: nstr,
    subject: nstr,
    message_id: nstr,
    stream: str,
    tags: { type: "array", items: str },
    status: str,
    redacted: { type: "boolean", description: "Subjects and addresses of this record were redacted (issue 21): they read [redacted] or [hmac:...], addresses keep @domain" },
    recipients: { type: "array", items: ref("RecipientResult") },
  }),
  MessageList: obj({ data: { type: "array", items: ref("MessageSummary") }, next_cursor: nstr }),
  Event: obj({ id: int, message_id: str, type: eventType, at: time, recipient: nstr, attempt: nint, code: nint, enhanced: nstr, text: nstr, host: nstr, tls: { type: ["boolean", "null"] }, latency_ms: nint, redacted: { type: "boolean", description: "Subjects and addresses of this record were redacted (issue 21): they read [redacted] or [hmac:...], addresses keep @domain" }, }),
  EventList: obj({ data: { type: "array", items: ref("Event") }, next_cursor: nstr }),
  Suppression: obj({ address: str, scope: { enum: ["transactional", "broadcast", "all"] }, reason: str, detail: nstr, message_id: nstr, created_at: time, expires_at: ntime }),
  SuppressionList: obj({ data: { type: "array", items: ref("Suppression") }, next_cursor: nstr }),
  SuppressionAdded: obj({ added: int, data: { type: "array", items: obj({ address: str, scope: str, reason: str, expires_at: ntime }) } }),
  SuppressionRemoved: obj({ address: str, removed: int }),
  Unsubscribed: obj({ unsubscribed: { const: true } }),
  DnsRecord: obj({ purpose: { enum: ["dkim", "spf", "dmarc", "bounce-mx", "mta-sts", "tls-rpt"] }, type: { enum: ["TXT", "MX"] }, name: str, value: str, priority: int, required: { type: "boolean" }, note: str }, [
    "purpose",
    "type",
    "name",
    "value",
    "required",
    "note",
  ]),
  DomainList: obj({ data: { type: "array", items: obj({ domain: str, verified: { type: "boolean" }, verified_at: ntime, last_check_at: ntime, dkim_selectors: { type: "array", items: str } }) } }),
  DomainDns: obj({ domain: str, bounce_domain: str, records: { type: "array", items: ref("DnsRecord") } }),
  DomainVerify: obj({
    domain: str,
    verified: { type: "boolean" },
    results: { type: "array", items: obj({ record: ref("DnsRecord"), status: { enum: ["ok", "missing", "mismatch", "error"] }, found: { type: "array", items: str }, message: str }) },
  }),
  MailChannelsResult: obj({
    request_id: str,
    results: { type: "array", items: obj({ index: int, message_id: str, status: { const: "sent" }, reason: str, recipients: { type: "array", items: ref("RecipientResult") } }) },
  }),
  MailChannelsDryRun: obj({ data: { type: "array", items: str } }),
  MailChannelsQueued: obj({ queued_at: time, request_id: str }),
  MailChannelsError: obj({
    error: obj({ code: { type: "string", enum: [...ERROR_CODES] }, message: str, field: str }, ["code", "message"]),
    errors: { type: "array", items: str, description: "MailChannels' error list (what mailchannels-sdk reports): one \"field: message\" string" },
  }),
  Tenant: obj({
    id: str,
    name: str,
    suspended: { type: "boolean" },
    rate_limit_per_minute: nint,
    default_stream: str,
    require_tls: { type: "boolean" },
    retention_days: { ...nint, description: "days of message history kept; null: MESSAGE_RETENTION_DAYS" },
    redact_after_days: { ...nint, description: "days after acceptance when subjects and addresses are redacted; null: never" },
    redact_mode: { enum: ["redact", "hash", null] },
    erase_requested_at: ntime,
    created_at: time,
    domains: { type: "array", items: str },
    keys: { type: "array", items: obj({ id: str, prefix: str, name: nstr, created_at: time, revoked_at: ntime }) },
    shard: { type: "string", description: "the D1 binding holding the tenant's ledger (LEDGER_SHARDS)" },
  }),
  TenantList: obj({ data: { type: "array", items: obj({ id: str, name: str, suspended: { type: "boolean" } }) }, next_cursor: nstr }),
  TenantCreated: obj({ id: str, name: str, domains: { type: "array", items: str }, shard: { type: "string", description: "the ledger shard the tenant was placed on" } }),
  KeyCreated: obj({ id: str, key: str, note: str }),
  KeyRevoked: obj({ id: str, revoked: { const: true } }),
  RouteCreated: obj({ id: str }),
  DomainAdded: obj({ tenant_id: str, domain: str }),
  DomainRemoved: obj({ tenant_id: str, domain: str, removed: { const: true } }),
  Health: obj({ ok: { const: true } }),
  RouteList: obj({
    routes: {
      type: "array",
      items: obj({
        id: str,
        tenant_id: nstr,
        match_recipient_domain: str,
        match_sender_domain: str,
        next_hop_url: str,
        priority: int,
        weight: int,
        name: nstr,
        policy: { type: ["string", "null"], description: "JSON of the partial gate policy" },
        retry_schedule_seconds: { type: ["string", "null"], description: "comma-separated seconds" },
        max_message_age_seconds: nint,
      }),
    },
  }),
  RouteDeleted: obj({ id: str, deleted: { const: true } }),
  GatePolicy: obj({
    ratePerSecond: { type: "number" },
    burst: { type: "number" },
    maxConnections: { type: "number" },
    maxMessagesPerConnection: { type: "number" },
    backoffPauseSeconds: { type: "number" },
    circuitFailures: { type: "number" },
    circuitOpenSeconds: { type: "number" },
    quotaPerDay: { type: "number", description: "0: unlimited" },
  }, undefined, true),
  GateState: obj(
    {
      destination: str,
      policy: ref("GatePolicy"),
      override: { type: ["object", "null"] },
      rateFactor: { type: "number" },
      effectiveRatePerSecond: { type: "number" },
      effectiveMaxConnections: { type: "number" },
      activeConnections: int,
      waiting: int,
      pausedUntil: ntime,
      circuit: { enum: ["closed", "open", "half-open"] },
      circuitOpenUntil: ntime,
      consecutiveConnectionFailures: int,
      sequence: int,
      quotaUsedToday: int,
      totals: { type: "object", additionalProperties: { type: "number" } },
      lastThrottle: { oneOf: [{ type: "null" }, obj({ at: time, text: nstr })] },
      leases: { type: "array", items: obj({ id: str, holder: str, stream: { enum: ["transactional", "broadcast"] }, granted: int, since: time, expiresAt: time }, ["id"], true) },
      streams: { type: "object", description: "Stream priority: broadcastShare, and per stream whether it wants the destination now, its connections, waiters and grants.", additionalProperties: true },
    },
    ["destination", "policy", "override", "circuit"],
    true,
  ),
  TenantStream: obj(
    {
      tenant_id: str,
      stream: { enum: ["transactional", "broadcast"] },
      paused: { type: "boolean" },
      paused_at: ntime,
      parked: { ...int, description: "Delivery jobs held while paused" },
      rate_per_second: { type: ["number", "null"], description: "Messages per second at delivery; null: no limit" },
      quota_per_day: { ...nint, description: "Messages per UTC day at delivery; null: no limit. Mail over it waits for the next day." },
      quota_used_today: nint,
      released: { ...int, description: "resume only: parked jobs released to the queue, oldest first" },
    },
    ["tenant_id", "stream", "paused", "parked"],
  ),
  TenantStreamList: obj({ data: { type: "array", items: ref("TenantStream") } }),
  Alias: obj({ address: str, tenant_id: str, destinations: { type: "array", items: str }, description: nstr, created_at: time, updated_at: time }),
  AliasList: obj({ data: { type: "array", items: ref("Alias") }, next_cursor: nstr }),
  AliasDeleted: obj({ address: str, deleted: { const: true } }),
  ReputationHistoryItem: obj({ id: int, type: { enum: ["reputation.listed", "reputation.delisted"] }, subject: str, list: str, codes: { type: "array", items: str }, meaning: nstr, tenant_id: nstr, at: time }),
  ReputationOverview: obj({
    lists: { type: "array", items: obj({ name: str, zone: str, kind: { enum: ["ip", "domain"] }, blocking: { type: "boolean" } }) },
    subjects: {
      type: "array",
      items: obj({
        subject: str,
        kind: { enum: ["ip", "domain"] },
        label: nstr,
        tenant_id: nstr,
        checks: { type: "array", items: obj({ list: str, state: { enum: ["clear", "listed", "unknown"] }, codes: { type: "array", items: str }, meaning: nstr, checked_at: time, changed_at: ntime, error: nstr }) },
      }),
    },
    listings: { type: "array", items: obj({ subject: str, list: str, codes: { type: "array", items: str }, meaning: nstr, since: ntime, blocking: { type: "boolean" } }) },
    history: { type: "array", items: ref("ReputationHistoryItem") },
    bounce_signal: {
      type: "array",
      items: obj({ provider: str, failures: int, reputationFailures: int, share: { type: "number" }, level: { enum: ["ok", "warn", "alert", "few"] }, reasons: { type: "object", additionalProperties: int } }),
    },
  }),
  ReputationHistory: obj({ data: { type: "array", items: ref("ReputationHistoryItem") }, next_cursor: nstr }),
  ReputationSubject: obj({ subject: str, kind: { enum: ["ip", "domain"] }, label: nstr, tenant_id: nstr }),
  ReputationSubjectDeleted: obj({ subject: str, deleted: { const: true } }),
  ReputationCheckRun: obj({ checked: int, listed: int, errors: int, learned: int, events: int, webhooks: int }),
  DmarcSummary: obj({
    domains: { type: "array", items: obj({ domain: str, reports: int, authenticated_reports: int, volume: int, passed: int, own_volume: int, own_passed: int, pass_rate: { type: ["number", "null"] } }) },
    failing_sources: {
      type: "array",
      items: obj({ domain: str, source_ip: str, own: { type: "boolean" }, volume: int, failed: int, dispositions: { type: "array", items: str }, reporters: { type: "array", items: str }, dkim: { type: "array" }, spf: { type: "array" } }),
    },
  }),
  TlsSummary: obj({ domains: { type: "array", items: obj({ policy_domain: str, reports: int, success: int, failure: int, failure_types: { type: "object", additionalProperties: int } }) } }),
  InboundLog: obj({
    data: {
      type: "array",
      items: obj({
        id: int,
        at: time,
        envelope_from: nstr,
        envelope_to: str,
        size_bytes: nint,
        kind: str,
        outcome: { type: "string", description: "recorded, duplicate, unattributed, unverified (a report that is not authenticated), forwarded, rejected or ignored" },
        tenant_id: nstr,
        message_id: nstr,
        detail: nstr,
      }),
    },
    next_cursor: nstr,
  }),
  Webhook: obj({ id: str, tenant_id: str, url: str, events: { type: "array", items: str }, description: nstr, enabled: { type: "boolean" }, created_at: time, updated_at: time }),
  WebhookCreated: obj({ id: str, tenant_id: str, url: str, events: { type: "array", items: str }, description: nstr, enabled: { type: "boolean" }, created_at: time, updated_at: time, secret: str, note: str }),
  WebhookList: obj({ webhooks: { type: "array", items: ref("Webhook") } }),
  WebhookSecret: obj({ id: str, secret: str, note: str }),
  WebhookDeleted: obj({ id: str, deleted: { const: true } }),
  WebhookAttempts: obj({
    attempts: {
      type: "array",
      items: obj({
        delivery_id: str,
        event_type: str,
        message_id: nstr,
        attempt: int,
        outcome: { enum: ["delivered", "retrying", "failed", "dropped"] },
        status_code: nint,
        error: nstr,
        duration_ms: nint,
        at: time,
      }),
    },
  }),
  TenantErased: obj({ tenant_id: str, status: { enum: ["erasing", "erased"] }, deleted: { type: "object", additionalProperties: int }, r2_objects_deleted: int }),
  AuditList: obj({
    data: {
      type: "array",
      items: obj({ id: int, at: time, actor: str, tenant_id: nstr, ip: nstr, method: str, path: str, status: int, detail: { description: "The request's parameters, secrets redacted (null: none)" } }),
    },
    next_cursor: nstr,
  }),
  TrackingSettings: obj({
    data: {
      type: "array",
      items: obj({ stream: { enum: ["*", "transactional", "broadcast"] }, track_opens: { type: ["boolean", "null"] }, track_clicks: { type: ["boolean", "null"] }, updated_at: time }),
    },
  }),
  MessageTracking: obj({
    id: str,
    recipients: {
      type: "array",
      items: obj({
        recipient: str,
        opens: int,
        machine_opens: int,
        first_open_at: ntime,
        last_open_at: ntime,
        first_machine_open_at: ntime,
        clicks: int,
        machine_clicks: int,
        first_click_at: ntime,
        last_click_at: ntime,
        first_machine_click_at: ntime,
      }),
    },
  }),
  TrackingStats: obj({
    since: time,
    until: time,
    unique_opens: int,
    unique_clicks: int,
    opens: int,
    clicks: int,
    machine_only_opens: int,
    machine_only_clicks: int,
    machine_opens: int,
    machine_clicks: int,
  }),
};

const ERROR_STATUSES: Record<string, string> = {
  "400": "Malformed request: bad JSON, wrong type, unknown field, header injection, invalid UTF-8, a body that broke off before its end (field body)",
  "401": "Missing, unknown or revoked API key",
  "403": "Sender domain not allowed for this key, or account suspended",
  "404": "Not found (or not this account's)",
  "409": "Idempotency-Key reused with a different request, or still in progress; or a conflicting resource",
  "413": "Body or message larger than the limit",
  "415": "Wrong Content-Type",
  "422": "Well-formed but refused: invalid address, too many recipients, reserved header, bad attachment, bad send_at",
  "429": "Rate limit exceeded (Retry-After says when to try again)",
};

const ADMIN_ERROR_STATUSES: Record<string, string> = {
  ...ERROR_STATUSES,
  "401": "Missing or wrong admin token",
  "403": "The admin API is disabled (no ADMIN_TOKEN secret)",
};

function errors(...codes: string[]): Record<string, Schema> {
  return Object.fromEntries(codes.map((c) => [c, { description: ERROR_STATUSES[c] ?? c, content: { "application/json": { schema: ref("Error") } } }]));
}
/** Error responses of a /tx/v1 (MailChannels) route: the Error shape plus MailChannels' `errors` list. */
function mcErrors(...codes: string[]): Record<string, Schema> {
  return Object.fromEntries(codes.map((c) => [c, { description: ERROR_STATUSES[c] ?? c, content: { "application/json": { schema: ref("MailChannelsError") } } }]));
}
/** Error responses of an /admin route: 401 and 403 always (the admin token check), plus `codes`. */
function adminErrors(...codes: string[]): Record<string, Schema> {
  return Object.fromEntries(["401", "403", ...codes].map((c) => [c, { description: ADMIN_ERROR_STATUSES[c] ?? c, content: { "application/json": { schema: ref("Error") } } }]));
}
function ok(status: string, schema: string, description: string): Record<string, Schema> {
  return { [status]: { description, content: { "application/json": { schema: ref(schema) } } } };
}
function jsonBody(schema: string): Schema {
  return { required: true, content: { "application/json": { schema: ref(schema) } } };
}
const key = [{ apiKey: [] }, { bearer: [] }];
const adminSec = [{ bearer: [] }];
const idempotencyHeader = { name: "Idempotency-Key", in: "header", required: false, schema: str, description: "Same key + same request within 24 h returns the first response; a different request gets 409." };
const q = (name: string, description: string, schema: Schema = str): Schema => ({ name, in: "query", required: false, schema, description });
const p = (name: string): Schema => ({ name, in: "path", required: true, schema: str });
/** An admin operation on one tenant's stream (path /admin/tenants/{id}/streams/{stream}...): 200 with the stream. */
function streamOp(summary: string, described: string, body?: string): Schema {
  return {
    summary,
    security: adminSec,
    parameters: [p("id"), p("stream")],
    ...(body ? { requestBody: jsonBody(body) } : {}),
    responses: { ...ok("200", "TenantStream", described), ...adminErrors("400", "404") },
  };
}
/** An admin PATCH of the record at path parameter `param`: body `body`, 200 with the updated `result`. */
function adminPatch(summary: string, param: string, body: string, result: string, ...errors: string[]): Schema {
  return { summary, security: adminSec, parameters: [p(param)], requestBody: jsonBody(body), responses: { ...ok("200", result, "Updated"), ...adminErrors(...errors) } };
}
const SEND_ERRORS = ["400", "401", "403", "409", "413", "415", "422", "429"];

let allSchemas: Record<string, Schema> | undefined;

export const OPENAPI_DOCUMENT = {
  openapi: "3.1.0",
  info: {
    title: "Edge Relay API",
    version: "1.0.0",
    description:
      "Send mail through an outbound SMTP relay on Cloudflare Workers. Errors always have the shape of the Error schema. " +
      "Every route of the Worker is here except the reporting pages under /dashboard, which are HTML for people " +
      "(behind the admin-token session or Cloudflare Access), not an API.",
  },
  components: {
    securitySchemes: {
      bearer: { type: "http", scheme: "bearer", description: "Authorization: Bearer <API key> (or the admin token for /admin)" },
      apiKey: { type: "apiKey", in: "header", name: "X-Api-Key" },
    },
    /** Converted on first use (the first GET /openapi.json), not at every isolate's start. */
    get schemas(): Record<string, Schema> {
      return (allSchemas ??= { ...requestBodies(), ...responseSchemas });
    },
  },
  paths: {
    "/health": { get: { summary: "Liveness", responses: ok("200", "Health", "ok") } },
    "/openapi.json": { get: { summary: "This document", responses: { "200": { description: "OpenAPI 3.1 document", content: { "application/json": { schema: { type: "object" } } } } } } },
    "/v1/messages": {
      post: {
        summary: "Send one message (JSON)",
        security: key,
        parameters: [idempotencyHeader],
        requestBody: jsonBody("SendRequest"),
        responses: { ...ok("202", "SendResult", "Accepted; suppressed recipients are listed with status suppressed"), ...errors(...SEND_ERRORS) },
      },
      get: {
        summary: "Search messages, newest first",
        security: key,
        parameters: [
          q("recipient", "recipient address"),
          q("tag", "tag"),
          q("status", "messages with a recipient in this status", { enum: RECIPIENT_STATUS }),
          q("stream", "only messages of this stream", { enum: ["transactional", "broadcast"] }),
          q("since", "RFC 3339 or epoch ms"),
          q("until", "RFC 3339 or epoch ms"),
          q("cursor", "next_cursor of the previous page"),
          q("limit", "1-100, default 50", int),
        ],
        responses: { ...ok("200", "MessageList", "A page of messages"), ...errors("400", "401", "403") },
      },
    },
    "/v1/messages/batch": {
      post: {
        summary: "Send up to 100 messages; one result per message",
        security: key,
        parameters: [idempotencyHeader],
        requestBody: { required: true, content: { "application/json": { schema: { oneOf: [{ type: "array", items: ref("SendRequest"), maxItems: 100 }, obj({ messages: { type: "array", items: ref("SendRequest"), maxItems: 100 } })] } } } },
        responses: { ...ok("200", "BatchResult", "Per-message results (each accepted or failed with its error)"), ...errors(...SEND_ERRORS) },
      },
    },
    "/v1/messages/raw": {
      post: {
        summary: "Send a complete RFC 5322 message (migrations, the SMTP bridge)",
        description:
          "Body: the message (Content-Type: message/rfc822, UTF-8 or 7-bit, size limit enforced while reading). Envelope in request headers: " +
          "X-Envelope-To (required; comma-separated or repeated), X-Envelope-From (optional MAIL FROM; its domain must be the account's), " +
          "X-Stream, X-Tags, X-Client-Helo, X-Client-Protocol. Bcc and Return-Path fields are removed; Message-ID, Date and MIME-Version are added when missing; " +
          "existing DKIM signatures are kept and ours is added. Recipient errors name the recipient as to[i].",
        security: key,
        parameters: [
          idempotencyHeader,
          { name: "X-Envelope-To", in: "header", required: true, schema: str },
          { name: "X-Envelope-From", in: "header", required: false, schema: str },
          { name: "X-Stream", in: "header", required: false, schema: { enum: ["transactional", "broadcast"] } },
          { name: "X-Tags", in: "header", required: false, schema: str },
          { name: "X-Client-Helo", in: "header", required: false, schema: str },
          { name: "X-Client-Protocol", in: "header", required: false, schema: str },
          { name: "X-Require-TLS", in: "header", required: false, schema: { enum: ["yes", "no"] }, description: "yes: RFC 8689 REQUIRETLS semantics for this message (the bridge sets it for MAIL FROM ... REQUIRETLS)" },
        ],
        requestBody: { required: true, content: { "message/rfc822": { schema: { type: "string" } } } },
        responses: { ...ok("202", "SendResult", "Accepted"), ...errors(...SEND_ERRORS) },
      },
    },
    "/v1/messages/{id}": {
      get: { summary: "A message with its recipients and timeline", security: key, parameters: [p("id")], responses: { ...ok("200", "Message", "The message"), ...errors("401", "403", "404") } },
    },
    "/v1/events": {
      get: {
        summary: "Events, oldest first; poll with next_cursor",
        security: key,
        parameters: [q("type", "event type", { type: "string", enum: EVENT_TYPES }), q("message_id", "message id"), q("recipient", "address"), q("stream", "only events of messages of this stream", { enum: ["transactional", "broadcast"] }), q("since", "RFC 3339 or epoch ms"), q("cursor", "next_cursor"), q("limit", "1-1000, default 100", int)],
        responses: { ...ok("200", "EventList", "A page of events"), ...errors("400", "401", "403") },
      },
    },
    "/v1/suppressions": {
      get: {
        summary: "The suppression list",
        security: key,
        parameters: [q("address", "one address"), q("cursor", "next_cursor"), q("limit", "1-1000, default 100", int)],
        responses: { ...ok("200", "SuppressionList", "A page of entries"), ...errors("400", "401", "403") },
      },
      post: {
        summary: "Add up to 1000 entries (expiry by reason unless expires_at is given)",
        security: key,
        requestBody: jsonBody("SuppressionAdd"),
        responses: { ...ok("201", "SuppressionAdded", "Added"), ...errors("400", "401", "403", "413", "415", "422") },
      },
    },
    "/v1/suppressions/{address}": {
      delete: {
        summary: "Remove an address (every scope, or ?scope=)",
        security: key,
        parameters: [p("address"), q("scope", "one scope", { enum: ["transactional", "broadcast", "all"] })],
        responses: { ...ok("200", "SuppressionRemoved", "Removed"), ...errors("400", "401", "403", "404") },
      },
    },
    "/unsubscribe/{token}": {
      post: { summary: "RFC 8058 one-click unsubscribe", parameters: [p("token")], responses: { ...ok("200", "Unsubscribed", "The recipient will get no more broadcast mail from this sender"), ...errors("404") } },
      get: { summary: "A page with a button that POSTs to the same URL", parameters: [p("token")], responses: { "200": { description: "HTML", content: { "text/html": { schema: str } } } } },
    },
    "/v1/domains": { get: { summary: "The account's sender domains", security: key, responses: { ...ok("200", "DomainList", "Domains"), ...errors("401", "403") } } },
    "/v1/domains/{domain}/dns": {
      get: { summary: "DNS records to publish", security: key, parameters: [p("domain")], responses: { ...ok("200", "DomainDns", "Records"), ...errors("401", "403", "404") } },
    },
    "/v1/domains/{domain}/verify": {
      post: { summary: "Look the records up over DNS-over-HTTPS", security: key, parameters: [p("domain")], responses: { ...ok("200", "DomainVerify", "What is there, missing or wrong"), ...errors("401", "403", "404") } },
    },
    "/tx/v1/send": {
      post: {
        summary: "MailChannels Email API compatible send",
        security: key,
        parameters: [q("dry-run", "true: compose and sign, return the messages, send nothing", { enum: ["true", "false"] }), idempotencyHeader],
        requestBody: jsonBody("MailChannelsSend"),
        responses: { ...ok("202", "MailChannelsResult", "Accepted"), ...ok("200", "MailChannelsDryRun", "Dry run"), ...mcErrors(...SEND_ERRORS) },
      },
    },
    "/tx/v1/send-async": {
      post: {
        summary: "MailChannels Email API compatible send-async (same request; the messages are queued when it answers)",
        security: key,
        parameters: [idempotencyHeader],
        requestBody: jsonBody("MailChannelsSend"),
        responses: { ...ok("202", "MailChannelsQueued", "Queued"), ...mcErrors(...SEND_ERRORS) },
      },
    },
    "/v1/messages/{id}/tracking": {
      get: {
        summary: "Opens and clicks of each recipient of a message, human and machine apart",
        security: key,
        parameters: [p("id")],
        responses: { ...ok("200", "MessageTracking", "Per-recipient counters (zeros for recipients without any)"), ...errors("401", "403", "404") },
      },
    },
    "/v1/tracking/settings": {
      get: { summary: "The account's tracking switches (tenant-wide * and per stream)", security: key, responses: { ...ok("200", "TrackingSettings", "Rows that exist"), ...errors("401", "403") } },
      put: {
        summary: "Set or clear (null: inherit) open and click tracking, tenant-wide or for one stream",
        security: key,
        requestBody: jsonBody("TrackingSettingsPut"),
        responses: { ...ok("200", "TrackingSettings", "The settings afterwards"), ...errors("400", "401", "403", "413", "415") },
      },
    },
    "/v1/tracking/stats": {
      get: {
        summary: "Open and click totals of the messages accepted in a window (default: the last 30 days)",
        security: key,
        parameters: [q("since", "RFC 3339 or epoch ms"), q("until", "RFC 3339 or epoch ms")],
        responses: { ...ok("200", "TrackingStats", "Totals"), ...errors("400", "401", "403") },
      },
    },
    "/t/c/{token}": {
      get: {
        summary: "Click tracking: records the click and redirects to the original link",
        parameters: [p("token")],
        responses: {
          "302": { description: "Redirect to the original URL", headers: { Location: { schema: str } } },
          "404": { description: "Unknown or tampered token (never a redirect)", content: { "text/plain": { schema: str } } },
        },
      },
    },
    "/t/o/{token}": {
      get: {
        summary: "Open tracking pixel: records the open",
        parameters: [p("token")],
        responses: {
          "200": { description: "A 1x1 transparent GIF, not cacheable", content: { "image/gif": { schema: { type: "string", contentEncoding: "binary" } } } },
          "404": { description: "Unknown or tampered token", content: { "text/plain": { schema: str } } },
        },
      },
    },
    "/admin/tenants": {
      post: { summary: "Create a tenant with sender domains", security: adminSec, requestBody: jsonBody("TenantCreate"), responses: { ...ok("201", "TenantCreated", "Created"), ...adminErrors("400", "409") } },
      get: { summary: "List tenants", security: adminSec, parameters: [q("cursor", "next_cursor"), q("limit", "1-1000", int)], responses: { ...ok("200", "TenantList", "Tenants"), ...adminErrors("400") } },
    },
    "/admin/audit": {
      get: {
        summary: "The audit trail: authenticated configuration changes (admin API, tenant settings), newest first",
        security: adminSec,
        parameters: [q("cursor", "next_cursor"), q("limit", "1-1000", int), q("tenant_id", "only this tenant's")],
        responses: { ...ok("200", "AuditList", "Audit rows"), ...adminErrors("400") },
      },
    },
    "/admin/tenants/{id}": {
      get: { summary: "A tenant with domains and keys", security: adminSec, parameters: [p("id")], responses: { ...ok("200", "Tenant", "Tenant"), ...adminErrors("404") } },
      patch: adminPatch("Suspend/resume, rename, rate limit, default stream, require_tls (all mail over verified TLS only), retention_days, redact_after_days, redact_mode", "id", "TenantPatch", "Tenant", "400", "404"),
    },
    "/admin/tenants/{id}/erase": {
      post: {
        summary: "Erase every row of the tenant's data and the tenant itself, in bounded steps (202 while rows remain; the cron continues); audit rows are kept",
        security: adminSec,
        parameters: [p("id")],
        requestBody: jsonBody("TenantErase"),
        responses: { ...ok("200", "TenantErased", "Erased"), ...ok("202", "TenantErased", "Erasing: call again or let the cron finish"), ...adminErrors("400", "404") },
      },
    },
    "/admin/tenants/{id}/streams": {
      get: { summary: "Both streams of a tenant: paused, parked jobs, delivery limits", security: adminSec, parameters: [p("id")], responses: { ...ok("200", "TenantStreamList", "Streams"), ...adminErrors("404") } },
    },
    "/admin/tenants/{id}/streams/{stream}": {
      put: streamOp("Set a stream's delivery limits (messages per second, per UTC day); null clears", "The stream afterwards", "TenantStreamLimits"),
    },
    "/admin/tenants/{id}/streams/{stream}/pause": {
      post: streamOp("Pause a stream: its mail waits (parked, nothing lost) until resume", "The stream afterwards"),
    },
    "/admin/tenants/{id}/streams/{stream}/resume": {
      post: streamOp("Resume a stream: parked mail is released in the order it was parked", "The stream afterwards, with released"),
    },
    "/admin/tenants/{id}/keys": {
      post: { summary: "Create an API key (shown once)", security: adminSec, parameters: [p("id")], requestBody: jsonBody("KeyCreate"), responses: { ...ok("201", "KeyCreated", "Created"), ...adminErrors("400", "404") } },
    },
    "/admin/tenants/{id}/domains": {
      post: { summary: "Add a sender domain", security: adminSec, parameters: [p("id")], requestBody: jsonBody("DomainAdd"), responses: { ...ok("201", "DomainAdded", "Added"), ...adminErrors("400", "404", "409") } },
    },
    "/admin/tenants/{id}/domains/{domain}": {
      delete: { summary: "Remove a sender domain", security: adminSec, parameters: [p("id"), p("domain")], responses: { ...ok("200", "DomainRemoved", "Removed"), ...adminErrors("404") } },
    },
    "/admin/keys/{id}": {
      delete: { summary: "Revoke a key", security: adminSec, parameters: [p("id")], responses: { ...ok("200", "KeyRevoked", "Revoked"), ...adminErrors("404") } },
    },
    "/admin/routes": {
      get: { summary: "Every delivery route", security: adminSec, responses: { ...ok("200", "RouteList", "Routes by recipient domain, then priority"), ...adminErrors() } },
      post: { summary: "Add a delivery route", security: adminSec, requestBody: jsonBody("RouteRequest"), responses: { ...ok("201", "RouteCreated", "Created"), ...adminErrors("400") } },
    },
    "/admin/routes/{id}": {
      delete: { summary: "Delete a delivery route", security: adminSec, parameters: [p("id")], responses: { ...ok("200", "RouteDeleted", "Deleted"), ...adminErrors("404") } },
    },
    "/admin/gates/{destination}": {
      get: {
        summary: "A DomainGate's live state: rate, connections, backoff, circuit, sequence, totals",
        description: "The destination is a gate key: a recipient domain, provider:google, upstream:<route name> or cloudflare:<binding> (URL-encoded).",
        security: adminSec,
        parameters: [p("destination")],
        responses: { ...ok("200", "GateState", "State"), ...adminErrors("400") },
      },
    },
    "/admin/gates/{destination}/policy": {
      put: {
        summary: "Set (a partial policy) or clear (null) the gate's policy override",
        security: adminSec,
        parameters: [p("destination")],
        requestBody: jsonBody("GatePolicyPatch"),
        responses: { ...ok("200", "GateState", "State afterwards"), ...adminErrors("400") },
      },
    },
    "/admin/gates/{destination}/reset": {
      post: { summary: "Clear the gate's backoff, pause and open circuit", security: adminSec, parameters: [p("destination")], responses: { ...ok("200", "GateState", "State afterwards"), ...adminErrors("400") } },
    },
    "/admin/aliases": {
      post: {
        summary: "Create a forwarding alias at one of the tenant's sender domains",
        security: adminSec,
        requestBody: jsonBody("AliasCreate"),
        responses: { ...ok("201", "Alias", "Created"), ...adminErrors("400", "409", "422") },
      },
      get: {
        summary: "List forwarding aliases",
        security: adminSec,
        parameters: [q("tenant_id", "one tenant"), q("cursor", "next_cursor"), q("limit", "1-100, default 50", int)],
        responses: { ...ok("200", "AliasList", "A page of aliases"), ...adminErrors("400") },
      },
    },
    "/admin/aliases/{address}": {
      get: { summary: "One alias", security: adminSec, parameters: [p("address")], responses: { ...ok("200", "Alias", "The alias"), ...adminErrors("404") } },
      patch: adminPatch("Change an alias's destinations or description", "address", "AliasPatch", "Alias", "400", "404", "422"),
      delete: { summary: "Delete an alias", security: adminSec, parameters: [p("address")], responses: { ...ok("200", "AliasDeleted", "Deleted"), ...adminErrors("404") } },
    },
    "/admin/inbound": {
      get: {
        summary: "What the email() handler did with each inbound message, newest first",
        security: adminSec,
        parameters: [q("tenant_id", "one tenant"), q("kind", "inbound kind"), q("outcome", "outcome"), q("cursor", "next_cursor"), q("limit", "1-100, default 50", int)],
        responses: { ...ok("200", "InboundLog", "A page of the inbound log"), ...adminErrors("400") },
      },
    },
    "/admin/reputation": {
      get: { summary: "Blocklist states of every watched IP and domain, current listings, recent history and the bounce-side signal", security: adminSec, responses: { ...ok("200", "ReputationOverview", "The reputation watch"), ...adminErrors() } },
    },
    "/admin/reputation/history": {
      get: { summary: "Listing and delisting events, newest first", security: adminSec, parameters: [q("cursor", "next_cursor"), q("limit", "1-100, default 50", int)], responses: { ...ok("200", "ReputationHistory", "A page of history"), ...adminErrors("400") } },
    },
    "/admin/reputation/subjects": {
      post: { summary: "Watch a sending IP (label it with the route) or a domain", security: adminSec, requestBody: jsonBody("ReputationSubjectAdd"), responses: { ...ok("201", "ReputationSubject", "Watched"), ...adminErrors("400", "404") } },
    },
    "/admin/reputation/subjects/{subject}": {
      delete: { summary: "Stop watching a subject added through this API or learned from SPF", security: adminSec, parameters: [p("subject")], responses: { ...ok("200", "ReputationSubjectDeleted", "Removed"), ...adminErrors("404") } },
    },
    "/admin/reputation/check": {
      post: { summary: "Run the blocklist watch now (the same bounded run as the cron's)", security: adminSec, responses: { ...ok("200", "ReputationCheckRun", "What the run did"), ...adminErrors() } },
    },
    "/admin/reputation/dmarc": {
      get: { summary: "DMARC aggregate reports per domain: volume, pass rate, this relay's share, failing sources", security: adminSec, parameters: [q("days", "1-365, default 7", int), q("tenant_id", "one tenant")], responses: { ...ok("200", "DmarcSummary", "Summary"), ...adminErrors("400") } },
    },
    "/admin/reputation/tls": {
      get: { summary: "SMTP TLS reports per receiving domain: sessions and failure types", security: adminSec, parameters: [q("days", "1-365, default 7", int), q("tenant_id", "one tenant")], responses: { ...ok("200", "TlsSummary", "Summary"), ...adminErrors("400") } },
    },
    "/admin/webhooks": {
      post: {
        summary: "Subscribe an endpoint to a tenant's events (the signing secret is shown once)",
        security: adminSec,
        requestBody: jsonBody("WebhookCreate"),
        responses: { ...ok("201", "WebhookCreated", "Created"), ...adminErrors("400", "404") },
      },
      get: { summary: "List webhook endpoints", security: adminSec, parameters: [q("tenant_id", "one tenant")], responses: { ...ok("200", "WebhookList", "Endpoints"), ...adminErrors() } },
    },
    "/admin/webhooks/{id}": {
      get: { summary: "One webhook endpoint", security: adminSec, parameters: [p("id")], responses: { ...ok("200", "Webhook", "The endpoint"), ...adminErrors("404") } },
      patch: adminPatch("Change the URL, events, description, or enable/disable", "id", "WebhookPatch", "Webhook", "400", "404"),
      delete: { summary: "Delete an endpoint", security: adminSec, parameters: [p("id")], responses: { ...ok("200", "WebhookDeleted", "Deleted"), ...adminErrors("404") } },
    },
    "/admin/webhooks/{id}/rotate-secret": {
      post: { summary: "Replace the signing secret (shown once)", security: adminSec, parameters: [p("id")], responses: { ...ok("200", "WebhookSecret", "The new secret"), ...adminErrors("404") } },
    },
    "/admin/webhooks/{id}/attempts": {
      get: { summary: "The latest 100 delivery attempts of an endpoint, newest first", security: adminSec, parameters: [p("id")], responses: { ...ok("200", "WebhookAttempts", "Attempts"), ...adminErrors("404") } },
    },
  },
} as const;

export const openapi = new Hono<AppEnv>();
openapi.get("/openapi.json", (c) => c.json(OPENAPI_DOCUMENT));
