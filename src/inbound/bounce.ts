/**
 * The bounce, complaint and auto-reply parser: one raw message in, one report out.
 *
 * It reads RFC 3464 delivery status notifications, ARF complaint reports (RFC 5965), Amazon SES
 * notifications, Microsoft JMRP complaints, the non-standard text bounces of the common MTAs and
 * mailbox providers, and RFC 3834 auto-replies. For each failed recipient it gives the address, the
 * status code, the remote reply, a reason in the Sisimai vocabulary and whether the bounce is hard.
 * Pure: no Workers imports, so it runs in plain Node and outside tools can score it.
 */
import { isAutoReply, headerSource, type AutoReplyReason } from "./auto-reply";
import { parseFeedbackReport } from "./arf";
import { isReturnPathAddress } from "../mime/return-path";
import { isDelayWarning } from "./delay";
import { parseDeliveryStatus, type DsnRecipientFields } from "./dsn";
import { decodeEncodedWords, flattenParts, parseHeaderBlock, parseMime, splitHeaderBody, type HeaderList, type MimePart } from "./mime-lite";
import { inlineDeliveryStatusOffset, originalMessageOffset, parseTextReport } from "./plain-text";
import { classifyFailure, fallbackStatus, isHardBounce, reasonOfStatus, type BounceReason, type PhraseFilter } from "./reason";
import { cleanAddress, findAddresses, findCommand, findReplyCode, isSystemAddress, pickStatus, reconcileStatus, squash } from "./text-util";

export { isAutoReply } from "./auto-reply";
export type { BounceReason } from "./reason";

export interface BounceRecipient {
  address: string;
  /** Enhanced status code, e.g. "5.1.1"; `X.0.9NN` when the bounce carried none (first digit: 5 permanent, 4 temporary). */
  status: string;
  /** SMTP reply code the remote server gave, e.g. "550". */
  replyCode?: string;
  /** The remote server's reply text, when the bounce quotes it. */
  remoteReply?: string;
  /** The full diagnostic text of the report for this recipient. */
  diagnosticCode?: string;
  reason: BounceReason;
  hard: boolean;
  action?: string;
  remoteMta?: string;
  /** SMTP command the failure answered (RCPT, MAIL, DATA, CONN, EHLO, STARTTLS), when known. */
  command?: string;
}

/**
 * `delayed`: a warning that the remote MTA still holds the message and keeps retrying (never final; its
 * recipients carry the status and reason of the delay, are never hard, and have `action: "delayed"`).
 */
export type BounceKind = "bounce" | "delayed" | "complaint" | "auto-reply" | "delivered" | "unknown";

/** What the caller knows beyond the message itself. */
export interface ParseOptions {
  /** The envelope sender (MAIL FROM) the report arrived with: "" or "<>" for the null sender. */
  envelopeFrom?: string;
  /** Which phrase-table entries the classifier may use (all when absent); for cross-validation only. */
  phraseEnabled?: PhraseFilter;
}

export interface BounceReport {
  kind: BounceKind;
  /** One entry per failed recipient; for complaints the complained-about recipient(s). */
  recipients: BounceRecipient[];
  /** ARF feedback type: abuse, fraud, virus, other, not-spam, opt-out, auth-failure ... */
  feedbackType?: string;
  /** Message-ID of the returned original message, if found. */
  originalMessageId?: string;
  /** Envelope sender (Return-Path) of the original, if found: the VERP address for attribution. */
  originalEnvelopeFrom?: string;
  /** Original-Recipient of the first failure, if present. */
  originalRecipient?: string;
  autoReply?: { reason: AutoReplyReason };
}

interface Original {
  headers: HeaderList | undefined;
}

