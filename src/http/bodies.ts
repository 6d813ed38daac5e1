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
import * as v from "valibot";
import { issueToRefusal, objectMessage, says, strictJson } from "../mime/body-schema";
import { ApiError, ERROR_CODES, type ErrorCode } from "./errors";

/** A domain name (at least two labels, letters in the TLD). */
export const DOMAIN = /^(?=.{1,253}$)([a-z0-9]([a-z0-9-]{0,61}[a-z0-9])?\.)+[a-z]{2,63}$/i;
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
      v.pipe(v.string(says("invalid_field", "domains must be an array of domain names", "domains")), v.regex(DOMAIN, says("invalid_field", "domains must be an array of domain names", "domains"))),
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
  },
  objectMessage("the body must be a JSON object", "invalid_json", { name: "name is required" }),
);

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
});

/** `POST /admin/tenants/{id}/keys`. A name that is not a string is ignored (as it always was). */
export const KeyCreate = v.object({ name: v.fallback(v.nullish(v.string()), null) });

/** `POST /admin/tenants/{id}/domains`. */
export const DomainAdd = v.object(
  { domain: v.pipe(v.string(says("invalid_field", "domain must be a domain name", "domain")), v.regex(DOMAIN, says("invalid_field", "domain must be a domain name", "domain"))) },
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

/** Every request body above under its name in the OpenAPI document's components. */
export const REQUEST_BODIES = { TenantCreate, TenantPatch, KeyCreate, DomainAdd, TenantStreamLimits, TrackingSettingsPut } satisfies Record<string, v.GenericSchema>;

/** Validates a decoded JSON body with `schema`: the typed value, or a 400 ApiError with the schema's code and field. */
export function parseBody<S extends v.GenericSchema>(schema: S, body: unknown): v.InferOutput<S> {
  const parsed = v.safeParse(schema, body, { abortEarly: true });
  if (parsed.success) return parsed.output;
  const refusal = issueToRefusal<ErrorCode>(parsed.issues[0]!, ERROR_CODES, "invalid_field");
  throw new ApiError(400, refusal.code, refusal.message, refusal.field || undefined);
}
