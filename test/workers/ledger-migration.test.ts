/**
 * Existing databases migrate with their data (issue 16): a database filled under the old schema (migrations
 * 0001-0007: a row per recipient, an event per step) is migrated by 0009_ledger.sql, and the relay's readers see
 * the same messages, recipients, attempts and events afterwards; events written after 0010 (one row per outcome
 * write) follow the old rows in the same feed; event rows written under 0010 (objects) read back the same after
 * 0011 made their elements arrays.
 */
import { applyD1Migrations } from "cloudflare:test";
import { describe, expect, it } from "vitest";
import { listEvents } from "../../src/store/message-list";
import { getMessage, outcomeStatements } from "../../src/store/messages";
import { findRecipientsByMessageIdHeader } from "../../src/store/inbound";
import { env } from "./helpers";

type Migration = { name: string; queries: string[] };
const all = JSON.parse((env as unknown as { TEST_MIGRATIONS: string }).TEST_MIGRATIONS) as Migration[];
const db = (env as unknown as { MIGRATION_TEST_DB: D1Database }).MIGRATION_TEST_DB;

/**
 * A message and an event row as 0010 wrote them (batch elements as objects), before 0011; returns what the
 * event_log view read for them then.
 */
async function fillUnder0010(t0: number): Promise<unknown[]> {
  const rcpts = JSON.stringify([
    { a: "p@dest.example", s: "delivered", n: 1, u: t0 + 900, f: t0 + 900 },
    { a: "q@dest.example", s: "deferred", n: 1, c: 451, e: "4.3.0", t: "later", x: t0 + 60_000, u: t0 + 1700 },
  ]);
  const log = JSON.stringify([
    { y: "delivered", i: 0, at: t0 + 900, n: 1, c: 250, e: "2.0.0", t: "Ok: queued as A1", h: "mx.dest.example:25", s: 1, l: 12, q: 3 },
    { y: "deferred", i: 1, at: t0 + 1700, n: 1, c: 451, e: "4.3.0", t: "later", h: "mx.dest.example:25", s: 1, l: 30, q: 4 },
  ]);
  const batch = JSON.stringify([
    { m: "m2", y: "delivered", at: t0 + 900, x: 0, f: 3 },
    { m: "m2", y: "deferred", at: t0 + 1700, x: 1, f: 2 },
  ]);
  await db.batch([
    db.prepare("INSERT INTO tenants (id, name, created_at) VALUES ('mt2', 'tenant of 0010', ?)").bind(t0),
    db
      .prepare(
        `INSERT INTO messages (tenant_id, id, mail_from, header_from, subject, message_id_header, size_bytes, created_at, rcpts, log, open, due_at, fed)
         VALUES ('mt2', 'm2', 'a@old.example', 'a@old.example', 'under 0010', 'hdr-2@old.example', 99, ?1, ?2, ?3, 1, ?4, 1)`,
      )
      .bind(t0, rcpts, log, t0 + 60_000),
    db.prepare("INSERT INTO events (id, message_id, tenant_id, type, at, batch) VALUES ((SELECT MAX(id) FROM events) + 2, '', 'mt2', 'batch', ?1, ?2)").bind(t0 + 900, batch),
  ]);
  const { results } = await db.prepare("SELECT * FROM event_log WHERE tenant_id = 'mt2' AND message_id = 'm2' ORDER BY id").all();
  expect(results.map((r) => (r as { type: string }).type)).toEqual(["delivered", "deferred"]);
  return results;
}

