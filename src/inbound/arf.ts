/**
 * Reads the machine-readable part of an ARF complaint report (RFC 5965 message/feedback-report):
 * the feedback type and the recipients it names. (Microsoft JMRP reports and Amazon SES complaint
 * notifications carry no such part; bounce.ts recognises those.) Pure: no Workers imports.
 */
import { parseHeaderBlock } from "./mime-lite";
import { cleanAddress } from "./text-util";

export interface FeedbackFields {
  feedbackType: string;
  /** Recipients the report names (Original-Rcpt-To, Removal-Recipient), if any. */
  recipients: string[];
  originalMailFrom: string;
}

/** Parses the text of a message/feedback-report part. */
export function parseFeedbackReport(text: string): FeedbackFields {
  const headers = parseHeaderBlock(text.replace(/\n[ \t]*\n/g, "\n"));
  const recipients: string[] = [];
  for (const name of ["original-rcpt-to", "removal-recipient"]) {
    for (const v of headers.getAll(name)) {
      const a = cleanAddress(v);
      if (a && !recipients.includes(a)) recipients.push(a);
    }
  }
  return {
    feedbackType: (headers.get("feedback-type") ?? "other").trim().toLowerCase(),
    recipients,
    originalMailFrom: cleanAddress(headers.get("original-mail-from") ?? "", true),
  };
}
