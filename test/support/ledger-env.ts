/**
 * Test doubles around the real bindings for the ledger tests: a D1 database that sums `meta.rows_written` per
 * table (as D1 bills them, index entries included) and can refuse a write once, queues that capture jobs
 * instead of delivering them (a lost job), and a queue batch to hand the consumer directly.
 */
import type { DeliveryJob } from "../../src/queue/job";
import { acceptMessage } from "../../src/queue/spool";
import { unique } from "../workers/helpers";

export interface RowCounter {
  total: number;
  byTable: Record<string, number>;
}

function tableOf(sql: string): string {
  const m = /\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE|DELETE\s+FROM)\s+["`]?(\w+)/i.exec(sql);
  return m ? m[1]!.toLowerCase() : "read";
}

/**
 * Wraps `db`: counts rows written into `counter`; `failOnce(sql)` makes the first batch or run whose SQL
 * matches throw, as a D1 outage would.
 */
export function countingD1(db: D1Database, counter: RowCounter, failOnce?: (sql: string) => boolean): D1Database {
  let failed = false;
  const real = new WeakMap<object, { stmt: D1PreparedStatement; sql: string }>();
  const note = (sql: string, r: unknown) => {
    const n = (r as { meta?: { rows_written?: number } }).meta?.rows_written ?? 0;
    counter.total += n;
    counter.byTable[tableOf(sql)] = (counter.byTable[tableOf(sql)] ?? 0) + n;
  };
  const maybeFail = (sqls: string[]) => {
    if (!failed && failOnce && sqls.some(failOnce)) {
      failed = true;
      throw new Error("D1_ERROR: simulated outage (test)");
    }
  };
  const wrap = (stmt: D1PreparedStatement, sql: string): D1PreparedStatement => {
    const w = {
      bind: (...v: unknown[]) => wrap(stmt.bind(...v), sql),
      first: async (col?: string) => {
        const r = await stmt.all<Record<string, unknown>>();
        note(sql, r);
        const row = r.results[0];
        return row === undefined ? null : col === undefined ? row : (row[col] ?? null);
      },
      run: async () => {
        maybeFail([sql]);
        const r = await stmt.run();
        note(sql, r);
        return r;
      },
      all: async () => {
        const r = await stmt.all();
        note(sql, r);
        return r;
      },
      raw: () => stmt.raw(),
    };
    real.set(w, { stmt, sql });
    return w as unknown as D1PreparedStatement;
  };
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") return (sql: string) => wrap(target.prepare(sql), sql);
      if (prop === "batch")
        return async (stmts: D1PreparedStatement[]) => {
          const items = stmts.map((s) => real.get(s as unknown as object)!);
          maybeFail(items.map((i) => i.sql));
          const results = await target.batch(items.map((i) => i.stmt));
          results.forEach((r, i) => note(items[i]!.sql, r));
          return results;
        };
      const v = Reflect.get(target, prop);
      return typeof v === "function" ? v.bind(target) : v;
    },
  });
}

/** A queue that keeps what is sent to it (nothing is delivered: the jobs are "lost" unless the test hands them on). */
export function capturingQueue(into: DeliveryJob[]): Queue {
  return {
    send: async (body: unknown) => void into.push(body as DeliveryJob),
    sendBatch: async (msgs: Iterable<{ body: unknown }>) => {
      for (const m of msgs) into.push(m.body as DeliveryJob);
    },
  } as unknown as Queue;
}

/**
 * Accepts one message (From `from`, one Message-ID, body "hello") through the real accept path with the queues
 * replaced by a capture: its jobs exist only in `jobs` (lost unless the test hands them on).
 */
export async function acceptCaptured(e: Env, tenantId: string, from: string, to: string[], jobs: DeliveryJob[], subject = "ledger"): Promise<string> {
  const q = capturingQueue(jobs);
  const raw = `From: ${from}\r\nTo: ${to.join(", ")}\r\nSubject: ${subject}\r\nMessage-ID: <${unique("m")}@x.example>\r\n\r\nhello\r\n`;
  const { id } = await acceptMessage(envWith(e, { OUTBOX: q, OUTBOX_PRIORITY: q }), {
    tenantId,
    mailFrom: from,
    headerFrom: from,
    subject,
    messageIdHeader: `${unique("mid")}@x.example`,
    raw,
    recipients: to,
  });
  return id;
}

/** `env` with some bindings replaced. */
export function envWith(env: Env, overrides: Partial<Record<keyof Env, unknown>>): Env {
  return new Proxy(env, { get: (t, p) => (p in overrides ? (overrides as Record<string | symbol, unknown>)[p] : Reflect.get(t, p)) });
}

/** A queue batch of these jobs, as the consumer receives it; `attempts` > 1 marks a redelivery. */
export function batchOf(jobs: DeliveryJob[], attempts = 1): MessageBatch<unknown> & { acked: number } {
  const b = {
    queue: "edge-relay-outbox-priority",
    acked: 0,
    messages: jobs.map((body, i) => ({
      id: `test-${Date.now()}-${i}`,
      timestamp: new Date(),
      body,
      attempts,
      ack: () => void b.acked++,
      retry: () => undefined,
    })),
    ackAll: () => void (b.acked += jobs.length),
    retryAll: () => undefined,
  };
  return b as unknown as MessageBatch<unknown> & { acked: number };
}
