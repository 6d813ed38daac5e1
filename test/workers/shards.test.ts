/**
 * Ledger shards (issue 17): the workers pool runs with LEDGER_SHARDS="DB,LEDGER_1". Tenants are placed on both;
 * the API, the consumer, webhooks, bounces and the reporting page find each tenant's ledger; a shard whose D1
 * fails only affects its own tenants; every shard is migrated.
 */
import { createExecutionContext, waitOnExecutionContext } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { app } from "../../src/http/app";
import { loadConfig } from "../../src/config";
import { acceptMessage } from "../../src/queue/spool";
import { handleOutbox } from "../../src/delivery/consumer";
import type { DeliveryJob } from "../../src/queue/job";
import { encodeReturnPath } from "../../src/mime/return-path";
import { overviewPage } from "../../src/report/pages/overview";
import { ledgerShards } from "../../src/store/shards";
import { recordTrackingHit } from "../../src/tracking/record";
import { emitNewEvents, type WebhookJob } from "../../src/webhooks/emit";
import { batchOf, capturingQueue, envWith } from "../support/ledger-env";
import { ADMIN_TOKEN, call, createTenantWithKey, env, receivedAt, routedDomain, unique, waitFor } from "./helpers";
import { deliverToWorker, fakeEmail, fixtureBytes } from "./inbound-support";
import { login } from "./report-support";
import { CHROME } from "./tracking-helpers";

const LEDGER_1 = (env as unknown as { LEDGER_1: D1Database }).LEDGER_1;

interface Placed {
  tenantId: string;
  key: string;
  domain: string;
}

async function tenantOn(shard: string): Promise<Placed> {
  const domain = `${unique("s")}.example`;
  const { tenantId, key } = await createTenantWithKey([domain], shard);
  return { tenantId, key, domain };
}

async function messageRow(db: D1Database, id: string): Promise<{ tenant_id: string; open: number } | null> {
  return db.prepare("SELECT tenant_id, open FROM messages WHERE id = ?").bind(id).first();
}

/** Sends through the API and waits until every recipient is delivered (the real queue and consumer). */
async function sendDelivered(t: Placed, to: string[]): Promise<string> {
  const res = await call("/v1/messages", { method: "POST", key: t.key, json: { from: `app@${t.domain}`, to, subject: "sharded", text: "hello" } });
  expect(res.status).toBe(202);
  const { id } = (await res.json()) as { id: string };
  await waitFor(async () => {
    const v = (await (await call(`/v1/messages/${id}`, { key: t.key })).json()) as { recipients: { status: string }[] };
    return v.recipients.every((r) => r.status === "delivered") ? true : undefined;
  }, 30_000, `delivery of ${id}`);
  return id;
}

/** A D1 binding that refuses everything, as a failing database would, with D1's `message`. */
function brokenD1(message = "D1_ERROR: shard unavailable (test)"): D1Database {
  const fail = () => {
    throw new Error(message);
  };
  return { prepare: fail, batch: async () => fail(), exec: async () => fail(), dump: async () => fail() } as unknown as D1Database;
}

