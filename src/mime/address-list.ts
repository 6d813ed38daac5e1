/**
 * RFC 5322 section 3.4 address lists, as written in From, Sender, To, Cc and Reply-To fields: mailboxes
 * (`addr-spec` or `[display-name] <addr-spec>`), groups (`name: a@x, b@y;`), comments (nested, with quoted
 * pairs), quoted strings, and the obsolete forms of section 4.4 (routes `<@a,@b:user@d>`, CFWS around the dots
 * of a local part or domain, empty list elements, dots in phrases). RFC 2047 encoded words in display names are
 * decoded.
 *
 * `fromFieldMailbox` is what accept uses for From and Sender: exactly one mailbox, and only in a shape that
 * every common parser (postal-mime, nodemailer, mail clients) reads the same way, because the address the relay
 * checks must be the address the recipient's software shows. Anything parsers disagree on is refused.
 *
 * Pure: no Workers imports.
 */
import { parseAddress, type Mailbox } from "./address.js";

/** A mailbox as written in the field. */
export interface ListMailbox {
  kind: "mailbox";
  /** Display name, RFC 2047 words decoded, quoted strings unquoted; undefined when there is none. */
  name?: string;
  /** The addr-spec with CFWS removed (a quoted local part keeps its quotes). */
  addrSpec: string;
  /** Written with an obsolete route (`<@relay:user@domain>`). */
  route: boolean;
  /** Comments or white space inside the addr-spec (obs-local-part / obs-domain). */
  cfwsInAddrSpec: boolean;
  /** Written as `<addr-spec>` (name-addr) rather than a bare addr-spec. */
  angle: boolean;
}

export interface ListGroup {
  kind: "group";
  name: string;
  members: ListMailbox[];
}

export type ListAddress = ListMailbox | ListGroup;

export interface AddressList {
  addresses: ListAddress[];
  /** Every comment's text (outermost comments, as written between the parentheses). */
  comments: string[];
}

export type AddressListResult = { ok: true; value: AddressList } | { ok: false; error: string };

/** Longest field the parser looks at; address fields beyond this are not mail anyone means to send. */
export const MAX_ADDRESS_FIELD_CHARS = 16 * 1024;
/** Comment nesting deeper than this is refused (bounds the lexer's work, RFC 5322 sets no limit). */
const MAX_COMMENT_DEPTH = 8;

type Token =
  | { t: "atom"; v: string }
  | { t: "quoted"; v: string; raw: string }
  | { t: "literal"; raw: string }
  | { t: "special"; v: string }
  | { t: "cfws" };

