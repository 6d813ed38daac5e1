/** Rollups by event-id watermark, percentiles from the histogram, retention, and the Cloudflare Access JWT check. */
import { describe, expect, it } from "vitest";
import { accessSettings } from "../../src/config";
import { verifyAccessJwt } from "../../src/report/access";
import { quantile, windowLatency, windowTotals } from "../../src/store/report";
import { pruneReportData } from "../../src/store/report-retention";
import { advanceRollups, rollupStatements } from "../../src/store/rollups";
import { env, unique } from "./helpers";

async function seed(tenantId: string, n: number, at: number, deliveredAfterMs: number): Promise<void> {
  const stmts: D1PreparedStatement[] = [];
  for (let i = 0; i < n; i++) {
    const id = unique("rm");
    // The ledger's shape (issue 16): the message row carries its recipient; its one outcome event also announces
    // `accepted` (feed bit 1) at `accepted_at`.
    stmts.push(
      env.DB.prepare("INSERT INTO messages (id, tenant_id, mail_from, size_bytes, created_at, rcpts) VALUES (?, ?, 'a@r.example', 1, ?, ?)")
        .bind(id, tenantId, at, JSON.stringify([{ a: "b@dest.example", s: "delivered", u: at, f: at }])),
      env.DB.prepare("INSERT INTO events (message_id, tenant_id, recipient_idx, recipient, type, at, host, feed, accepted_at) VALUES (?, ?, 0, 'b@dest.example', 'delivered', ?, 'mx.dest.example:25', 1, ?)")
        .bind(id, tenantId, at + deliveredAfterMs, at),
    );
  }
  await env.DB.batch(stmts);
}

describe("rollups", () => {
  it("count every event once, even when two passes race over the same range", async () => {
    const tenant = unique("rt");
    const now = Date.now();
    await advanceRollups(env.DB, 100);
    await seed(tenant, 5, now - 60_000, 1_500);
    const row = await env.DB.prepare("SELECT last_event_id AS lo, (SELECT MAX(id) FROM events) AS hi FROM report_watermarks WHERE name = 'rollup'").first<{ lo: number; hi: number }>();
    // Two callers prepared the same range; the second batch finds the watermark moved and changes nothing.
    await env.DB.batch(rollupStatements(env.DB, row!.lo, row!.hi));
    await env.DB.batch(rollupStatements(env.DB, row!.lo, row!.hi));
    expect(await windowTotals(env.DB, tenant, "1h", now)).toEqual({ accepted: 5, delivered: 5 });
    expect((await advanceRollups(env.DB, 1)).behind).toBe(0);
    const domain = await env.DB.prepare("SELECT SUM(count) AS n FROM report_rollups WHERE level = 'domain' AND tenant_id = ? AND key = 'dest.example'").bind(tenant).first<{ n: number }>();
    expect(domain?.n).toBe(5);
    const route = await env.DB.prepare("SELECT SUM(count) AS n FROM report_rollups WHERE level = 'route' AND tenant_id = ? AND key = 'mx.dest.example:25'").bind(tenant).first<{ n: number }>();
    expect(route?.n).toBe(5);
  });

  it("give accept-to-delivery percentiles within their histogram bucket", async () => {
    const tenant = unique("rl");
    const now = Date.now();
    await seed(tenant, 9, now - 120_000, 1_500);
    await seed(tenant, 1, now - 120_000, 45_000);
    await advanceRollups(env.DB, 100);
    const h = await windowLatency(env.DB, tenant, "24h", now);
    expect(h.total).toBe(10);
    const p50 = quantile(h, 0.5)!;
    expect(p50).toBeGreaterThan(1_000);
    expect(p50).toBeLessThanOrEqual(2_000);
    const p95 = quantile(h, 0.95)!;
    expect(p95).toBeGreaterThan(30_000);
    expect(p95).toBeLessThanOrEqual(60_000);
    expect(quantile({ buckets: [], total: 0 }, 0.5)).toBeNull();
  });

  it("prune raw events past retention only once rolled up, and keep the hourly rollups", async () => {
    const tenant = unique("rp");
    const old = Date.now() - 40 * 86_400_000;
    await seed(tenant, 3, old, 1_000);
    // Retention keeps the newest row of the log (ids never go back): a newer event of another tenant.
    await seed(unique("rq"), 1, Date.now(), 1_000);
    const before = await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE tenant_id = ?").bind(tenant).first<{ n: number }>();
    expect(before?.n).toBe(3);
    // Not yet rolled up: nothing of this tenant is deleted.
    await env.DB.prepare("UPDATE report_watermarks SET last_event_id = (SELECT MIN(id) - 1 FROM events WHERE tenant_id = ?) WHERE name = 'rollup'").bind(tenant).run();
    await pruneReportData(env.DB, 30 * 86_400_000);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE tenant_id = ?").bind(tenant).first<{ n: number }>())?.n).toBe(3);
    await advanceRollups(env.DB, 100);
    await pruneReportData(env.DB, 30 * 86_400_000);
    expect((await env.DB.prepare("SELECT COUNT(*) AS n FROM events WHERE tenant_id = ?").bind(tenant).first<{ n: number }>())?.n).toBe(0);
    const kept = await env.DB.prepare("SELECT SUM(count) AS n FROM report_rollups WHERE period = 3600 AND level = 'total' AND tenant_id = ?").bind(tenant).first<{ n: number }>();
    expect(kept?.n).toBe(6);
    const fine = await env.DB.prepare("SELECT COUNT(*) AS n FROM report_rollups WHERE period = 300 AND tenant_id = ?").bind(tenant).first<{ n: number }>();
    expect(fine?.n).toBe(0);
  });
});

