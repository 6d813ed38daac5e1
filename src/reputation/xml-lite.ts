/**
 * A small, bounded XML reader for report documents (DMARC aggregate reports, RFC 7489 appendix C): elements,
 * text and CDATA into a tree keyed by local name, so `feedback`, `rua:feedback` and a default namespace all read
 * the same. No DTDs: a DOCTYPE is refused (no entity expansion, so no "billion laughs"); only the five predefined
 * entities and character references are decoded. Attributes are skipped (the report schema uses none we need).
 * Workers have no DOMParser; this is enough for data-oriented XML, not for documents in general.
 */

export interface XmlNode {
  /** Local name, lowercase-insensitive lookups are the caller's business (names are kept as written). */
  name: string;
  children: XmlNode[];
  text: string;
}

export class XmlError extends Error {
  override name = "XmlError";
}

export interface XmlLimits {
  /** Elements in the whole document (a report with 10 000 records has ~250 000). */
  maxNodes: number;
  /** Nesting depth (the report schema needs 5). */
  maxDepth: number;
}

export const DEFAULT_XML_LIMITS: XmlLimits = { maxNodes: 400_000, maxDepth: 32 };

const ENTITIES: Record<string, string> = { amp: "&", lt: "<", gt: ">", quot: '"', apos: "'" };

function decodeEntities(s: string): string {
  if (!s.includes("&")) return s;
  return s.replace(/&(#x[0-9a-fA-F]{1,6}|#[0-9]{1,7}|[a-zA-Z]{2,4});/g, (all, ref: string) => {
    if (ref.startsWith("#x")) return safeCodePoint(parseInt(ref.slice(2), 16)) ?? all;
    if (ref.startsWith("#")) return safeCodePoint(parseInt(ref.slice(1), 10)) ?? all;
    return ENTITIES[ref] ?? all;
  });
}

function safeCodePoint(n: number): string | undefined {
  return n > 0 && n <= 0x10ffff && !(n >= 0xd800 && n <= 0xdfff) ? String.fromCodePoint(n) : undefined;
}

function localName(qname: string): string {
  const i = qname.indexOf(":");
  return i >= 0 ? qname.slice(i + 1) : qname;
}

/**
 * Parses `xml` into its root element; throws XmlError on malformed or over-limit input. `onClose` sees each
 * element when it ends; returning true drops it from its parent, so a caller can consume repeated elements
 * (report records) as they complete and keep memory flat.
 */
export function parseXml(xml: string, limits: XmlLimits = DEFAULT_XML_LIMITS, onClose?: (node: XmlNode, depth: number) => boolean): XmlNode {
  const root: XmlNode = { name: "#document", children: [], text: "" };
  const stack: XmlNode[] = [root];
  let nodes = 0;
  let i = xml.charCodeAt(0) === 0xfeff ? 1 : 0;
  while (i < xml.length) {
    const lt = xml.indexOf("<", i);
    const top = stack[stack.length - 1]!;
    if (lt < 0) {
      if (xml.slice(i).trim()) throw new XmlError("text after the root element");
      break;
    }
    // Whitespace between elements is most of a report's text: skip it without allocating.
    if (lt > i && stack.length > 1 && !blank(xml, i, lt)) top.text += decodeEntities(xml.slice(i, lt));
    if (xml.startsWith("<!--", lt)) {
      const end = xml.indexOf("-->", lt + 4);
      if (end < 0) throw new XmlError("unterminated comment");
      i = end + 3;
    } else if (xml.startsWith("<![CDATA[", lt)) {
      const end = xml.indexOf("]]>", lt + 9);
      if (end < 0) throw new XmlError("unterminated CDATA section");
      top.text += xml.slice(lt + 9, end);
      i = end + 3;
    } else if (xml.startsWith("<?", lt)) {
      const end = xml.indexOf("?>", lt + 2);
      if (end < 0) throw new XmlError("unterminated processing instruction");
      i = end + 2;
    } else if (xml.startsWith("<!", lt)) {
      throw new XmlError("DOCTYPE and DTDs are not accepted");
    } else if (xml[lt + 1] === "/") {
      const end = xml.indexOf(">", lt);
      if (end < 0) throw new XmlError("unterminated end tag");
      const name = localName(xml.slice(lt + 2, end).trim());
      if (stack.length < 2 || top.name !== name) throw new XmlError(`mismatched end tag </${name}>`);
      stack.pop();
      if (onClose?.(top, stack.length - 1)) stack[stack.length - 1]!.children.pop();
      i = end + 1;
    } else {
      const end = tagEnd(xml, lt);
      const selfClosing = xml.charCodeAt(end - 1) === 0x2f;
      const nameEnd = nameEndAt(xml, lt + 1, selfClosing ? end - 1 : end);
      if (nameEnd === lt + 1) throw new XmlError("bad start tag");
      if (stack.length === 1 && root.children.length) throw new XmlError("more than one root element");
      if (++nodes > limits.maxNodes) throw new XmlError(`more than ${limits.maxNodes} elements`);
      const node: XmlNode = { name: localName(xml.slice(lt + 1, nameEnd)), children: [], text: "" };
      top.children.push(node);
      if (!selfClosing) {
        if (stack.length > limits.maxDepth) throw new XmlError(`nested deeper than ${limits.maxDepth}`);
        stack.push(node);
      }
      i = end + 1;
    }
  }
  if (stack.length !== 1) throw new XmlError(`unclosed element <${stack[stack.length - 1]!.name}>`);
  const doc = root.children[0];
  if (!doc) throw new XmlError("no root element");
  return doc;
}

/** True when xml[from, to) is only XML whitespace. */
function blank(xml: string, from: number, to: number): boolean {
  for (let j = from; j < to; j++) {
    const c = xml.charCodeAt(j);
    if (c !== 0x20 && c !== 0x0a && c !== 0x0d && c !== 0x09) return false;
  }
  return true;
}

/** Where the element name starting at `from` ends (letters, digits, _ . : -; the first must not be a digit, . or -). */
function nameEndAt(xml: string, from: number, to: number): number {
  let j = from;
  for (; j < to; j++) {
    const c = xml.charCodeAt(j);
    const letter = (c >= 0x41 && c <= 0x5a) || (c >= 0x61 && c <= 0x7a) || c === 0x5f;
    const other = (c >= 0x30 && c <= 0x39) || c === 0x2e || c === 0x3a || c === 0x2d;
    if (!(letter || (j > from && other))) break;
  }
  return j;
}

/** The `>` closing a start tag at `lt`, skipping quoted attribute values. */
function tagEnd(xml: string, lt: number): number {
  let q = 0;
  for (let j = lt + 1; j < xml.length; j++) {
    const c = xml.charCodeAt(j);
    if (q) {
      if (c === q) q = 0;
    } else if (c === 0x22 || c === 0x27) q = c;
    else if (c === 0x3e) return j;
  }
  throw new XmlError("unterminated start tag");
}

/** The first child named `name` (case-insensitive local name). */
export function child(node: XmlNode | undefined, name: string): XmlNode | undefined {
  const n = name.toLowerCase();
  return node?.children.find((c) => c.name.toLowerCase() === n);
}

/** Every child named `name`. */
export function childrenNamed(node: XmlNode | undefined, name: string): XmlNode[] {
  const n = name.toLowerCase();
  return node ? node.children.filter((c) => c.name.toLowerCase() === n) : [];
}

/** Trimmed text of the node at a path of child names, or "" when absent. */
export function textAt(node: XmlNode | undefined, ...path: string[]): string {
  let cur = node;
  for (const p of path) cur = child(cur, p);
  return cur ? cur.text.trim() : "";
}
