/**
 * Issue 21, data minimisation: per-tenant retention and redaction after N days, seen the way a user sees them —
 * the admin API's settings, GET /v1/messages/:id, the message list and search, /v1/events, a webhook delivered
 * after redaction and the reporting page. The cron's pass runs with a clock moved days ahead.
 */
import { inject } from "vitest";
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import { runDataMinimisation } from "../../src/delivery/minimisation";
import { recordAsyncBounce } from "../../src/store/inbound";
import { pruneLedger } from "../../src/store/retention";
import { advanceRollups } from "../../src/store/rollups";
import { emitNewEvents } from "../../src/webhooks/emit";
import { countingD1, envWith, type RowCounter } from "../support/ledger-env";
import { ADMIN_TOKEN, call, createTenantWithKey, env, unique, waitFor } from "./helpers";
import { login } from "./report-support";
import { arrival, htmlOf, recordingDomain, tokensIn, CHROME } from "./tracking-helpers";

const DAY = 86_400_000;
const control = () => `http://127.0.0.1:${inject("controlPort")}`;

interface MessageJson {
  subject: string | null;
  header_from: string | null;
  mail_from: string;
  redacted: boolean;
  status: string;
  recipients: { address: string; status: string; last_text: string | null }[];
  events: { recipient: string | null; text: string | null }[];
}

async function setTenant(tenantId: string, patch: Record<string, unknown>): Promise<Response> {
  return call(`/admin/tenants/${tenantId}`, { method: "PATCH", key: ADMIN_TOKEN, json: patch });
}

async function sendOne(key: string, from: string, to: string, subject: string, extra: Record<string, unknown> = {}): Promise<string> {
  const res = await call("/v1/messages", { method: "POST", key, json: { from, to: [to], subject, text: "hello", ...extra } });
  expect(res.status).toBe(202);
  return ((await res.json()) as { id: string }).id;
}

async function message(key: string, id: string): Promise<MessageJson> {
  const r = await call(`/v1/messages/${id}`, { key });
  expect(r.status).toBe(200);
  return (await r.json()) as MessageJson;
}

async function delivered(key: string, id: string): Promise<MessageJson> {
  return waitFor(async () => {
    const m = await message(key, id);
    return m.status === "delivered" ? m : undefined;
  }, 20_000, `message ${id} delivered`);
}

/** What the cron does before minimising: the rollups and webhooks read the feed first. */
async function cronAt(now: number): Promise<void> {
  await advanceRollups(env.DB, 5);
  await emitNewEvents(env);
  await runDataMinimisation(env, loadConfig(env), now);
}

describe("per-tenant settings", () => {
  it("are set and shown by the admin API, and refused when out of range", async () => {
    const { tenantId } = await createTenantWithKey([`${unique("set")}.example`]);
    const before = (await (await call(`/admin/tenants/${tenantId}`, { key: ADMIN_TOKEN })).json()) as Record<string, unknown>;
    expect(before).toMatchObject({ retention_days: null, redact_after_days: null, redact_mode: null, erase_requested_at: null });
    const r = await setTenant(tenantId, { retention_days: 7, redact_after_days: 2, redact_mode: "hash" });
    expect(r.status).toBe(200);
    expect(await r.json()).toMatchObject({ retention_days: 7, redact_after_days: 2, redact_mode: "hash" });
    for (const bad of [{ retention_days: 0 }, { retention_days: 1.5 }, { redact_after_days: -1 }, { redact_after_days: 4000 }, { redact_mode: "blur" }, { retention_days: "7" }]) {
      const res = await setTenant(tenantId, bad);
      expect(res.status, JSON.stringify(bad)).toBe(400);
      expect(((await res.json()) as { error: { code: string; field: string } }).error).toMatchObject({ code: "invalid_field", field: Object.keys(bad)[0] });
    }
    // null goes back to the relay's defaults.
    expect(await (await setTenant(tenantId, { retention_days: null, redact_after_days: null })).json()).toMatchObject({ retention_days: null, redact_after_days: null, redact_mode: null });
  });
});

