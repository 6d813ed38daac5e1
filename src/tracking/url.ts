/**
 * URLs in and out of tracking: reading the URL an `href` attribute really stands for (HTML character
 * references decoded, as a browser does), and writing a tracked URL back as a `Location` header value.
 *
 * Pure: no Workers imports.
 */

/** Named character references we decode in attribute values; anything else makes us leave the link alone. */
const NAMED: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'", nbsp: "\u00a0", sol: "/", colon: ":", quest: "?", equals: "=", num: "#", percnt: "%", period: ".", comma: ",", plus: "+", excl: "!", lowbar: "_", dollar: "$", commat: "@", semi: ";", hyphen: "-", dash: "-", lpar: "(", rpar: ")", lsqb: "[", rsqb: "]", lbrack: "[", rbrack: "]", ast: "*", verbar: "|", tilde: "~", grave: "`", Hat: "^" };

/** HTML's replacements for numeric references in the C1 range (HTML Living Standard, "numeric character reference end state"). */
const C1: Record<number, number> = { 0x80: 0x20ac, 0x82: 0x201a, 0x83: 0x192, 0x84: 0x201e, 0x85: 0x2026, 0x86: 0x2020, 0x87: 0x2021, 0x88: 0x2c6, 0x89: 0x2030, 0x8a: 0x160, 0x8b: 0x2039, 0x8c: 0x152, 0x8e: 0x17d, 0x91: 0x2018, 0x92: 0x2019, 0x93: 0x201c, 0x94: 0x201d, 0x95: 0x2022, 0x96: 0x2013, 0x97: 0x2014, 0x98: 0x2dc, 0x99: 0x2122, 0x9a: 0x161, 0x9b: 0x203a, 0x9c: 0x153, 0x9e: 0x17e, 0x9f: 0x178 };

/** Named references HTML also recognises without a ";" (the legacy ones of the HTML Living Standard's table). */
const LEGACY =
  /^(AElig|AMP|Aacute|Acirc|Agrave|Aring|Atilde|Auml|COPY|Ccedil|ETH|Eacute|Ecirc|Egrave|Euml|GT|Iacute|Icirc|Igrave|Iuml|LT|Ntilde|Oacute|Ocirc|Ograve|Oslash|Otilde|Ouml|QUOT|REG|THORN|Uacute|Ucirc|Ugrave|Uuml|Yacute|aacute|acirc|acute|aelig|agrave|amp|aring|atilde|auml|brvbar|ccedil|cedil|cent|copy|curren|deg|divide|eacute|ecirc|egrave|eth|euml|frac12|frac14|frac34|gt|iacute|icirc|iexcl|igrave|iquest|iuml|laquo|lt|macr|micro|middot|nbsp|not|ntilde|oacute|ocirc|ograve|ordf|ordm|oslash|otilde|ouml|para|plusmn|pound|quot|raquo|reg|sect|shy|sup1|sup2|sup3|szlig|thorn|times|uacute|ucirc|ugrave|uml|uuml|yacute|yen|yuml)$/;

/**
 * Decodes the character references of an attribute value, or returns null when it holds one we cannot be
 * sure to decode the way a browser would (an unknown named reference, or a legacy one without `;` such as
 * `&copy` whose meaning in attributes depends on the next character). Such links are left untracked
 * rather than risk redirecting to a different URL.
 */
export function decodeAttributeValue(value: string): string | null {
  let ambiguous = false;
  const out = value.replace(/&(#[0-9]+;?|#[xX][0-9a-fA-F]+;?|[A-Za-z][A-Za-z0-9]*;?)/g, (ref, body: string, offset: number) => {
    if (body.startsWith("#")) {
      const hex = body[1] === "x" || body[1] === "X";
      let n = parseInt(body.slice(hex ? 2 : 1).replace(/;$/, ""), hex ? 16 : 10);
      if (!Number.isFinite(n) || n === 0 || n > 0x10ffff || (n >= 0xd800 && n <= 0xdfff)) n = 0xfffd;
      return String.fromCodePoint(C1[n] ?? n);
    }
    if (!body.endsWith(";")) {
      // In an attribute, a legacy reference without ";" followed by a letter, digit or "=" stays literal text
      // (`&notify=1`, `&times=2` in a query string). Only a whole legacy name followed by something else is
      // decoded by browsers: the four we know are decoded, the rest make the link ambiguous.
      if (value[offset + ref.length] === "=" || !LEGACY.test(body)) return ref;
      const known = NAMED[body];
      if (known !== undefined && ["amp", "lt", "gt", "quot"].includes(body)) return known;
      ambiguous = true;
      return ref;
    }
    const named = NAMED[body.slice(0, -1)];
    if (named === undefined) ambiguous = true;
    return named ?? ref;
  });
  return ambiguous ? null : out;
}

/**
 * The URL a link's raw `href` attribute value points to when it is an absolute http(s) URL, else null
 * (`mailto:`, `tel:`, `#anchor`, relative and `javascript:` links are not tracked). Leading and trailing
 * whitespace is dropped and tabs and line breaks inside removed, as the URL parser does.
 */
export function trackableUrl(rawHref: string): string | null {
  const decoded = decodeAttributeValue(rawHref);
  if (decoded === null) return null;
  // eslint-disable-next-line no-control-regex
  const url = decoded.replace(/^[\x00-\x20]+|[\x00-\x20]+$/g, "").replace(/[\t\n\r]/g, "");
  if (!/^https?:\/\/[^/?#\s]/i.test(url)) return null;
  try {
    new URL(url);
  } catch {
    return null;
  }
  return url;
}

/**
 * The `Location` header value that sends a browser to `url`: the URL as given, with only the characters a
 * header may not carry (non-ASCII, controls, spaces) percent-encoded as UTF-8, which is what a browser does
 * with them when it follows the original link. Query strings, fragments and the case of everything are kept.
 */
export function redirectLocation(url: string): string {
  const escape = (text: string) => text.replace(/[^\x21-\x7e]+/gu, (run) => encodeURIComponent(run));
  const m = /^([A-Za-z][A-Za-z0-9+.-]*:\/\/)([^/?#]*)([\s\S]*)$/.exec(url);
  if (!m || /^[\x21-\x7e]*$/.test(m[2]!)) return escape(url);
  // An internationalised host name goes out in its A-label (punycode) form, as the URL parser writes it.
  const authority = m[2]!;
  const at = authority.lastIndexOf("@");
  return `${m[1]}${at >= 0 ? escape(authority.slice(0, at + 1)) : ""}${new URL(url).host}${escape(m[3]!)}`;
}
