/**
 * Tracking at accept: decides whether a send request is tracked (its own `track_opens` / `track_clicks`, else
 * the tenant's stream or tenant-wide setting, else off) and makes one HTML body per recipient with that
 * recipient's tokens. Called by `sendRequest` before composing, so DKIM signs the rewritten message.
 *
 * Per recipient, not per message: a message with tracking is composed once per recipient (same Message-ID,
 * Date and content, different tracking tokens), each recipient gets a delivery job and body of its own, and
 * every open and click is attributed to the recipient who made it.
 */
import { trackingBaseUrlSetting } from "../config";
import { Refusal } from "./refusal";
import { resolveTrackingSwitches } from "../store/tracking";
import { rewriteHtmlForRecipients } from "../tracking/html";

/**
 * Tracked messages exist once per recipient, all in memory at accept: the HTML times the recipients may not
 * exceed this (a Worker has 128 MB of memory; the composed copies and their DKIM canonical forms need more).
 */
export const MAX_TRACKED_HTML_BYTES_PER_REQUEST = 16 * 1024 * 1024;

/** The https base of the tracking links: TRACKING_BASE_URL, else the relay's public base URL. */
export function trackingBaseUrl(env: Env, publicBaseUrl: string | null): string | null {
  const configured = trackingBaseUrlSetting(env);
  if (configured) return configured.replace(/\/+$/, "");
  return publicBaseUrl;
}

/** The https URLs of a List-Unsubscribe header value (`<https://...>, <mailto:...>`). */
export function listUnsubscribeUrls(value: string | undefined): string[] {
  if (!value) return [];
  return [...value.matchAll(/<\s*(https?:\/\/[^>\s]+)\s*>/gi)].map((m) => m[1]!);
}

export interface TrackingRequestFields {
  html?: string | undefined;
  headers?: Record<string, string> | undefined;
  stream: "transactional" | "broadcast";
  track_opens?: boolean | undefined;
  track_clicks?: boolean | undefined;
}

/**
 * One HTML body per recipient when opens or clicks are tracked for this request and it has an HTML part;
 * null when nothing is tracked. Throws a 422 Refusal when tracking is on but the relay cannot sign or host
 * tracking links (no SIGNING_SECRET, or no https base URL).
 */
export async function trackedHtmlBodies(
  env: Env,
  o: { tenantId: string; messageId: string; recipientCount: number; publicBaseUrl: string | null; secret: string | null; fieldPrefix?: string },
  req: TrackingRequestFields,
): Promise<string[] | null> {
  if (req.html === undefined) return null;
  const switches = await resolveTrackingSwitches(env.DB, o.tenantId, req.stream, { trackOpens: req.track_opens, trackClicks: req.track_clicks });
  if (!switches.trackOpens && !switches.trackClicks) return null;
  const baseUrl = trackingBaseUrl(env, o.publicBaseUrl);
  if (!o.secret || !baseUrl || !baseUrl.startsWith("https://")) {
    const field = `${o.fieldPrefix ?? ""}${switches.trackClicks ? "track_clicks" : "track_opens"}`;
    throw new Refusal(422, "invalid_field", "tracking needs SIGNING_SECRET and an https TRACKING_BASE_URL or PUBLIC_BASE_URL", field);
  }
  const htmlBytes = new TextEncoder().encode(req.html).byteLength;
  if (htmlBytes * o.recipientCount > MAX_TRACKED_HTML_BYTES_PER_REQUEST) {
    throw new Refusal(422, "too_large", `a tracked message is composed per recipient: ${o.recipientCount} copies of ${htmlBytes} bytes of HTML exceed ${MAX_TRACKED_HTML_BYTES_PER_REQUEST} bytes; send fewer recipients per message`, `${o.fieldPrefix ?? ""}html`);
  }
  const header = Object.entries(req.headers ?? {}).find(([name]) => name.toLowerCase() === "list-unsubscribe")?.[1];
  return rewriteHtmlForRecipients(req.html, o.recipientCount, {
    messageId: o.messageId,
    trackClicks: switches.trackClicks,
    trackOpens: switches.trackOpens,
    baseUrl,
    secret: o.secret,
    excludeUrls: listUnsubscribeUrls(header),
  });
}
