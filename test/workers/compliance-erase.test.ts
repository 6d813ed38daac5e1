/**
 * Issue 21, erasing a tenant's data on request: a tenant is filled with mail and settings through every path (JSON,
 * raw, batch, scheduled with an R2 body, idempotency, suppressions, tracking, webhooks, a paused stream, a
 * per-tenant route, an alias and a forwarded message, rollups, rate counters), then erased through the admin API.
 * Afterwards every table listed in sqlite_master is read whole: no row holds the tenant id or one of its addresses
 * (the audit trail excepted, which records the erase), the tenant's R2 bodies are gone, another tenant's data is
 * untouched, and a delivery job or a webhook job still in a queue is dropped without sending or writing a row.
 */
import { inject } from "vitest";
import { loadConfig } from "../../src/config";
import { describe, expect, it } from "vitest";
import { acceptMessage } from "../../src/queue/spool";
import { handleOutbox } from "../../src/delivery/consumer";
import type { DeliveryJob } from "../../src/queue/job";
import { advanceRollups } from "../../src/store/rollups";
import { emitNewEvents, type WebhookJob } from "../../src/webhooks/emit";
import { handleWebhookBatch } from "../../src/webhooks/consumer";
import { batchOf, capturingQueue, envWith } from "../support/ledger-env";
import { ADMIN_TOKEN, call, createTenantWithKey, env, receivedAt, unique, waitFor } from "./helpers";
import { deliverToWorker, fakeEmail } from "./inbound-support";
import { CHROME, arrival, htmlOf, recordingDomain, tokensIn } from "./tracking-helpers";

const control = () => `http://127.0.0.1:${inject("controlPort")}`;
/** Tables the walk does not read: SQLite's and D1's own, and the audit trail, which is kept on purpose. */
const NOT_TENANT_DATA = new Set(["audit_log", "d1_migrations", "_cf_KV", "_cf_METADATA", "sqlite_sequence"]);

/** Every row of every table, as JSON, with the tables it came from. */
async function everyRow(): Promise<{ table: string; json: string }[]> {
  const { results: tables } = await env.DB.prepare("SELECT name FROM sqlite_master WHERE type = 'table' AND name NOT LIKE 'sqlite_%'").all<{ name: string }>();
  expect(tables.length).toBeGreaterThan(30);
  const out: { table: string; json: string }[] = [];
  for (const { name } of tables) {
    if (NOT_TENANT_DATA.has(name)) continue;
    const { results } = await env.DB.prepare(`SELECT * FROM "${name}"`).all();
    for (const row of results) out.push({ table: name, json: JSON.stringify(row).toLowerCase() });
  }
  return out;
}

function rowsNaming(rows: { table: string; json: string }[], needles: string[]): string[] {
  return rows.filter((r) => needles.some((n) => r.json.includes(n.toLowerCase()))).map((r) => `${r.table}: ${r.json.slice(0, 200)}`);
}

/** A batch of webhook jobs as the consumer receives it from `queue` (a name ending in -dlq is the dead letters). */
function webhookBatch(queue: string, jobs: WebhookJob[]): MessageBatch<unknown> & { acked: number } {
  const b = {
    queue,
    acked: 0,
    messages: jobs.map((body, i) => ({ id: `wh-${i}`, timestamp: new Date(), body, attempts: 1, ack: () => void b.acked++, retry: () => {} })),
    ackAll: () => void (b.acked += jobs.length),
    retryAll: () => {},
  };
  return b as unknown as MessageBatch<unknown> & { acked: number };
}

async function ok(res: Response | Promise<Response>, status = 200): Promise<unknown> {
  const r = await res;
  const text = await r.text();
  expect(r.status, text).toBe(status);
  return text ? JSON.parse(text) : null;
}

async function waitDelivered(key: string, id: string): Promise<void> {
  await waitFor(async () => {
    const m = (await (await call(`/v1/messages/${id}`, { key })).json()) as { status: string };
    return m.status === "delivered" ? true : undefined;
  }, 20_000, `message ${id} delivered`);
}

