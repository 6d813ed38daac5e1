/**
 * The JSON bodies of the admin and settings routes, each described once as a valibot schema: `parseBody`
 * validates a decoded body with it (refusing with the route's documented `{ code, field, message }` as a 400
 * ApiError), and `REQUEST_BODIES` feeds the OpenAPI document (openapi.ts), so the document cannot drift from
 * what the route accepts. The send request's schema lives with its domain checks in mime/validate.ts.
 *
 * To add a body: write its schema here with a message from `says` on every schema that can refuse (that is
 * where the error code comes from), add it to REQUEST_BODIES under the name the document uses, and call
 * `parseBody` in the route.
 */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import * as v from "valibot";
import { ConfigError, DEFAULT_MAX_RECIPIENTS } from "../config";
import { parseRouteTarget } from "../delivery/routes";
import { parsePartialPolicy, type GatePolicy } from "../gate/policy";
import { isDomainName } from "../mime/domain-name";
import { envelopeAddress } from "../accept/send";
import { destinationAllowed } from "../delivery/private-networks";
import { isReturnPathAddress } from "../mime/return-path";
import { isIpv4 } from "../reputation/dns-lists";
import { isSrsAddress } from "../mime/srs";
import { parseAddress } from "../mime/address";
import { HERE, Refusal, bounded, issueToRefusal, objectMessage, refine, says, strictJson } from "../mime/body-schema";
import { SUPPRESSION_REASONS, SUPPRESSION_SCOPES } from "../store/suppressions";
import { WEBHOOK_EVENT_TYPES } from "../webhooks/events";
import { ApiError, ERROR_CODES, type ErrorCode } from "./errors";

/** Bulk adds are one D1 batch; 1000 entries keep it well inside D1's per-batch limits. */
export const MAX_SUPPRESSIONS_PER_REQUEST = 1000;

/** A domain name (at least two labels, letters in the TLD). */
const isDomain = (name: string) => isDomainName(name, { letterTld: true });
const TENANT_ID = /^[a-z0-9][a-z0-9-]{0,62}$/;

/** An object body that refuses anything but an object, and unknown keys before the values. */
function strictBody<E extends v.ObjectEntries>(entries: E) {
  return strictJson(v.strictObject(entries, objectMessage("the body must be a JSON object", "invalid_json")));
}

/** `POST /admin/tenants`. Unknown fields are ignored (as they always were). */
export const TenantCreate = v.object(
  {
  name: v.pipe(
    v.string(says("missing_field", "name is required", "name")),
    v.check((name) => name.trim() !== "", says("missing_field", "name is required", "name")),
    v.transform((name) => name.trim()),
  ),
  domains: v.nullish(
    v.array(
      v.pipe(v.string(says("invalid_field", "domains must be an array of domain names", "domains")), v.check(isDomain, says("invalid_field", "domains must be an array of domain names", "domains"))),
      says("invalid_field", "domains must be an array of domain names", "domains"),
    ),
    [],
  ),
  id: v.optional(
    v.pipe(
      v.string(says("invalid_field", "id must be 1-63 characters of a-z, 0-9 and -", "id")),
      v.regex(TENANT_ID, says("invalid_field", "id must be 1-63 characters of a-z, 0-9 and -", "id")),
      v.description("1-63 of a-z, 0-9 and -; generated when absent"),
    ),
  ),
  shard: v.optional(
    v.pipe(
      v.string(says("invalid_field", "shard must be the name of a ledger shard", "shard")),
      v.description("a ledger shard (a LEDGER_SHARDS binding); the one with the fewest tenants when absent"),
    ),
  ),
  },
  objectMessage("the body must be a JSON object", "invalid_json", { name: "name is required" }),
);

/** Days are whole days up to ten years. */
const MAX_DAYS = 3650;
const days = (field: string, min: number) => {
  const message = says("invalid_field", `${field} must be an integer from ${min} to ${MAX_DAYS}, or null for the default`);
  return v.nullish(v.pipe(v.number(message), v.integer(message), v.minValue(min, message), v.maxValue(MAX_DAYS, message)));
};

const NAME_MESSAGE = says("invalid_field", "name must be 1-200 characters", "name");

