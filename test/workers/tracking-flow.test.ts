/**
 * Open and click tracking end to end: a message sent with tracking arrives with rewritten links and a pixel
 * per recipient, still passes DKIM, and following a link records `clicked` and redirects to the exact URL.
 */
import { describe, expect, inject, it } from "vitest";
import { MAX_INLINE_BODY_BYTES } from "../../src/config";
import { redirectLocation } from "../../src/tracking/url";
import { ADMIN_TOKEN, call, createTenantWithKey, env, unique, waitFor } from "./helpers";
import { APPLE_MPP, CHROME, arrival, eventsOf, htmlOf, publishDkim, recordingDomain, tokensIn, verifyDkim } from "./tracking-helpers";

const TARGET = "https://shop.example/produkt/straße?id=42&ref=mail&q=%C3%BC+x&emoji=🎉#abschnitt-ü";

const HTML = `<!doctype html><html><body>
<p>Hallo! <a href="https://shop.example/produkt/straße?id=42&amp;ref=mail&amp;q=%C3%BC+x&amp;emoji=🎉#abschnitt-ü">Zum Produkt</a></p>
<p><a href="mailto:help@example.com">Mail</a> <a href="tel:+493012345">Call</a> <a href="#top">Top</a>
<a href="https://keep.example/as-is" data-no-track>untracked</a>
<a href="https://unsubscribe.example/u?t=1">Unsubscribe</a></p>
</body></html>`;

async function markDeliveredAgo(messageId: string, idx: number, ms: number): Promise<void> {
  // Humans do not click within seconds of delivery; move the delivery back so this click counts as a person's.
  // The ledger keeps recipients in the message row (`rcpts`, issue 16): `f` is the recipient's final time.
  const path = `$[${idx}].f`;
  await env.DB.prepare("UPDATE messages SET rcpts = json_set(rcpts, ?1, json_extract(rcpts, ?1) - ?2) WHERE id = ?3").bind(path, ms, messageId).run();
}

