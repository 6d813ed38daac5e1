/** Webhook emission from the event log: a range leased by a caller that died is sent again once the lease expires. */
import { describe, expect, inject, it } from "vitest";
import { emitNewEvents } from "../../src/webhooks/emit";
import { ADMIN_TOKEN, call, createTenantWithKey, env, unique, waitFor } from "./helpers";

const control = () => `http://127.0.0.1:${inject("controlPort")}`;

describe("webhook emission", () => {
  it("waits for a live lease, and takes over an expired one so no event is lost", async () => {
    const domain = `${unique("we")}.example`;
    const { key, tenantId } = await createTenantWithKey([domain]);
    const name = unique("lease");
    const created = await call("/admin/webhooks", { method: "POST", key: ADMIN_TOKEN, json: { tenant_id: tenantId, url: `${control()}/hooks/${name}`, events: ["accepted"] } });
    expect(created.status).toBe(201);
    // Another caller holds the lease (and, say, died holding it).
    await env.DB.prepare("INSERT OR REPLACE INTO report_watermarks (name, last_event_id, updated_at) VALUES ('webhooks:lease', 1000000000, ?)").bind(Date.now()).run();
    const sent = await call("/v1/messages", { method: "POST", key, json: { from: `a@${domain}`, to: [`r@${unique("d")}.example`], subject: "s", text: "t" } });
    expect(sent.status).toBe(202);
    await new Promise((r) => setTimeout(r, 2_000));
    const received = async () => (await (await fetch(`${control()}/hooks/${name}`)).json()) as unknown[];
    expect(await received()).toEqual([]);
    expect(await emitNewEvents(env)).toBe(0);

    await env.DB.prepare("UPDATE report_watermarks SET updated_at = ? WHERE name = 'webhooks:lease'").bind(Date.now() - 10 * 60_000).run();
    expect(await emitNewEvents(env)).toBeGreaterThanOrEqual(1);
    await waitFor(async () => ((await received()).length === 1 ? true : undefined), 15_000, "the accepted event");
    const lease = await env.DB.prepare("SELECT COUNT(*) AS n FROM report_watermarks WHERE name = 'webhooks:lease'").first<{ n: number }>();
    expect(lease?.n).toBe(0);
  });
});