/** `PATCH /admin/tenants/{id}`: any subset. */
export const TenantPatch = strictBody({
  name: v.optional(
    v.pipe(
      v.string(NAME_MESSAGE),
      v.check((name) => name.trim() !== "" && name.length <= 200 && !/[\x00-\x1f]/.test(name), NAME_MESSAGE),
      v.transform((name) => name.trim()),
    ),
  ),
  suspended: v.optional(v.boolean(says("invalid_field", "suspended must be a boolean"))),
  rate_limit_per_minute: v.optional(
    v.nullable(
      v.pipe(
        v.number(says("invalid_field", "rate_limit_per_minute must be an integer from 1 to 1000000, or null for no limit")),
        v.integer(says("invalid_field", "rate_limit_per_minute must be an integer from 1 to 1000000, or null for no limit")),
        v.minValue(1, says("invalid_field", "rate_limit_per_minute must be an integer from 1 to 1000000, or null for no limit")),
        v.maxValue(1_000_000, says("invalid_field", "rate_limit_per_minute must be an integer from 1 to 1000000, or null for no limit")),
      ),
    ),
  ),
  default_stream: v.optional(v.picklist(["transactional", "broadcast"], says("invalid_field", 'default_stream must be "transactional" or "broadcast"'))),
  require_tls: v.optional(v.boolean(says("invalid_field", "require_tls must be a boolean"))),
  // Issue 21: whole days up to ten years; null: the relay's default (retention) or never (redaction).
  retention_days: days("retention_days", 1),
  redact_after_days: days("redact_after_days", 0),
  redact_mode: v.nullish(v.picklist(["redact", "hash"], says("invalid_field", 'redact_mode must be "redact" or "hash"'))),
});

/** `POST /admin/tenants/{id}/keys`. A name that is not a string is ignored (as it always was). */
export const KeyCreate = v.object({ name: v.fallback(v.nullish(v.string()), null) });

/** `POST /admin/tenants/{id}/domains`. */
export const DomainAdd = v.object(
  { domain: v.pipe(v.string(says("invalid_field", "domain must be a domain name", "domain")), v.check(isDomain, says("invalid_field", "domain must be a domain name", "domain"))) },
  says("invalid_field", "domain must be a domain name", "domain"),
);

/** `PUT /admin/tenants/{id}/streams/{stream}`: null or absent clears a limit. */
export const TenantStreamLimits = strictBody({
  rate_per_second: v.nullish(
    v.pipe(
      v.number(says("invalid_field", "rate_per_second must be a number above 0 and at most 100000, or null")),
      v.finite(says("invalid_field", "rate_per_second must be a number above 0 and at most 100000, or null")),
      v.gtValue(0, says("invalid_field", "rate_per_second must be a number above 0 and at most 100000, or null")),
      v.maxValue(100_000, says("invalid_field", "rate_per_second must be a number above 0 and at most 100000, or null")),
    ),
    null,
  ),
  quota_per_day: v.nullish(
    v.pipe(
      v.number(says("invalid_field", "quota_per_day must be a positive integer, or null")),
      v.integer(says("invalid_field", "quota_per_day must be a positive integer, or null")),
      v.minValue(1, says("invalid_field", "quota_per_day must be a positive integer, or null")),
    ),
    null,
  ),
});

const trackingFlag = (key: string) => v.nullish(v.pipe(v.boolean(says("invalid_field", `${key} must be true, false or null (inherit)`)), v.description("null: inherit")));

/** `PUT /v1/tracking/settings`: at least one of the flags. */
export const TrackingSettingsPut = v.pipe(
  strictBody({
    stream: v.nullish(
      v.pipe(
        v.picklist(["*", "transactional", "broadcast"], says("invalid_field", 'stream must be "transactional", "broadcast" or omitted (tenant-wide)')),
        v.description("absent or *: the tenant-wide default"),
      ),
      "*",
    ),
    track_opens: trackingFlag("track_opens"),
    track_clicks: trackingFlag("track_clicks"),
  }),
  v.check((b) => b.track_opens !== undefined || b.track_clicks !== undefined, says("missing_field", "give track_opens and/or track_clicks", "track_opens")),
);

