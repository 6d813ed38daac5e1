/**
 * Delivery status notifications (RFC 3464) for bounced and expired recipients: a multipart/report
 * (RFC 6522) with a human-readable part, a message/delivery-status part and the original headers
 * (text/rfc822-headers). Sent to the envelope sender from the null reverse-path, so it can never loop.
 * Pure: no Workers imports.
 */

export interface DsnRecipient {
  address: string;
  /** RFC 3464 2.3.3: "failed" for bounced and expired recipients. */
  action: "failed" | "delayed";
  /** RFC 3463 status, e.g. "5.1.1"; for expiry the last temporary status or "4.4.7". */
  status: string;
  /** The remote MTA that answered, when one did. */
  remoteMta?: string | null;
  /** "smtp; 550 5.1.1 no such user" */
  diagnostic?: string | null;
  lastAttemptAt: number;
  /** Why, in words, for the human-readable part. */
  reason: string;
}

export interface DsnInput {
  reportingMta: string;
  /** The original envelope sender (the DSN goes there). */
  to: string;
  originalMessageId: string;
  arrivalAt: number;
  recipients: DsnRecipient[];
  /** The original message (its header section is attached). */
  originalRaw: string;
  expired: boolean;
  now?: number;
}

/** Largest slice of original headers attached; headers beyond are cut (a hostile message must not bloat DSNs). */
export const MAX_DSN_HEADER_BYTES = 32 * 1024;

/** RFC 5322 date-time. */
export function rfc5322Date(ms: number): string {
  const d = new Date(ms);
  const days = ["Sun", "Mon", "Tue", "Wed", "Thu", "Fri", "Sat"];
  const months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"];
  const p = (n: number) => String(n).padStart(2, "0");
  return `${days[d.getUTCDay()]}, ${p(d.getUTCDate())} ${months[d.getUTCMonth()]} ${d.getUTCFullYear()} ${p(d.getUTCHours())}:${p(d.getUTCMinutes())}:${p(d.getUTCSeconds())} +0000`;
}

/** Removes CR/LF and other controls so values from servers cannot inject header fields. */
function oneLine(s: string, max = 900): string {
  return s.replace(/[\u0000-\u001f\u007f]+/g, " ").trim().slice(0, max);
}

/** The header section of a raw message (up to the first empty line), capped. */
function headerSection(raw: string): string {
  const end = raw.search(/\r?\n\r?\n/);
  const head = end >= 0 ? raw.slice(0, end) : raw;
  const capped = head.length > MAX_DSN_HEADER_BYTES ? head.slice(0, head.lastIndexOf("\n", MAX_DSN_HEADER_BYTES)) : head;
  return capped.replace(/\r?\n/g, "\r\n");
}

function originalSubject(raw: string): string | undefined {
  const m = /^Subject:[ \t]*(.*(?:\r?\n[ \t].*)*)/im.exec(headerSection(raw));
  return m ? oneLine(m[1]!.replace(/\r?\n[ \t]/g, " "), 200) : undefined;
}

/** Composes the DSN; returns the raw message (CRLF) and its Message-ID. */
export function composeDsn(input: DsnInput): { raw: string; messageId: string; subject: string; from: string } {
  const now = input.now ?? Date.now();
  const token = crypto.randomUUID().replace(/-/g, "");
  const boundary = `=_dsn_${token}`;
  const messageId = `<dsn-${token}@${input.reportingMta}>`;
  const from = `mailer-daemon@${input.reportingMta}`;
  const subject = input.expired ? "Delivery Status Notification (Delay expired)" : "Undelivered Mail Returned to Sender";
  const origSubject = originalSubject(input.originalRaw);

  const human = [
    `This is the mail delivery system at ${input.reportingMta}.`,
    "",
    input.expired
      ? "Your message could not be delivered to the following recipients within the time allowed, and delivery has been given up:"
      : "Your message could not be delivered to the following recipients:",
    "",
    ...input.recipients.map((r) => `  <${oneLine(r.address)}>: ${oneLine(r.reason, 500)}`),
    "",
    origSubject ? `Subject of the original message: ${origSubject}` : "",
    "The headers of the original message are attached.",
  ].join("\r\n");

  const perMessage = [`Reporting-MTA: dns; ${input.reportingMta}`, `X-Edge-Relay-Message-ID: ${input.originalMessageId}`, `Arrival-Date: ${rfc5322Date(input.arrivalAt)}`];
  const perRecipient = input.recipients.map((r) =>
    [
      `Final-Recipient: rfc822; ${oneLine(r.address)}`,
      `Action: ${r.action}`,
      `Status: ${r.status}`,
      ...(r.remoteMta ? [`Remote-MTA: dns; ${oneLine(r.remoteMta)}`] : []),
      ...(r.diagnostic ? [`Diagnostic-Code: ${oneLine(r.diagnostic)}`] : []),
      `Last-Attempt-Date: ${rfc5322Date(r.lastAttemptAt)}`,
    ].join("\r\n"),
  );

  const raw = [
    `From: Mail Delivery System <${from}>`,
    `To: <${input.to}>`,
    `Subject: ${subject}`,
    `Date: ${rfc5322Date(now)}`,
    `Message-ID: ${messageId}`,
    // RFC 3834: an automatic response, never to be answered automatically.
    "Auto-Submitted: auto-replied",
    "MIME-Version: 1.0",
    `Content-Type: multipart/report; report-type=delivery-status; boundary="${boundary}"`,
    "",
    "This is a MIME-encapsulated delivery status notification.",
    "",
    `--${boundary}`,
    "Content-Type: text/plain; charset=utf-8",
    "Content-Transfer-Encoding: 8bit",
    "",
    human,
    "",
    `--${boundary}`,
    "Content-Type: message/delivery-status",
    "",
    [perMessage.join("\r\n"), ...perRecipient].join("\r\n\r\n"),
    "",
    `--${boundary}`,
    "Content-Type: text/rfc822-headers",
    "",
    headerSection(input.originalRaw),
    "",
    `--${boundary}--`,
    "",
  ].join("\r\n");
  return { raw, messageId, subject, from };
}
