/** The one HTTP error type of the API, with a closed list of error codes, rendered by app.onError. */
import type { ContentfulStatusCode } from "hono/utils/http-status";
import type { Refusal } from "../accept/refusal";

export const ERROR_CODES = [
  "unauthorized",
  "forbidden",
  "not_found",
  "invalid_json",
  "invalid_field",
  "missing_field",
  "unknown_field",
  "invalid_recipient",
  "invalid_sender",
  "sender_domain_not_allowed",
  "sender_domain_not_verified",
  "too_many_recipients",
  "header_injection",
  "reserved_header",
  "invalid_utf8",
  "too_large",
  "unsupported_media_type",
  "invalid_attachment",
  "invalid_send_at",
  "idempotency_conflict",
  "rate_limited",
  "tenant_suspended",
  "key_revoked",
  "conflict",
  "internal_error",
  "unavailable",
] as const;
export type ErrorCode = (typeof ERROR_CODES)[number];

export class ApiError extends Error {
  override name = "ApiError";
  constructor(
    readonly status: ContentfulStatusCode,
    readonly code: ErrorCode,
    message: string,
    readonly field?: string,
    /** Extra response headers, e.g. Retry-After on 429. */
    readonly headers?: Record<string, string>,
  ) {
    super(message);
  }

  toJSON() {
    return { error: { code: this.code, message: this.message, ...(this.field ? { field: this.field } : {}) } };
  }
}

/** The API error for a refusal of the accept path: same status, code, message and field. */
export function apiErrorOf(r: Refusal): ApiError {
  return new ApiError(r.status, r.code, r.message, r.field);
}