describe("placement", () => {
  it("places a tenant on the shard the admin names, else on the one with the fewest tenants, and says where", async () => {
    const named = await call("/admin/tenants", { method: "POST", key: ADMIN_TOKEN, json: { name: "on shard 1", domains: [`${unique("p")}.example`], shard: "LEDGER_1" } });
    expect(named.status).toBe(201);
    const { id, shard } = (await named.json()) as { id: string; shard: string };
    expect(shard).toBe("LEDGER_1");
    expect(((await (await call(`/admin/tenants/${id}`, { key: ADMIN_TOKEN })).json()) as { shard: string }).shard).toBe("LEDGER_1");
    // The shard lists the tenant's id (lookups by message id seek once per tenant listed there).
    expect(await LEDGER_1.prepare("SELECT id FROM tenants WHERE id = ?").bind(id).first()).toEqual({ id });

    // Least-loaded: whichever shard has fewer tenants gets the next one.
    const counts = async () =>
      new Map(
        (
          await env.DB.prepare("SELECT COALESCE(s.shard, 'DB') AS shard, COUNT(*) AS n FROM tenants t LEFT JOIN tenant_shards s ON s.tenant_id = t.id GROUP BY 1").all<{
            shard: string;
            n: number;
          }>()
        ).results.map((r) => [r.shard, r.n]),
      );
    const before = await counts();
    const expected = (before.get("LEDGER_1") ?? 0) < (before.get("DB") ?? 0) ? "LEDGER_1" : "DB";
    const auto = await call("/admin/tenants", { method: "POST", key: ADMIN_TOKEN, json: { name: "auto", domains: [`${unique("p")}.example`] } });
    expect(((await auto.json()) as { shard: string }).shard).toBe(expected);
  });

  it("refuses an unknown shard with a field error and keeps no tenant", async () => {
    const tenantId = unique("bad").toLowerCase();
    const domain = `${unique("p")}.example`;
    const res = await call("/admin/tenants", { method: "POST", key: ADMIN_TOKEN, json: { id: tenantId, name: "nowhere", domains: [domain], shard: "LEDGER_9" } });
    expect(res.status).toBe(400);
    expect(((await res.json()) as { error: { code: string; field: string } }).error).toMatchObject({ code: "invalid_field", field: "shard" });
    expect(await env.DB.prepare("SELECT id FROM tenants WHERE id = ?").bind(tenantId).first()).toBeNull();
    expect(await env.DB.prepare("SELECT domain FROM sender_domains WHERE domain = ?").bind(domain).first()).toBeNull();
    const wrongType = await call("/admin/tenants", { method: "POST", key: ADMIN_TOKEN, json: { name: "x", domains: [], shard: 1 } });
    expect(wrongType.status).toBe(400);
  });
});

