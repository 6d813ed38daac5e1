/**
 * The lean ledger (issue 16) and the re-drive (issue 25): rows written per message as D1 bills them, a delivered
 * recipient never sent twice when D1 refuses the outcome once, lost queue jobs re-driven from the ledger, a
 * consumer stopped in the middle of a connection's block, and retention.
 */
import { describe, expect, it } from "vitest";
import { loadConfig } from "../../src/config";
import { handleOutbox, InvocationStopped } from "../../src/delivery/consumer";
import { runLedgerHousekeeping } from "../../src/delivery/housekeeping";
import { flushOutcomeJournal } from "../../src/delivery/outcomes";
import { redriveOverdue } from "../../src/delivery/redrive";
import type { DeliveryJob } from "../../src/queue/job";
import { getMessage } from "../../src/store/messages";
import { newId } from "../../src/store/ids";
import { pruneLedger } from "../../src/store/retention";
import { acceptCaptured, batchOf, countingD1, envWith, type RowCounter } from "../support/ledger-env";
import { createTenantWithKey, env, receivedAt, routedDomain, unique, waitFor } from "./helpers";

const GRACE_MS = 900_000;
const MAX_AGE_MS = 72 * 3600_000;

async function setup(): Promise<{ tenantId: string; from: string; dest: string; port: number }> {
  const fromDomain = `${unique("f")}.example`;
  const { tenantId } = await createTenantWithKey([fromDomain]);
  const { port, domain: dest } = await routedDomain();
  return { tenantId, from: `a@${fromDomain}`, dest, port };
}

async function statusOf(id: string): Promise<string[]> {
  return (await getMessage(env.DB, id, null))!.recipients.map((r) => r.status);
}

describe("rows written per message", () => {
  it("writes at most 3 D1 rows (index entries included) for a single-recipient message delivered at first attempt", async () => {
    const { tenantId, from, dest, port } = await setup();
    const counter: RowCounter = { total: 0, byTable: {} };
    const db = countingD1(env.DB, counter);
    const jobs: DeliveryJob[] = [];
    const id = await acceptCaptured(envWith(env, { DB: db }), tenantId, from, [`u@${dest}`], jobs);
    const atAccept = counter.total;
    await handleOutbox(batchOf(jobs), envWith(env, { DB: db }), loadConfig(env));
    console.log(`rows written: accept ${atAccept}, delivery ${counter.total - atAccept}, by table ${JSON.stringify(counter.byTable)}`);
    expect(await statusOf(id)).toEqual(["delivered"]);
    expect((await receivedAt(port)).length).toBe(1);
    expect(counter.total).toBeGreaterThan(0);
    expect(counter.total).toBeLessThanOrEqual(3);
    const bytes = await env.DB.prepare(
      `SELECT (SELECT length(id) + length(tenant_id) + length(mail_from) + COALESCE(length(header_from), 0) + COALESCE(length(subject), 0)
                + COALESCE(length(message_id_header), 0) + length(stream) + COALESCE(length(tags), 0) + COALESCE(length(metadata), 0)
                + length(rcpts) + COALESCE(length(log), 0) + COALESCE(length(pending), 0) + 40 FROM messages WHERE id = ?1) AS message,
              (SELECT SUM(CASE WHEN batch IS NULL THEN length(message_id) + length(recipient) + length(type) + COALESCE(length(text), 0)
                + COALESCE(length(host), 0) + COALESCE(length(enhanced), 0) ELSE length(batch) / json_array_length(batch) END + length(tenant_id) + 50)
                 FROM events WHERE message_id = ?1 OR instr(batch, ?1) > 0) AS event`,
    ).bind(id).first<{ message: number; event: number }>();
    console.log(`payload bytes after delivery (approximate, before SQLite page overhead): message row ${bytes!.message}, event row ${bytes!.event}`);
    // The body kept for a re-drive is gone once the recipient is final.
    expect((await env.DB.prepare("SELECT pending FROM messages WHERE id = ?").bind(id).first<{ pending: string | null }>())!.pending).toBeNull();
  });

  it("keeps the message's timeline, its feed events (accepted, queued, delivered) and the attempt's detail", async () => {
    const { tenantId, from, dest } = await setup();
    const jobs: DeliveryJob[] = [];
    const id = await acceptCaptured(env, tenantId, from, [`u@${dest}`], jobs);
    await handleOutbox(batchOf(jobs), env, loadConfig(env));
    const view = (await getMessage(env.DB, id, tenantId))!;
    expect(view.events.map((e) => e.type)).toEqual(["accepted", "queued", "delivered"]);
    const delivered = view.events[2]!;
    expect(delivered.code).toBe(250);
    expect(delivered.host).toMatch(/^127\.0\.0\.1:\d+$/);
    expect(delivered.latency_ms).not.toBeNull();
    expect(delivered.seq).not.toBeNull();
    const { results } = await env.DB.prepare("SELECT type, feed FROM event_log WHERE message_id = ?").bind(id).all<{ type: string; feed: number }>();
    expect(results).toEqual([{ type: "delivered", feed: 3 }]);
  });
});

