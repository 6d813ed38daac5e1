/**
 * The blocklist watch against the local DoH stub: listed, unlisted and error answers (Spamhaus 127.255.255.x,
 * SERVFAIL), listing and delisting events in the admin API, webhooks for both, SPF learning, and the query budget.
 */
import { describe, expect, inject, it } from "vitest";
import { loadConfig } from "../../src/config";
import { runReputationWatch } from "../../src/reputation/monitor";
import { checkResponse } from "./api-schema";
import { ADMIN_TOKEN, call, createTenantWithKey, env, unique, waitFor } from "./helpers";

const control = () => `http://127.0.0.1:${inject("controlPort")}`;

async function dns(name: string, type: "A" | "TXT", entry: { Status: number; Answer?: { name: string; type: number; TTL: number; data: string }[] }) {
  const r = await fetch(`${control()}/dns`, { method: "POST", headers: { "content-type": "application/json" }, body: JSON.stringify({ name, type, entry }) });
  expect(r.status).toBe(200);
}
const a = (name: string, ...codes: string[]) => dns(name, "A", { Status: 0, Answer: codes.map((data) => ({ name, type: 1, TTL: 60, data })) });
const rev = (ip: string) => ip.split(".").reverse().join(".");
const randomIp = () => `198.18.${Math.floor(Math.random() * 250) + 1}.${Math.floor(Math.random() * 250) + 1}`;

interface Overview {
  subjects: { subject: string; label: string | null; checks: { list: string; state: string; codes: string[]; error: string | null }[] }[];
  listings: { subject: string; list: string; meaning: string; blocking: boolean }[];
  history: { type: string; subject: string; list: string }[];
}
async function overview(): Promise<Overview> {
  const r = await call("/admin/reputation", { key: ADMIN_TOKEN });
  expect(r.status).toBe(200);
  return checkResponse<Overview>(r, "GET", "/admin/reputation");
}

/** Runs the watch until nothing is due at `now` (each run is bounded by REPUTATION_QUERIES_PER_RUN). */
async function watchUntilDone(now: number) {
  for (let i = 0; i < 10; i++) {
    const r = await runReputationWatch(env, loadConfig(env), now);
    if (r.checked === 0 && r.learned === 0) return;
  }
}