/** Finds the headers of the returned original message: a message/rfc822 part, text/rfc822-headers, or inline text. */
function locateOriginal(parts: MimePart[], reportText: string): Original {
  for (const p of parts) {
    if ((p.contentType === "message/rfc822" || p.contentType === "message/global") && p.parts[0]) {
      return { headers: p.parts[0].headers };
    }
    if (p.contentType === "text/rfc822-headers" || p.contentType === "message/rfc822-headers" || p.contentType === "message/global-headers") {
      return { headers: parseHeaderBlock(splitHeaderBody(p.text.replace(/^\s*\n/, "")).head) };
    }
  }
  const offset = originalMessageOffset(reportText);
  if (offset < reportText.length) {
    const rest = reportText.slice(offset);
    const lines = rest.split("\n");
    // Skip the marker line itself when it is not a header.
    const start = /^[A-Za-z0-9-]+:\s/.test(lines[0] ?? "") ? 0 : 1;
    const block = lines.slice(start).join("\n").replace(/^\s*\n/, "");
    const headers = parseHeaderBlock(splitHeaderBody(block).head);
    if (headers.entries.length > 0) return { headers };
  }
  return { headers: undefined };
}

function messageIdOf(headers: HeaderList | undefined): string | undefined {
  const v = headers?.get("message-id");
  if (!v) return undefined;
  const m = /<([^<>]+)>/.exec(v);
  return (m ? m[1] : v.trim()) || undefined;
}

function envelopeFromOf(headers: HeaderList | undefined): string | undefined {
  const v = headers?.get("return-path");
  if (!v) return undefined;
  return cleanAddress(v, true) || undefined;
}

/** Every part of the report except those inside a returned message (message/rfc822 or message/global). */
function partsOutsideOriginal(root: MimePart): MimePart[] {
  const out: MimePart[] = [];
  const walk = (p: MimePart): void => {
    out.push(p);
    if (p.contentType === "message/rfc822" || p.contentType === "message/global") return;
    for (const c of p.parts) walk(c);
  };
  walk(root);
  return out;
}

