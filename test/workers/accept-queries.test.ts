/**
 * D1 round trips of the accept path (issue 16): D1 runs one query at a time per database, so every query of
 * `POST /v1/messages` is throughput the relay cannot have. Counts queries (a statement run, or one `batch`), not
 * rows; and checks that the per-isolate key cache still honours revocation (at once through this isolate, within
 * API_KEY_CACHE_MS elsewhere).
 */
import { describe, expect, it } from "vitest";
import { app } from "../../src/http/app";
import { API_KEY_CACHE_MS, findApiKey } from "../../src/store/keys";
import type { DeliveryJob } from "../../src/queue/job";
import { capturingQueue, envWith } from "../support/ledger-env";
import { ADMIN_TOKEN, call, createTenantWithKey, env, unique } from "./helpers";

/** `db` with every round trip to D1 counted: each run/first/all/raw of a statement, and each batch, is one. */
function queryCounting(db: D1Database, count: { queries: number }): D1Database {
  const real = new WeakMap<object, D1PreparedStatement>();
  const wrap = (stmt: D1PreparedStatement): D1PreparedStatement => {
    const counted =
      (name: "run" | "first" | "all" | "raw") =>
      (...a: unknown[]) => {
        count.queries++;
        return (stmt[name] as (...x: unknown[]) => unknown)(...a);
      };
    const w = { bind: (...v: unknown[]) => wrap(stmt.bind(...v)), run: counted("run"), first: counted("first"), all: counted("all"), raw: counted("raw") };
    real.set(w, stmt);
    return w as unknown as D1PreparedStatement;
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => wrap(target.prepare(sql));
      if (prop === "batch")
        return (stmts: D1PreparedStatement[]) => {
          count.queries++;
          return target.batch(stmts.map((s) => real.get(s as unknown as object)!));
        };
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

const ctx = { waitUntil: () => undefined, passThroughOnException: () => undefined, props: {} } as unknown as ExecutionContext;

async function send(e: Env, key: string, to: string, from: string): Promise<Response> {
  const body = JSON.stringify({ from, to: [to], subject: "queries", text: "hello" });
  return app.fetch(new Request("https://relay.test/v1/messages", { method: "POST", headers: { authorization: `Bearer ${key}`, "content-type": "application/json" }, body }), e, ctx);
}

describe("D1 queries per accepted request", () => {
  it("POST /v1/messages makes at most 3 D1 round trips with a cold key cache and 2 with a warm one", async () => {
    const domain = `${unique("q")}.example`;
    const { key } = await createTenantWithKey([domain]);
    const count = { queries: 0 };
    const jobs: DeliveryJob[] = [];
    const q = capturingQueue(jobs);
    const e = envWith(env, { DB: queryCounting(env.DB, count), OUTBOX: q, OUTBOX_PRIORITY: q });
    const first = await send(e, key, `a@${unique("d")}.example`, `s@${domain}`);
    expect(first.status).toBe(202);
    const cold = count.queries;
    count.queries = 0;
    const second = await send(e, key, `b@${unique("d")}.example`, `s@${domain}`);
    expect(second.status).toBe(202);
    console.log(`D1 round trips per POST /v1/messages: cold key cache ${cold}, warm ${count.queries}`);
    expect(jobs.length).toBe(2);
    // Key and tenant (cold only); sender domain and suppressions in one batch; the message row.
    expect(cold).toBeGreaterThan(0);
    expect(cold).toBeLessThanOrEqual(3);
    expect(count.queries).toBeLessThanOrEqual(2);
  });

  it("a key revoked through this isolate stops at once; revoked elsewhere, within API_KEY_CACHE_MS", async () => {
    const domain = `${unique("q")}.example`;
    const a = await createTenantWithKey([domain]);
    expect((await send(env, a.key, `a@${unique("d")}.example`, `s@${domain}`)).status).toBe(202);
    expect((await call(`/admin/keys/${a.keyId}`, { method: "DELETE", key: ADMIN_TOKEN })).status).toBeLessThan(300);
    const refused = await send(env, a.key, `a@${unique("d")}.example`, `s@${domain}`);
    expect(refused.status).toBe(401);
    expect(((await refused.json()) as { error: { code: string } }).error.code).toBe("key_revoked");

    // Another isolate revoked it (this one's cache was not told): the record is read again once the entry expires.
    const b = await createTenantWithKey([domain.replace("q", "r")]);
    const now = Date.now();
    expect((await findApiKey(env.DB, b.key, now))!.revoked).toBe(false);
    await env.DB.prepare("UPDATE api_keys SET revoked_at = ? WHERE id = ?").bind(now, b.keyId).run();
    expect((await findApiKey(env.DB, b.key, now + 1))!.revoked).toBe(false);
    expect((await findApiKey(env.DB, b.key, now + API_KEY_CACHE_MS + 1))!.revoked).toBe(true);
  });
});