describe("blocklist watch over DoH", () => {
  it("records listings, ignores error answers, and sends webhooks on listing and delisting", async () => {
    const domain = `${unique("rep")}.example`;
    const { tenantId } = await createTenantWithKey([domain]);
    const hook = unique("rephook");
    const created = await call("/admin/webhooks", { method: "POST", key: ADMIN_TOKEN, json: { tenant_id: tenantId, url: `${control()}/hooks/${hook}`, events: ["reputation.listed", "reputation.delisted"] } });
    expect(created.status).toBe(201);
    const listedIp = randomIp();
    const refusedIp = randomIp();
    for (const [ip, label] of [[listedIp, "upstream ses"], [refusedIp, "upstream backup"]]) {
      const r = await call("/admin/reputation/subjects", { method: "POST", key: ADMIN_TOKEN, json: { subject: ip, label, tenant_id: tenantId } });
      expect(r.status).toBe(201);
      await checkResponse(r, "POST", "/admin/reputation/subjects");
    }
    await a(`${rev(listedIp)}.zen.spamhaus.org`, "127.0.0.2", "127.0.0.4");
    await dns(`${rev(listedIp)}.bl.spamcop.net`, "A", { Status: 2 });
    // Spamhaus says "query through a public resolver": an error, never a listing.
    await a(`${rev(refusedIp)}.zen.spamhaus.org`, "127.255.255.254");
    // The sender domain on URIBL, but URIBL refuses the query (127.0.0.1): not a listing either.
    await a(`${domain}.multi.uribl.com`, "127.0.0.1");
    await a(`${domain}.dbl.spamhaus.org`, "127.0.1.2");

    const t0 = Date.now();
    await watchUntilDone(t0);
    let o = await overview();
    const mine = o.listings.filter((l) => [listedIp, refusedIp, domain].includes(l.subject)).map((l) => `${l.subject} ${l.list}`).sort();
    expect(mine).toEqual([`${domain} spamhaus-dbl`, `${listedIp} spamhaus-zen`].sort());
    expect(o.listings.find((l) => l.subject === listedIp)?.meaning).toMatch(/SBL.*XBL/);
    const refused = o.subjects.find((s) => s.subject === refusedIp)!;
    expect(refused.checks.find((c) => c.list === "spamhaus-zen")).toMatchObject({ state: "unknown" });
    expect(refused.checks.find((c) => c.list === "spamhaus-zen")?.error).toMatch(/public or open resolver/);
    const listed = o.subjects.find((s) => s.subject === listedIp)!;
    expect(listed.label).toBe("upstream ses");
    expect(listed.checks.find((c) => c.list === "barracuda")?.state).toBe("clear");
    expect(listed.checks.find((c) => c.list === "spamcop")).toMatchObject({ state: "unknown" });
    expect(o.subjects.find((s) => s.subject === domain)!.checks.find((c) => c.list === "uribl")).toMatchObject({ state: "unknown" });

    // Delisting: the answer goes back to NXDOMAIN; seen at the next check after the interval.
    await dns(`${rev(listedIp)}.zen.spamhaus.org`, "A", { Status: 3 });
    await watchUntilDone(t0 + 2 * 3600_000);
    o = await overview();
    expect(o.listings.some((l) => l.subject === listedIp)).toBe(false);
    expect(o.history.filter((h) => h.subject === listedIp).map((h) => h.type)).toEqual(["reputation.delisted", "reputation.listed"]);

    const received = async () => (await (await fetch(`${control()}/hooks/${hook}`)).json()) as { body: string }[];
    const got = await waitFor(async () => {
      const r = (await received()).map((x) => JSON.parse(x.body) as { type: string; tenant_id: string; data: { extra: { subject: string; list: string } } });
      return r.length >= 3 ? r : undefined;
    }, 20_000, "three reputation webhooks");
    expect(got.map((p) => `${p.type} ${p.data.extra.subject} ${p.data.extra.list}`).sort()).toEqual(
      [`reputation.listed ${listedIp} spamhaus-zen`, `reputation.listed ${domain} spamhaus-dbl`, `reputation.delisted ${listedIp} spamhaus-zen`].sort(),
    );
    expect(got.every((p) => p.tenant_id === tenantId)).toBe(true);
    const history = await checkResponse<{ data: { subject: string }[] }>(await call("/admin/reputation/history?limit=100", { key: ADMIN_TOKEN }), "GET", "/admin/reputation/history");
    expect(history.data.filter((h) => h.subject === listedIp)).toHaveLength(2);
    const run = await call("/admin/reputation/check", { method: "POST", key: ADMIN_TOKEN });
    await checkResponse(run, "POST", "/admin/reputation/check");
    const removed = await call(`/admin/reputation/subjects/${refusedIp}`, { method: "DELETE", key: ADMIN_TOKEN });
    await checkResponse(removed, "DELETE", `/admin/reputation/subjects/${refusedIp}`);
    expect((await overview()).subjects.some((x) => x.subject === refusedIp)).toBe(false);
    // A sender domain removed from its tenant is no longer watched, and its old listing is no longer shown.
    expect((await call(`/admin/tenants/${tenantId}/domains/${domain}`, { method: "DELETE", key: ADMIN_TOKEN })).status).toBe(200);
    o = await overview();
    expect(o.listings.some((l) => l.subject === domain)).toBe(false);
    expect(o.subjects.some((x) => x.subject === domain)).toBe(false);
  });

  it("learns sending IPs from SPF and keeps each run within its query budget", async () => {
    const domain = `${unique("spf")}.example`;
    await createTenantWithKey([domain]);
    const learned = randomIp();
    await dns(domain, "TXT", { Status: 0, Answer: [{ name: domain, type: 16, TTL: 60, data: `"v=spf1 ip4:${learned} ip4:10.0.0.0/8 include:_spf.example.net -all"` }] });
    const fetches: string[] = [];
    const counting: typeof fetch = (input, init) => {
      fetches.push(String(input));
      return fetch(input, init);
    };
    const now = Date.now() + 5 * 3600_000;
    for (let i = 0; i < 10; i++) {
      const before = fetches.length;
      const r = await runReputationWatch(env, loadConfig(env), now, counting);
      expect(fetches.length - before).toBeLessThanOrEqual(30);
      if (r.checked === 0 && r.learned === 0) break;
    }
    const o = await overview();
    const s = o.subjects.find((x) => x.subject === learned);
    expect(s?.label).toBe(`SPF of ${domain}`);
    expect(s?.checks.map((c) => c.list).sort()).toEqual(["barracuda", "spamcop", "spamhaus-zen"]);
    expect(o.subjects.some((x) => x.subject.startsWith("10."))).toBe(false);
  });

  it("records a listing once when two runs race over the same subject", async () => {
    const ip = randomIp();
    expect((await call("/admin/reputation/subjects", { method: "POST", key: ADMIN_TOKEN, json: { subject: ip } })).status).toBe(201);
    await a(`${rev(ip)}.b.barracudacentral.org`, "127.0.0.2");
    const now = Date.now() + 9 * 3600_000;
    const runs = await Promise.all([runReputationWatch(env, loadConfig(env), now), runReputationWatch(env, loadConfig(env), now), runReputationWatch(env, loadConfig(env), now)]);
    expect(runs.reduce((s, r) => s + r.events, 0)).toBeGreaterThanOrEqual(1);
    const rows = await env.DB.prepare("SELECT type FROM reputation_events WHERE subject = ? AND list = 'barracuda'").bind(ip).all<{ type: string }>();
    expect(rows.results.map((r) => r.type)).toEqual(["reputation.listed"]);
  });

  it("refuses bad subjects with the closed error codes", async () => {
    for (const [json, code] of [
      [{ subject: "not an ip" }, "invalid_field"],
      [{}, "missing_field"],
      [{ subject: "192.0.2.1", tenant_id: "no-such-tenant" }, "not_found"],
      [{ subject: "192.0.2.1", label: 5 }, "invalid_field"],
    ] as const) {
      const r = await call("/admin/reputation/subjects", { method: "POST", key: ADMIN_TOKEN, json });
      expect((await checkResponse<{ error: { code: string } }>(r, "POST", "/admin/reputation/subjects")).error.code).toBe(code);
    }
    expect((await call("/admin/reputation", {})).status).toBe(401);
    expect((await call("/admin/reputation/subjects/192.0.2.250", { method: "DELETE", key: ADMIN_TOKEN })).status).toBe(404);
  });
});
