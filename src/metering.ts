/**
 * Billable-operation metering for the benchmarks (`npm run bench`): counts, per code path, the operations
 * Cloudflare bills -- Worker invocations, queue operations (64 KB units written, read, deleted), D1 rows read and
 * written (from each result's `meta`), Durable Object requests, their wall-clock time and SQLite rows, R2 class A
 * and B operations.
 *
 * Off unless the `METERING` var is "1". Off, the handlers get the untouched `env` and the only cost is one
 * property read per invocation. On, the bindings are wrapped in counting proxies and `GET /__metering` (admin
 * token) answers the counters as JSON: `{"<path>.<metric>": n}` where path is `http:<METHOD> <route>`,
 * `queue:<queue name>`, `scheduled`, `email` or `do:<class>`.
 *
 * Counters live in the isolate's memory: they are exact for a single local runtime (workerd runs the Worker and
 * its Durable Objects in one process), which is what the benchmark uses.
 */
import { meteringEnabled, meteringToken } from "./config";

type Counters = Record<string, number>;

const counters: Counters = {};

/** Cloudflare Queues bill one operation per 64 KB written, read or deleted. */
const QUEUE_OPERATION_BYTES = 64 * 1024;
/** Durable Objects are billed for duration at 128 MB, whatever they use. */
const DO_BILLED_GB = 0.128;

function add(path: string, metric: string, n = 1): void {
  if (!n) return;
  const key = `${path}.${metric}`;
  counters[key] = (counters[key] ?? 0) + n;
}

/**
 * Adds time spent in a stage (e.g. "smtp") to the queue consumer's breakdown, when metering is on. The time of
 * parallel lanes adds up, so the parts of a batch may sum to more than its wall time.
 */
export function meterStageTime(env: unknown, stage: string, ms: number): void {
  if (meteringEnabled(env)) add("consumer", `time_ms:${stage}`, ms);
}

/** Stages with work in progress now: how many, and since when the first of them. */
const openSpans: Record<string, { open: number; since: number }> = {};

/**
 * Starts a span of a stage (e.g. one SMTP transaction) and returns the function that ends it. While at least one
 * span of the stage is open the stage counts as busy: `time_ms:<stage>_wall` adds up the time it was busy, which
 * parallel lanes do not multiply (unlike `meterStageTime`). A no-op unless metering is on.
 */
export function meterStageSpan(env: unknown, stage: string): () => void {
  if (!meteringEnabled(env)) return () => undefined;
  const s = (openSpans[stage] ??= { open: 0, since: 0 });
  if (s.open++ === 0) s.since = Date.now();
  let ended = false;
  return () => {
    if (ended) return;
    ended = true;
    if (--s.open === 0) add("consumer", `time_ms:${stage}_wall`, Date.now() - s.since);
  };
}

/** A snapshot of every counter. */
export function meteringSnapshot(): Counters {
  return { ...counters };
}

function queueUnits(body: unknown): number {
  let bytes = 0;
  try {
    bytes = new TextEncoder().encode(typeof body === "string" ? body : JSON.stringify(body) ?? "").byteLength;
  } catch {
    bytes = 0;
  }
  return Math.max(1, Math.ceil(bytes / QUEUE_OPERATION_BYTES));
}

/** Binds functions read through a proxy to the real object, so native methods see their own `this`. */
function passThrough(target: object, prop: string | symbol): unknown {
  const value: unknown = Reflect.get(target, prop);
  return typeof value === "function" ? (value as (...a: unknown[]) => unknown).bind(target) : value;
}

// D1 ------------------------------------------------------------------------------------------------------

interface D1Meta {
  rows_read?: number;
  rows_written?: number;
}

