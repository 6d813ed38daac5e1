/**
 * Tracking routes: `GET /t/c/:token` (click: 302 to the original URL) and `GET /t/o/:token` (open: a 1x1 GIF),
 * both answering at once and recording in `waitUntil`; unknown or tampered tokens get a 404, never a redirect.
 * And the API side: tenant settings (`/v1/tracking/settings`), a message's per-recipient opens and clicks
 * (`/v1/messages/:id/tracking`) and totals (`/v1/tracking/stats`), human and machine apart.
 */
import { Hono, type Context } from "hono";
import { signingSecret } from "../config";
import { listTrackingSettings, messageTracking, putTrackingSettings, trackingStats, type TrackingStream } from "../store/tracking";
import { recordTrackingHit } from "../tracking/record";
import { verifyTrackingToken, type TrackingToken } from "../tracking/token";
import { redirectLocation } from "../tracking/url";
import { emitNewEventsLogged } from "../webhooks/emit";
import { requireApiKey, type AppEnv } from "./auth";
import { ApiError } from "./errors";
import { readJsonBody, timeParam } from "./request";

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

const STREAMS: readonly TrackingStream[] = ["*", "transactional", "broadcast"];

tracking.get("/v1/tracking/settings", requireApiKey, async (c) => {
  return c.json({ data: await listTrackingSettings(c.env.DB, c.get("tenant").id) });
});

/** Body: `{ "stream"?: "transactional" | "broadcast" (default: tenant-wide), "track_opens"?: bool | null, "track_clicks"?: bool | null }`. */
tracking.put("/v1/tracking/settings", requireApiKey, async (c) => {
  const { value } = await readJsonBody(c.req.raw, 4096);
  if (typeof value !== "object" || value === null || Array.isArray(value)) throw new ApiError(400, "invalid_json", "the body must be a JSON object");
  const body = value as Record<string, unknown>;
  for (const key of Object.keys(body)) {
    if (!["stream", "track_opens", "track_clicks"].includes(key)) throw new ApiError(400, "unknown_field", `unknown field ${JSON.stringify(key)}`, key);
  }
  const stream = (body.stream ?? "*") as TrackingStream;
  if (!STREAMS.includes(stream)) throw new ApiError(400, "invalid_field", 'stream must be "transactional", "broadcast" or omitted (tenant-wide)', "stream");
  const flag = (key: "track_opens" | "track_clicks"): boolean | null | undefined => {
    const v = body[key];
    if (v !== undefined && v !== null && typeof v !== "boolean") throw new ApiError(400, "invalid_field", `${key} must be true, false or null (inherit)`, key);
    return v as boolean | null | undefined;
  };
  const trackOpens = flag("track_opens");
  const trackClicks = flag("track_clicks");
  if (trackOpens === undefined && trackClicks === undefined) throw new ApiError(400, "missing_field", "give track_opens and/or track_clicks", "track_opens");
  await putTrackingSettings(c.env.DB, c.get("tenant").id, stream, { trackOpens, trackClicks });
  return c.json({ data: await listTrackingSettings(c.env.DB, c.get("tenant").id) });
});

tracking.get("/v1/messages/:id/tracking", requireApiKey, async (c) => {
  const id = c.req.param("id");
  const rows = ID.test(id) ? await messageTracking(c.env.DB, id, c.get("tenant").id) : null;
  if (!rows) throw new ApiError(404, "not_found", "no such message");
  return c.json({ id, recipients: rows });
});

tracking.get("/v1/tracking/stats", requireApiKey, async (c) => {
  const until = timeParam(c, "until") ?? Date.now() + 1;
  const since = timeParam(c, "since") ?? until - 30 * 86_400_000;
  return c.json({ since: new Date(since).toISOString(), until: new Date(until).toISOString(), ...(await trackingStats(c.env.DB, c.get("tenant").id, since, until)) });
});