/** `PUT /admin/gates/{destination}/policy` (and a route's `policy`): a partial gate policy, or null to clear it. */
export const GatePolicyPatch = v.nullable(
  v.pipe(
    v.unknown(),
    v.metadata({ type: "object", description: "Any subset of the GatePolicy fields; null clears the override." }),
    refine((value: unknown): Partial<GatePolicy> => {
      const p = parsePartialPolicy(value);
      if (!p.ok) throw new Refusal({ code: "invalid_field", message: p.error, field: "policy" });
      return p.policy;
    }),
  ),
);

const routeDomain = (field: string) =>
  v.nullish(
    v.pipe(
      v.string(says("invalid_field", `${field} must be a domain or *`)),
      v.check((d) => d === "*" || isDomain(d), says("invalid_field", `${field} must be a domain or *`)),
      v.description("a domain or * (default)"),
    ),
    "*",
  );
const routeInteger = (field: string, min: number) =>
  v.nullish(
    v.pipe(
      v.number(says("invalid_field", `${field} must be an integer >= ${min}`)),
      v.integer(says("invalid_field", `${field} must be an integer >= ${min}`)),
      v.minValue(min, says("invalid_field", `${field} must be an integer >= ${min}`)),
    ),
  );
const RETRY_MESSAGE = says("invalid_field", "retry_schedule_seconds must be a non-empty array of seconds", "retry_schedule_seconds");

/** `POST /admin/routes`. Unknown fields are ignored (as they always were). */
export const RouteRequest = v.object(
  {
    match_recipient_domain: routeDomain("match_recipient_domain"),
    match_sender_domain: routeDomain("match_sender_domain"),
    next_hop_url: v.pipe(
      v.string(says("missing_field", "next_hop_url is required")),
      v.description("smtp://…, smtps://…, mx: or cloudflare:<binding>"),
      refine((url: string) => {
        try {
          parseRouteTarget(url);
        } catch (e) {
          if (e instanceof ConfigError) throw new Refusal({ code: "invalid_field", message: e.message.replace("NEXT_HOP_URL", "next_hop_url"), field: "next_hop_url" });
          throw e;
        }
        return url;
      }),
    ),
    tenant_id: v.nullish(v.string(says("invalid_field", "tenant_id must be a string"))),
    name: v.optional(
      v.pipe(
        v.string(says("invalid_field", "name must be 1-63 characters of a-z, 0-9, ., _ and -")),
        v.regex(/^[a-z0-9][a-z0-9._-]{0,62}$/i, says("invalid_field", "name must be 1-63 characters of a-z, 0-9, ., _ and -")),
      ),
    ),
    policy: v.optional(GatePolicyPatch),
    retry_schedule_seconds: v.nullish(
      v.pipe(
        v.array(v.pipe(v.number(RETRY_MESSAGE), v.finite(RETRY_MESSAGE), v.minValue(0, RETRY_MESSAGE)), RETRY_MESSAGE),
        v.minLength(1, RETRY_MESSAGE),
        v.description("seconds between attempts"),
      ),
    ),
    priority: routeInteger("priority", 0),
    weight: routeInteger("weight", 0),
    max_message_age_seconds: routeInteger("max_message_age_seconds", 1),
  },
  objectMessage("the body must be a JSON object", "invalid_json", { next_hop_url: "next_hop_url is required" }),
);

const CONFIRM_MESSAGE = says("invalid_field", "confirm must repeat the tenant id: erasing cannot be undone", "confirm");

/**
 * `POST /admin/tenants/{id}/erase`. Unknown fields are ignored (as they always were); that `confirm` is the
 * tenant id of the path is checked by the route (same code and message).
 */
export const TenantErase = v.object(
  { confirm: v.pipe(v.string(CONFIRM_MESSAGE), v.description("the tenant id again")) },
  CONFIRM_MESSAGE,
);