describe("every path finds the tenant's shard", () => {
  it("sends, lists, shows events and replays idempotent requests for tenants on both shards; rows stay on their own shard", async () => {
    const onDb = await tenantOn("DB");
    const on1 = await tenantOn("LEDGER_1");
    const ids: Record<string, string> = {};
    for (const [name, t] of [["DB", onDb], ["LEDGER_1", on1]] as const) ids[name] = await sendDelivered(t, [`u@${unique("r")}.example`]);

    expect(await messageRow(env.DB, ids.DB!)).toMatchObject({ tenant_id: onDb.tenantId, open: 0 });
    expect(await messageRow(LEDGER_1, ids.DB!)).toBeNull();
    expect(await messageRow(LEDGER_1, ids.LEDGER_1!)).toMatchObject({ tenant_id: on1.tenantId, open: 0 });
    expect(await messageRow(env.DB, ids.LEDGER_1!)).toBeNull();

    const list = (await (await call("/v1/messages", { key: on1.key })).json()) as { data: { id: string }[] };
    expect(list.data.map((m) => m.id)).toEqual([ids.LEDGER_1]);
    const events = (await (await call(`/v1/events?message_id=${ids.LEDGER_1}`, { key: on1.key })).json()) as { data: { type: string }[] };
    expect(events.data.map((e) => e.type)).toEqual(["accepted", "queued", "delivered"]);
    // A tenant never sees another shard's (or tenant's) message.
    expect((await call(`/v1/messages/${ids.DB}`, { key: on1.key })).status).toBe(404);

    // Idempotency keys live with the ledger: the replay comes from LEDGER_1.
    const body = { from: `app@${on1.domain}`, to: [`i@${unique("r")}.example`], subject: "once", text: "x" };
    const first = await call("/v1/messages", { method: "POST", key: on1.key, json: body, headers: { "idempotency-key": "k-1" } });
    const again = await call("/v1/messages", { method: "POST", key: on1.key, json: body, headers: { "idempotency-key": "k-1" } });
    expect(again.headers.get("idempotent-replayed")).toBe("true");
    expect(await again.json()).toEqual(await first.json());
    expect(await LEDGER_1.prepare("SELECT key FROM idempotency_keys WHERE tenant_id = ?").bind(on1.tenantId).first()).toEqual({ key: "k-1" });
  });

  it("emits webhooks from each shard's own feed", async () => {
    const onDb = await tenantOn("DB");
    const on1 = await tenantOn("LEDGER_1");
    for (const t of [onDb, on1]) {
      const r = await call("/admin/webhooks", { method: "POST", key: ADMIN_TOKEN, json: { tenant_id: t.tenantId, url: "https://hooks.example/x", events: ["delivered"] } });
      expect(r.status).toBe(201);
    }
    const idDb = await sendDelivered(onDb, [`w@${unique("r")}.example`]);
    const id1 = await sendDelivered(on1, [`w@${unique("r")}.example`]);
    // The real emitter may already have sent them (after each queue batch); the watermark on LEDGER_1 moved too.
    await emitNewEvents(env);
    const jobs: WebhookJob[] = [];
    const capture = capturingQueue(jobs as unknown as DeliveryJob[]);
    // Re-reading from the start of each shard's feed finds both tenants' deliveries, each on its own shard.
    for (const db of [env.DB, LEDGER_1]) await db.prepare("UPDATE report_watermarks SET last_event_id = 0 WHERE name = 'webhooks'").run();
    await emitNewEvents(envWith(env, { WEBHOOKS: capture }), 100);
    const delivered = jobs.filter((j) => j.payload.type === "delivered").map((j) => j.payload.message_id);
    expect(delivered).toEqual(expect.arrayContaining([idDb, id1]));
  });

  it("records a bounce to a VERP return path on the shard that holds the message, with its suppression", async () => {
    const on1 = await tenantOn("LEDGER_1");
    const rcpt = `b@${unique("r")}.example`;
    const id = await sendDelivered(on1, [rcpt]);
    const to = await encodeReturnPath({ messageId: id, recipientIndex: 0 }, (env as unknown as { SIGNING_SECRET: string }).SIGNING_SECRET, `bounces.${on1.domain}`);
    const fake = fakeEmail({ from: "", to, raw: await fixtureBytes("bounces/lhost-postfix-31.eml") });
    await deliverToWorker(fake);
    expect(fake.rejected()).toBeNull();
    const view = (await (await call(`/v1/messages/${id}`, { key: on1.key })).json()) as { recipients: { status: string }[] };
    expect(view.recipients[0]!.status).toBe("bounced");
    expect(await LEDGER_1.prepare("SELECT reason FROM suppressions WHERE tenant_id = ? AND address = ?").bind(on1.tenantId, rcpt).first()).toEqual({ reason: "hard_bounce" });
    // The inbound log (control plane) names the message.
    expect(await env.DB.prepare("SELECT outcome, message_id FROM inbound_messages WHERE envelope_to = ?").bind(to.toLowerCase()).first()).toEqual({ outcome: "recorded", message_id: id });
  });

  it("counts an open on the shard that holds the message (a tracking link names no tenant)", async () => {
    const on1 = await tenantOn("LEDGER_1");
    const id = await sendDelivered(on1, [`o@${unique("r")}.example`]);
    const event = await recordTrackingHit(env, { kind: "open", messageId: id, recipientIdx: 0 }, { userAgent: CHROME, method: "GET", at: Date.now() + 60_000 });
    expect(event).toMatchObject({ type: "opened", tenantId: on1.tenantId });
    expect(await LEDGER_1.prepare("SELECT opens FROM tracking_recipients WHERE message_id = ?").bind(id).first()).toEqual({ opens: 1 });
    expect(await env.DB.prepare("SELECT opens FROM tracking_recipients WHERE message_id = ?").bind(id).first()).toBeNull();
    const stats = (await (await call(`/v1/messages/${id}/tracking`, { key: on1.key })).json()) as { recipients: { opens: number }[] };
    expect(stats.recipients[0]!.opens).toBe(1);
    // An id no shard holds is no hit.
    expect(await recordTrackingHit(env, { kind: "open", messageId: "0000000000000000000zz", recipientIdx: 0 }, { userAgent: CHROME, method: "GET", at: Date.now() })).toBeNull();
  });

  it("shows tenants of both shards on the reporting page: counts across tenants, search and a message's page", async () => {
    const onDb = await tenantOn("DB");
    const on1 = await tenantOn("LEDGER_1");
    const rcpt1 = `page@${unique("r")}.example`;
    const idDb = await sendDelivered(onDb, [`page@${unique("r")}.example`]);
    const id1 = await sendDelivered(on1, [rcpt1]);
    const s = await login();
    const one = await (await s.get(`/dashboard?tenant=${on1.tenantId}`)).text();
    expect(one).toContain('data-metric="delivered"');
    expect(/data-metric="delivered"><div class="label">[^<]*<\/div><div class="value">1<\/div>/.test(one)).toBe(true);
    const found = await (await s.get(`/dashboard/messages?field=recipient&q=${encodeURIComponent(rcpt1)}`)).text();
    expect(found).toContain(id1);
    const newest = await (await s.get("/dashboard/messages")).text();
    expect(newest).toContain(id1);
    expect(newest).toContain(idDb);
    const page = await s.get(`/dashboard/messages/${id1}`);
    expect(page.status).toBe(200);
    expect(await page.text()).toContain(rcpt1);
  });
});