describe("Cloudflare Access", () => {
  const team = "team.cloudflareaccess.com";
  const b64url = (b: ArrayBuffer | Uint8Array) =>
    btoa(String.fromCharCode(...new Uint8Array(b instanceof Uint8Array ? b : new Uint8Array(b)))).replace(/\+/g, "-").replace(/\//g, "_").replace(/=+$/, "");
  const enc = (v: unknown) => b64url(new TextEncoder().encode(JSON.stringify(v)));

  async function keyPair() {
    const pair = (await crypto.subtle.generateKey(
      { name: "RSASSA-PKCS1-v1_5", modulusLength: 2048, publicExponent: new Uint8Array([1, 0, 1]), hash: "SHA-256" },
      true,
      ["sign", "verify"],
    )) as CryptoKeyPair;
    const jwk = (await crypto.subtle.exportKey("jwk", pair.publicKey)) as JsonWebKey;
    return { pair, jwk: { ...jwk, kid: "k1" } };
  }

  async function sign(key: CryptoKey, payload: Record<string, unknown>, kid = "k1") {
    const head = enc({ alg: "RS256", kid, typ: "JWT" });
    const body = enc(payload);
    const sig = await crypto.subtle.sign("RSASSA-PKCS1-v1_5", key, new TextEncoder().encode(`${head}.${body}`));
    return `${head}.${body}.${b64url(sig)}`;
  }

  it("accepts a token signed by the team for this application, and nothing else", async () => {
    const { pair, jwk } = await keyPair();
    const other = await keyPair();
    const settings = { teamDomain: team, aud: "app-aud" };
    const load = async () => [jwk];
    const nowS = Math.floor(Date.now() / 1000);
    const good = { aud: ["app-aud"], iss: `https://${team}`, exp: nowS + 600, sub: "user-1", email: "ops@example.com" };
    expect(await verifyAccessJwt(await sign(pair.privateKey, good), settings, load, nowS)).toEqual({ sub: "user-1", email: "ops@example.com" });
    expect(await verifyAccessJwt(await sign(other.pair.privateKey, good), settings, load, nowS)).toBeNull();
    expect(await verifyAccessJwt(await sign(pair.privateKey, { ...good, aud: ["another-app"] }), settings, load, nowS)).toBeNull();
    expect(await verifyAccessJwt(await sign(pair.privateKey, { ...good, iss: "https://evil.cloudflareaccess.com" }), settings, load, nowS)).toBeNull();
    expect(await verifyAccessJwt(await sign(pair.privateKey, { ...good, exp: nowS - 1 }), settings, load, nowS)).toBeNull();
    expect(await verifyAccessJwt(await sign(pair.privateKey, good, "unknown-kid"), settings, load, nowS)).toBeNull();
    const [h, p] = (await sign(pair.privateKey, good)).split(".");
    expect(await verifyAccessJwt(`${h}.${p}.`, settings, load, nowS)).toBeNull();
    expect(await verifyAccessJwt("not-a-jwt", settings, load, nowS)).toBeNull();
  });

  it("is off unless both the team domain and the audience are configured", () => {
    expect(accessSettings(env)).toBeNull();
    expect(accessSettings({ ...env, ACCESS_TEAM_DOMAIN: "https://team.cloudflareaccess.com/", ACCESS_AUD: "x" } as Env)).toEqual({ teamDomain: team, aud: "x" });
  });
});
