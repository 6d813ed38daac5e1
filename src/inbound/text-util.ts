/**
 * Small text helpers shared by the bounce parsers: addresses, status codes, reply codes and the
 * SMTP command a failure happened at. Pure: no Workers imports.
 */

/**
 * An address in running text. Linear in the text: a match may only start where the previous character cannot be
 * part of a local part (so a run of a million letters is tried once, not a million times), and every repetition is
 * bounded by RFC 5321's limits (local part 64 octets, label 63, domain 255). The unbounded form of this pattern took
 * 3.8 s on one 64 KiB line.
 */
const ADDRESS_RE =
  /(?<![A-Za-z0-9!#$%&'*+/=?^_`{|}~.-])[A-Za-z0-9!#$%&'*+/=?^_`{|}~.-]{1,64}@[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?){1,126}(?![A-Za-z0-9-]|\.[A-Za-z0-9])/g;

/** Longest value `cleanAddress` looks at: an address with a display name and a comment fits well within it. */
const MAX_ADDRESS_VALUE_CHARS = 1024;

/** Every email address in a text, lower-cased, in order of appearance, without duplicates. */
export function findAddresses(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(ADDRESS_RE)) {
    const a = cleanAddress(m[0]);
    if (a && !out.includes(a)) out.push(a);
  }
  return out;
}

/**
 * Normalises one address: strips brackets, quotes, `rfc822;` prefixes and trailing punctuation, and
 * lower-cases it unless `keepCase` (VERP return paths may carry case-sensitive tokens).
 */
export function cleanAddress(value: string, keepCase = false): string {
  let v = value.trim();
  if (v.length > MAX_ADDRESS_VALUE_CHARS) return "";
  const typed = /^(?:rfc822|utf-8|x-[a-z0-9-]+)\s*;\s*(.*)$/i.exec(v);
  if (typed) v = typed[1] ?? "";
  const angle = /<([^<>]*@[^<>]*)>/.exec(v);
  if (angle) v = angle[1] ?? "";
  v = v.replace(/^["'(<\s]+|[>"'),;:.\s\]]+$/g, "");
  v = v.replace(/^mailto:/i, "");
  if (!/^[^@\s]+@[^@\s]+\.[^@\s]+$/.test(v)) return "";
  return keepCase ? v : v.toLowerCase();
}

/** Addresses that belong to mail systems, never to a failed recipient. */
export function isSystemAddress(address: string): boolean {
  return /^(mailer-daemon|postmaster|mail-daemon|mailerdaemon|no-?reply|bounce[s]?|daemon|root)@/i.test(address);
}

const STATUS_RE = /(?<![\d.#])(?:#\s?)?([245])\.(\d{1,3})\.(\d{1,3})(?![\d]|\.\d)/g;

/** All enhanced status codes (RFC 3463) in a text, in order. */
export function findStatusCodes(text: string): string[] {
  const out: string[] = [];
  for (const m of text.matchAll(STATUS_RE)) out.push(`${m[1]}.${m[2]}.${m[3]}`);
  return out;
}

/**
 * The most informative status code in a text: the first specific one (not X.0.0), else the first.
 * `preferClass` (4 or 5) keeps codes of the same class when given.
 */
export function pickStatus(text: string, preferClass?: string): string {
  // A code right after a reply code ("550 5.1.1", "550-'5.7.1") is what the server said. When a reply
  // quotes another ("554 4.4.7 expired <421 4.4.2 timed out>"), the innermost (last) one is the cause.
  let quoted = "";
  for (const m of text.matchAll(/(?<!\d)(?<!\d\.)[45]\d\d[ -]['"]?([45]\.\d{1,3}\.\d{1,3})(?![\d]|\.\d)/g)) {
    const code = m[1] ?? "";
    if (!/^\d\.0\.0$/.test(code) && (!preferClass || code.startsWith(preferClass))) quoted = code;
  }
  if (quoted) return quoted;
  let codes = findStatusCodes(text);
  // Success codes in a transcript ("250 2.1.5 Ok") say nothing about the failure.
  if (codes.some((c) => c[0] !== "2")) codes = codes.filter((c) => c[0] !== "2");
  if (preferClass) {
    const same = codes.filter((c) => c.startsWith(preferClass));
    if (same.length > 0) codes = same;
  }
  const specific = codes.find((c) => !/^\d\.0\.0$/.test(c));
  return specific ?? codes[0] ?? "";
}

/** The first failure reply code (4xx/5xx) a server said in a text. */
export function findReplyCode(text: string): string {
  const m = /(?:^|[\s:(\[<"'#])([45][0-5]\d)(?=[\s-](?!\d+\.\d+\.\d+\.\d)|$|[.:,)\]])/m.exec(text);
  if (!m) return "";
  return m[1] ?? "";
}

/** The SMTP command a failure answered, when the text says so. */
export function findCommand(text: string): string {
  const t = text.replace(/\s+/g, " ");
  const patterns: Array<[RegExp, string]> = [
    [/\b(?:in reply to|after|response to|for|in response to|after the|during)\s+(?:the\s+)?(?:end of\s+)?(?:data|message body)\b/i, "DATA"],
    [/\bsmtp:\s?(?:rcpt|rcpt to)\b/i, "RCPT"],
    [/\bsmtp:\s?mail\b/i, "MAIL"],
    [/\bsmtp:\s?data\b/i, "DATA"],
    [/\bdid not like our rcpt to\b/i, "RCPT"],
    [/\bdid not like our mail from\b/i, "MAIL"],
    [/\bsmtp command:? ?data\b/i, "DATA"],
    [/\bsmtp command:? ?rcpt\b/i, "RCPT"],
    [/\bsmtp command:? ?mail\b/i, "MAIL"],
    [/\bend of data\b|\bafter data\b|\bdata command\b|\bdata response\b|\(in reply to end of data command\)/i, "DATA"],
    [/\b(?:in reply to|after|response to|for|in response to)\s+(?:the\s+)?rcpt\b|\brcpt to\b|\bRCPT_TO\b|\brcpt command\b/i, "RCPT"],
    [/\b(?:in reply to|after|response to|for|in response to)\s+(?:the\s+)?mail\b|\bmail from\b|\bMAIL_FROM\b/i, "MAIL"],
    [/\b(?:in reply to|after|response to)\s+(?:the\s+)?(?:e?hlo)\b|\bhelo command\b|\behlo command\b/i, "EHLO"],
    [/\bstarttls\b/i, "STARTTLS"],
    [/\binitial connection\b|\bgreeting\b|\bbanner\b|\bconnect(?:ion)? to\b.{0,60}\b(?:refused|failed)\b/i, "CONN"],
  ];
  let best: { index: number; cmd: string } | undefined;
  for (const [re, cmd] of patterns) {
    const m = re.exec(t);
    if (m && (best === undefined || m.index < best.index)) best = { index: m.index, cmd };
  }
  return best?.cmd ?? "";
}

/** Collapses whitespace and trims. */
export function squash(text: string): string {
  return text.replace(/\s+/g, " ").trim();
}

/**
 * Chooses between the Status field of a report and the code quoted in its diagnostic text:
 * the more specific one, the one whose class agrees with the reply code, and never a code that
 * RFC 3463 leaves vague (X.0.0, 4.4.7, 4.7.0, 5.3.x, X.5.x) when the server said something sharper.
 */
export function reconcileStatus(field: string, quoted: string, replyCode: string): string {
  if (field === "") return quoted;
  if (quoted === "" || quoted === field) return field;
  const reply = replyCode.charAt(0);
  if (reply !== "" && field[0] !== quoted[0]) {
    if (reply === field[0]) return field;
    if (reply === quoted[0]) return quoted;
  }
  if (field[0] !== quoted[0]) return field;
  const generic = (c: string): boolean => /^\d\.0\.0$/.test(c);
  if (generic(field)) return quoted;
  if (generic(quoted)) return field;
  if (/\.0(\.|$)/.test(field) && !/\.0(\.|$)/.test(quoted)) return quoted;
  if (field === "4.4.7" || field === "4.7.0" || /^5\.3\./.test(field) || /^\d\.5\.[1245]$/.test(field)) return quoted;
  if (field === "5.1.1") return /\.0(\.|$)/.test(quoted) || quoted.startsWith("5.5.") ? field : quoted;
  if (field === "5.1.3" && quoted.startsWith("5.7.")) return quoted;
  return field;
}
