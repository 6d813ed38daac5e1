/** Tracking settings: off by default; per tenant, per stream and per message, the most specific winning. */
import PostalMime from "postal-mime";
import { describe, expect, it } from "vitest";
import { sendRequest, type SendContext } from "../../src/accept/send";
import { loadConfig } from "../../src/config";
import { validateSendRequest } from "../../src/mime/validate";
import { findApiKey } from "../../src/store/keys";
import { call, createTenantWithKey, env, unique } from "./helpers";

async function setup(): Promise<{ key: string; domain: string; ctx: SendContext }> {
  const domain = `${unique("set")}.example`;
  const { key } = await createTenantWithKey([domain]);
  const record = await findApiKey(env.DB, key);
  const ctx: SendContext = { env, config: loadConfig(env), tenant: record!.tenant, protocol: "HTTPS", publicBaseUrl: "https://relay.test" };
  return { key, domain, ctx };
}

/** The HTML part of the signed message the relay would send (dry run) for a request with these extra fields. */
async function composed(ctx: SendContext, domain: string, extra: Record<string, unknown> = {}): Promise<string> {
  const v = validateSendRequest({ from: `a@${domain}`, to: ["r@rcpt.example"], subject: "s", html: '<p><a href="https://x.example/">x</a></p>', ...extra });
  if (!v.ok) throw new Error(v.error.message);
  return htmlOf((await sendRequest(ctx, v.value, { dryRun: true })).raw);
}

/** The decoded HTML part (the raw message may fold or encode it). */
async function htmlOf(raw: string): Promise<string> {
  return (await PostalMime.parse(raw)).html ?? "";
}

const tracksClicks = (raw: string) => raw.includes("/t/c/");
const tracksOpens = (raw: string) => raw.includes("/t/o/");

describe("tracking settings", () => {
  it("is off by default and on per message", async () => {
    const { ctx, domain } = await setup();
    const plain = await composed(ctx, domain);
    expect([tracksClicks(plain), tracksOpens(plain)]).toEqual([false, false]);
    const both = await composed(ctx, domain, { track_opens: true, track_clicks: true });
    expect([tracksClicks(both), tracksOpens(both)]).toEqual([true, true]);
    const opensOnly = await composed(ctx, domain, { track_opens: true });
    expect([tracksClicks(opensOnly), tracksOpens(opensOnly)]).toEqual([false, true]);
  });

  it("applies tenant-wide and per-stream settings, with the message's own fields winning", async () => {
    const { ctx, domain, key } = await setup();
    const put = await call("/v1/tracking/settings", { method: "PUT", key, json: { track_clicks: true } });
    expect(put.status).toBe(200);
    expect(((await put.json()) as { data: unknown[] }).data).toEqual([{ stream: "*", track_opens: null, track_clicks: true, updated_at: expect.any(String) }]);
    let raw = await composed(ctx, domain);
    expect([tracksClicks(raw), tracksOpens(raw)]).toEqual([true, false]);
    raw = await composed(ctx, domain, { track_clicks: false });
    expect(tracksClicks(raw)).toBe(false);

    // The transactional stream turns clicks off again and opens on.
    expect((await call("/v1/tracking/settings", { method: "PUT", key, json: { stream: "transactional", track_clicks: false, track_opens: true } })).status).toBe(200);
    raw = await composed(ctx, domain);
    expect([tracksClicks(raw), tracksOpens(raw)]).toEqual([false, true]);
    // null goes back to inheriting the tenant-wide value.
    expect((await call("/v1/tracking/settings", { method: "PUT", key, json: { stream: "transactional", track_clicks: null } })).status).toBe(200);
    raw = await composed(ctx, domain);
    expect([tracksClicks(raw), tracksOpens(raw)]).toEqual([true, true]);
    const got = (await (await call("/v1/tracking/settings", { key })).json()) as { data: { stream: string }[] };
    expect(got.data.map((d) => d.stream).sort()).toEqual(["*", "transactional"]);
  });

  it("refuses bad settings bodies", async () => {
    const { key } = await setup();
    const bad = async (json: unknown, field: string) => {
      const r = await call("/v1/tracking/settings", { method: "PUT", key, json });
      expect(r.status).toBe(400);
      expect(((await r.json()) as { error: { field: string } }).error.field).toBe(field);
    };
    await bad({ track_opens: "yes" }, "track_opens");
    await bad({ stream: "marketing", track_opens: true }, "stream");
    await bad({ track_everything: true }, "track_everything");
    await bad({}, "track_opens");
  });

  it("refuses a tracked message whose per-recipient copies would not fit in memory", async () => {
    const { ctx, domain } = await setup();
    const html = `<p>${"x".repeat(9 * 1024 * 1024)}</p>`;
    const v = validateSendRequest({ from: `a@${domain}`, to: ["r1@rcpt.example", "r2@rcpt.example"], subject: "s", html, track_opens: true });
    if (!v.ok) throw new Error(v.error.message);
    await expect(sendRequest(ctx, v.value, { dryRun: true })).rejects.toMatchObject({ status: 422, code: "too_large", field: "html" });
  });

  it("refuses tracking when the relay has no https base URL for the links", async () => {
    const { ctx, domain } = await setup();
    await expect(composed({ ...ctx, publicBaseUrl: null }, domain, { track_clicks: true })).rejects.toMatchObject({ status: 422, field: "track_clicks" });
    // Without an HTML part there is nothing to track, and no error.
    const v = validateSendRequest({ from: `a@${domain}`, to: ["r@rcpt.example"], subject: "s", text: "https://x.example/", track_clicks: true });
    if (!v.ok) throw new Error(v.error.message);
    const raw = (await sendRequest({ ...ctx, publicBaseUrl: null }, v.value, { dryRun: true })).raw;
    expect((await PostalMime.parse(raw)).text).toContain("https://x.example/");
  });
});