// RFC 5322 atext plus RFC 6531 UTF8-non-ascii.
const ATEXT = /[A-Za-z0-9!#$%&'*+\-/=?^_`{|}~\u0080-\u{10ffff}]/u;
const SPECIALS = "()<>[]:;@\\,.\"";
// eslint-disable-next-line no-control-regex
const FORBIDDEN = /[\x00-\x08\x0a-\x1f\x7f]/;

type LexResult = { ok: true; tokens: Token[]; comments: string[] } | { ok: false; error: string };

function lex(input: string): LexResult {
  const tokens: Token[] = [];
  const comments: string[] = [];
  const cfws = () => {
    if (tokens[tokens.length - 1]?.t !== "cfws") tokens.push({ t: "cfws" });
  };
  let i = 0;
  while (i < input.length) {
    const c = input[i]!;
    if (c === " " || c === "\t") {
      cfws();
      i++;
    } else if (c === "(") {
      let depth = 0;
      const start = i;
      for (; i < input.length; i++) {
        const d = input[i]!;
        if (d === "\\") i++;
        else if (d === "(") {
          if (++depth > MAX_COMMENT_DEPTH) return { ok: false, error: "comments are nested too deeply" };
        } else if (d === ")" && --depth === 0) break;
      }
      if (depth !== 0) return { ok: false, error: "unterminated comment" };
      comments.push(input.slice(start + 1, i));
      i++;
      cfws();
    } else if (c === '"') {
      let v = "";
      const start = i;
      i++;
      for (;;) {
        if (i >= input.length) return { ok: false, error: "unterminated quoted string" };
        const d = input[i]!;
        if (d === "\\") {
          if (i + 1 >= input.length) return { ok: false, error: "unterminated quoted string" };
          v += input[i + 1];
          i += 2;
        } else if (d === '"') {
          i++;
          break;
        } else {
          v += d;
          i++;
        }
      }
      tokens.push({ t: "quoted", v, raw: input.slice(start, i) });
    } else if (c === "[") {
      const end = input.indexOf("]", i);
      if (end < 0) return { ok: false, error: "unterminated domain literal" };
      tokens.push({ t: "literal", raw: input.slice(i, end + 1) });
      i = end + 1;
    } else if (SPECIALS.includes(c)) {
      if (c === "\\" || c === ")" || c === "]") return { ok: false, error: `unexpected ${JSON.stringify(c)}` };
      tokens.push({ t: "special", v: c });
      i++;
    } else {
      const cp = input.codePointAt(i)!;
      const ch = String.fromCodePoint(cp);
      if (!ATEXT.test(ch)) return { ok: false, error: `character ${JSON.stringify(ch)} is not allowed here` };
      const last = tokens[tokens.length - 1];
      if (last?.t === "atom") last.v += ch;
      else tokens.push({ t: "atom", v: ch });
      i += ch.length;
    }
  }
  return { ok: true, tokens, comments };
}

class ListParser {
  private pos = 0;
  constructor(private readonly tokens: Token[]) {}

  private peek(skipCfws = true): Token | undefined {
    let p = this.pos;
    if (skipCfws) while (this.tokens[p]?.t === "cfws") p++;
    return this.tokens[p];
  }
  private skipCfws(): boolean {
    let skipped = false;
    while (this.tokens[this.pos]?.t === "cfws") {
      this.pos++;
      skipped = true;
    }
    return skipped;
  }
  private isSpecial(v: string): boolean {
    const t = this.peek();
    return t?.t === "special" && t.v === v;
  }
  private take(v: string): void {
    this.skipCfws();
    const t = this.tokens[this.pos];
    if (t?.t !== "special" || t.v !== v) throw new SyntaxError(`expected ${JSON.stringify(v)}`);
    this.pos++;
  }
  atEnd(): boolean {
    return this.peek() === undefined;
  }

  list(): ListAddress[] {
    const out: ListAddress[] = [];
    for (;;) {
      // obs-addr-list: empty elements between commas are allowed and ignored.
      while (this.isSpecial(",")) this.take(",");
      if (this.atEnd()) break;
      out.push(this.address());
      if (this.atEnd()) break;
      this.take(",");
    }
    return out;
  }

  private address(): ListAddress {
    const start = this.pos;
    // A leading phrase followed by ":" is a group; followed by "<" a name-addr; otherwise an addr-spec.
    const phrase = this.phrase();
    if (phrase !== null && this.isSpecial(":")) {
      this.take(":");
      const members: ListMailbox[] = [];
      for (;;) {
        while (this.isSpecial(",")) this.take(",");
        if (this.isSpecial(";")) break;
        if (this.atEnd()) throw new SyntaxError("unterminated group");
        const m = this.address();
        if (m.kind === "group") throw new SyntaxError("groups cannot be nested");
        members.push(m);
        if (!this.isSpecial(";")) this.take(",");
      }
      this.take(";");
      return { kind: "group", name: phrase, members };
    }
    if (this.isSpecial("<")) {
      const m = this.angleAddr();
      if (phrase !== null && phrase !== "") m.name = phrase;
      return m;
    }
    this.pos = start;
    const spec = this.addrSpec();
    return { kind: "mailbox", addrSpec: spec.value, route: false, cfwsInAddrSpec: spec.cfws, angle: false };
  }

  /** A phrase (display name): words, with obs-phrase dots; null when there is none. RFC 2047 words decoded. */
  private phrase(): string | null {
    const parts: { text: string; encoded: boolean; space: boolean }[] = [];
    for (;;) {
      const space = this.skipCfws();
      const t = this.tokens[this.pos];
      if (t?.t === "atom") parts.push({ text: t.v, encoded: /^=\?[^?]+\?[bBqQ]\?[^?]*\?=$/.test(t.v), space });
      else if (t?.t === "quoted") parts.push({ text: t.v, encoded: false, space });
      else if (t?.t === "special" && t.v === "." && parts.length > 0) parts.push({ text: ".", encoded: false, space });
      else break;
      this.pos++;
    }
    if (!parts.length) return null;
    let out = "";
    parts.forEach((p, i) => {
      const prev = parts[i - 1];
      // RFC 2047 section 6.2: white space between adjacent encoded words is not displayed.
      if (i > 0 && p.space && !(p.encoded && prev?.encoded)) out += " ";
      out += p.encoded ? decodeEncodedWord(p.text) : p.text;
    });
    return out;
  }

  private angleAddr(): ListMailbox {
    this.take("<");
    let route = false;
    if (this.isSpecial("@") || this.isSpecial(",")) {
      // obs-route: "@domain" list then ":"
      route = true;
      for (;;) {
        while (this.isSpecial(",")) this.take(",");
        if (!this.isSpecial("@")) break;
        this.take("@");
        this.domain();
      }
      this.take(":");
    }
    const spec = this.addrSpec();
    this.take(">");
    return { kind: "mailbox", addrSpec: spec.value, route, cfwsInAddrSpec: spec.cfws, angle: true };
  }

  private addrSpec(): { value: string; cfws: boolean } {
    const local = this.dotted("local part");
    const beforeAt = this.skipCfws();
    this.take("@");
    const afterAt = this.skipCfws();
    const domain = this.domain();
    return { value: `${local.value}@${domain.value}`, cfws: local.cfws || beforeAt || afterAt || domain.cfws };
  }

  private domain(): { value: string; cfws: boolean } {
    this.skipCfws();
    const t = this.tokens[this.pos];
    if (t?.t === "literal") {
      this.pos++;
      return { value: t.raw, cfws: false };
    }
    return this.dotted("domain");
  }

  /** word *("." word) with optional CFWS around the dots (obs-local-part / obs-domain). */
  private dotted(what: string): { value: string; cfws: boolean } {
    let value = "";
    let cfws = false;
    this.skipCfws();
    for (;;) {
      const t = this.tokens[this.pos];
      if (t?.t === "atom") value += t.v;
      else if (t?.t === "quoted" && what === "local part") value += t.raw;
      else throw new SyntaxError(`expected a ${what}`);
      this.pos++;
      const save = this.pos;
      const spaceBefore = this.skipCfws();
      if (!this.isSpecial(".")) {
        this.pos = save;
        return { value, cfws };
      }
      this.take(".");
      const spaceAfter = this.skipCfws();
      if (spaceBefore || spaceAfter) cfws = true;
      value += ".";
    }
  }
}

/** Parses an address-list field value (unfolded). Never throws. */
export function parseAddressList(value: string): AddressListResult {
  if (value.length > MAX_ADDRESS_FIELD_CHARS) return { ok: false, error: "the field is too long" };
  if (FORBIDDEN.test(value.replace(/\r\n(?=[ \t])/g, ""))) return { ok: false, error: "the field contains a control character" };
  const lexed = lex(value.replace(/\r\n(?=[ \t])/g, ""));
  if (!lexed.ok) return { ok: false, error: lexed.error };
  const parser = new ListParser(lexed.tokens);
  try {
    const addresses = parser.list();
    if (!parser.atEnd()) return { ok: false, error: "unexpected text after the address list" };
    return { ok: true, value: { addresses, comments: lexed.comments } };
  } catch (e) {
    if (e instanceof SyntaxError) return { ok: false, error: e.message };
    throw e;
  }
}

export type FieldMailboxResult = { ok: true; value: Mailbox } | { ok: false; error: string };

/**
 * The one mailbox of a From or Sender field, or why there is not exactly one that every reader agrees on.
 *
 * Refused, besides syntax errors: groups (even of one member), more than one mailbox, obsolete routes,
 * white space or comments inside the address, and comments that hold anything a looser parser could take for
 * address syntax (`<`, `>`, `@`, `,`, `;`, `:`, quotes, backslashes, nested parentheses) — postal-mime, for one,
 * ends a comment at the first `)` and would then read an address hidden in it.
 */
export function fromFieldMailbox(value: string): FieldMailboxResult {
  const parsed = parseAddressList(value);
  if (!parsed.ok) return parsed;
  const { addresses, comments } = parsed.value;
  if (addresses.length !== 1) return { ok: false, error: `the field holds ${addresses.length} addresses; exactly one mailbox is allowed` };
  const a = addresses[0]!;
  if (a.kind === "group") return { ok: false, error: "group syntax is not allowed here; write exactly one mailbox" };
  if (a.route) return { ok: false, error: "source routes (<@host:user@domain>) are not allowed" };
  if (a.cfwsInAddrSpec) return { ok: false, error: "white space or comments inside the address are not allowed" };
  for (const c of comments) {
    if (/[<>@,;:"\\()[\]]/.test(c)) return { ok: false, error: "a comment holds address syntax (<, >, @, comma, quotes ...)" };
  }
  if (a.name !== undefined && /[<>]/.test(a.name) && /@/.test(a.name)) {
    // An encoded display name that decodes to "<x@y>" is shown by some clients as the address.
    return { ok: false, error: "the display name looks like an address in angle brackets" };
  }
  const mailbox = parseAddress(a.name !== undefined ? { name: a.name, address: a.addrSpec } : a.addrSpec);
  if (!mailbox.ok) return { ok: false, error: mailbox.error.message };
  return { ok: true, value: mailbox.value };
}

/** Decodes one RFC 2047 encoded word; returns it unchanged when the charset or encoding is unusable. */
export function decodeEncodedWord(word: string): string {
  const m = /^=\?([^?*]+)(?:\*[^?]*)?\?([bBqQ])\?([^?]*)\?=$/.exec(word);
  if (!m) return word;
  const [, charset = "", enc = "", text = ""] = m;
  let bytes: Uint8Array;
  if (enc.toUpperCase() === "B") {
    try {
      bytes = Uint8Array.from(atob(text), (c) => c.charCodeAt(0));
    } catch {
      return word;
    }
  } else {
    const out: number[] = [];
    for (let i = 0; i < text.length; i++) {
      const c = text[i]!;
      if (c === "_") out.push(0x20);
      else if (c === "=" && /^[0-9A-Fa-f]{2}$/.test(text.slice(i + 1, i + 3))) {
        out.push(parseInt(text.slice(i + 1, i + 3), 16));
        i += 2;
      } else out.push(c.charCodeAt(0) & 0xff);
    }
    bytes = Uint8Array.from(out);
  }
  try {
    return new TextDecoder(charset.trim().toLowerCase(), { fatal: true, ignoreBOM: false }).decode(bytes);
  } catch {
    return word;
  }
}
