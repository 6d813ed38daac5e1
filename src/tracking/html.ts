/**
 * Rewrites the HTML part of a message for open and click tracking, before it is composed and DKIM-signed:
 * each tracked link's `href` becomes `<base>/t/c/<token>` and a 1x1 image `<base>/t/o/<token>` goes in
 * before `</body>` (or at the end). Everything else in the document is left byte for byte as it was.
 *
 * Links left alone: anything but absolute http(s) URLs (`mailto:`, `tel:`, `#anchors`, relative links),
 * links carrying a `data-no-track` attribute, the List-Unsubscribe URL(s), links whose `href` we cannot
 * decode with certainty, links longer than MAX_TRACKED_URL_CHARS, and links after the first MAX_TRACKED_LINKS.
 *
 * The document is scanned once (`planHtmlTracking`) and rendered per recipient (`renderTrackedHtml`),
 * because every recipient gets tokens of their own. The scanner follows the HTML tokenizer where it
 * matters for finding `<a href>`: comments, CDATA, raw-text elements (script, style, textarea, title,
 * xmp, iframe, noembed, noframes, noscript, plaintext), quoted and unquoted attribute values, and the first
 * of duplicate attributes winning.
 *
 * Pure: no Workers imports.
 */
import { MAX_TRACKED_URL_CHARS, signTrackingToken } from "./token";
import { trackableUrl } from "./url";

export interface HtmlTrackingOptions {
  messageId: string;
  recipientIdx: number;
  trackClicks: boolean;
  trackOpens: boolean;
  /** https origin (and optional path) of the tracking endpoints, without a trailing slash. */
  baseUrl: string;
  /** SIGNING_SECRET. */
  secret: string;
  /** The message's List-Unsubscribe URL: never rewritten (unsubscribing must not depend on us being up). */
  unsubscribeUrl?: string | null;
  /** More URLs to leave alone (e.g. every https URL of a List-Unsubscribe header the client set). */
  excludeUrls?: readonly string[];
}

/** Where a document is to be changed: the value spans of tracked `href`s and where the pixel goes. */
export interface HtmlTrackingPlan {
  links: { start: number; end: number; url: string }[];
  /** Index the pixel is inserted at (before `</body>`, else before `</html>`, else the end). */
  pixelAt: number;
}

/**
 * Links tracked per message; later ones are left as they are. Every tracked link costs an HMAC per recipient,
 * so this bounds the work one send request can cause (500 links x 50 recipients = 25,000 signatures).
 */
export const MAX_TRACKED_LINKS = 500;

const RAW_TEXT = new Set(["script", "style", "textarea", "title", "xmp", "iframe", "noembed", "noframes", "noscript"]);

interface Attribute {
  name: string;
  /** The value's span in the document (inside the quotes), or null for an attribute without a value. */
  value: { start: number; end: number } | null;
}

/** HTML's ASCII whitespace: tab, LF, FF, CR, space. */
function isSpace(ch: string | undefined): boolean {
  return ch === " " || ch === "\n" || ch === "\t" || ch === "\r" || ch === "\f";
}

/** Parses the attributes of a start tag from `from` to its `>`; returns them and the index after `>`, or null if the tag never ends. */
function readTag(html: string, from: number): { attrs: Attribute[]; end: number } | null {
  const attrs: Attribute[] = [];
  let i = from;
  const n = html.length;
  for (;;) {
    while (i < n && (isSpace(html[i]) || html[i] === "/")) i++;
    if (i >= n) return null;
    if (html[i] === ">") return { attrs, end: i + 1 };
    const nameStart = i;
    // The first character may be "=" (the tokenizer takes it into the name).
    i++;
    while (i < n && !isSpace(html[i]) && html[i] !== "/" && html[i] !== ">" && html[i] !== "=") i++;
    const name = html.slice(nameStart, i).toLowerCase();
    let j = i;
    while (j < n && isSpace(html[j])) j++;
    if (html[j] !== "=") {
      attrs.push({ name, value: null });
      continue;
    }
    j++;
    while (j < n && isSpace(html[j])) j++;
    if (j >= n) return null;
    const q = html[j];
    if (q === '"' || q === "'") {
      const close = html.indexOf(q, j + 1);
      if (close < 0) return null;
      attrs.push({ name, value: { start: j + 1, end: close } });
      i = close + 1;
    } else {
      let k = j;
      while (k < n && !isSpace(html[k]) && html[k] !== ">") k++;
      attrs.push({ name, value: { start: j, end: k } });
      i = k;
    }
  }
}