describe("a delivered recipient is never sent twice", () => {
  it("keeps the outcome in the journal when D1 refuses it once, and the retried job sends nothing", async () => {
    const { tenantId, from, dest, port } = await setup();
    const jobs: DeliveryJob[] = [];
    const id = await acceptCaptured(env, tenantId, from, [`u@${dest}`], jobs);
    const counter: RowCounter = { total: 0, byTable: {} };
    const flaky = countingD1(env.DB, counter, (sql) => sql.startsWith("UPDATE messages SET rcpts"));
    const first = batchOf(jobs);
    await handleOutbox(first, envWith(env, { DB: flaky }), loadConfig(env));
    expect(first.acked).toBe(1);
    expect((await receivedAt(port)).length).toBe(1);
    // D1 does not have it yet; the queue redelivers the job (as it would after any failure of the invocation).
    expect(await statusOf(id)).toEqual(["queued"]);
    await handleOutbox(batchOf(jobs, 2), env, loadConfig(env));
    expect((await receivedAt(port)).length).toBe(1);
    expect(await statusOf(id)).toEqual(["delivered"]);
    expect(await flushOutcomeJournal(env)).toEqual([]);
  });
});

describe("the cron", () => {
  it("flushes the outcome journal to D1 before it re-drives anything", async () => {
    const { tenantId, from, dest, port } = await setup();
    const jobs: DeliveryJob[] = [];
    const id = await acceptCaptured(env, tenantId, from, [`j@${dest}`], jobs);
    const flaky = countingD1(env.DB, { total: 0, byTable: {} }, (sql) => sql.startsWith("UPDATE messages SET rcpts"));
    await handleOutbox(batchOf(jobs), envWith(env, { DB: flaky }), loadConfig(env));
    expect(await statusOf(id)).toEqual(["queued"]);
    await runLedgerHousekeeping(env, loadConfig(env), Date.now());
    expect(await statusOf(id)).toEqual(["delivered"]);
    // Long after the grace period nothing is re-driven: the journal's outcome made the recipient final.
    expect((await redriveOverdue(env, GRACE_MS, MAX_AGE_MS, Date.now() + 2 * GRACE_MS)).jobs).toBe(0);
    expect((await receivedAt(port)).length).toBe(1);
  });
});

