/**
 * Admin API for a tenant's streams (issue 12, behind ADMIN_TOKEN): read both streams' state, pause and resume a
 * stream (while paused its mail is parked, nothing is lost; resume releases it in order), and set its delivery
 * limits (messages per second, messages per UTC day).
 */
import { Hono, type Context } from "hono";
import type { Stream } from "../queue/job";
import { releaseParkedJobs, streamGateKey } from "../delivery/streams";
import { countParkedJobs, getStreamSettings, setStreamLimits, setStreamPaused, STREAMS } from "../store/streams";
import { requireAdmin, type AppEnv } from "./auth";
import { TenantStreamLimits, parseBody } from "./bodies";
import { ApiError } from "./errors";
import { tenantExists } from "../store/tenants";
import { readJsonObject } from "./request";

export const adminStreams = new Hono<AppEnv>();
adminStreams.use("/admin/tenants/:id/streams", requireAdmin);
adminStreams.use("/admin/tenants/:id/streams/*", requireAdmin);

async function target(c: Context<AppEnv>): Promise<{ tenantId: string; stream: Stream | null }> {
  const tenantId = c.req.param("id") ?? "";
  const raw = c.req.param("stream");
  if (raw !== undefined && !(STREAMS as readonly string[]).includes(raw)) throw new ApiError(400, "invalid_field", 'stream must be "transactional" or "broadcast"', "stream");
  const exists = await tenantExists(c.env.DB, tenantId);
  if (!exists) throw new ApiError(404, "not_found", "no such tenant");
  return { tenantId, stream: (raw as Stream | undefined) ?? null };
}

/** One stream as the API shows it, with today's use of its quota from its gate. */
async function view(env: Env, tenantId: string, stream: Stream) {
  const s = await getStreamSettings(env.DB, tenantId, stream);
  const parked = await countParkedJobs(env.DB, tenantId, stream);
  const used = s.quotaPerDay !== null ? (await env.DOMAIN_GATE.get(env.DOMAIN_GATE.idFromName(streamGateKey(tenantId, stream))).state()).quotaUsedToday : null;
  return {
    tenant_id: tenantId,
    stream,
    paused: s.paused,
    paused_at: s.pausedAt === null ? null : new Date(s.pausedAt).toISOString(),
    parked,
    rate_per_second: s.ratePerSecond,
    quota_per_day: s.quotaPerDay,
    quota_used_today: used,
  };
}

adminStreams.get("/admin/tenants/:id/streams", async (c) => {
  const { tenantId } = await target(c);
  return c.json({ data: await Promise.all(STREAMS.map((s) => view(c.env, tenantId, s))) });
});

adminStreams.post("/admin/tenants/:id/streams/:stream/pause", async (c) => {
  const { tenantId, stream } = await target(c);
  await setStreamPaused(c.env.DB, tenantId, stream!, true);
  return c.json(await view(c.env, tenantId, stream!));
});

adminStreams.post("/admin/tenants/:id/streams/:stream/resume", async (c) => {
  const { tenantId, stream } = await target(c);
  await setStreamPaused(c.env.DB, tenantId, stream!, false);
  const released = await releaseParkedJobs(c.env, tenantId, stream!);
  return c.json({ ...(await view(c.env, tenantId, stream!)), released });
});

/** Body: `{ "rate_per_second": number | null, "quota_per_day": integer | null }` (null or absent: no limit). */
adminStreams.put("/admin/tenants/:id/streams/:stream", async (c) => {
  const { tenantId, stream } = await target(c);
  const { rate_per_second: rate, quota_per_day: quota } = parseBody(TenantStreamLimits, await readJsonObject(c.req.raw));
  await setStreamLimits(c.env.DB, tenantId, stream!, { ratePerSecond: rate, quotaPerDay: quota });
  return c.json(await view(c.env, tenantId, stream!));
});
