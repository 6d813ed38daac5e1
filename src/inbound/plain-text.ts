/**
 * Reads the human-readable text of bounces that carry no RFC 3464 delivery-status part: the formats of
 * qmail ("<addr>:" blocks), Exim ("The following address(es) failed:" with indented details), Sendmail
 * and its descendants ("<addr>... reason" plus a session transcript), Courier, Domino, Exchange 2003,
 * Gmail, Yahoo, the Japanese carriers and the many appliances that print "addr [reason]" or
 * "Recipient: addr" lines. It finds recipient lines and keeps the text that follows each one as its
 * diagnostic. Pure: no Workers imports.
 */
import { cleanAddress } from "./text-util";

export interface TextFailure {
  address: string;
  diagnostic: string;
}

/** An address; every repetition bounded (RFC 5321 lengths) so that no pattern built from it is quadratic. */
const ADDR = String.raw`[A-Za-z0-9!#$%&'*+/=?^_\`{|}~.-]{1,64}@[A-Za-z0-9.-]{1,253}\.[A-Za-z0-9-]{1,63}`;
/** Longest line kept in a recipient's diagnostic, and most recipients one report may name (a report about one message). */
const MAX_DIAGNOSTIC_LINE_CHARS = 1000;
export const MAX_TEXT_RECIPIENTS = 500;

/** Lines that begin the returned copy of the original message: the report ends there. */
const ORIGINAL_MARKERS: RegExp[] = [
  /^\s*-{2,}.{0,10}(?:below this line is a copy of the message|this is a copy of (?:the|your) message|original message|returned mail follows|unsent message|message header follows|headers? of the original message|undelivered message|original mail|returned message|the header of original message|original headers?|copy of the (?:original )?message)/i,
  /^\s*(?:-+ ?)?(?:original message|the original message|your original message|unsent message|message headers?)(?: headers?)?(?: follows| is attached| was)?:?(?: ?-+)?\s*$/i,
  /^\s*content-type:\s*(?:message\/rfc822|text\/rfc822-headers)/i,
  /^\s*-{2,}\s*(?:the )?(?:header|headers) of your message/i,
  /^\s*(?:return-path|received|dkim-signature|x-received|delivered-to):\s?\S/i,
];

/** Position in the text where the returned original message starts (text length if none). */
export function originalMessageOffset(text: string): number {
  const lines = text.split("\n");
  let offset = 0;
  let seenContent = false;
  for (const line of lines) {
    if (seenContent && ORIGINAL_MARKERS.some((re) => re.test(line))) return offset;
    if (line.trim() !== "") seenContent = true;
    offset += line.length + 1;
  }
  return text.length;
}

interface RecipientLine {
  address: string;
  rest: string;
  /** Weak lines ("To: addr") only count when no stronger recipient line exists. */
  weak: boolean;
  /** The line says all there is; following lines belong to someone else. */
  closed: boolean;
}

const RECIPIENT_LINE_PATTERNS: Array<{ re: RegExp; weak: boolean; keepLine: boolean; closed?: boolean }> = [
  // "<addr>:" alone (qmail, Yahoo), "addr" alone (Exim, Gmail), "* addr" / "-- addr" bullets
  { re: new RegExp(String.raw`^\s*(?:[*\u2022-]+\s*)?["<]?(${ADDR})[">]?\s*:?\s*$`), weak: false, keepLine: false },
  // "554 <addr>... reason" (Sendmail V5 and others: one self-contained line per recipient)
  { re: new RegExp(String.raw`^\s*[45]\d\d[ -]<(${ADDR})>\.\.\.\s*(.*)$`), weak: false, keepLine: true, closed: true },
  // "<addr>... reason" (Sendmail), "<addr>: reason" (qmail), "<addr>, reason"
  { re: new RegExp(String.raw`^\s*<(${ADDR})>\s*(?:\.\.\.|:|,|-)?\s*(.*)$`), weak: false, keepLine: false },
  // "addr... reason", "addr: reason", "addr - reason"
  { re: new RegExp(String.raw`^\s*(${ADDR})\s*(?:\.\.\.|:\s|\s-\s|,\s)\s*(.*)$`), weak: false, keepLine: false },
  // "addr on <date>" (Exchange 2003)
  { re: new RegExp(String.raw`^\s*<?(${ADDR})>?\s+on\s+\S.*$`), weak: false, keepLine: false },
  // "addr [reason]" or "addr (reason)"
  { re: new RegExp(String.raw`^\s*<?(${ADDR})>?\s+([\[(].*)$`), weak: false, keepLine: false },
  // "Recipient: addr", "Failed address: <addr>", "RCPT TO: addr", "Unknown user: addr", "Could not be delivered to: <addr>"
  {
    re: new RegExp(
      String.raw`^\s*(?:[-*>]\s*)?(?:[A-Za-z'-]+ ){0,5}(?:recipients?|rcpt(?: to)?|address(?:es)?|addressee|e-?mail(?: address)?|destinataire|user|mailbox|delivered to|delivery to|sent to)(?:\(es\)|\(s\))?\s*[:=]\s*<?(${ADDR})>?(.*)$`,
      "i",
    ),
    weak: false,
    keepLine: true,
  },
  // A sentence that ends naming the recipient: "There was an error delivering your mail to <addr>."
  {
    re: new RegExp(String.raw`^.*\b(?:to|for|recipient)\s*:?\s*<(${ADDR})>\s*[.:]?\s*$`, "i"),
    weak: false,
    keepLine: true,
  },
  // A transcript line "In: RCPT TO:<addr> ORCPT=..." or ">>> RCPT To:<addr>"
  { re: new RegExp(String.raw`^.*\brcpt to:\s*<?(${ADDR})>?(.*)$`, "i"), weak: false, keepLine: true },
  // "To: addr" (a summary of the original message; weak)
  { re: new RegExp(String.raw`^\s*to\s*:\s*(?:[^<>@]*<)?(${ADDR})>?(.*)$`, "i"), weak: true, keepLine: false },
  // "addr some text" (Zoho and other appliances)
  { re: new RegExp(String.raw`^\s*<?(${ADDR})>?\s+(\S.*)$`), weak: false, keepLine: false },
];

