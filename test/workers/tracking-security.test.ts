/** Tracking endpoints under bad input: unknown, tampered or swapped tokens get a 404 and never a redirect. */
import { describe, expect, it } from "vitest";
import { signTrackingToken } from "../../src/tracking/token";
import { call, createTenantWithKey, env, unique } from "./helpers";

const SECRET = "test-signing-secret-0123456789";

function b64url(text: string): string {
  const bytes = new TextEncoder().encode(text);
  return btoa(String.fromCharCode(...bytes)).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
}

async function expectRefused(path: string): Promise<void> {
  const r = await call(path, { redirect: "manual", headers: { "user-agent": "test" } });
  expect(r.status, path).toBe(404);
  expect(r.headers.get("location"), path).toBeNull();
  await r.arrayBuffer();
}

describe("tracking endpoints refuse tokens that are not ours", () => {
  it("answers a valid token (signed with the relay's secret) with a redirect", async () => {
    const token = await signTrackingToken({ kind: "click", messageId: "zz0000000000", recipientIdx: 0, url: "https://ok.example/?a=1#b" }, SECRET);
    const r = await call(`/t/c/${token}`, { redirect: "manual" });
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toBe("https://ok.example/?a=1#b");
  });

  it("answers HEAD like GET (scanners use it; the unit rules count it as a machine's)", async () => {
    const token = await signTrackingToken({ kind: "click", messageId: "zz0000000000", recipientIdx: 0, url: "https://ok.example/h" }, SECRET);
    const r = await call(`/t/c/${token}`, { method: "HEAD", redirect: "manual" });
    expect(r.status).toBe(302);
    expect(r.headers.get("location")).toBe("https://ok.example/h");
    await expectRefused(`/t/c/${token.slice(0, -2)}${token.endsWith("xx") ? "yy" : "xx"}`);
  });

  it("refuses tampered signatures, swapped payloads, other secrets and garbage", async () => {
    const token = await signTrackingToken({ kind: "click", messageId: "zz0000000000", recipientIdx: 0, url: "https://ok.example/" }, SECRET);
    const [payload, mac] = token.split(".") as [string, string];
    const flipped = `${mac.slice(0, 5)}${mac[5] === "A" ? "B" : "A"}${mac.slice(6)}`;
    await expectRefused(`/t/c/${payload}.${flipped}`);
    await expectRefused(`/t/c/${b64url("c\nzz0000000000\n0\nhttps://evil.example/")}.${mac}`);
    await expectRefused(`/t/c/${payload}`);
    await expectRefused(`/t/c/${await signTrackingToken({ kind: "click", messageId: "zz0000000000", recipientIdx: 0, url: "https://evil.example/" }, "someone-elses-secret-012345")}`);
    for (const junk of ["x", "..", "%00", "a.b.c", "A".repeat(5000)]) await expectRefused(`/t/c/${junk}`);
  });

  it("refuses an open token at the click endpoint and a click token at the open endpoint", async () => {
    const open = await signTrackingToken({ kind: "open", messageId: "zz0000000000", recipientIdx: 0 }, SECRET);
    const click = await signTrackingToken({ kind: "click", messageId: "zz0000000000", recipientIdx: 0, url: "https://ok.example/" }, SECRET);
    await expectRefused(`/t/c/${open}`);
    await expectRefused(`/t/o/${click}`);
    const pixel = await call(`/t/o/${open}`);
    expect(pixel.status).toBe(200);
    await pixel.arrayBuffer();
  });

  it("records nothing for a valid token of a message that does not exist", async () => {
    const id = unique("m").toLowerCase().replace(/[^0-9a-z]/g, "");
    const token = await signTrackingToken({ kind: "open", messageId: id, recipientIdx: 0 }, SECRET);
    const r = await call(`/t/o/${token}`);
    expect(r.status).toBe(200);
    await r.arrayBuffer();
    await new Promise((res) => setTimeout(res, 200));
    const row = await env.DB.prepare("SELECT COUNT(*) AS n FROM event_log WHERE message_id = ?").bind(id).first<{ n: number }>();
    expect(row?.n).toBe(0);
  });

  it("keeps a message's tracking to its tenant", async () => {
    const a = await createTenantWithKey([`${unique("a")}.example`]);
    const b = await createTenantWithKey([`${unique("b")}.example`]);
    await env.DB.prepare("INSERT INTO messages (id, tenant_id, mail_from, size_bytes, created_at) VALUES (?, ?, 'x@a.example', 1, ?)").bind("zzowned" + Date.now().toString(36), a.tenantId, Date.now()).run();
    const { results } = await env.DB.prepare("SELECT id FROM messages WHERE tenant_id = ?").bind(a.tenantId).all<{ id: string }>();
    const id = results[0]!.id;
    expect((await call(`/v1/messages/${id}/tracking`, { key: a.key })).status).toBe(200);
    expect((await call(`/v1/messages/${id}/tracking`, { key: b.key })).status).toBe(404);
    expect((await call(`/v1/messages/${id}/tracking`)).status).toBe(401);
    expect((await call("/v1/tracking/settings", { method: "PUT", json: { track_opens: true } })).status).toBe(401);
  });
});
