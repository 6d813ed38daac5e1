/**
 * Why the accept path refuses a message: a closed error code, the field at fault and the HTTP status it maps to.
 * Accept and tracking throw `Refusal`; only the HTTP layer turns it into its response (`apiErrorOf` in
 * src/http/errors.ts), so accept/ never imports http/.
 */
import type { SendError, SendErrorCode } from "../mime/validate";

/** The codes accept may refuse with: the send request's own and the sender-domain checks; all are API error codes. */
export type RefusalCode = SendErrorCode | "sender_domain_not_allowed" | "sender_domain_not_verified";

/** 400 malformed, 403 not this sender's to use, 413 too large, 422 well-formed but refused. */
export type RefusalStatus = 400 | 403 | 413 | 422;

export class Refusal extends Error {
  override name = "Refusal";
  constructor(
    readonly status: RefusalStatus,
    readonly code: RefusalCode,
    message: string,
    /** JSON path of the offending field (`to[2]`, `body`); absent for the whole request. */
    readonly field?: string,
  ) {
    super(message);
  }
}

const FIELD_STATUS: Partial<Record<SendErrorCode, RefusalStatus>> = {
  invalid_sender: 422,
  invalid_recipient: 422,
  too_many_recipients: 422,
  reserved_header: 422,
  invalid_attachment: 422,
  invalid_send_at: 422,
};

/** The refusal for a validation error from `src/mime/validate.ts` (or the MailChannels mapper), its field under `prefix`. */
export function refusalOf(e: SendError, prefix = ""): Refusal {
  const field = prefix + e.field;
  if (e.code === "too_large") return new Refusal(e.field === "" ? 413 : 422, "too_large", e.message, field || undefined);
  return new Refusal(FIELD_STATUS[e.code] ?? 400, e.code, e.message, field || undefined);
}