const SUPPRESSIONS_MESSAGE = says("invalid_field", "the body must be { suppressions: [{ address, scope?, reason?, expires_at? }] }", "suppressions");
const SCOPE_MESSAGE = says("invalid_field", `scope must be one of ${SUPPRESSION_SCOPES.join(", ")}`);
const REASON_MESSAGE = says("invalid_field", `reason must be one of ${SUPPRESSION_REASONS.join(", ")}`);
const DETAIL_MESSAGE = says("invalid_field", "detail must be text of at most 1000 characters");
const EXPIRES_MESSAGE = says("invalid_field", "expires_at must be a future RFC 3339 date-time");

/** One entry of `POST /v1/suppressions`. A bad address is `invalid_recipient` (the route answers it with 422). */
const SuppressionEntry = strictJson(
  v.strictObject(
    {
      address: v.pipe(
        v.string(says("missing_field", "address is required")),
        v.description("a bare address"),
        refine((address: string) => {
          const parsed = parseAddress(address);
          if (!parsed.ok || parsed.value.name !== undefined) throw new Refusal({ code: "invalid_recipient", message: parsed.ok ? "give the bare address" : parsed.error.message, field: HERE });
          return `${parsed.value.address.slice(0, parsed.value.address.lastIndexOf("@"))}@${parsed.value.asciiDomain}`;
        }),
      ),
      scope: v.nullish(v.picklist(SUPPRESSION_SCOPES, SCOPE_MESSAGE), "all"),
      reason: v.nullish(v.picklist(SUPPRESSION_REASONS, REASON_MESSAGE), "manual"),
      detail: v.optional(v.pipe(v.string(DETAIL_MESSAGE), v.maxLength(1000, DETAIL_MESSAGE), v.check((d) => !/[\x00-\x08\x0b-\x1f]/.test(d), DETAIL_MESSAGE))),
      expires_at: v.nullish(
        v.pipe(
          v.string(EXPIRES_MESSAGE),
          v.check((t) => Date.parse(t) > Date.now(), EXPIRES_MESSAGE),
          v.description("a future RFC 3339 date-time; absent: the reason's default expiry, null: never"),
        ),
      ),
    },
    objectMessage("each entry must be an object", "invalid_field", { address: "address is required" }),
  ),
);

/**
 * `POST /v1/suppressions` (the route also takes the bare list). The count is checked before any entry
 * (`too_large`: the route answers it with 413).
 */
export const SuppressionAdd = v.object(
  {
    suppressions: v.pipe(
      bounded(v.array(SuppressionEntry, SUPPRESSIONS_MESSAGE), MAX_SUPPRESSIONS_PER_REQUEST, says("too_large", `at most ${MAX_SUPPRESSIONS_PER_REQUEST} entries per request`, "suppressions")),
      v.minLength(1, says("missing_field", "suppressions must not be empty", "suppressions")),
    ),
  },
  SUPPRESSIONS_MESSAGE,
);

const LOOPBACK = new Set(["localhost", "127.0.0.1", "[::1]"]);
const EVENTS_MESSAGE = says("invalid_field", `events must be a non-empty array of: *, ${WEBHOOK_EVENT_TYPES.join(", ")}`, "events");
const DESCRIPTION_MESSAGE = says("invalid_field", "description must be a string of at most 200 characters", "description");

/**
 * A webhook URL: https only (http for loopback hosts, for local receivers), no credentials in the URL, at most
 * 2048 chars, and never a non-public address (loopback, RFC 1918, link-local and cloud metadata, ULA ...) unless
 * the operator allows it in ALLOW_PRIVATE_DESTINATIONS.
 */
const webhookUrl = (allowPrivate: readonly string[]) =>
  v.pipe(
    v.string(says("missing_field", "url is required", "url")),
    v.description("https:// (http:// only for localhost), no credentials"),
    refine((url: string) => {
      const refuse = (code: ErrorCode, message: string) => new Refusal({ code, message, field: "url" });
      if (!url) throw refuse("missing_field", "url is required");
      let u: URL;
      try {
        u = new URL(url);
      } catch {
        throw refuse("invalid_field", "url is not a URL");
      }
      const ok = u.protocol === "https:" || (u.protocol === "http:" && LOOPBACK.has(u.hostname));
      if (!ok || u.username || u.password || url.length > 2048) throw refuse("invalid_field", "url must be an https:// URL without credentials (http:// only for localhost)");
      if (!destinationAllowed(u.hostname === "localhost" ? "127.0.0.1" : u.hostname, allowPrivate)) {
        throw refuse("invalid_field", "url points at a non-public address (loopback, private, link-local or metadata); allow it with ALLOW_PRIVATE_DESTINATIONS");
      }
      return u.toString();
    }),
  );