describe("tracking end to end", () => {
  it("rewrites links per recipient before DKIM signing, adds a pixel, and leaves the rest alone", async () => {
    const from = `${unique("t")}.signed.example`;
    const { key, tenantId } = await createTenantWithKey([from]);
    expect(await publishDkim(from, key)).toBeGreaterThan(0);
    const { domain, port } = await recordingDomain();
    const rcpts = [`a-${unique()}@${domain}`, `b-${unique()}@${domain}`];
    const hook = await call("/admin/webhooks", { method: "POST", key: ADMIN_TOKEN, json: { tenant_id: tenantId, url: `http://127.0.0.1:${inject("controlPort")}/webhook-receiver`, events: ["opened", "clicked"] } });
    expect(hook.status).toBe(201);

    const res = await call("/v1/messages", {
      method: "POST",
      key,
      json: {
        from: `news@${from}`,
        to: rcpts,
        subject: `tracked ${unique()}`,
        html: HTML,
        text: "Zum Produkt: https://shop.example/",
        headers: { "List-Unsubscribe": "<https://unsubscribe.example/u?t=1>" },
        track_opens: true,
        track_clicks: true,
      },
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };

    const received = await Promise.all(rcpts.map((r) => arrival(port, r)));
    const bodies = await Promise.all(received.map(htmlOf));
    const tokens = bodies.map(tokensIn);
    for (const [i, t] of tokens.entries()) {
      expect(t.clicks, `recipient ${i}`).toHaveLength(1);
      expect(t.open, `recipient ${i}`).not.toBeNull();
      expect(bodies[i]).not.toContain("shop.example");
      for (const kept of ['href="mailto:help@example.com"', 'href="tel:+493012345"', 'href="#top"', 'href="https://keep.example/as-is" data-no-track', 'href="https://unsubscribe.example/u?t=1"']) {
        expect(bodies[i]).toContain(kept);
      }
      expect(bodies[i]).toMatch(/<img src="https:\/\/relay\.test\/t\/o\/[^"]+" width="1" height="1"[^>]*>\n?<\/body>/);
    }
    // Each recipient has tokens of their own; one Message-ID for the message.
    expect(tokens[0]!.clicks[0]).not.toBe(tokens[1]!.clicks[0]);
    expect(tokens[0]!.open).not.toBe(tokens[1]!.open);
    const messageIds = received.map((m) => /^Message-ID:\s*(\S+)/im.exec(m.raw)?.[1]);
    expect(messageIds[0]).toBeDefined();
    expect(messageIds[1]).toBe(messageIds[0]);
    // The text part is not rewritten.
    expect(received[0]!.raw).toContain("https://shop.example/");

    for (const m of received) {
      const results = await verifyDkim(m);
      expect(results.length).toBeGreaterThan(0);
      expect(results.map((r) => r.result)).toEqual(results.map(() => "pass"));
    }

    // Following the link: 302 to the exact original URL (percent-encoded only where a header must be).
    await waitFor(async () => {
      const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM recipients WHERE message_id = ? AND status = 'delivered'").bind(id).first<{ n: number }>();
      return row?.n === 2 ? true : undefined;
    }, 20_000, "both recipients delivered");
    await markDeliveredAgo(id, 0, 60_000);
    const click = await call(`/t/c/${tokens[0]!.clicks[0]}`, { headers: { "user-agent": CHROME }, redirect: "manual" });
    expect(click.status).toBe(302);
    expect(click.headers.get("location")).toBe(redirectLocation(TARGET));
    expect(click.headers.get("location")).toBe("https://shop.example/produkt/stra%C3%9Fe?id=42&ref=mail&q=%C3%BC+x&emoji=%F0%9F%8E%89#abschnitt-%C3%BC");
    expect(new URL(click.headers.get("location")!).href).toBe(new URL(TARGET).href);
    expect(click.headers.get("cache-control")).toContain("no-store");

    const [clicked] = await eventsOf(env.DB, id, "clicked");
    expect(clicked).toMatchObject({ recipient_idx: 0, recipient: rcpts[0], text: TARGET, data: { machine: false, url: TARGET, first: true, user_agent: CHROME } });

    // A click within seconds of delivery (recipient 1) is a scanner's.
    await env.DB.prepare("UPDATE messages SET rcpts = json_set(rcpts, '$[1].f', ?) WHERE id = ?").bind(Date.now(), id).run();
    const scanner = await call(`/t/c/${tokens[1]!.clicks[0]}`, { headers: { "user-agent": CHROME }, redirect: "manual" });
    expect(scanner.status).toBe(302);
    const clicks = await eventsOf(env.DB, id, "clicked", 2);
    expect(clicks[1]).toMatchObject({ recipient_idx: 1, data: { machine: true, machine_reason: "soon_after_delivery", first: false } });

    // Opens: a GIF that no cache keeps; Apple's MPP proxy is a machine, the browser a person.
    const mpp = await call(`/t/o/${tokens[0]!.open}`, { headers: { "user-agent": APPLE_MPP } });
    expect(mpp.status).toBe(200);
    expect(mpp.headers.get("content-type")).toBe("image/gif");
    expect(mpp.headers.get("cache-control")).toContain("no-store");
    const gif = new Uint8Array(await mpp.arrayBuffer());
    expect(String.fromCharCode(...gif.slice(0, 6))).toBe("GIF89a");
    await eventsOf(env.DB, id, "opened", 1);
    for (let i = 0; i < 2; i++) {
      const human = await call(`/t/o/${tokens[0]!.open}`, { headers: { "user-agent": CHROME } });
      expect(human.status).toBe(200);
      await human.arrayBuffer();
      await eventsOf(env.DB, id, "opened", 2 + i);
    }
    const opens = await eventsOf(env.DB, id, "opened", 3);
    expect(opens.map((o) => [o.data.machine, o.data.first])).toEqual([
      [true, false],
      [false, true],
      [false, false],
    ]);
    expect(opens[0]!.data.machine_reason).toBe("apple_mpp");

    // Per-recipient counters: first open and total opens, human and machine apart.
    const tr = await call(`/v1/messages/${id}/tracking`, { key });
    expect(tr.status).toBe(200);
    const view = (await tr.json()) as { recipients: Record<string, unknown>[] };
    expect(view.recipients[0]).toMatchObject({ recipient: rcpts[0], opens: 2, machine_opens: 1, clicks: 1, machine_clicks: 0 });
    expect(view.recipients[0]!.first_open_at).toEqual(expect.any(String));
    expect(view.recipients[1]).toMatchObject({ recipient: rcpts[1], opens: 0, machine_opens: 0, clicks: 0, machine_clicks: 1 });
    const stats = await call("/v1/tracking/stats", { key });
    expect(await stats.json()).toMatchObject({ unique_opens: 1, opens: 2, machine_opens: 1, unique_clicks: 1, clicks: 1, machine_clicks: 1, machine_only_clicks: 1 });

    // The timeline shows them like every other event, and webhooks get them.
    const timeline = (await (await call(`/v1/messages/${id}`, { key })).json()) as { events: { type: string; text: string | null }[] };
    expect(timeline.events.filter((e) => e.type === "clicked").map((e) => e.text)).toEqual([TARGET, `${TARGET} machine: soon_after_delivery`]);
    expect(timeline.events.filter((e) => e.type === "opened")).toHaveLength(3);
    const attempts = await waitFor(async () => {
      const { results } = await env.DB.prepare("SELECT DISTINCT event_type FROM webhook_attempts WHERE message_id = ?").bind(id).all<{ event_type: string }>();
      const types = results.map((r) => r.event_type).sort();
      return types.length === 2 ? types : undefined;
    }, 20_000, "webhook attempts for opened and clicked");
    expect(attempts).toEqual(["clicked", "opened"]);
  });

  it("gives every recipient of a large tracked message its own body in R2", async () => {
    const from = `${unique("big")}.example`;
    const { key } = await createTenantWithKey([from]);
    const { domain, port } = await recordingDomain();
    const rcpts = [`a-${unique()}@${domain}`, `b-${unique()}@${domain}`];
    // Larger than a Queue message may carry, so the bodies are spooled to R2.
    const filler = `<p>${"Lorem ipsum dolor sit amet. ".repeat(6000)}</p>`;
    const res = await call("/v1/messages", {
      method: "POST",
      key,
      json: { from: `big@${from}`, to: rcpts, subject: "big", html: `<html><body>${filler}<a href="https://big.example/?p=1">end</a></body></html>`, track_clicks: true },
    });
    expect(res.status).toBe(202);
    const { id } = (await res.json()) as { id: string };
    const bodies = await Promise.all(rcpts.map(async (r) => htmlOf(await arrival(port, r))));
    const tokens = bodies.map((b) => tokensIn(b).clicks);
    expect(tokens.map((t) => t.length)).toEqual([1, 1]);
    expect(tokens[0]![0]).not.toBe(tokens[1]![0]);
    expect(bodies.map((b) => b.includes("big.example"))).toEqual([false, false]);
    // Each copy was too large for a Queue message (so it travelled through R2), and once every recipient is final
    // the relay deletes the shared body and each recipient's own body.
    expect(bodies.every((b) => b.length > MAX_INLINE_BODY_BYTES)).toBe(true);
    const row = await env.DB.prepare("SELECT body_key FROM messages WHERE id = ?").bind(id).first<{ body_key: string | null }>();
    expect(row?.body_key).toBe(`bodies/${id}`);
    await waitFor(async () => ((await env.BODIES.head(`bodies/${id}`)) === null && (await env.BODIES.head(`bodies/${id}/1`)) === null) || undefined, 15_000, "bodies deleted after delivery");
    const click = await call(`/t/c/${tokens[1]![0]}`, { redirect: "manual" });
    expect(click.headers.get("location")).toBe("https://big.example/?p=1");
    const [event] = await eventsOf(env.DB, id, "clicked");
    expect(event).toMatchObject({ recipient_idx: 1, recipient: rcpts[1] });
  });
});