/** The table a statement writes or reads first, so the counters say where the rows go. */
function tableOf(sql: string): string {
  const m = /\b(?:INSERT(?:\s+OR\s+\w+)?\s+INTO|UPDATE(?:\s+OR\s+\w+)?|DELETE\s+FROM|FROM)\s+["`]?(\w+)/i.exec(sql);
  return m ? m[1]!.toLowerCase() : "other";
}

function countD1(path: string, sql: string, result: unknown): void {
  add(path, "d1_queries");
  const meta = (result as { meta?: D1Meta } | null)?.meta;
  if (!meta) return;
  const table = tableOf(sql);
  add(path, "d1_rows_read", meta.rows_read ?? 0);
  add(path, "d1_rows_written", meta.rows_written ?? 0);
  add(path, `d1_rows_read:${table}`, meta.rows_read ?? 0);
  add(path, `d1_rows_written:${table}`, meta.rows_written ?? 0);
}

/** The real statement (and its SQL) behind each counting wrapper, so `db.batch()` gets what D1 expects. */
const realStatements = new WeakMap<object, { stmt: D1PreparedStatement; sql: string }>();

function meterStatement(stmt: D1PreparedStatement, path: string, sql: string): D1PreparedStatement {
  // Runs the statement, adding its time and its rows to the path's counters.
  const timed = async <R>(run: () => Promise<R>): Promise<R> => {
    const started = Date.now();
    const r = await run();
    add(path, "time_ms:d1", Date.now() - started);
    countD1(path, sql, r);
    return r;
  };
  const wrapper = {
    bind: (...values: unknown[]) => meterStatement(stmt.bind(...values), path, sql),
    // first() returns no meta, so it is answered from all(): D1 runs the whole statement for first() too.
    first: async (column?: string) => {
      const r = await timed(() => stmt.all<Record<string, unknown>>());
      const row = r.results[0];
      if (row === undefined) return null;
      return column === undefined ? row : (row[column] ?? null);
    },
    run: () => timed(() => stmt.run()),
    all: () => timed(() => stmt.all()),
    raw: async (options?: { columnNames?: boolean }) => {
      // raw() has no meta; counted as a query whose rows are unknown.
      add(path, "d1_queries_uncounted_rows");
      return options?.columnNames ? stmt.raw({ columnNames: true }) : stmt.raw();
    },
  };
  realStatements.set(wrapper, { stmt, sql });
  return wrapper as unknown as D1PreparedStatement;
}

function meterD1(db: D1Database, path: string): D1Database {
  return new Proxy(db, {
    get(target, prop) {
      if (prop === "prepare") return (query: string) => meterStatement(target.prepare(query), path, query);
      if (prop === "batch") {
        return async (statements: D1PreparedStatement[]) => {
          const real = statements.map((s) => realStatements.get(s) ?? { stmt: s, sql: "" });
          const started = Date.now();
          const results = await target.batch(real.map((r) => r.stmt));
          add(path, "time_ms:d1", Date.now() - started);
          results.forEach((r, i) => countD1(path, real[i]!.sql, r));
          return results;
        };
      }
      return passThrough(target, prop);
    },
  });
}

// Queues ---------------------------------------------------------------------------------------------------

function meterQueue(queue: Queue, path: string): Queue {
  return new Proxy(queue, {
    get(target, prop) {
      if (prop === "send") {
        return (body: unknown, options?: QueueSendOptions) => {
          add(path, "queue_writes", queueUnits(body));
          return target.send(body, options);
        };
      }
      if (prop === "sendBatch") {
        return (messages: Iterable<MessageSendRequest>, options?: QueueSendBatchOptions) => {
          const list = [...messages];
          for (const m of list) add(path, "queue_writes", queueUnits(m.body));
          return target.sendBatch(list, options);
        };
      }
      return passThrough(target, prop);
    },
  });
}

// R2 -------------------------------------------------------------------------------------------------------

const R2_CLASS_A = new Set(["put", "list", "createMultipartUpload", "resumeMultipartUpload"]);
const R2_CLASS_B = new Set(["get", "head"]);

function meterR2(bucket: R2Bucket, path: string): R2Bucket {
  return new Proxy(bucket, {
    get(target, prop) {
      const value = passThrough(target, prop);
      if (typeof prop !== "string" || typeof value !== "function") return value;
      // DeleteObject is free in R2's price list; it is counted for the record only.
      const metric = R2_CLASS_A.has(prop) ? "r2_class_a" : R2_CLASS_B.has(prop) ? "r2_class_b" : prop === "delete" ? "r2_free" : null;
      if (!metric) return value;
      return (...args: unknown[]) => {
        add(path, metric);
        return (value as (...a: unknown[]) => unknown)(...args);
      };
    },
  });
}

// Durable Objects (caller side) ---------------------------------------------------------------------------

function meterStub(stub: object, path: string): object {
  return new Proxy(stub, {
    get(target, prop) {
      // Not a thenable: awaiting the wrapper must not turn into an RPC call.
      if (prop === "then") return undefined;
      if (prop === "id" || prop === "name" || typeof prop === "symbol") return passThrough(target, prop);
      const method = Reflect.get(target, prop) as unknown;
      if (typeof method !== "function") return method;
      return (...args: unknown[]) => {
        // Each RPC method call on a stub is one billed request (Durable Objects pricing, footnote 1).
        add(path, "do_requests");
        const started = Date.now();
        return Promise.resolve(Reflect.apply(method as (...a: unknown[]) => unknown, target, args)).finally(() => {
          // Wall time seen by the caller: an upper bound of the object's active time.
          add(path, "do_gb_ms", (Date.now() - started) * DO_BILLED_GB);
          add(path, "time_ms:do", Date.now() - started);
        });
      };
    },
  });
}

function meterNamespace(ns: DurableObjectNamespace, path: string): DurableObjectNamespace {
  return new Proxy(ns, {
    get(target, prop) {
      const value = passThrough(target, prop);
      if (prop !== "get" && prop !== "getByName") return value;
      return (...args: unknown[]) => meterStub((value as (...a: unknown[]) => object)(...args), path);
    },
  });
}

// Durable Objects (inside: SQLite storage rows) -----------------------------------------------------------

/**
 * Makes a Durable Object's SQL storage count rows read and written (when METERING="1"). The runtime insists on
 * its own DurableObjectState, so the object's `sql.exec` is replaced in place rather than the state wrapped.
 */
export function meterDurableObjectStorage(ctx: DurableObjectState, env: unknown, className: string): void {
  if (!meteringEnabled(env)) return;
  const path = `do:${className}`;
  const sql = ctx.storage.sql;
  const exec = sql.exec.bind(sql);
  const metered = ((query: string, ...bindings: unknown[]) => {
    const cursor = exec(query, ...bindings);
    // Rows are known once the cursor is consumed; callers consume synchronously, so read them a tick later.
    queueMicrotask(() => {
      add(path, "do_sql_rows_read", cursor.rowsRead);
      add(path, "do_sql_rows_written", cursor.rowsWritten);
    });
    return cursor;
  }) as SqlStorage["exec"];
  try {
    Object.defineProperty(sql, "exec", { value: metered, configurable: true, writable: true });
  } catch {
    /* fall through: checked below */
  }
  if (ctx.storage.sql.exec !== metered) add(path, "do_sql_unmetered");
}

// Handlers -------------------------------------------------------------------------------------------------

/** `env` with every billable binding wrapped in a counting proxy for code path `path`. */
function meterEnv(env: Env, path: string): Env {
  const out: Record<string, unknown> = { ...(env as unknown as Record<string, unknown>) };
  for (const [name, binding] of Object.entries(out)) {
    if (binding === null || typeof binding !== "object") continue;
    const b = binding as Record<string, unknown>;
    if (typeof b.prepare === "function" && typeof b.batch === "function") out[name] = meterD1(binding as D1Database, path);
    else if (typeof b.sendBatch === "function" && typeof b.send === "function") out[name] = meterQueue(binding as Queue, path);
    else if (typeof b.idFromName === "function") out[name] = meterNamespace(binding as DurableObjectNamespace, path);
    else if (typeof b.createMultipartUpload === "function") out[name] = meterR2(binding as R2Bucket, path);
  }
  return out as unknown as Env;
}

/** `http:POST /v1/messages`: method and the route's fixed segments (ids replaced by `:id`). */
function httpPath(request: Request): string {
  const segments = new URL(request.url).pathname.split("/").slice(1, 5);
  const route = segments.map((s) => (/\d/.test(s) && s.length >= 8 ? ":id" : s)).join("/");
  return `http:${request.method} /${route}`;
}

function meterBatch(batch: MessageBatch<unknown>, path: string): { batch: MessageBatch<unknown>; settle: (ok: boolean) => void } {
  const state = new Map<Message<unknown>, "ack" | "retry">();
  const messages = batch.messages.map((m) => {
    add(path, "queue_reads", queueUnits(m.body));
    return {
      get id() {
        return m.id;
      },
      get timestamp() {
        return m.timestamp;
      },
      get body() {
        return m.body;
      },
      get attempts() {
        return m.attempts;
      },
      ack: () => {
        state.set(m, "ack");
        m.ack();
      },
      retry: (options?: QueueRetryOptions) => {
        state.set(m, "retry");
        m.retry(options);
      },
    } satisfies Message<unknown>;
  });
  const wrapped = {
    get queue() {
      return batch.queue;
    },
    get metadata() {
      return batch.metadata;
    },
    messages,
    ackAll: () => {
      for (const m of batch.messages) state.set(m, "ack");
      batch.ackAll();
    },
    retryAll: (options?: QueueRetryOptions) => {
      for (const m of batch.messages) state.set(m, "retry");
      batch.retryAll(options);
    },
  } satisfies MessageBatch<unknown>;
  const settle = (ok: boolean) => {
    // A message is deleted when acked, explicitly or by a handler that returned without retrying it.
    for (const m of batch.messages) {
      const s = state.get(m);
      if (s === "ack" || (s === undefined && ok)) add(path, "queue_deletes", queueUnits(m.body));
    }
  };
  return { batch: wrapped, settle };
}

async function settled<T>(work: () => Promise<T>, settle: (ok: boolean) => void): Promise<T> {
  try {
    const r = await work();
    settle(true);
    return r;
  } catch (e) {
    settle(false);
    throw e;
  }
}

/**
 * Wraps the Worker's handlers: with METERING="1" each invocation is counted and runs with metered bindings,
 * and `GET /__metering` answers the counters to the admin token. Without it, each call goes straight through.
 */
export function withMetering<H extends ExportedHandler<Env>>(handler: H): H {
  const { fetch, queue, scheduled, email } = handler;
  const metered: ExportedHandler<Env> = {
    ...handler,
    ...(fetch && {
      fetch: (request: Request<unknown, IncomingRequestCfProperties>, env: Env, ctx: ExecutionContext) => {
        if (!meteringEnabled(env)) return fetch(request, env, ctx);
        if (new URL(request.url).pathname === "/__metering") {
          const token = meteringToken(env);
          if (!token || request.headers.get("authorization") !== `Bearer ${token}`) return new Response("forbidden", { status: 403 });
          return Response.json(meteringSnapshot());
        }
        const path = httpPath(request);
        add(path, "worker_requests");
        return fetch(request, meterEnv(env, path), ctx);
      },
    }),
    ...(queue && {
      queue: (batch: MessageBatch<unknown>, env: Env, ctx: ExecutionContext) => {
        if (!meteringEnabled(env)) return queue(batch, env, ctx);
        const path = `queue:${batch.queue}`;
        add(path, "worker_requests");
        const m = meterBatch(batch, path);
        const started = Date.now();
        add(path, "batches");
        return settled(async () => queue(m.batch, meterEnv(env, path), ctx), (ok) => {
          // Wall time of the batch, for the consumer's time breakdown (D1, DomainGate, SMTP, other) in the bench.
          add(path, "time_ms:batch", Date.now() - started);
          m.settle(ok);
        });
      },
    }),
    ...(scheduled && {
      scheduled: (controller: ScheduledController, env: Env, ctx: ExecutionContext) => {
        if (!meteringEnabled(env)) return scheduled(controller, env, ctx);
        add("scheduled", "worker_requests");
        return scheduled(controller, meterEnv(env, "scheduled"), ctx);
      },
    }),
    ...(email && {
      email: (message: ForwardableEmailMessage, env: Env, ctx: ExecutionContext) => {
        if (!meteringEnabled(env)) return email(message, env, ctx);
        add("email", "worker_requests");
        return email(message, meterEnv(env, "email"), ctx);
      },
    }),
  };
  // Same handlers under the same names, so callers (and tests) keep the handler's exact type.
  return metered as H;
}