const webhookEvents = v.pipe(
  v.array(v.string(EVENTS_MESSAGE), EVENTS_MESSAGE),
  v.minLength(1, EVENTS_MESSAGE),
  v.check((events) => events.every((t) => t === "*" || (WEBHOOK_EVENT_TYPES as readonly string[]).includes(t)), EVENTS_MESSAGE),
  v.transform((events) => [...new Set(events)]),
  v.description("event types or *"),
);
const webhookDescription = v.nullish(v.pipe(v.string(DESCRIPTION_MESSAGE), v.maxLength(200, DESCRIPTION_MESSAGE)));
const WEBHOOK_MISSING = { tenant_id: "tenant_id is required", url: "url is required" };

/**
 * `POST /admin/webhooks` and `PATCH /admin/webhooks/{id}`, for the private destinations the operator allows.
 * Unknown fields are ignored (as they always were). That the tenant exists (404) is checked by the route.
 */
export function webhookBodies(allowPrivate: readonly string[]) {
  return {
    WebhookCreate: v.object(
      {
        tenant_id: v.string(says("missing_field", "tenant_id is required", "tenant_id")),
        url: webhookUrl(allowPrivate),
        events: v.nullish(webhookEvents, () => ["*"]),
        description: webhookDescription,
      },
      objectMessage("the body must be a JSON object", "invalid_json", WEBHOOK_MISSING),
    ),
    WebhookPatch: v.object(
      {
        enabled: v.optional(v.boolean(says("invalid_field", "enabled must be true or false", "enabled"))),
        url: v.optional(webhookUrl(allowPrivate)),
        events: v.optional(webhookEvents),
        description: webhookDescription,
      },
      objectMessage("the body must be a JSON object", "invalid_json"),
    ),
  };
}

const DESTINATIONS_MESSAGE = says("missing_field", "destinations must be a non-empty array of addresses", "destinations");

/**
 * `POST /admin/aliases` and `PATCH /admin/aliases/{address}`, for at most `maxRecipients` destinations (more is
 * `too_many_recipients`: the route answers it with 422). A destination may not be the alias itself: the path's
 * address for a patch, the body's `address` (checked before the destinations) for a create, so make the
 * schemas per request. Unknown fields are ignored (as they always were); that the alias's domain is the
 * tenant's (403) is checked by the route.
 */
export function aliasBodies(maxRecipients: number, pathAddress = "") {
  let self = pathAddress;
  const destinations = v.pipe(
    bounded(v.array(v.unknown(), DESTINATIONS_MESSAGE), maxRecipients, says("too_many_recipients", `at most ${maxRecipients} destinations`, "destinations")),
    v.minLength(1, DESTINATIONS_MESSAGE),
    v.metadata({ items: { type: "string" }, description: "addresses (duplicates are dropped)" }),
    refine((list: unknown[]) => {
      const out: string[] = [];
      list.forEach((d, i) => {
        const r = typeof d === "string" ? parseAddress(d.trim()) : null;
        if (!r || !r.ok) throw new Refusal({ code: "invalid_recipient", message: `destinations[${i}] is not a valid address`, field: `destinations[${i}]` });
        const address = envelopeAddress(r.value);
        if (address.toLowerCase() === self) throw new Refusal({ code: "invalid_recipient", message: "an alias cannot forward to itself", field: `destinations[${i}]` });
        if (!out.some((o) => o.toLowerCase() === address.toLowerCase())) out.push(address);
      });
      return out;
    }),
  );
  const address = v.pipe(
    v.string(says("missing_field", "address is required", "address")),
    v.description("an address at one of the tenant's sender domains"),
    refine((given: string) => {
      const r = parseAddress(given.trim());
      if (!r.ok) throw new Refusal({ code: "invalid_field", message: `address: ${r.error.message}`, field: "address" });
      const address = envelopeAddress(r.value).toLowerCase();
      if (isReturnPathAddress(address) || isSrsAddress(address)) throw new Refusal({ code: "invalid_field", message: "address has the shape of a return path or SRS address, which the relay handles itself", field: "address" });
      self = address;
      return { address, domain: r.value.asciiDomain };
    }),
  );
  return {
    AliasCreate: v.object(
      {
        address,
        tenant_id: v.pipe(v.string(says("missing_field", "tenant_id is required", "tenant_id")), v.minLength(1, says("missing_field", "tenant_id is required", "tenant_id"))),
        destinations,
        description: webhookDescription,
      },
      objectMessage("the body must be a JSON object", "invalid_json", { address: "address is required", tenant_id: "tenant_id is required", destinations: "destinations must be a non-empty array of addresses" }),
    ),
    AliasPatch: v.object({ destinations: v.optional(destinations), description: webhookDescription }, objectMessage("the body must be a JSON object", "invalid_json")),
  };
}

