/**
 * Tracking routes: `GET /t/c/:token` (click: 302 to the original URL) and `GET /t/o/:token` (open: a 1x1 GIF),
 * both answering at once and recording in `waitUntil`; unknown or tampered tokens get a 404, never a redirect.
 * And the API side: tenant settings (`/v1/tracking/settings`), a message's per-recipient opens and clicks
 * (`/v1/messages/:id/tracking`) and totals (`/v1/tracking/stats`), human and machine apart.
 */
import { Hono, type Context } from "hono";
import { signingSecret } from "../config";
import { listTrackingSettings, messageTracking, putTrackingSettings, trackingStats } from "../store/tracking";
import { recordTrackingHit } from "../tracking/record";
import { verifyTrackingToken, type TrackingToken } from "../tracking/token";
import { redirectLocation } from "../tracking/url";
import { emitNewEventsLogged } from "../webhooks/emit";
import { requireApiKey, type AppEnv } from "./auth";
import { TrackingSettingsPut, parseBody } from "./bodies";
import { ApiError } from "./errors";
import { readJsonBody, timeParam } from "./request";
import { ledgerOf } from "../store/shards";

/** The smallest transparent GIF (43 bytes): 1x1, one transparent colour. */
const PIXEL_GIF = Uint8Array.from(atob("R0lGODlhAQABAIAAAAAAAP///yH5BAEAAAAALAAAAAABAAEAAAIBRAA7"), (ch) => ch.charCodeAt(0));
/** Every open must reach us: no cache of any kind may answer in our place. */
const NO_CACHE = { "cache-control": "no-store, no-cache, must-revalidate, private, max-age=0", pragma: "no-cache", expires: "0" };
const ID = /^[0-9a-z]{1,32}$/;

export const tracking = new Hono<AppEnv>();

function notFound(): Response {
  return new Response("not found\n", { status: 404, headers: { "content-type": "text/plain; charset=utf-8", "cache-control": "no-store", "x-robots-tag": "noindex" } });
}

/** Verifies the token and schedules the recording after the response; null when the token is not ours. */
async function accept(c: Context<AppEnv>, kind: TrackingToken["kind"]): Promise<TrackingToken | null> {
  const secret = signingSecret(c.env);
  if (!secret) return null;
  const token = await verifyTrackingToken(c.req.param("token") ?? "", secret, kind);
  if (!token) return null;
  const request = { userAgent: c.req.header("user-agent") ?? null, method: c.req.method, at: Date.now() };
  c.executionCtx.waitUntil(
    recordTrackingHit(c.env, token, request).then(
      // Webhooks read the event log by watermark; a hit that wrote an event has them sent now, not at the next cron run.
      (event) => (event ? emitNewEventsLogged(c.env) : undefined),
      (e: unknown) => {
        console.error(`tracking: could not record the ${kind} of ${token.messageId}/${token.recipientIdx}`, e);
      },
    ),
  );
  return token;
}

tracking.get("/t/c/:token", async (c) => {
  const token = await accept(c, "click");
  if (token?.kind !== "click") return notFound();
  return new Response(null, {
    status: 302,
    headers: { location: redirectLocation(token.url), "cache-control": "no-store", "referrer-policy": "no-referrer", "x-robots-tag": "noindex" },
  });
});

tracking.get("/t/o/:token", async (c) => {
  const token = await accept(c, "open");
  if (!token) return notFound();
  return new Response(PIXEL_GIF, { status: 200, headers: { "content-type": "image/gif", "content-length": String(PIXEL_GIF.byteLength), ...NO_CACHE, "x-robots-tag": "noindex" } });
});

tracking.get("/v1/tracking/settings", requireApiKey, async (c) => {
  return c.json({ data: await listTrackingSettings(c.env.DB, c.get("tenant").id) });
});

/** Body: `{ "stream"?: "transactional" | "broadcast" (default: tenant-wide), "track_opens"?: bool | null, "track_clicks"?: bool | null }`. */
tracking.put("/v1/tracking/settings", requireApiKey, async (c) => {
  const { value } = await readJsonBody(c.req.raw, 4096);
  const { stream, track_opens: trackOpens, track_clicks: trackClicks } = parseBody(TrackingSettingsPut, value);
  await putTrackingSettings(c.env.DB, c.get("tenant").id, stream, { trackOpens, trackClicks });
  return c.json({ data: await listTrackingSettings(c.env.DB, c.get("tenant").id) });
});

tracking.get("/v1/messages/:id/tracking", requireApiKey, async (c) => {
  const id = c.req.param("id");
  const rows = ID.test(id) ? await messageTracking(await ledgerOf(c.env, c.get("tenant").id), id, c.get("tenant").id) : null;
  if (!rows) throw new ApiError(404, "not_found", "no such message");
  return c.json({ id, recipients: rows });
});

tracking.get("/v1/tracking/stats", requireApiKey, async (c) => {
  const until = timeParam(c, "until") ?? Date.now() + 1;
  const since = timeParam(c, "since") ?? until - 30 * 86_400_000;
  return c.json({ since: new Date(since).toISOString(), until: new Date(until).toISOString(), ...(await trackingStats(await ledgerOf(c.env, c.get("tenant").id), c.get("tenant").id, since, until)) });
});
