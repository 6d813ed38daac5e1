/**
 * Mailbox parsing and formatting for the send API.
 *
 * Accepts `user@example.com`, `Display Name <user@example.com>`, `"Quoted, Name" <user@example.com>`
 * or `{ name?, address }`, and checks the address against RFC 5321 (lengths, domain labels)
 * and RFC 5322 / RFC 6531 (dot-atom or quoted local part, UTF-8 allowed). Anything that
 * could smuggle a second header or recipient — CR, LF, NUL, other control characters,
 * stray angle brackets, several `@`, commas between addresses — is refused.
 *
 * Address literals (`user@[192.0.2.1]`) and single-label domains (`user@localhost`) are
 * refused: a relay on the public Internet has no business sending to them.
 */
import { encodeWords, hasLoneSurrogate, isAscii, utf8Length } from "./encoding.js";

/** RFC 5321 §4.5.3.1.1: local part at most 64 octets. */
export const MAX_LOCAL_PART_OCTETS = 64;
/** RFC 5321 §4.5.3.1.2: domain at most 255 octets. */
export const MAX_DOMAIN_OCTETS = 255;
/** RFC 1035 §2.3.4: a DNS label is at most 63 octets. */
export const MAX_LABEL_OCTETS = 63;
/** RFC 5321 §4.5.3.1.3: a path (<local@domain>) is at most 256 octets including the brackets. */
export const MAX_ADDRESS_OCTETS = 254;
/** Display names longer than this are refused; no client shows more and long names are a spam signal. */
export const MAX_DISPLAY_NAME_CHARS = 256;

export type AddressInput = string | { name?: string | undefined; address: string };

export interface Mailbox {
  /** Display name, decoded (never encoded words). */
  name?: string;
  /** The address as given, with the domain lower-cased. */
  address: string;
  /** The domain part, lower-cased, in Unicode form when it was given in Unicode. */
  domain: string;
  /**
   * The domain in ASCII (A-label) form for DNS and for SMTP without SMTPUTF8. Compare this,
   * not `domain`, when checking a sender domain: two Unicode spellings can share an A-label.
   */
  asciiDomain: string;
  /**
   * True when the local part is not ASCII, so the message needs SMTPUTF8 (RFC 6531).
   * An internationalised domain alone does not set it: it is written as its A-label.
   */
  utf8: boolean;
}

export type AddressErrorReason =
  | "empty"
  | "not_a_string"
  | "control_character"
  | "invalid_utf8"
  | "syntax"
  | "missing_at"
  | "multiple_at"
  | "local_part_too_long"
  | "local_part_syntax"
  | "domain_too_long"
  | "domain_syntax"
  | "label_too_long"
  | "address_literal"
  | "display_name";

export interface AddressError {
  reason: AddressErrorReason;
  message: string;
}

export type ParseAddressResult = { ok: true; value: Mailbox } | { ok: false; error: AddressError };

function fail(reason: AddressErrorReason, message: string): ParseAddressResult {
  return { ok: false, error: { reason, message } };
}

// C0 controls, DEL and C1 controls; U+2028/2029 line/paragraph separators also count as line breaks.
// eslint-disable-next-line no-control-regex
const CONTROL = /[\x00-\x1f\x7f-\x9f\u2028\u2029]/;
// Invisible and formatting characters (soft hyphen, zero-width space, bidi overrides), Unicode
// spaces and private-use/unpaired code points: legal UTF-8, but in an address they only serve
// to make two different addresses look alike.
const INVISIBLE = /[\p{Cf}\p{Z}\p{Co}\p{Cs}]/u;
// Bidi embedding/override/isolate controls reorder what a reader sees in a display name.
const BIDI_CONTROL = /[\u202a-\u202e\u2066-\u2069]/;
// RFC 5322 atext plus RFC 6531 UTF8-non-ascii.
const ATEXT = /^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10ffff}]+$/u;

/** Parse and validate one mailbox. Never throws. */
export function parseAddress(input: AddressInput): ParseAddressResult {
  let name: string | undefined;
  let address: string;
  if (typeof input === "string") {
    const split = splitNameAddr(input);
    if (!split.ok) return split;
    name = split.name;
    address = split.address;
  } else if (typeof input === "object" && input !== null && typeof input.address === "string") {
    if (input.name !== undefined && typeof input.name !== "string") return fail("display_name", "name must be a string");
    name = input.name;
    address = input.address;
  } else {
    return fail("not_a_string", "address must be a string or { name, address }");
  }
  if (name !== undefined) {
    const nameError = checkDisplayName(name);
    if (nameError) return nameError;
    name = name.trim();
    if (name === "") name = undefined;
  }
  const parsed = parseAddrSpec(address);
  if (!parsed.ok) return parsed;
  if (name !== undefined) parsed.value.name = name;
  return parsed;
}

