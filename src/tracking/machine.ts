/**
 * Tells machine opens and clicks from human ones, from the request's user agent and method and from how
 * soon after delivery it came. Machine hits are still recorded (with `data.machine = true` and a reason)
 * but counted apart, so open and click rates mean people.
 *
 * What fetches tracking URLs without a person:
 * - Apple Mail Privacy Protection loads every remote image through Apple's proxies soon after delivery,
 *   whether or not the message is ever read; its proxy identifies itself only as `Mozilla/5.0`.
 * - Security gateways (Microsoft Defender Safe Links, Barracuda, Mimecast, Proofpoint, Cisco, Trend
 *   Micro, Fortinet, Sophos, Symantec, ...) follow every link, usually within seconds of delivery, some
 *   with a browser-like user agent: timing catches those.
 * - Office apps check a link with an `ms-office` / `Microsoft Office` user agent before opening the
 *   browser, so such a click is a pre-check (the human click follows from the browser).
 * - Crawlers, HTTP libraries and headless browsers.
 * Gmail's and Yahoo's image proxies fetch the pixel when a person opens the message, so those are human
 * opens (only the client's address and user agent are hidden); they are marked with `proxy`.
 *
 * Pure: no Workers imports.
 */

export type MachineReason =
  | "no_user_agent"
  | "apple_mpp"
  | "security_scanner"
  | "office_link_check"
  | "bot_user_agent"
  | "head_request"
  | "before_delivery"
  | "soon_after_delivery";

export interface TrackingHit {
  kind: "open" | "click";
  userAgent: string | null;
  /** HTTP method of the request (scanners often use HEAD). */
  method: string;
  /** When the hit arrived (epoch ms). */
  at: number;
  /** When the recipient's delivery was recorded (epoch ms), or null when it has not been (yet). */
  deliveredAt: number | null;
  /** True when the recipient is still queued or deferred (its delivery has not finished). */
  pending: boolean;
}

export interface MachineVerdict {
  machine: boolean;
  reason: MachineReason | null;
  /** The image proxy a human open came through, when known. */
  proxy: "google" | "yahoo" | null;
}

/**
 * Hits this soon after delivery are machines: people do not open or click within seconds of a message
 * arriving, while gateways scan at delivery (reports put most scanner clicks within 5 s; Apple's prefetch
 * follows delivery within seconds to minutes, which its user agent already covers).
 */
export const MACHINE_WINDOW_MS = 10_000;

/** Apple Mail Privacy Protection's proxy: the bare product token and nothing else. */
const APPLE_MPP = /^Mozilla\/5\.0$/;
const SCANNERS =
  /barracuda|mimecast|proofpoint|urldefense|ironport|cisco ?secure|trend ?micro|\btmes\b|fortimail|fortiguard|fortinet|sophos|symantec|messagelabs|forcepoint|mcafee|trellix|zscaler|cloudmark|vadesecure|vade secure|spamtitan|mailcontrol|checkpoint|check point|avanan|ironscales|abnormal ?security|safelinks|bingpreview|microsoft url|urlscan|virustotal|zix/i;
const OFFICE = /\bms-office\b|\bmsoffice\b|microsoft office|microsoft outlook/i;
const BOTS =
  /(bot|crawler|spider|slurp)(\/|;|\s|\)|$)|headlesschrome|phantomjs|python-requests|python-urllib|aiohttp|httpx|\bcurl\/|\bwget\/|go-http-client|\bjava\/|okhttp|apache-httpclient|libwww|\baxios\/|node-fetch|undici|scrapy|postmanruntime|http_request|preview/i;

/** The verdict for one open or click. */
export function classifyTrackingHit(hit: TrackingHit): MachineVerdict {
  const ua = (hit.userAgent ?? "").trim();
  const proxy = /GoogleImageProxy|ggpht\.com/i.test(ua) ? "google" : /YahooMailProxy/i.test(ua) ? "yahoo" : null;
  const verdict = (reason: MachineReason | null): MachineVerdict => ({ machine: reason !== null, reason, proxy });
  if (ua === "") return verdict("no_user_agent");
  if (APPLE_MPP.test(ua)) return verdict("apple_mpp");
  if (SCANNERS.test(ua)) return verdict("security_scanner");
  // Outlook for Windows loads images with an ms-office user agent when a person reads the message.
  if (hit.kind === "click" && OFFICE.test(ua)) return verdict("office_link_check");
  if (proxy === null && BOTS.test(ua)) return verdict("bot_user_agent");
  if (hit.method.toUpperCase() === "HEAD") return verdict("head_request");
  if (hit.pending) return verdict("before_delivery");
  if (hit.deliveredAt !== null && hit.at - hit.deliveredAt < MACHINE_WINDOW_MS) return verdict("soon_after_delivery");
  return verdict(null);
}