describe("erasing a tenant on a shard", () => {
  it("deletes its ledger on its shard, its control rows and its placement", async () => {
    const on1 = await tenantOn("LEDGER_1");
    const rcpt = `e@${unique("r")}.example`;
    const id = await sendDelivered(on1, [rcpt]);
    let status = "";
    for (let calls = 0; calls < 20 && status !== "erased"; calls++) {
      const r = await call(`/admin/tenants/${on1.tenantId}/erase`, { method: "POST", key: ADMIN_TOKEN, json: { confirm: on1.tenantId } });
      expect([200, 202]).toContain(r.status);
      status = ((await r.json()) as { status: string }).status;
    }
    expect(status).toBe("erased");
    expect(await messageRow(LEDGER_1, id)).toBeNull();
    expect(await LEDGER_1.prepare("SELECT COUNT(*) AS n FROM events WHERE tenant_id = ?").bind(on1.tenantId).first()).toEqual({ n: 0 });
    expect(await LEDGER_1.prepare("SELECT id FROM tenants WHERE id = ?").bind(on1.tenantId).first()).toBeNull();
    expect(await env.DB.prepare("SELECT id FROM tenants WHERE id = ?").bind(on1.tenantId).first()).toBeNull();
    expect(await env.DB.prepare("SELECT shard FROM tenant_shards WHERE tenant_id = ?").bind(on1.tenantId).first()).toBeNull();
  });
});

/** A send through the Hono app over `e` (the API path, or MailChannels' /tx/v1/send). */
async function sendOver(e: Env, t: Placed, dest: string, path = "/v1/messages"): Promise<Response> {
  const to = `u@${dest}`;
  const json =
    path === "/v1/messages"
      ? { from: `a@${t.domain}`, to: [to], subject: "iso", text: "hi" }
      : { personalizations: [{ to: [{ email: to }] }], from: { email: `a@${t.domain}` }, subject: "iso", content: [{ type: "text/plain", value: "hi" }] };
  const ctx = createExecutionContext();
  const res = await app.fetch(
    new Request(`https://relay.test${path}`, { method: "POST", headers: { authorization: `Bearer ${t.key}`, "content-type": "application/json" }, body: JSON.stringify(json) }),
    e,
    ctx,
  );
  await waitOnExecutionContext(ctx);
  return res;
}

