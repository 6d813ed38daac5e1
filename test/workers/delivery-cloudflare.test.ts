/**
 * `cloudflare:` routes: delivery through a send_email binding (Miniflare's local simulation of Cloudflare Email
 * Service, which only allows the destinations listed in vitest.config.ts). Its errors map to outcomes: a
 * refused destination bounces.
 */
import { describe, expect, it } from "vitest";
import { addRoute, eventRows, waitAllFinal } from "../support/delivery-helpers";
import { call, createTenantWithKey, unique } from "./helpers";

describe("cloudflare routes (send_email binding)", () => {
  it("delivers through the binding and bounces a destination it refuses", async () => {
    await addRoute({ match_recipient_domain: "cf-route.example", next_hop_url: "cloudflare:EMAIL" });
    const fromDomain = `${unique("f")}.example`;
    const { key } = await createTenantWithKey([fromDomain]);
    const r = await call("/v1/messages", {
      method: "POST",
      key,
      json: { from: `App <app@${fromDomain}>`, to: ["ok@cf-route.example", "blocked@cf-route.example", "also-ok@cf-route.example"], subject: "via Email Service", text: "hi" },
    });
    expect(r.status).toBe(202);
    const { id } = (await r.json()) as { id: string };
    const rows = await waitAllFinal([id], 30_000);
    const by = Object.fromEntries(rows.map((x) => [x.address, x.status]));
    expect(by).toEqual({ "ok@cf-route.example": "delivered", "also-ok@cf-route.example": "delivered", "blocked@cf-route.example": "bounced" });
    const events = await eventRows([id]);
    const delivered = events.filter((e) => e.type === "delivered");
    expect(delivered.every((e) => e.host === "cloudflare:EMAIL" && /^accepted as <.+>$/.test(e.text ?? ""))).toBe(true);
    expect(delivered.every((e) => typeof e.seq === "number")).toBe(true);
    expect(events.find((e) => e.type === "bounced")!.text).toContain("not allowed");
  });
});