/** Longer lines are prose or encoded data, never a recipient line; skipping them bounds regex work. */
const MAX_RECIPIENT_LINE_CHARS = 600;

function recipientLine(line: string): RecipientLine | undefined {
  if (line.length > MAX_RECIPIENT_LINE_CHARS) return undefined;
  for (const { re, weak, keepLine, closed } of RECIPIENT_LINE_PATTERNS) {
    const m = re.exec(line);
    if (m) {
      const address = cleanAddress(m[1] ?? "");
      if (address) return { address, rest: keepLine ? line.trim() : (m[2] ?? "").trim(), weak, closed: closed === true };
    }
  }
  return undefined;
}

/** Inline phrases naming a failed recipient inside a sentence. */
const INLINE_RECIPIENT = new RegExp(
  String.raw`(?:deliver(?:y|ing)?(?: of (?:your|the) message)? to|sent to|message to|mail to|addressed to|recipient|for|to)\s+(?:the (?:following )?(?:address|recipient)\s+)?["'<]?(${ADDR})[>"']?`,
  "gi",
);

/**
 * Finds failed recipients and their diagnostic text in a bounce's human-readable report.
 * `exclude` holds addresses known not to be recipients (the sender, the reporting system).
 */
export function parseTextReport(report: string, exclude: Set<string>): TextFailure[] {
  const lines = report.split("\n");
  const found = new Map<string, string[]>();
  const weakOnly = new Set<string>();
  let current: string[] | null = null;
  let blankRun = 0;
  for (const line of lines) {
    const hit = recipientLine(line);
    if (hit && !exclude.has(hit.address) && (found.has(hit.address) || found.size < MAX_TEXT_RECIPIENTS)) {
      if (hit.weak && !found.has(hit.address)) weakOnly.add(hit.address);
      if (!hit.weak) weakOnly.delete(hit.address);
      const block = found.get(hit.address) ?? [];
      found.set(hit.address, block);
      if (hit.rest) block.push(hit.rest);
      current = hit.closed ? null : block;
      blankRun = 0;
      continue;
    }
    if (current === null) continue;
    if (line.trim() === "") {
      blankRun++;
      if (blankRun >= 3) current = null;
      continue;
    }
    blankRun = 0;
    if (current.length < 40) current.push(line.trim().slice(0, MAX_DIAGNOSTIC_LINE_CHARS));
  }

  if (weakOnly.size < found.size) for (const a of weakOnly) found.delete(a);
  if (found.size === 0) {
    for (const m of report.matchAll(INLINE_RECIPIENT)) {
      const a = cleanAddress(m[1] ?? "");
      if (a && !exclude.has(a) && !found.has(a) && found.size < MAX_TEXT_RECIPIENTS) found.set(a, []);
    }
  }
  const out: TextFailure[] = [];
  for (const [address, block] of found) out.push({ address, diagnostic: block.join("\n") });
  return out;
}

/** Where an RFC 3464 field block printed as plain text starts (some servers inline the report), or -1. */
export function inlineDeliveryStatusOffset(text: string): number {
  const m = /^(?:reporting-mta|original-envelope-id|final-recipient|original-recipient)\s*:/im.exec(text);
  if (!m) return -1;
  return /^final-recipient\s*:/im.test(text.slice(m.index)) ? m.index : -1;
}