describe("migration of an old-schema database", () => {
  it("moves recipients into the message row and keeps every attempt, reply and event", async () => {
    const old = all.filter((m) => m.name < "0008");
    expect(old.length).toBeGreaterThan(0);
    expect(all.length).toBeGreaterThan(old.length);
    await applyD1Migrations(db, old);
    const t0 = Date.now() - 3600_000;
    await db.batch([
      db.prepare("INSERT INTO tenants (id, name, created_at) VALUES ('mt', 'old tenant', ?)").bind(t0),
      db.prepare(
        `INSERT INTO messages (id, tenant_id, mail_from, header_from, subject, message_id_header, stream, size_bytes, tags, metadata, created_at)
         VALUES ('m1', 'mt', 'a@old.example', 'a@old.example', 'before the ledger', 'hdr-1@old.example', 'transactional', 123, '["t1"]', '{}', ?)`,
      ).bind(t0),
      db.prepare(
        `INSERT INTO recipients (message_id, idx, address, domain, status, attempts, last_code, last_enhanced, last_text, next_attempt_at, updated_at, final_at) VALUES
         ('m1', 0, 'x@dest.example', 'dest.example', 'delivered', 1, 250, '2.0.0', 'ok', NULL, ?1, ?1),
         ('m1', 1, 'y@dest.example', 'dest.example', 'deferred', 2, 451, '4.3.0', 'try later', ?2, ?1, NULL)`,
      ).bind(t0 + 5000, t0 + 600_000),
      db.prepare(
        `INSERT INTO events (message_id, tenant_id, recipient_idx, recipient, type, at, attempt, code, enhanced, text, host, tls, latency_ms, seq) VALUES
         ('m1', 'mt', NULL, NULL, 'accepted', ?1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
         ('m1', 'mt', 0, 'x@dest.example', 'queued', ?1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
         ('m1', 'mt', 1, 'y@dest.example', 'queued', ?1, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
         ('m1', 'mt', 0, 'x@dest.example', 'delivered', ?2, 1, 250, '2.0.0', 'ok', 'mx.dest.example:25', 1, 42, 7),
         ('m1', 'mt', 1, 'y@dest.example', 'deferred', ?2, 1, 451, '4.3.0', 'try later', 'mx.dest.example:25', 1, 40, 8)`,
      ).bind(t0, t0 + 5000),
    ]);
    await applyD1Migrations(db, all.filter((m) => m.name < "0011"));
    const before0011 = await fillUnder0010(t0);
    await applyD1Migrations(db, all);
    const { results: after0011 } = await db.prepare("SELECT * FROM event_log WHERE tenant_id = 'mt2' AND message_id = 'm2' ORDER BY id").all();
    expect(after0011).toEqual(before0011);
    const m2events = await listEvents(db, "mt2", { type: null, messageId: "m2", recipient: null, since: null, after: null, limit: 50 });
    expect(m2events.map((e) => [e.type, e.at, e.recipient, e.code, e.host])).toEqual([
      ["accepted", new Date(t0).toISOString(), null, null, null],
      ["queued", new Date(t0).toISOString(), "p@dest.example", null, null],
      ["delivered", new Date(t0 + 900).toISOString(), "p@dest.example", 250, "mx.dest.example:25"],
      ["queued", new Date(t0).toISOString(), "q@dest.example", null, null],
      ["deferred", new Date(t0 + 1700).toISOString(), "q@dest.example", 451, "mx.dest.example:25"],
    ]);
    expect(await db.prepare("SELECT batch FROM events WHERE tenant_id = 'mt2' AND batch IS NOT NULL").first("batch")).toBe('[["m2","delivered",0,0,3],["m2","deferred",800,1,2]]');

    const view = (await getMessage(db, "m1", "mt"))!;
    expect(view.subject).toBe("before the ledger");
    expect(view.tags).toEqual(["t1"]);
    expect(view.status).toBe("deferred");
    expect(view.recipients).toEqual([
      { address: "x@dest.example", status: "delivered", attempts: 1, last_code: 250, last_enhanced: "2.0.0", last_text: "ok", updated_at: new Date(t0 + 5000).toISOString() },
      { address: "y@dest.example", status: "deferred", attempts: 2, last_code: 451, last_enhanced: "4.3.0", last_text: "try later", updated_at: new Date(t0 + 5000).toISOString() },
    ]);
    expect(view.events.map((e) => [e.type, e.recipient])).toEqual([
      ["accepted", null],
      ["queued", "x@dest.example"],
      ["queued", "y@dest.example"],
      ["delivered", "x@dest.example"],
      ["deferred", "y@dest.example"],
    ]);
    expect(view.events[3]).toMatchObject({ code: 250, host: "mx.dest.example:25", tls: true, latency_ms: 42, seq: 7, attempt: 1 });

    const row = await db.prepare("SELECT open, due_at, fed FROM messages WHERE tenant_id = 'mt' AND id = 'm1'").first();
    expect(row).toEqual({ open: 1, due_at: t0 + 600_000, fed: 1 });
    // The per-recipient view, the event log with its ids, and attribution by Message-ID still answer.
    const { results: rcpts } = await db.prepare("SELECT idx, address, status, final_at FROM recipients WHERE message_id = 'm1' ORDER BY idx").all();
    expect(rcpts).toEqual([
      { idx: 0, address: "x@dest.example", status: "delivered", final_at: t0 + 5000 },
      { idx: 1, address: "y@dest.example", status: "deferred", final_at: null },
    ]);
    const events = await listEvents(db, "mt", { type: null, messageId: "m1", recipient: null, since: null, after: null, limit: 50 });
    expect(events.map((e) => e.type)).toEqual(["accepted", "queued", "queued", "delivered", "deferred"]);
    expect(new Set(events.map((e) => e.id)).size).toBe(5);
    const refs = await findRecipientsByMessageIdHeader(db, "hdr-1@old.example", null, t0);
    expect(refs.map((r) => r.address)).toEqual(["x@dest.example", "y@dest.example"]);

    // 0010: events written after the migration share rows (events.batch) and continue the old rows' ids in order.
    await db.batch(
      outcomeStatements(db, [
        { messageId: "m1", tenantId: "mt", idx: 1, address: "y@dest.example", status: "delivered", at: t0 + 700_000, attempt: 3, code: 250, enhanced: "2.0.0", text: "ok at last", host: "mx.dest.example:25", tls: true, latencyMs: 9, seq: 11 },
      ]),
    );
    const after = await listEvents(db, "mt", { type: null, messageId: "m1", recipient: null, since: null, after: null, limit: 50 });
    expect(after.map((e) => e.type)).toEqual(["accepted", "queued", "queued", "delivered", "deferred", "delivered"]);
    expect(after.map((e) => e.id)).toEqual([...after.map((e) => e.id)].sort((a, b) => a - b));
    expect(after[5]).toMatchObject({ recipient: "y@dest.example", code: 250, text: "ok at last", host: "mx.dest.example:25", tls: true, attempt: 3 });
    const paged = await listEvents(db, "mt", { type: null, messageId: null, recipient: null, since: null, after: after[4]!.id, limit: 50 });
    expect(paged.map((e) => e.type)).toEqual(["delivered"]);
    expect((await getMessage(db, "m1", "mt"))!.status).toBe("delivered");
  });
});
