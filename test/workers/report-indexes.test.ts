/** Every query of the reporting page is served by an index: EXPLAIN QUERY PLAN shows no full scan of a big table. */
import { describe, expect, it } from "vitest";
import { QUEUE_SQL, REPORT_SQL } from "../../src/store/report";
import { ADDRESS_SEARCH_FIELDS, SEARCH_FIELDS, searchSql, suppressionsSql } from "../../src/store/report-messages";
import { env } from "./helpers";

/** Tables that grow with traffic; a plain `SCAN <table>` (no index) of one of them is a defect. */
const BIG_TABLES = ["events", "messages", "recipients", "report_rollups", "report_latency", "report_message_tags", "suppressions", "webhook_attempts"];

async function plan(sql: string, params: unknown[]): Promise<string[]> {
  const { results } = await env.DB.prepare(`EXPLAIN QUERY PLAN ${sql}`).bind(...params).all<{ detail: string }>();
  return results.map((r) => r.detail);
}

function fullScans(details: string[]): string[] {
  return details.filter((d) => {
    const m = /^SCAN (\w+)(?: AS \w+)?( USING .*)?$/.exec(d) ?? /^SCAN (\w+) (\w+)?$/.exec(d);
    if (!m) return false;
    const table = m[1]!;
    return BIG_TABLES.includes(table) && !/USING (COVERING )?INDEX|USING INTEGER PRIMARY KEY|USING PRIMARY KEY/.test(d);
  });
}

const now = Date.now();
const cases: [string, string, unknown[]][] = [
  ["overview totals", REPORT_SQL.totals, [3600, "*", now - 86_400_000]],
  ["overview series", REPORT_SQL.series, [3_600_000, 3600, "*", now - 86_400_000]],
  ["overview latency", REPORT_SQL.latency, [3600, "*", now - 86_400_000]],
  ["destination counts", REPORT_SQL.destinationCounts, ["domain", "*", now - 86_400_000]],
  ["destination latency", REPORT_SQL.destinationLatency, ["route", "t1", now - 86_400_000]],
  // The ledger (issue 16): pending recipients and searches walk the primary key (tenant_id, id) from a time-ordered
  // id floor; a message's timeline is its own row.
  ["queue counts", QUEUE_SQL.counts, [1, "*", "000000000"]],
  ["deferred by domain", QUEUE_SQL.deferredByDomain, [0, "t1", "000000000"]],
  ["oldest queued", QUEUE_SQL.oldest("queued"), [1, "*", "000000000"]],
  ["oldest deferred", QUEUE_SQL.oldest("deferred"), [0, "t1", "000000000"]],
  ...(["all", "tenant"] as const).flatMap((scope): [string, string, unknown[]][] => [
    ...SEARCH_FIELDS.map((f): [string, string, unknown[]] => [`search by ${f} (${scope})`, searchSql(f, scope), ["t1", "x@example.com", 50, "000000000", ...(ADDRESS_SEARCH_FIELDS.includes(f) ? ["[hmac:AAAAAAAAAAAAAAAAAAAAAA]@example.com"] : [])]]),
    [`newest messages (${scope})`, searchSql(null, scope), ["t1", "", 50, "000000000"]],
    [`suppressions (${scope})`, suppressionsSql(scope), ["t1", now, null, 200]],
  ]),
  ["webhook attempts of a tenant", "SELECT * FROM webhook_attempts WHERE tenant_id = ? ORDER BY id DESC LIMIT ?", ["t1", 50]],
  ["webhook attempts of an endpoint", "SELECT * FROM webhook_attempts WHERE webhook_id = ? ORDER BY id DESC LIMIT ?", ["w1", 50]],
  ["a message's timeline", "SELECT * FROM messages WHERE tenant_id = ? AND id = ?", ["t1", "m1"]],
  ["a message by id alone", "SELECT * FROM messages WHERE tenant_id IN (SELECT id FROM tenants) AND id = ?", ["m1"]],
  ["a message's recipients", "SELECT * FROM recipients WHERE message_id = ?", ["m1"]],
];

describe("reporting page query plans", () => {
  it.each(cases)("%s uses an index", async (name, sql, params) => {
    const details = await plan(sql, params);
    expect(details.length).toBeGreaterThan(0);
    expect(fullScans(details), details.join("\n")).toEqual([]);
    if (!name.includes("timeline") && !name.includes("message")) expect(details.some((d) => /\bevents\b/.test(d)), "the page never reads raw events for totals").toBe(false);
  });

  it("reads the newest webhook attempts of all tenants in rowid order, stopping at the limit (no sort)", async () => {
    const details = await plan("SELECT * FROM webhook_attempts ORDER BY id DESC LIMIT ?", [50]);
    expect(details).toEqual(["SCAN webhook_attempts"]);
  });
});