describe("redaction after N days", () => {
  it("replaces subject and addresses in the API, the events, a later webhook and the page; pending mail is untouched", async () => {
    const fromDomain = `${unique("clinic")}.example`;
    const { tenantId, key } = await createTenantWithKey([fromDomain]);
    const { domain, port } = await recordingDomain();
    const hookName = unique("hook");
    const hook = await call("/admin/webhooks", { method: "POST", key: ADMIN_TOKEN, json: { tenant_id: tenantId, url: `${control()}/hooks/${hookName}`, events: ["*"] } });
    expect(hook.status).toBe(201);
    expect((await setTenant(tenantId, { redact_after_days: 1 })).status).toBe(200);

    const patient = `jane.doe-${unique()}@${domain}`;
    const id = await sendOne(key, `Dr Who <results@${fromDomain}>`, patient, "Your HIV test results", {
      html: `<p>See <a href="https://portal.example/r">your results</a></p>`,
      track_opens: true,
    });
    const scheduled = await sendOne(key, `results@${fromDomain}`, `later-${unique()}@${domain}`, "Reminder for later", { send_at: new Date(Date.now() + DAY).toISOString() });
    const before = await delivered(key, id);
    expect(before).toMatchObject({ subject: "Your HIV test results", redacted: false });

    // Not yet due: nothing changes.
    await cronAt(Date.now());
    expect((await message(key, id)).redacted).toBe(false);

    await cronAt(Date.now() + 2 * DAY);
    const after = await message(key, id);
    const json = JSON.stringify(after);
    expect(after.redacted).toBe(true);
    expect(after.subject).toBe("[redacted]");
    expect(after.header_from).toBe(`[redacted]@${fromDomain}`);
    expect(after.recipients[0]!.address).toBe(`[redacted]@${domain}`);
    expect(after.recipients[0]!.status).toBe("delivered");
    expect(json).not.toContain("jane.doe");
    expect(json).not.toContain("HIV");
    expect(json).not.toContain("Dr Who");

    // The list and the event feed say so too.
    const list = (await (await call(`/v1/messages?limit=10`, { key })).json()) as { data: { id: string; subject: string; redacted: boolean }[] };
    expect(list.data.find((m) => m.id === id)).toMatchObject({ subject: "[redacted]", redacted: true });
    const events = (await (await call(`/v1/events?message_id=${id}`, { key })).json()) as { data: { type: string; recipient: string | null; redacted: boolean }[] };
    const deliveredEvent = events.data.find((e) => e.type === "delivered")!;
    expect(deliveredEvent).toMatchObject({ recipient: `[redacted]@${domain}`, redacted: true });
    expect(JSON.stringify(events)).not.toContain("jane.doe");

    // A message still pending is never redacted (delivery needs its addresses).
    expect(await message(key, scheduled)).toMatchObject({ subject: "Reminder for later", redacted: false });

    // An open after redaction: its event, and the webhook made from it, carry the redacted address.
    const html = await htmlOf(await arrival(port, patient));
    const open = tokensIn(html).open!;
    expect((await call(`/t/o/${open}`, { headers: { "user-agent": CHROME } })).status).toBe(200);
    await emitNewEvents(env);
    const opened = await waitFor(async () => {
      const r = await fetch(`${control()}/hooks/${hookName}`);
      const got = ((await r.json()) as { body: string }[]).map((h) => JSON.parse(h.body) as { type: string; message_id: string; recipient: string; redacted: boolean });
      return got.find((p) => p.type === "opened" && p.message_id === id);
    }, 20_000, "opened webhook");
    expect(opened).toMatchObject({ recipient: `[redacted]@${domain}`, redacted: true });

    // A hard bounce reported after redaction: recorded without the address in the clear; the suppression it calls
    // for still names the address the report gave, so it keeps blocking mail to it.
    const bounced = await recordAsyncBounce(
      env.DB,
      { messageId: id, tenantId, idx: 0, address: after.recipients[0]!.address, status: "delivered", stream: "transactional" },
      { status: "5.1.1", replyCode: 550, text: `550 5.1.1 <${patient}>: mailbox gone`, reason: "user unknown", hard: true, reportedAddress: patient, remoteMta: null, attribution: "verp" },
    );
    expect(bounced).toBe(true);
    const afterBounce = await message(key, id);
    expect(afterBounce.recipients[0]!.status).toBe("bounced");
    expect(JSON.stringify(afterBounce)).not.toContain("jane.doe");
    expect(afterBounce.recipients[0]!.last_text).toContain(`[redacted]@${domain}`);
    const suppressed = await env.DB.prepare("SELECT address FROM suppressions WHERE tenant_id = ?").bind(tenantId).all<{ address: string }>();
    expect(suppressed.results.map((r) => r.address)).toEqual([patient.toLowerCase()]);

    // The reporting page shows the marker and never the original values.
    const session = await login();
    const page = await (await session.get(`/dashboard/messages/${id}?tenant=${tenantId}`)).text();
    expect(page).toContain("redacted-note");
    expect(page).toContain(`[redacted]@${domain}`);
    expect(page).not.toContain("jane.doe");
    expect(page).not.toContain("HIV");
  });

  it("in hash mode keeps search by address working for whoever knows the address", async () => {
    const fromDomain = `${unique("bank")}.example`;
    const { tenantId, key } = await createTenantWithKey([fromDomain]);
    const { domain } = await recordingDomain();
    expect((await setTenant(tenantId, { redact_after_days: 0, redact_mode: "hash" })).status).toBe(200);
    const customer = `Customer-${unique()}@${domain}`;
    const id = await sendOne(key, `otp@${fromDomain}`, customer, "Your code is 123456");
    await delivered(key, id);
    await advanceRollups(env.DB, 5);
    await emitNewEvents(env);
    const counter: RowCounter = { total: 0, byTable: {} };
    await runDataMinimisation(envWith(env, { DB: countingD1(env.DB, counter) }), loadConfig(env), Date.now() + 1000);
    console.log(`rows written by the redaction pass: ${counter.total} ${JSON.stringify(counter.byTable)}`);
    // This message's row once; its delivered event is an element of a shared events row (0010) that holds no
    // address (the feed reads the recipient from the message row), so it needs no write; the rest are the cursors.
    expect(counter.byTable.messages).toBe(1);
    expect(counter.byTable.events ?? 0).toBe(0);
    const m = await message(key, id);
    expect(m.redacted).toBe(true);
    expect(m.subject).toMatch(/^\[hmac:[A-Za-z0-9_-]{22}\]$/);
    expect(m.recipients[0]!.address).toMatch(new RegExp(`^\\[hmac:[A-Za-z0-9_-]{22}\\]@${domain.replace(/\./g, "\\.")}$`));
    expect(JSON.stringify(m)).not.toContain(customer.toLowerCase().split("@")[0]!);
    // Search by the address, in any case, finds it; another address does not.
    const search = async (q: string) => ((await (await call(`/v1/messages?recipient=${encodeURIComponent(q)}`, { key })).json()) as { data: { id: string }[] }).data.map((x) => x.id);
    expect(await search(customer.toLowerCase())).toEqual([id]);
    expect(await search(customer)).toEqual([id]);
    expect(await search(`someone-else@${domain}`)).toEqual([]);
    const events = (await (await call(`/v1/events?recipient=${encodeURIComponent(customer)}`, { key })).json()) as { data: { message_id: string }[] };
    expect(events.data.some((e) => e.message_id === id)).toBe(true);
  });
});