/** Fills a tenant through every path; returns its id, key, addresses and what else the walk looks for. */
async function fillTenant(domain: string, port: number) {
  const fromDomain = `${unique("erase")}.example`;
  const { tenantId, key } = await createTenantWithKey([fromDomain]);
  const a = (s: string) => `${s}-${unique()}@${domain}`;
  const addresses = { json: a("json"), raw: a("raw"), batch: a("batch"), scheduled: a("sched"), suppressed: a("supp"), parked: a("parked"), forwarded: a("fwd") };
  const hookName = unique("hook");
  await ok(call("/admin/webhooks", { method: "POST", key: ADMIN_TOKEN, json: { tenant_id: tenantId, url: `${control()}/hooks/${hookName}`, events: ["*"] } }), 201);
  await ok(call(`/admin/tenants/${tenantId}`, { method: "PATCH", key: ADMIN_TOKEN, json: { rate_limit_per_minute: 1000, redact_after_days: 30 } }));
  await ok(call("/admin/routes", { method: "POST", key: ADMIN_TOKEN, json: { match_recipient_domain: `${unique("own")}.example`, next_hop_url: `smtp://127.0.0.1:${port}`, tenant_id: tenantId } }), 201);
  await ok(call("/v1/tracking/settings", { method: "PUT", key, json: { track_opens: true } }));
  await ok(call("/v1/suppressions", { method: "POST", key, json: { suppressions: [{ address: addresses.suppressed }] } }), 201);

  const json = (await ok(
    call("/v1/messages", {
      method: "POST",
      key,
      headers: { "idempotency-key": unique("idem") },
      json: { from: `Sender <s@${fromDomain}>`, to: [addresses.json], subject: "erase me", html: "<p>hi <a href=\"https://x.example/\">x</a></p>", tags: ["t1"], metadata: { patient: "p1" } },
    }),
    202,
  )) as { id: string };
  await ok(
    call("/v1/messages/raw", {
      method: "POST",
      key,
      headers: { "content-type": "message/rfc822", "x-envelope-to": addresses.raw },
      body: `From: s@${fromDomain}\r\nTo: ${addresses.raw}\r\nSubject: raw\r\nMessage-ID: <${unique("m")}@${fromDomain}>\r\n\r\nhello\r\n`,
    }),
    202,
  );
  await ok(call("/v1/messages/batch", { method: "POST", key, json: [{ from: `s@${fromDomain}`, to: [addresses.batch], subject: "batch", text: "b" }] }));
  const big = "x".repeat(150_000);
  const scheduled = (await ok(
    call("/v1/messages", { method: "POST", key, json: { from: `s@${fromDomain}`, to: [addresses.scheduled], subject: "later", text: big, send_at: new Date(Date.now() + 86_400_000).toISOString() } }),
    202,
  )) as { id: string };
  // A paused stream parks its jobs in D1.
  await ok(call(`/admin/tenants/${tenantId}/streams/broadcast/pause`, { method: "POST", key: ADMIN_TOKEN, json: {} }));
  const parked = (await ok(call("/v1/messages", { method: "POST", key, json: { from: `s@${fromDomain}`, to: [addresses.parked], subject: "parked", text: "p", stream: "broadcast" } }), 202)) as { id: string };
  // Email Routing: an alias forwards to the recording server through accept.
  const alias = `team-${unique()}@${fromDomain}`;
  await ok(call("/admin/aliases", { method: "POST", key: ADMIN_TOKEN, json: { address: alias, tenant_id: tenantId, destinations: [addresses.forwarded] } }), 201);
  await deliverToWorker(fakeEmail({ from: `outsider-${unique()}@elsewhere.example`, to: alias, raw: `From: outsider@elsewhere.example\r\nTo: ${alias}\r\nSubject: fwd\r\nMessage-ID: <${unique("f")}@elsewhere.example>\r\n\r\nforward me\r\n` }));

  await waitDelivered(key, json.id);
  // An open: tracking counters and an `opened` event.
  const open = tokensIn(await htmlOf(await arrival(port, addresses.json))).open!;
  const pixel = await call(`/t/o/${open}`, { headers: { "user-agent": CHROME } });
  expect(pixel.status).toBe(200);
  await pixel.arrayBuffer();
  await waitFor(async () => ((await env.DB.prepare("SELECT COUNT(*) AS n FROM parked_jobs WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>())!.n > 0 ? true : undefined), 20_000, "a parked job");
  await advanceRollups(env.DB, 5);
  await emitNewEvents(env);
  await waitFor(async () => ((await env.DB.prepare("SELECT COUNT(*) AS n FROM webhook_attempts WHERE tenant_id = ?").bind(tenantId).first<{ n: number }>())!.n > 0 ? true : undefined), 20_000, "a webhook attempt");
  return { tenantId, key, fromDomain, alias, addresses, ids: { json: json.id, scheduled: scheduled.id, parked: parked.id } };
}

describe("erasing a tenant's data", () => {
  it("leaves no row naming the tenant or its addresses in any table, deletes its R2 bodies, and keeps others' data", async () => {
    const { domain, port } = await recordingDomain();
    const other = await fillTenant(domain, port);
    const t = await fillTenant(domain, port);
    const needles = [t.tenantId, t.alias, ...Object.values(t.addresses)];
    const before = await everyRow();
    // Guard against a vacuous pass: the tenant's data is spread over many tables before the erase.
    const tablesBefore = new Set(rowsNaming(before, needles).map((r) => r.split(":")[0]!));
    for (const table of ["messages", "events", "suppressions", "idempotency_keys", "scheduled_jobs", "parked_jobs", "webhooks", "webhook_attempts", "aliases", "inbound_messages", "tracking_settings", "tracking_recipients", "report_rollups", "rate_counters", "routes", "api_keys", "sender_domains", "tenants", "tenant_streams"]) {
      expect(tablesBefore, table).toContain(table);
    }
    const bodyKey = (await env.DB.prepare("SELECT body_key FROM messages WHERE tenant_id = ? AND id = ?").bind(t.tenantId, t.ids.scheduled).first<{ body_key: string | null }>())!.body_key;
    expect(bodyKey).not.toBeNull();
    expect(await env.BODIES.head(bodyKey!)).not.toBeNull();
    const otherRowsBefore = rowsNaming(before, [other.tenantId]).length;

    // Strangers and tenants' keys cannot erase; a wrong confirmation erases nothing.
    expect((await call(`/admin/tenants/${t.tenantId}/erase`, { method: "POST", json: { confirm: t.tenantId } })).status).toBe(401);
    expect((await call(`/admin/tenants/${t.tenantId}/erase`, { method: "POST", key: t.key, json: { confirm: t.tenantId } })).status).toBe(401);
    const refused = await call(`/admin/tenants/${t.tenantId}/erase`, { method: "POST", key: ADMIN_TOKEN, json: { confirm: other.tenantId } });
    expect(refused.status).toBe(400);
    expect((await call(`/admin/tenants/${t.tenantId}`, { key: ADMIN_TOKEN })).status).toBe(200);

    type EraseAnswer = { status: string; deleted: Record<string, number>; r2_objects_deleted: number };
    let last = null as EraseAnswer | null;
    const deleted: Record<string, number> = {};
    let calls = 0;
    let r2 = 0;
    for (; calls < 20 && last?.status !== "erased"; calls++) {
      const r = await call(`/admin/tenants/${t.tenantId}/erase`, { method: "POST", key: ADMIN_TOKEN, json: { confirm: t.tenantId } });
      expect([200, 202]).toContain(r.status);
      last = (await r.json()) as EraseAnswer;
      for (const [table, n] of Object.entries(last.deleted)) deleted[table] = (deleted[table] ?? 0) + n;
      r2 += last.r2_objects_deleted;
    }
    expect(last?.status).toBe("erased");
    console.log(`erase: ${calls} calls, ${Object.values(deleted).reduce((a, b) => a + b, 0)} rows ${JSON.stringify(deleted)}, ${r2} R2 objects`);

    const after = await everyRow();
    expect(rowsNaming(after, needles)).toEqual([]);
    expect(await env.BODIES.head(bodyKey!)).toBeNull();
    expect((await call(`/v1/messages/${t.ids.json}`, { key: t.key })).status).toBe(401);
    expect((await call(`/admin/tenants/${t.tenantId}`, { key: ADMIN_TOKEN })).status).toBe(404);
    // The audit trail keeps the record of who erased what.
    const audit = await env.DB.prepare("SELECT status FROM audit_log WHERE path = ? ORDER BY id").bind(`/admin/tenants/${t.tenantId}/erase`).all<{ status: number }>();
    expect(audit.results.map((r) => r.status)).toContain(200);
    // The other tenant's rows are all still there.
    expect(rowsNaming(after, [other.tenantId]).length).toBe(otherRowsBefore);
    expect((await call(`/v1/messages/${other.ids.json}`, { key: other.key })).status).toBe(200);
  });

  it("drops a delivery job still in the queue after the erase without sending it", async () => {
    const { domain, port } = await recordingDomain();
    const fromDomain = `${unique("late")}.example`;
    const { tenantId } = await createTenantWithKey([fromDomain]);
    const rcpt = `late-${unique()}@${domain}`;
    const jobs: DeliveryJob[] = [];
    const q = capturingQueue(jobs);
    await acceptMessage(envWith(env, { OUTBOX: q, OUTBOX_PRIORITY: q }), {
      tenantId,
      mailFrom: `s@${fromDomain}`,
      headerFrom: `s@${fromDomain}`,
      subject: "in flight",
      messageIdHeader: `${unique("mid")}@${fromDomain}`,
      raw: `From: s@${fromDomain}\r\nTo: ${rcpt}\r\nSubject: in flight\r\n\r\nhello\r\n`,
      recipients: [rcpt],
    });
    expect(jobs).toHaveLength(1);
    const r = await call(`/admin/tenants/${tenantId}/erase`, { method: "POST", key: ADMIN_TOKEN, json: { confirm: tenantId } });
    expect(r.status).toBe(200);
    await handleOutbox(batchOf(jobs), env, loadConfig(env));
    expect((await receivedAt(port)).filter((m) => m.rcptTo.includes(rcpt))).toEqual([]);
    expect(rowsNaming(await everyRow(), [tenantId, rcpt])).toEqual([]);
  });

  it("drops a webhook job still in the queue (or its dead letter) after the erase: no post, no attempt row", async () => {
    const { tenantId } = await createTenantWithKey([`${unique("hook")}.example`]);
    const name = unique("hook");
    const created = await call("/admin/webhooks", { method: "POST", key: ADMIN_TOKEN, json: { tenant_id: tenantId, url: `${control()}/hooks/${name}`, events: ["delivered"] } });
    expect(created.status).toBe(201);
    const { id: webhookId } = (await created.json()) as { id: string };
    const rcpt = `hooked-${unique()}@elsewhere.example`;
    const jobOf = (messageId: string): WebhookJob => ({
      v: 1,
      webhookId,
      payload: { id: unique("d"), event_id: 1, type: "delivered", created_at: new Date().toISOString(), tenant_id: tenantId, message_id: messageId, recipient: rcpt, data: { attempt: 1, code: 250, enhanced: "2.0.0", text: `250 ok for ${rcpt}`, host: "mx.elsewhere.example", tls: true, latency_ms: 5 } },
    });
    const posts = async () => ((await (await fetch(`${control()}/hooks/${name}`)).json()) as unknown[]).length;
    const config = loadConfig(env);
    // Before the erase a job is posted and its attempt recorded (so the checks below can fail).
    await handleWebhookBatch(webhookBatch("edge-relay-webhooks", [jobOf(unique("m"))]), env, config);
    expect(await posts()).toBe(1);
    expect(await env.DB.prepare("SELECT COUNT(*) AS n FROM webhook_attempts WHERE tenant_id = ?").bind(tenantId).first()).toEqual({ n: 1 });

    let status = "";
    for (let calls = 0; calls < 20 && status !== "erased"; calls++) {
      const r = await call(`/admin/tenants/${tenantId}/erase`, { method: "POST", key: ADMIN_TOKEN, json: { confirm: tenantId } });
      status = ((await r.json()) as { status: string }).status;
    }
    expect(status).toBe("erased");
    const late = webhookBatch("edge-relay-webhooks", [jobOf(unique("m"))]);
    await handleWebhookBatch(late, env, config);
    expect(late.acked).toBe(1);
    await handleWebhookBatch(webhookBatch("edge-relay-webhooks-dlq", [jobOf(unique("m"))]), env, config);
    expect(await posts()).toBe(1);
    expect(rowsNaming(await everyRow(), [tenantId, rcpt])).toEqual([]);
  });
});