describe("re-drive from the ledger", () => {
  it("re-drives recipients whose queue jobs were lost; each reaches a final state exactly once", async () => {
    const { tenantId, from, dest, port } = await setup();
    const lost: DeliveryJob[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 5; i++) ids.push(await acceptCaptured(env, tenantId, from, [`r${i}@${dest}`, `s${i}@${dest}`], lost));
    expect(lost.length).toBe(5);
    // Nothing happens before the grace period is over.
    expect((await redriveOverdue(env, GRACE_MS, MAX_AGE_MS, Date.now() + 1000)).messages).toBe(0);
    const r = await redriveOverdue(env, GRACE_MS, MAX_AGE_MS, Date.now() + GRACE_MS + 5000);
    expect(r.messages).toBeGreaterThanOrEqual(5);
    await waitFor(async () => ((await Promise.all(ids.map(statusOf))).flat().every((s) => s === "delivered") ? true : undefined), 30_000, "all delivered");
    const got = (await receivedAt(port)).flatMap((m) => m.rcptTo).sort();
    expect(got).toEqual(ids.flatMap((_, i) => [`r${i}@${dest}`, `s${i}@${dest}`]).sort());
    const view = (await getMessage(env.DB, ids[0]!, tenantId))!;
    expect(view.events.some((e) => e.type === "redriven" && /re-driven from the ledger/.test(e.text ?? ""))).toBe(true);
    // Delivered messages are not re-driven again.
    const again = await redriveOverdue(env, GRACE_MS, MAX_AGE_MS, Date.now() + 3 * GRACE_MS);
    const redrivenAgain = (await Promise.all(ids.map((id) => getMessage(env.DB, id, tenantId)))).filter((v) => v!.events.filter((e) => e.type === "redriven").length > 1);
    expect(redrivenAgain).toEqual([]);
    expect(again.jobs).toBeGreaterThanOrEqual(0);
  });

  it("after a stop in the middle of a connection's block, the sink holds exactly one copy of every message", async () => {
    const { tenantId, from, dest, port } = await setup();
    const jobs: DeliveryJob[] = [];
    const ids: string[] = [];
    for (let i = 0; i < 8; i++) ids.push(await acceptCaptured(env, tenantId, from, [`b${i}@${dest}`], jobs));
    let sent = 0;
    const stopAfter3 = { afterTransaction: () => {
      if (++sent === 3) throw new InvocationStopped("runtime stopped (test)");
    } };
    await expect(handleOutbox(batchOf(jobs), env, loadConfig(env), stopAfter3)).rejects.toThrow(InvocationStopped);
    const before = (await receivedAt(port)).length;
    expect(before).toBeGreaterThanOrEqual(3);
    expect(before).toBeLessThan(8);
    // The batch was never acknowledged and its jobs are gone with the runtime: the ledger re-drives the rest.
    await redriveOverdue(env, GRACE_MS, MAX_AGE_MS, Date.now() + GRACE_MS + 5000);
    await waitFor(async () => ((await Promise.all(ids.map(statusOf))).flat().every((s) => s === "delivered") ? true : undefined), 30_000, "all delivered");
    const got = (await receivedAt(port)).flatMap((m) => m.rcptTo).sort();
    expect(got).toEqual(ids.map((_, i) => `b${i}@${dest}`).sort());
  });
});

describe("retention", () => {
  it("deletes final messages past the retention in bounded steps and keeps pending ones", async () => {
    const { tenantId, from, dest } = await setup();
    const old = Date.now() - 40 * 86_400_000;
    const mk = (open: number) =>
      env.DB.prepare(
        `INSERT INTO messages (tenant_id, id, mail_from, stream, size_bytes, created_at, rcpts, open) VALUES (?, ?, ?, 'transactional', 10, ?, ?, ?)`,
      ).bind(tenantId, newId(old), from, old, JSON.stringify([{ a: `x@${dest}`, s: open ? "queued" : "delivered", u: old, ...(open ? {} : { f: old }) }]), open);
    const finals = Array.from({ length: 7 }, () => mk(0));
    await env.DB.batch([...finals, mk(1)]);
    const recent = await acceptCaptured(env, tenantId, from, [`y@${dest}`], []);
    const countOld = async () =>
      (await env.DB.prepare("SELECT COUNT(*) AS n, SUM(open) AS open FROM messages WHERE tenant_id = ? AND created_at = ?").bind(tenantId, old).first<{ n: number; open: number }>())!;
    expect((await countOld()).n).toBe(8);
    const first = await pruneLedger(env.DB, 30 * 86_400_000, 5);
    expect(first.messages).toBe(5);
    await pruneLedger(env.DB, 30 * 86_400_000, 100);
    expect(await countOld()).toEqual({ n: 1, open: 1 });
    expect(await getMessage(env.DB, recent, tenantId)).not.toBeNull();
  });
});