/** Text parts outside the returned original, in order, as one string. */
function reportText(root: MimePart): string {
  const out: string[] = [];
  const walk = (p: MimePart, top: boolean): void => {
    if (p.contentType === "message/rfc822" || p.contentType === "message/global") return;
    if (p.parts.length > 0) {
      for (const c of p.parts) walk(c, false);
      return;
    }
    if (p.contentType === "text/plain" || (top && /^(?:text|multipart)\//.test(p.contentType))) out.push(p.text);
    else if (p.contentType === "text/html" && out.length === 0) out.push(htmlToText(p.text));
  };
  walk(root, true);
  if (out.length === 0) {
    for (const p of flattenParts(root)) if (p.contentType === "text/html") out.push(htmlToText(p.text));
  }
  return out.join("\n");
}

/** Longest HTML part turned into text: bounce notices in HTML are a few KiB. */
const MAX_HTML_CHARS = 256 * 1024;

/** Drops <script> and <style> elements with indexOf, not a lazy regex (which is quadratic on unclosed tags). */
function dropScripts(html: string): string {
  const lower = html.toLowerCase();
  let out = "";
  let at = 0;
  for (;;) {
    const s = lower.indexOf("<script", at);
    const t = lower.indexOf("<style", at);
    const start = s < 0 ? t : t < 0 ? s : Math.min(s, t);
    if (start < 0) return out + html.slice(at);
    const close = start === s ? "</script>" : "</style>";
    const end = lower.indexOf(close, start);
    out += html.slice(at, start) + " ";
    if (end < 0) return out;
    at = end + close.length;
  }
}

function htmlToText(html: string): string {
  return dropScripts(html.slice(0, MAX_HTML_CHARS))
    .replace(/<br\s{0,20}\/?>|<\/p>|<\/div>|<\/tr>|<\/li>/gi, "\n")
    .replace(/<[^<>]{0,2000}>/g, " ")
    .replace(/&lt;/g, "<")
    .replace(/&gt;/g, ">")
    .replace(/&quot;/g, '"')
    .replace(/&amp;/g, "&")
    .replace(/&nbsp;/g, " ")
    .replace(/[ \t]+/g, " ");
}

const BOUNCE_BODY = /could not be delivered|couldn'?t be delivered|undeliverable|delivery (?:has )?failed|was not delivered|failed permanently|permanent (?:error|failure|fatal)|unable to deliver|delivery to the following|did not reach the following|returned mail|error delivering|mail delivery failed|rejected by (?:a |the )?(?:remote )?(?:mail )?server|delivery status notification|could not deliver/i;
const BOUNCE_FROM = /mailer-daemon|post_?master|mail delivery|mail administrator|delivery subsystem|mail-daemon|mailerdaemon|daemon@|bounce|mmdf|mail system|mailer@|delivery (status|failure)|\bmail(?:er)? returned\b|nobody@|autoreply@.*\bdocomo|error@|@.*\bmailer\b/i;
const BOUNCE_SUBJECT = /undeliver|undelivered|delivery (status|failure|notification|failed|problem|report|has failed|error|incomplete)|returned mail|failure notice|mail delivery|could not be delivered|couldn'?t be delivered|non[- ]?deliver|not delivered|delivery to the following|rejected|bounce|mail system error|warning: could not send|failed delivery|delivery fail|nondeliverable|unzustellbar|non remis|retour|message not delivered|permanent error|delayed mail|delivery delayed|could not send|mail failure|error sending|returned to sender|unable to deliver|notification d'état|undeliverable/i;

const TEMPORARY_TEXT = /\btemporar(?:y|ily)\b|\bdelayed\b|\bdeferred\b|will (?:be )?retr(?:y|ied)|still (?:be )?trying|try again later|will continue to|not yet been delivered|\bgreylist/i;

interface Candidate {
  address: string;
  status: string;
  replyCode: string;
  diagnostic: string;
  diagnosticType: string;
  command: string;
  action: string;
  remoteMta: string;
  presetReason?: BounceReason | undefined;
}

/** Picks the part of a diagnostic that the remote server said, for `remoteReply`. */
function remoteReplyOf(diagnostic: string): string | undefined {
  const s = squash(diagnostic);
  const m = /(?:said|replied|returned|answered|responded|reply was|error was)\s*:?\s*([245]\d\d[\s-].*)$/i.exec(s) ?? /(?:^|\s)([245]\d\d[\s-][245]?\.?.*)$/.exec(s);
  const v = m ? m[1] : undefined;
  return v ? v.slice(0, 1000) : undefined;
}

/**
 * A mailing-list service that refuses a post (the group does not exist, or the sender may not post)
 * rejects the sender, not a mailbox: Google Groups says so in its own words in many languages.
 */
function groupReason(address: string, text: string): BounceReason | undefined {
  if (/groups\.google\.com\/support/i.test(text)) return "rejected";
  if (/@googlegroups\.com$/.test(address) && !/\b[245]\.\d{1,3}\.\d{1,3}\b|\b[45]\d\d\b/.test(text)) return "rejected";
  return undefined;
}

/**
 * A server that names the recipient next to "user unknown" in the Postfix/IMail style
 * ("<addr>: User unknown", "Unknown user: addr") is answering for that recipient, i.e. at RCPT.
 */
function impliedRecipientStage(address: string, text: string): string {
  if (address === "") return "";
  const a = address.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  const re = new RegExp(`<${a}>:\\s*(?:user unknown|unknown user|recipient address rejected)|^\\s*unknown user:\\s*<?${a}\\b`, "im");
  return re.test(text) ? "RCPT" : "";
}

/**
 * Longest diagnostic text classified for one recipient: a server's reply and the MTA's explanation fit in a few
 * KiB; the bound keeps the phrase tables' work per recipient constant.
 */
const MAX_DIAGNOSTIC_CHARS = 8 * 1024;

/**
 * Most failed recipients read from one report. A report is about one message, and a message of ours has at most
 * MAX_RECIPIENTS (50 by default); the bound stops a crafted report from costing a D1 lookup per listed address.
 */
export const MAX_REPORT_RECIPIENTS = 500;

/**
 * Bytes of a report that are parsed: the human-readable and machine-readable parts come before the returned
 * original (RFC 6522 part order), which is what can be large. The email() handler reads the same prefix.
 */
export const MAX_PARSE_BYTES = 2 * 1024 * 1024;

/** Decides status, reason and hard/soft for one candidate, and turns it into a recipient entry. */
function finishCandidate(c: Candidate, phraseEnabled?: PhraseFilter): BounceRecipient {
  const text = c.diagnostic.length > MAX_DIAGNOSTIC_CHARS ? c.diagnostic.slice(0, MAX_DIAGNOSTIC_CHARS) : c.diagnostic;
  const replyCode = c.replyCode || findReplyCode(text);
  const command = c.command || findCommand(text) || impliedRecipientStage(c.address, text);
  const textStatus = pickStatus(text, c.status ? c.status[0] : replyCode ? replyCode[0] : undefined);
  let status = reconcileStatus(c.status, textStatus, replyCode);
  const reason = classifyFailure({
    status,
    replyCode,
    diagnostic: text,
    command,
    action: c.action,
    diagnosticType: c.diagnosticType,
    presetReason: c.presetReason ?? groupReason(c.address, text),
    phraseEnabled,
  });

  let temporary: boolean;
  if (status !== "") temporary = status.startsWith("4");
  else if (replyCode !== "") temporary = replyCode.startsWith("4");
  else temporary = c.action === "delayed" || (TEMPORARY_TEXT.test(text) && !/permanent/i.test(text));

  if (status === "" || /^\d\.0\.0$/.test(status)) {
    if (status === "" || reasonOfStatus(status) === undefined) {
      // Keep a literal X.0.0 when the report gave one and the reason adds nothing more specific.
      status = status === "" ? fallbackStatus(reason, temporary) : status;
    }
  }
  // A refusal at MAIL FROM is about the sender or the sending host, never proof that the recipient is gone.
  const hard = command !== "MAIL" && isHardBounce(reason, status || replyCode, text);
  const entry: BounceRecipient = { address: c.address, status, reason, hard };
  if (replyCode) entry.replyCode = replyCode;
  const remote = remoteReplyOf(text);
  if (remote) entry.remoteReply = remote;
  if (text.trim()) entry.diagnosticCode = squash(text);
  if (c.action) entry.action = c.action;
  if (c.remoteMta) entry.remoteMta = c.remoteMta;
  if (command) entry.command = command;
  return entry;
}

/**
 * Text of the human-readable report that concerns each address (for DSNs without a Diagnostic-Code), read once
 * per report: reading it per recipient made a report with many recipients quadratic.
 */
function textByAddress(report: string): (address: string) => string {
  let map: Map<string, string> | undefined;
  return (address) => {
    map ??= new Map(parseTextReport(report, new Set()).map((f) => [f.address, f.diagnostic]));
    return map.get(address) ?? "";
  };
}

/** Amazon SES / SNS notifications are JSON in a text body. */
function parseSesNotification(text: string, phraseEnabled: PhraseFilter | undefined): BounceReport | undefined {
  if (!/"notificationType"\s*:/.test(text) && !/"eventType"\s*:/.test(text)) return undefined;
  const joined = text.replace(/!\n ?/g, "").replace(/\n/g, "");
  const start = joined.indexOf("{");
  const end = joined.lastIndexOf("}");
  if (start < 0 || end <= start) return undefined;
  let data: unknown;
  try {
    data = JSON.parse(joined.slice(start, end + 1));
  } catch {
    return undefined;
  }
  if (isRecord(data) && typeof data["Message"] === "string") {
    try {
      data = JSON.parse(data["Message"]);
    } catch {
      return undefined;
    }
  }
  if (!isRecord(data)) return undefined;
  const type = String(data["notificationType"] ?? data["eventType"] ?? "");
  const mail = isRecord(data["mail"]) ? data["mail"] : {};
  const report: BounceReport = { kind: "unknown", recipients: [] };
  if (typeof mail["messageId"] === "string") report.originalMessageId = mail["messageId"];
  if (typeof mail["source"] === "string") report.originalEnvelopeFrom = cleanAddress(mail["source"], true) || undefined;
  if (type === "Complaint") {
    const complaint = isRecord(data["complaint"]) ? data["complaint"] : {};
    report.kind = "complaint";
    report.feedbackType = String(complaint["complaintFeedbackType"] ?? "abuse");
    const list = Array.isArray(complaint["complainedRecipients"]) ? complaint["complainedRecipients"] : [];
    for (const r of list) {
      if (isRecord(r) && typeof r["emailAddress"] === "string") {
        report.recipients.push({ address: cleanAddress(r["emailAddress"]), status: "", reason: "feedback", hard: false });
      }
    }
    return report;
  }
  if (type === "Bounce") {
    const bounce = isRecord(data["bounce"]) ? data["bounce"] : {};
    report.kind = "bounce";
    const list = Array.isArray(bounce["bouncedRecipients"]) ? bounce["bouncedRecipients"] : [];
    const transient = bounce["bounceType"] === "Transient";
    for (const r of list) {
      if (!isRecord(r) || typeof r["emailAddress"] !== "string") continue;
      const diag = typeof r["diagnosticCode"] === "string" ? r["diagnosticCode"] : "";
      const sub = String(bounce["bounceSubType"] ?? "");
      const suppressed = sub === "Suppressed" || sub === "OnAccountSuppressionList";
      const typed = /^\s*([a-z0-9-]+)\s*;\s*([\s\S]*)$/i.exec(diag);
      report.recipients.push(
        finishCandidate({
          address: cleanAddress(r["emailAddress"]),
          status: typeof r["status"] === "string" ? r["status"] : "",
          replyCode: "",
          diagnostic: typed ? (typed[2] ?? "") : diag || sub,
          diagnosticType: typed ? (typed[1] ?? "").toLowerCase() : "",
          command: "",
          action: typeof r["action"] === "string" ? r["action"] : transient ? "delayed" : "failed",
          remoteMta: "",
          presetReason: suppressed ? "suppressed" : undefined,
        }, phraseEnabled),
      );
    }
    return report;
  }
  if (type === "Delivery") {
    const delivery = isRecord(data["delivery"]) ? data["delivery"] : {};
    report.kind = "delivered";
    const list = Array.isArray(delivery["recipients"]) ? delivery["recipients"] : [];
    const smtp = typeof delivery["smtpResponse"] === "string" ? delivery["smtpResponse"] : "";
    for (const r of list) {
      if (typeof r !== "string") continue;
      const st = pickStatus(smtp) || "2.0.0";
      report.recipients.push({ address: cleanAddress(r), status: st, reason: "delivered", hard: false, remoteReply: smtp || undefined });
    }
    return report;
  }
  return undefined;
}

function isRecord(v: unknown): v is Record<string, unknown> {
  return typeof v === "object" && v !== null && !Array.isArray(v);
}

/**
 * Header fields of a returned original where receiving systems record its envelope sender besides Return-Path:
 * Authentication-Results `smtp.mailfrom=` (RFC 8601), Received-SPF `envelope-from=` (RFC 7208 section 9.1), and
 * Received `envelope-from <...>`. A complaint that redacts the recipient (and often the Return-Path) still carries
 * our VERP address in one of them, which names the message and the recipient index.
 */
const ENVELOPE_TRACE_FIELDS = ["return-path", "authentication-results", "arc-authentication-results", "received-spf", "x-original-return-path", "received"];
const MAX_TRACE_FIELDS = 50;

/** A VERP return path of ours quoted anywhere in the original's trace fields, if any. */
function verpInTrace(headers: HeaderList | undefined): string | undefined {
  if (!headers) return undefined;
  for (const name of ENVELOPE_TRACE_FIELDS) {
    for (const value of headers.getAll(name).slice(0, MAX_TRACE_FIELDS)) {
      for (const m of value.slice(0, 4096).matchAll(/(?:smtp\.mailfrom|envelope-from)\s{0,5}[=:]?\s{0,5}<?([^\s<>;"]{1,320}@[^\s<>;"]{1,255})|<([^\s<>]{1,320}@[^\s<>]{1,255})>/gi)) {
        const address = cleanAddress(m[1] ?? m[2] ?? "", true);
        if (address && isReturnPathAddress(address)) return address;
      }
    }
  }
  return undefined;
}

function withOriginal(report: BounceReport, original: Original): BounceReport {
  const id = messageIdOf(original.headers);
  if (id && !report.originalMessageId) report.originalMessageId = id;
  const from = envelopeFromOf(original.headers);
  if (from && !report.originalEnvelopeFrom) report.originalEnvelopeFrom = from;
  // A redacted or rewritten envelope sender: look for our VERP address in the trace fields.
  if (!report.originalEnvelopeFrom || !isReturnPathAddress(report.originalEnvelopeFrom)) {
    const verp = verpInTrace(original.headers);
    if (verp) report.originalEnvelopeFrom = verp;
  }
  return report;
}

/** Addresses in an address header (To, Cc) of the original. */
function headerAddresses(headers: HeaderList | undefined, name: string): string[] {
  if (!headers) return [];
  return headers.getAll(name).flatMap((v) => findAddresses(decodeEncodedWords(v)));
}

/** Parses one returned message into a bounce, complaint, auto-reply or delivery report. */
export function parseBounce(raw: string | Uint8Array, options: ParseOptions = {}): BounceReport {
  const root = parseMime(raw.length > MAX_PARSE_BYTES ? raw.slice(0, MAX_PARSE_BYTES) : raw);
  const parts = flattenParts(root);
  const text = reportText(root);
  const original = locateOriginal(parts, text);
  const top = root.headers;

  const ses = parseSesNotification(text, options.phraseEnabled);
  if (ses) return withOriginal(ses, original);

  // ARF complaint (RFC 5965)
  const feedback = parts.find((p) => p.contentType === "message/feedback-report");
  if (feedback) {
    const fields = parseFeedbackReport(feedback.text);
    let rcpts = fields.recipients;
    if (rcpts.length === 0) rcpts = headerAddresses(original.headers, "to");
    const report: BounceReport = {
      kind: "complaint",
      feedbackType: fields.feedbackType,
      recipients: rcpts.map((address) => ({ address, status: "", reason: "feedback", hard: false })),
    };
    if (fields.originalMailFrom) report.originalEnvelopeFrom = fields.originalMailFrom;
    return withOriginal(report, original);
  }

  // Microsoft JMRP / Outlook.com complaint: the complained-about message forwarded with this header.
  const jmrpRecipient = original.headers?.get("x-hmxmroriginalrecipient");
  if (jmrpRecipient) {
    const address = cleanAddress(jmrpRecipient);
    return withOriginal(
      { kind: "complaint", feedbackType: "abuse", recipients: address ? [{ address, status: "", reason: "feedback", hard: false }] : [] },
      original,
    );
  }

  const excluded = new Set<string>();
  for (const name of ["from", "to", "reply-to", "sender", "return-path"]) {
    for (const a of findAddresses(top.get(name) ?? "")) excluded.add(a);
  }
  for (const name of ["from", "sender", "return-path", "reply-to"]) {
    for (const a of headerAddresses(original.headers, name)) excluded.add(a);
  }

  // RFC 3464 delivery status notification
  // The report's own parts first: a DSN inside the returned original (a bounce of a bounce) is about someone
  // else. Some gateways forward the whole DSN as an attached message; theirs is read when the report has none.
  const isDsn = (p: MimePart): boolean => /^message\/(?:global-)?delivery-status$/.test(p.contentType);
  const ownDsn = partsOutsideOriginal(root).filter(isDsn);
  const dsnTexts = (ownDsn.length > 0 ? ownDsn : parts.filter(isDsn)).map((p) => p.text);
  if (dsnTexts.length === 0) {
    const beforeOriginal = text.slice(0, originalMessageOffset(text));
    const at = inlineDeliveryStatusOffset(beforeOriginal);
    if (at >= 0) dsnTexts.push(beforeOriginal.slice(at));
  }
  const dsnRecipients: Array<{ fields: DsnRecipientFields }> = [];
  let envelopeSender = "";
  for (const dsnText of dsnTexts) {
    const dsn = parseDeliveryStatus(dsnText);
    if (dsn.envelopeSender) envelopeSender = dsn.envelopeSender;
    for (const r of dsn.recipients) if (dsnRecipients.length < MAX_REPORT_RECIPIENTS) dsnRecipients.push({ fields: r });
  }
  if (dsnRecipients.length > 0) {
    const failed = dsnRecipients.filter((r) => !/^(delivered|relayed|expanded)$/.test(r.fields.action) && !r.fields.status.startsWith("2."));
    const delivered = failed.length === 0;
    const chosen = delivered ? dsnRecipients : failed;
    // RFC 3464 section 2.3.3: "delayed" means the reporting MTA has not given up; a report with no other
    // failures is a warning. Some MTAs write a wrong Action but say it in words (the warning banner).
    const onlyDelayed = !delivered && failed.every((r) => r.fields.action === "delayed" || (r.fields.action === "" && r.fields.status.startsWith("4.")));
    const warning = onlyDelayed || (!delivered && isDelayWarning(decodeEncodedWords(top.get("subject") ?? ""), text.slice(0, originalMessageOffset(text))) && failed.every((r) => r.fields.action !== "failed" || !r.fields.status.startsWith("5.")));
    const report: BounceReport = { kind: delivered ? "delivered" : warning ? "delayed" : "bounce", recipients: [] };
    const seen = new Set<string>();
    const textAround = textByAddress(text);
    for (const { fields } of chosen) {
      const address = fields.finalRecipient || fields.originalRecipient;
      if (seen.has(address)) continue;
      seen.add(address);
      let diagnostic = fields.diagnosticCode;
      const around = textAround(address) || (fields.originalRecipient ? textAround(fields.originalRecipient) : "");
      const command = findCommand(diagnostic) || findCommand(around);
      if (squash(diagnostic) === "" || (!/[a-z]{3}/i.test(diagnostic) && around)) diagnostic = [diagnostic, around].filter(Boolean).join(" ");
      else if (!/\d{3}|\d\.\d/.test(diagnostic) && around) diagnostic = `${diagnostic} ${around}`;
      if (delivered) {
        report.recipients.push({ address, status: fields.status || "2.0.0", reason: "delivered", hard: false, action: fields.action || "delivered" });
        continue;
      }
      report.recipients.push(
        finishCandidate({
          address,
          status: fields.status,
          replyCode: "",
          diagnostic,
          diagnosticType: fields.diagnosticType,
          command,
          action: fields.action,
          remoteMta: fields.remoteMta,
        }, options.phraseEnabled),
      );
      if (fields.originalRecipient && !report.originalRecipient) report.originalRecipient = fields.originalRecipient;
    }
    if (warning) markDelayed(report);
    if (envelopeSender) report.originalEnvelopeFrom = envelopeSender;
    return withOriginal(report, original);
  }

  // Non-standard text bounce
  const from = decodeEncodedWords(top.get("from") ?? "");
  const subject = decodeEncodedWords(top.get("subject") ?? "");
  const autoReply = isAutoReply(headerSource(top));
  const cut = text.slice(0, originalMessageOffset(text));
  const fromSystem = BOUNCE_FROM.test(from) || BOUNCE_SUBJECT.test(subject);
  const looksLikeBounce =
    fromSystem ||
    top.has("x-failed-recipients") ||
    BOUNCE_BODY.test(text.slice(0, originalMessageOffset(text))) ||
    (autoReply?.reason !== "vacation" && autoReply?.reason !== "auto-replied" && /\b[45]\.\d{1,3}\.\d{1,3}\b|\b5[0-5]\d[ -]/.test(cut));

  // A responder that answers from the null sender that the address is dead is a bounce in auto-reply clothing
  // (qmail-style "not a valid user here", forwarders' "this address is no longer in use").
  const nullSender = isNullSender(options.envelopeFrom) || isNullSender(top.get("return-path") ?? undefined);
  const deadAddress = autoReply !== undefined && !fromSystem && !top.has("x-failed-recipients") && DEAD_ADDRESS.test(squash(cut.slice(0, 8192))) && (nullSender || autoReply.reason !== "vacation");
  if (autoReply && !deadAddress && (autoReply.reason === "vacation" || (autoReply.reason === "auto-replied" && !fromSystem) || !looksLikeBounce)) {
    const address = findAddresses(from)[0] ?? "";
    return withOriginal({ kind: "auto-reply", autoReply, recipients: address ? [{ address, status: "", reason: "vacation", hard: false }] : [] }, original);
  }
  if (!looksLikeBounce && !deadAddress) return withOriginal({ kind: "unknown", recipients: [] }, original);
  const warning = !deadAddress && !top.has("x-failed-recipients") && isDelayWarning(subject, cut);

  let failures = parseTextReport(cut, excluded);
  const failedHeader = findAddresses(top.getAll("x-failed-recipients").join(",")).slice(0, MAX_REPORT_RECIPIENTS);
  if (failedHeader.length > 0) {
    const known = new Map(failures.map((f) => [f.address, f.diagnostic]));
    failures = failedHeader.map((address) => ({ address, diagnostic: known.get(address) ?? "" }));
  }
  if (failures.length === 0) {
    // The failed recipient may be the bounce's own To (mail someone sent to themselves, or a return path that is
    // the recipient's alias): read the recipient lines again excluding only the reporting system and the From.
    const reporters = new Set(findAddresses(top.get("from") ?? ""));
    failures = parseTextReport(cut, reporters).filter((f) => !isSystemAddress(f.address));
  }
  if (failures.length === 0) {
    const fallback = [...headerAddresses(original.headers, "to"), ...findAddresses(cut)].find((a) => !excluded.has(a) && !isSystemAddress(a));
    if (fallback) failures = [{ address: fallback, diagnostic: cut }];
  }
  if (deadAddress && failures.length === 0) {
    const address = findAddresses(from)[0];
    if (address) failures = [{ address, diagnostic: cut }];
  }
  const report: BounceReport = { kind: warning ? "delayed" : "bounce", recipients: [] };
  for (const f of failures) {
    const diagnostic = squash(f.diagnostic) === "" || !/[a-z]{4}/i.test(f.diagnostic) ? `${f.diagnostic}\n${cut}` : f.diagnostic;
    report.recipients.push(
      finishCandidate({
        address: f.address,
        status: "",
        replyCode: "",
        diagnostic,
        diagnosticType: "",
        command: "",
        action: warning ? "delayed" : "",
        remoteMta: "",
        presetReason: undefined,
      }, options.phraseEnabled),
    );
  }
  if (warning) markDelayed(report);
  if (deadAddress) markDeadAddress(report);
  return withOriginal(report, original);
}

/** A responder's "no such user": the phrase is the whole diagnosis, whatever stage words the text lacks. */
function markDeadAddress(report: BounceReport): void {
  for (const r of report.recipients) {
    if (r.status === "" || /^5\.0\.9\d\d$/.test(r.status)) r.status = fallbackStatus("userunknown", false);
    if (r.status.startsWith("5")) {
      r.reason = "userunknown";
      r.hard = true;
    }
  }
}

/** Phrases of a responder saying the address does not exist (RFC 3834 responders that act as bounces). */
const DEAD_ADDRESS =
  /not a valid (?:user|mailbox|recipient|address)|no such (?:user|mailbox|address)|user unknown|unknown user|(?:address|mailbox|account) (?:does not|doesn'?t) exist|(?:address|mailbox|account) (?:is )?no longer (?:valid|active|in use|exists?)|no longer (?:accepts|receives) (?:e-?mail|mail)|is not monitored and will be deleted|has been (?:closed|deleted|deactivated)/i;

function isNullSender(value: string | undefined): boolean {
  if (value === undefined) return false;
  return /^\s*<?\s*>?\s*$/.test(value);
}

/** A warning's recipients: action delayed, never hard, temporary unless the notice quotes a permanent code. */
function markDelayed(report: BounceReport): void {
  report.kind = "delayed";
  for (const r of report.recipients) {
    r.action = "delayed";
    r.hard = false;
  }
}