describe("a failing shard", () => {
  it("stops only its own tenants: the other shard's tenant keeps accepting and delivering", async () => {
    const onDb = await tenantOn("DB");
    const on1 = await tenantOn("LEDGER_1");
    const { port, domain: dest } = await routedDomain();
    const jobs: DeliveryJob[] = [];
    const q = capturingQueue(jobs);
    const accept = (e: Env, t: Placed) =>
      acceptMessage(e, { tenantId: t.tenantId, mailFrom: `a@${t.domain}`, headerFrom: `a@${t.domain}`, subject: "iso", messageIdHeader: `${unique("m")}@x.example`, raw: `From: a@${t.domain}\r\nSubject: iso\r\n\r\nhi\r\n`, recipients: [`u@${dest}`] });
    // Jobs of both tenants, accepted while both shards were up, meet in one batch after LEDGER_1 failed.
    const healthy = envWith(env, { OUTBOX: q, OUTBOX_PRIORITY: q });
    const { id: idDb } = await accept(healthy, onDb);
    const { id: id1 } = await accept(healthy, on1);
    const broken = envWith(env, { OUTBOX: q, OUTBOX_PRIORITY: q, LEDGER_1: brokenD1() } as Record<string, unknown>);

    // Accept: the DB tenant's message goes in, the LEDGER_1 tenant's is refused (never half-recorded).
    const { id: idDbLater } = await accept(broken, onDb);
    await expect(accept(broken, on1)).rejects.toThrow(/shard unavailable/);
    expect(await messageRow(env.DB, idDbLater)).toMatchObject({ tenant_id: onDb.tenantId });

    // The API: the LEDGER_1 tenant's request gets 503 with Retry-After (SDKs retry), the DB tenant's goes in.
    const unreachable = envWith(env, { OUTBOX: q, OUTBOX_PRIORITY: q, LEDGER_1: brokenD1("D1_ERROR: Network connection lost.") } as Record<string, unknown>);
    const http = await sendOver(unreachable, on1, dest);
    expect(http.status).toBe(503);
    expect(Number(http.headers.get("retry-after"))).toBeGreaterThan(0);
    expect(((await http.json()) as { error: { code: string } }).error.code).toBe("unavailable");
    expect((await sendOver(unreachable, onDb, dest)).status).toBe(202);
    // The MailChannels endpoint keeps its error body (with `errors`) on the same 503.
    const mc = await sendOver(unreachable, on1, dest, "/tx/v1/send");
    expect(mc.status).toBe(503);
    expect(mc.headers.get("retry-after")).toBe(http.headers.get("retry-after"));
    expect(await mc.json()).toMatchObject({ error: { code: "unavailable" }, errors: [expect.stringContaining("retry")] });
    // A D1 error that is not about reaching the database (here, SQL) is a defect: 500, no Retry-After.
    const defect = await sendOver(envWith(env, { OUTBOX: q, OUTBOX_PRIORITY: q, LEDGER_1: brokenD1("D1_ERROR: no such table: messages: SQLITE_ERROR") } as Record<string, unknown>), on1, dest);
    expect(defect.status).toBe(500);
    expect(defect.headers.get("retry-after")).toBeNull();
    expect(((await defect.json()) as { error: { code: string } }).error.code).toBe("internal_error");

    // Delivery: the batch delivers the DB tenant's mail and sends the other's job back to the queue.
    const batch = jobs.splice(0).filter((j) => j.messageId === idDb || j.messageId === id1);
    expect(batch).toHaveLength(2);
    await handleOutbox(batchOf(batch), broken, loadConfig(broken));
    expect(await messageRow(env.DB, idDb)).toMatchObject({ open: 0 });
    expect((await receivedAt(port)).length).toBe(1);
    expect(jobs.map((j) => j.messageId)).toEqual([id1]);
    expect(await messageRow(LEDGER_1, id1)).toMatchObject({ open: 1 });

    // Webhooks: the healthy shard's range is still emitted; the failure is reported, not swallowed.
    await expect(emitNewEvents(broken)).rejects.toThrow(/shard unavailable/);

    // The page across tenants still renders, says which shard is missing, and counts the healthy one.
    const html = (await overviewPage(ledgerShards(broken), "*", "24h")).toString();
    expect(html).toContain('data-failed-shards="LEDGER_1"');

    // Once the shard is back, the returned job delivers.
    await handleOutbox(batchOf(jobs.splice(0)), healthy, loadConfig(healthy));
    expect(await messageRow(LEDGER_1, id1)).toMatchObject({ open: 0 });
    expect((await receivedAt(port)).length).toBe(2);
  });
});

describe("migrations", () => {
  it("applies every migration to every shard", async () => {
    const migrations = JSON.parse((env as unknown as { TEST_MIGRATIONS: string }).TEST_MIGRATIONS) as { name: string }[];
    for (const db of [env.DB, LEDGER_1]) {
      const applied = (await db.prepare("SELECT name FROM d1_migrations ORDER BY id").all<{ name: string }>()).results.map((r) => r.name);
      expect(applied).toEqual(migrations.map((m) => m.name));
      expect(await db.prepare("SELECT name FROM sqlite_master WHERE name IN ('messages', 'events', 'tenant_shards') ORDER BY name").all()).toMatchObject({
        results: [{ name: "events" }, { name: "messages" }, { name: "tenant_shards" }],
      });
    }
  });
});