const SUBJECT_MISSING = says("missing_field", "subject (an IPv4 address or a domain) is required", "subject");
const LABEL_MESSAGE = says("invalid_field", "label must be a string of at most 100 characters (e.g. the route name)", "label");
const SUBJECT_TENANT_MESSAGE = says("invalid_field", "tenant_id must be a tenant id", "tenant_id");

/** `POST /admin/reputation/subjects`. Unknown fields are ignored (as they always were); that the tenant exists (404) is checked by the route. */
export const ReputationSubjectAdd = v.object(
  {
    subject: v.pipe(
      v.string(SUBJECT_MISSING),
      v.description("an IPv4 address (a sending IP of an upstream/route) or a domain"),
      refine((given: string) => {
        const subject = given.trim().toLowerCase();
        if (!subject) throw new Refusal({ code: "missing_field", message: "subject (an IPv4 address or a domain) is required", field: "subject" });
        const kind = isIpv4(subject) ? ("ip" as const) : isDomainName(subject, { maxLength: 200, letterTld: true }) ? ("domain" as const) : null;
        if (!kind) throw new Refusal({ code: "invalid_field", message: "subject must be an IPv4 address or a domain name", field: "subject" });
        return { subject, kind };
      }),
    ),
    label: v.nullish(v.pipe(v.string(LABEL_MESSAGE), v.maxLength(100, LABEL_MESSAGE)), null),
    tenant_id: v.nullish(v.pipe(v.string(SUBJECT_TENANT_MESSAGE), v.regex(TENANT_ID, SUBJECT_TENANT_MESSAGE)), null),
  },
  objectMessage("the body must be a JSON object", "invalid_json", { subject: "subject (an IPv4 address or a domain) is required" }),
);

/** Every request body above under its name in the OpenAPI document's components. */
export const REQUEST_BODIES = { TenantCreate, TenantPatch, KeyCreate, DomainAdd, TenantStreamLimits, TrackingSettingsPut, GatePolicyPatch, RouteRequest, TenantErase, SuppressionAdd, ...webhookBodies([]), ...aliasBodies(DEFAULT_MAX_RECIPIENTS), ReputationSubjectAdd } satisfies Record<string, v.GenericSchema>;

/**
 * Validates a decoded JSON body with `schema`: the typed value, or an ApiError with the schema's code and field,
 * 400 unless `statuses` gives the route's documented status for that code (413 for a too-long list, 422 for a
 * bad address), so a check that answers another status keeps its place in the order of checks.
 */
export function parseBody<S extends v.GenericSchema>(schema: S, body: unknown, statuses: Partial<Record<ErrorCode, ContentfulStatusCode>> = {}): v.InferOutput<S> {
  const parsed = v.safeParse(schema, body, { abortEarly: true });
  if (parsed.success) return parsed.output;
  const refusal = issueToRefusal<ErrorCode>(parsed.issues[0]!, ERROR_CODES, "invalid_field");
  throw new ApiError(statuses[refusal.code] ?? 400, refusal.code, refusal.message, refusal.field || undefined);
}