describe("the reporting page's search after redaction", () => {
  /** Ids of the messages the page's search lists (each row links to its message's page). */
  async function pageSearch(field: "recipient" | "sender", q: string, tenantId?: string): Promise<string[]> {
    const session = await login();
    const res = await session.get(`/dashboard/messages?field=${field}&q=${encodeURIComponent(q)}${tenantId ? `&tenant=${tenantId}` : ""}`);
    expect(res.status).toBe(200);
    return [...(await res.text()).matchAll(/href="\/dashboard\/messages\/([0-9a-z]+)/g)].map((m) => m[1]!);
  }

  it("finds a message redacted in hash mode by its recipient and its sender, and one redacted in redact mode by neither", async () => {
    const { domain } = await recordingDomain();
    const hashed = await createTenantWithKey([`${unique("hashed")}.example`]);
    const plain = await createTenantWithKey([`${unique("plain")}.example`]);
    expect((await setTenant(hashed.tenantId, { redact_after_days: 0, redact_mode: "hash" })).status).toBe(200);
    expect((await setTenant(plain.tenantId, { redact_after_days: 0, redact_mode: "redact" })).status).toBe(200);
    const hashedTo = `Patient-${unique()}@${domain}`;
    const hashedFrom = `results@${await tenantDomain(hashed.tenantId)}`;
    const plainTo = `patient-${unique()}@${domain}`;
    const plainFrom = `results@${await tenantDomain(plain.tenantId)}`;
    const hashedId = await sendOne(hashed.key, `Lab <${hashedFrom}>`, hashedTo, "Your results");
    const plainId = await sendOne(plain.key, plainFrom, plainTo, "Your results");
    await delivered(hashed.key, hashedId);
    await delivered(plain.key, plainId);
    // Before redaction both are found by address.
    expect(await pageSearch("recipient", plainTo, plain.tenantId)).toEqual([plainId]);
    expect(await pageSearch("sender", plainFrom, plain.tenantId)).toEqual([plainId]);

    await advanceRollups(env.DB, 5);
    await emitNewEvents(env);
    await runDataMinimisation(env, loadConfig(env), Date.now() + 1000);
    expect((await message(hashed.key, hashedId)).recipients[0]!.address).toMatch(/^\[hmac:/);
    expect((await message(plain.key, plainId)).recipients[0]!.address).toBe(`[redacted]@${domain}`);

    // Hash mode: the searched address is hashed as the redaction pass hashed it, in any case, for one tenant or all.
    expect(await pageSearch("recipient", hashedTo, hashed.tenantId)).toEqual([hashedId]);
    expect(await pageSearch("recipient", hashedTo.toLowerCase(), hashed.tenantId)).toEqual([hashedId]);
    expect(await pageSearch("recipient", hashedTo)).toContain(hashedId);
    expect(await pageSearch("sender", hashedFrom, hashed.tenantId)).toEqual([hashedId]);
    expect(await pageSearch("sender", hashedFrom)).toContain(hashedId);
    expect(await pageSearch("recipient", `someone-else@${domain}`, hashed.tenantId)).toEqual([]);
    // Another tenant's key material differs: the hash of one tenant's address never matches another's rows.
    expect(await pageSearch("recipient", hashedTo, plain.tenantId)).toEqual([]);

    // Redact mode keeps nothing to compare with: the message is no longer found by address.
    expect(await pageSearch("recipient", plainTo, plain.tenantId)).toEqual([]);
    expect(await pageSearch("sender", plainFrom, plain.tenantId)).toEqual([]);
    expect(await pageSearch("recipient", plainTo)).not.toContain(plainId);
  });
});

describe("per-tenant retention", () => {
  it("deletes a tenant's final messages after its own retention, leaves other tenants' and pending mail alone", async () => {
    const { domain } = await recordingDomain();
    const short = await createTenantWithKey([`${unique("short")}.example`]);
    const normal = await createTenantWithKey([`${unique("normal")}.example`]);
    expect((await setTenant(short.tenantId, { retention_days: 1 })).status).toBe(200);
    const gone = await sendOne(short.key, `a@${(await tenantDomain(short.tenantId))}`, `x-${unique()}@${domain}`, "short-lived");
    const pending = await sendOne(short.key, `a@${(await tenantDomain(short.tenantId))}`, `y-${unique()}@${domain}`, "later", { send_at: new Date(Date.now() + DAY).toISOString() });
    const kept = await sendOne(normal.key, `a@${(await tenantDomain(normal.tenantId))}`, `z-${unique()}@${domain}`, "kept");
    await delivered(short.key, gone);
    await delivered(normal.key, kept);
    const eventsOf = async (key: string, id: string) => ((await (await call(`/v1/events?message_id=${id}`, { key })).json()) as { data: unknown[] }).data.length;
    expect(await eventsOf(short.key, gone)).toBeGreaterThan(0);
    await pruneLedger(env.DB, loadConfig(env).messageRetentionDays * DAY, 1000, Date.now() + 2 * DAY);
    await cronAt(Date.now() + 2 * DAY);
    expect((await call(`/v1/messages/${gone}`, { key: short.key })).status).toBe(404);
    // Its events go with it (shorter than EVENT_RETENTION_DAYS); the other tenant's stay.
    expect(await eventsOf(short.key, gone)).toBe(0);
    expect(await eventsOf(normal.key, kept)).toBeGreaterThan(0);
    expect((await call(`/v1/messages/${pending}`, { key: short.key })).status).toBe(200);
    expect((await call(`/v1/messages/${kept}`, { key: normal.key })).status).toBe(200);
  });
});

async function tenantDomain(tenantId: string): Promise<string> {
  const t = (await (await call(`/admin/tenants/${tenantId}`, { key: ADMIN_TOKEN })).json()) as { domains: string[] };
  return t.domains[0]!;
}