/** Finds the links to rewrite and the pixel's place; independent of the recipient. */
export function planHtmlTracking(html: string, opts: { trackClicks: boolean; unsubscribeUrl?: string | null; excludeUrls?: readonly string[] }): HtmlTrackingPlan {
  const exclude = new Set<string>();
  for (const u of [opts.unsubscribeUrl ?? null, ...(opts.excludeUrls ?? [])]) {
    if (!u) continue;
    exclude.add(u);
    try {
      exclude.add(new URL(u).href);
    } catch {
      // not a URL: the exact string is still excluded
    }
  }
  const links: HtmlTrackingPlan["links"] = [];
  const lower = html.toLowerCase();
  let bodyClose = -1;
  let htmlClose = -1;
  let i = 0;
  const n = html.length;
  while (i < n) {
    const lt = html.indexOf("<", i);
    if (lt < 0) break;
    if (html.startsWith("<!--", lt)) {
      const end = html.indexOf("-->", lt + 4);
      i = end < 0 ? n : end + 3;
      continue;
    }
    if (html.startsWith("<![CDATA[", lt)) {
      const end = html.indexOf("]]>", lt + 9);
      i = end < 0 ? n : end + 3;
      continue;
    }
    if (html[lt + 1] === "!" || html[lt + 1] === "?") {
      const end = html.indexOf(">", lt + 2);
      i = end < 0 ? n : end + 1;
      continue;
    }
    const closing = html[lt + 1] === "/";
    const m = /^[A-Za-z][^\t\n\f\r />]*/.exec(html.slice(lt + (closing ? 2 : 1), lt + (closing ? 2 : 1) + 64));
    if (!m) {
      i = lt + 1;
      continue;
    }
    const name = m[0].toLowerCase();
    const tag = readTag(html, lt + (closing ? 2 : 1) + m[0].length);
    if (!tag) break;
    i = tag.end;
    if (closing) {
      if (name === "body") bodyClose = lt;
      else if (name === "html") htmlClose = lt;
      continue;
    }
    if (name === "plaintext") break;
    if (RAW_TEXT.has(name)) {
      const end = lower.indexOf(`</${name}`, i);
      i = end < 0 ? n : end;
      continue;
    }
    if (!opts.trackClicks || (name !== "a" && name !== "area") || links.length >= MAX_TRACKED_LINKS) continue;
    const seen = new Set<string>();
    const attrs = tag.attrs.filter((a) => (seen.has(a.name) ? false : (seen.add(a.name), true)));
    if (attrs.some((a) => a.name === "data-no-track")) continue;
    const href = attrs.find((a) => a.name === "href")?.value;
    if (!href) continue;
    const url = trackableUrl(html.slice(href.start, href.end));
    if (url === null || url.length > MAX_TRACKED_URL_CHARS || exclude.has(url)) continue;
    try {
      if (exclude.has(new URL(url).href)) continue;
    } catch {
      continue;
    }
    links.push({ start: href.start, end: href.end, url });
  }
  const pixelAt = bodyClose >= 0 ? bodyClose : htmlClose >= 0 ? htmlClose : n;
  return { links, pixelAt };
}

/** The tracking pixel: 1x1, no border, out of the flow as far as mail clients allow. */
export function pixelTag(src: string): string {
  return `<img src="${src}" width="1" height="1" alt="" border="0" style="display:block;width:1px;height:1px;border:0;margin:0;padding:0">`;
}

/** Renders a plan for one recipient. */
export async function renderTrackedHtml(
  html: string,
  plan: HtmlTrackingPlan,
  opts: { messageId: string; recipientIdx: number; trackOpens: boolean; baseUrl: string; secret: string },
): Promise<string> {
  const base = opts.baseUrl.replace(/\/+$/, "");
  const edits: { start: number; end: number; text: string }[] = [];
  for (const link of plan.links) {
    const token = await signTrackingToken({ kind: "click", messageId: opts.messageId, recipientIdx: opts.recipientIdx, url: link.url }, opts.secret);
    edits.push({ start: link.start, end: link.end, text: `${base}/t/c/${token}` });
  }
  if (opts.trackOpens) {
    const token = await signTrackingToken({ kind: "open", messageId: opts.messageId, recipientIdx: opts.recipientIdx }, opts.secret);
    edits.push({ start: plan.pixelAt, end: plan.pixelAt, text: pixelTag(`${base}/t/o/${token}`) });
  }
  edits.sort((a, b) => a.start - b.start);
  let out = "";
  let at = 0;
  for (const e of edits) {
    out += html.slice(at, e.start) + e.text;
    at = e.end;
  }
  return out + html.slice(at);
}

/** The HTML with tracked links and (when asked) the open pixel, for one recipient of one message. */
export async function rewriteHtmlForTracking(html: string, opts: HtmlTrackingOptions): Promise<string> {
  if (!opts.trackClicks && !opts.trackOpens) return html;
  const plan = planHtmlTracking(html, opts);
  return renderTrackedHtml(html, plan, opts);
}

/** One rewritten HTML body per recipient (index 0..count-1), scanning the document once. */
export async function rewriteHtmlForRecipients(html: string, count: number, opts: Omit<HtmlTrackingOptions, "recipientIdx">): Promise<string[]> {
  if (!opts.trackClicks && !opts.trackOpens) return Array.from({ length: count }, () => html);
  const plan = planHtmlTracking(html, opts);
  const out: string[] = [];
  for (let idx = 0; idx < count; idx++) out.push(await renderTrackedHtml(html, plan, { ...opts, recipientIdx: idx }));
  return out;
}