function checkDisplayName(name: string): ParseAddressResult | null {
  if (hasLoneSurrogate(name)) return fail("invalid_utf8", "display name is not valid UTF-8");
  if (CONTROL.test(name)) return fail("control_character", "display name contains a control character or line break");
  if (BIDI_CONTROL.test(name)) return fail("display_name", "display name contains a bidirectional override character");
  if ([...name].length > MAX_DISPLAY_NAME_CHARS) return fail("display_name", `display name is longer than ${MAX_DISPLAY_NAME_CHARS} characters`);
  return null;
}

type SplitResult = { ok: true; name?: string; address: string } | { ok: false; error: AddressError };

/** Split `Name <addr>` / `"Name" <addr>` / `addr`. Only one mailbox is allowed. */
function splitNameAddr(input: string): SplitResult {
  if (hasLoneSurrogate(input)) return { ok: false, error: { reason: "invalid_utf8", message: "address is not valid UTF-8" } };
  if (CONTROL.test(input)) return { ok: false, error: { reason: "control_character", message: "address contains a control character or line break" } };
  const trimmed = input.trim();
  if (trimmed === "") return { ok: false, error: { reason: "empty", message: "address is empty" } };
  if (!trimmed.endsWith(">")) return { ok: true, address: trimmed };
  const open = trimmed.lastIndexOf("<");
  if (open < 0) return { ok: false, error: { reason: "syntax", message: "unbalanced angle brackets" } };
  const address = trimmed.slice(open + 1, -1);
  let name = trimmed.slice(0, open).trim();
  if (name.startsWith('"')) {
    if (name.length < 2 || !name.endsWith('"')) return { ok: false, error: { reason: "display_name", message: "unterminated quoted display name" } };
    const inner = name.slice(1, -1);
    // Inside quotes only escaped quotes and backslashes are allowed.
    if (/(^|[^\\])(\\\\)*"/.test(inner)) return { ok: false, error: { reason: "display_name", message: "unescaped quote in display name" } };
    name = inner.replace(/\\(.)/g, "$1");
  } else if (/[<>"@,;:\\[\]]/.test(name)) {
    // An unquoted phrase with specials usually means two addresses or a forged name.
    return { ok: false, error: { reason: "display_name", message: "display name with special characters must be quoted" } };
  }
  return name === "" ? { ok: true, address } : { ok: true, name, address };
}

function parseAddrSpec(raw: string): ParseAddressResult {
  if (hasLoneSurrogate(raw)) return fail("invalid_utf8", "address is not valid UTF-8");
  if (CONTROL.test(raw)) return fail("control_character", "address contains a control character or line break");
  const address = raw.trim();
  if (address === "") return fail("empty", "address is empty");
  if (/[<>]/.test(address)) return fail("syntax", "address contains angle brackets");
  if (/\s/u.test(address) && !address.startsWith('"')) return fail("syntax", "address contains whitespace");
  if (INVISIBLE.test(address.replace(/ /g, ""))) return fail("syntax", "address contains an invisible or formatting character");
  const at = address.lastIndexOf("@");
  if (at < 0) return fail("missing_at", "address has no @");
  const local = address.slice(0, at);
  const domainRaw = address.slice(at + 1);
  if (local === "") return fail("local_part_syntax", "local part is empty");

  const localError = checkLocalPart(local);
  if (localError) return localError;

  if (domainRaw.startsWith("[")) return fail("address_literal", "address literals are not accepted");
  const domain = checkDomain(domainRaw);
  if (!domain.ok) return domain;

  if (utf8Length(local) + 1 + domain.ascii.length > MAX_ADDRESS_OCTETS) return fail("domain_too_long", `address is longer than ${MAX_ADDRESS_OCTETS} octets`);
  const utf8 = !isAscii(local);
  return {
    ok: true,
    value: { address: `${local}@${domain.unicode}`, domain: domain.unicode, asciiDomain: domain.ascii, utf8 },
  };
}

function checkLocalPart(local: string): ParseAddressResult | null {
  if (utf8Length(local) > MAX_LOCAL_PART_OCTETS) return fail("local_part_too_long", `local part is longer than ${MAX_LOCAL_PART_OCTETS} octets`);
  if (local.startsWith('"')) {
    // RFC 5322 §3.2.4 quoted-string: qtext (printable except \ and ") or quoted-pair.
    if (local.length < 2 || !local.endsWith('"')) return fail("local_part_syntax", "unterminated quoted local part");
    const inner = local.slice(1, -1);
    if (!/^(?:[\x20\x21\x23-\x5b\x5d-\x7e\u0080-\u{10ffff}]|\\[\x20-\x7e])*$/u.test(inner)) {
      return fail("local_part_syntax", "invalid character in quoted local part");
    }
    return null;
  }
  if (local.includes("@")) return fail("multiple_at", "address has more than one @");
  const atoms = local.split(".");
  for (const atom of atoms) {
    if (atom === "") return fail("local_part_syntax", "local part has an empty dot-separated part");
    if (!ATEXT.test(atom)) return fail("local_part_syntax", "local part contains a character that is not allowed");
  }
  return null;
}

type DomainResult = { ok: true; unicode: string; ascii: string } | { ok: false; error: AddressError };

function checkDomain(raw: string): DomainResult {
  const bad = (reason: AddressErrorReason, message: string): DomainResult => ({ ok: false, error: { reason, message } });
  if (raw === "") return bad("domain_syntax", "domain is empty");
  if (raw.includes("@")) return bad("multiple_at", "address has more than one @");
  const unicode = raw.toLowerCase().normalize("NFC");
  if (utf8Length(unicode) > MAX_DOMAIN_OCTETS) return bad("domain_too_long", `domain is longer than ${MAX_DOMAIN_OCTETS} octets`);
  const labels = unicode.split(".");
  if (labels.length < 2) return bad("domain_syntax", "domain needs at least two labels");
  for (const label of labels) {
    if (label === "") return bad("domain_syntax", "domain has an empty label");
    if (!/^[a-z0-9\-\u00a0-\u{10ffff}]+$/u.test(label) || /[\u3002\uff0e\uff61]/u.test(label)) {
      return bad("domain_syntax", "domain label contains a character that is not allowed");
    }
    if (label.startsWith("-") || label.endsWith("-")) return bad("domain_syntax", "domain label starts or ends with a hyphen");
  }
  let ascii = unicode;
  if (!isAscii(unicode)) {
    // The WHATWG URL parser performs UTS #46 ToASCII in both Workers and Node.
    try {
      ascii = new URL(`http://${unicode}/`).hostname;
    } catch {
      return bad("domain_syntax", "internationalised domain cannot be converted to ASCII");
    }
    const asciiLabels = ascii.split(".");
    if (!/^[a-z0-9.-]+$/.test(ascii) || asciiLabels.length !== labels.length) {
      return bad("domain_syntax", "internationalised domain cannot be converted to ASCII");
    }
    // A non-ASCII label that maps to a plain ASCII label (fullwidth "ｅxample") is a look-alike
    // of a different domain: refuse it rather than send somewhere the sender did not write.
    for (let i = 0; i < labels.length; i++) {
      if (!isAscii(labels[i]!) && !asciiLabels[i]!.startsWith("xn--")) {
        return bad("domain_syntax", "domain label is a look-alike of an ASCII label; write it in ASCII");
      }
    }
  }
  if (ascii.length > MAX_DOMAIN_OCTETS) return bad("domain_too_long", `domain is longer than ${MAX_DOMAIN_OCTETS} octets`);
  for (const label of ascii.split(".")) {
    if (label.length > MAX_LABEL_OCTETS) return bad("label_too_long", `domain label is longer than ${MAX_LABEL_OCTETS} octets`);
  }
  const tld = ascii.slice(ascii.lastIndexOf(".") + 1);
  if (/^[0-9]+$/.test(tld)) return bad("domain_syntax", "top-level domain is numeric (IP addresses are not accepted)");
  return { ok: true, unicode, ascii };
}

/** The address to write in headers and the envelope: A-label domain unless the local part needs SMTPUTF8. */
export function headerAddress(mailbox: Mailbox): string {
  if (mailbox.utf8) return mailbox.address;
  const local = mailbox.address.slice(0, mailbox.address.lastIndexOf("@"));
  return `${local}@${mailbox.asciiDomain}`;
}

/**
 * Display name as an RFC 5322 phrase: bare atoms when possible, a quoted string for other
 * printable ASCII, RFC 2047 encoded words when it contains non-ASCII.
 */
export function formatDisplayName(name: string): string {
  // 60-character words leave room for "Reply-To: " on the first line (RFC 2047 §2: 76 per line).
  if (!isAscii(name)) return encodeWords(name, undefined, 60).join(" ");
  if (/^[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~ ]+$/.test(name) && !/=\?/.test(name)) return name;
  return `"${name.replace(/[\\"]/g, (c) => "\\" + c)}"`;
}

/** One mailbox as it appears in an address header. */
export function formatMailbox(mailbox: Mailbox): string {
  const addr = headerAddress(mailbox);
  return mailbox.name ? `${formatDisplayName(mailbox.name)} <${addr}>` : addr;
}

/**
 * Value of an address header (From, To, Cc, Reply-To) for the mailboxes: comma-separated,
 * not yet folded. Fold with `foldHeader`, which breaks at the spaces between mailboxes and
 * between encoded words.
 */
export function formatAddressHeader(list: readonly Mailbox[]): string {
  return list.map(formatMailbox).join(", ");
}
