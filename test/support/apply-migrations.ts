/**
 * Runs before each test file of the workers project: every file starts on empty storage, with the D1 migrations
 * from migrations/ applied to every ledger shard (LEDGER_SHARDS: DB, the control plane, and LEDGER_1) — the same
 * migrations on every database (issue 17). The project runs its files one after another in one Workers runtime
 * (`isolate: false` in vitest.config.ts, which saves starting workerd and loading the Worker per file), so
 * `reset()` first deletes what the previous file left in D1, R2 and the Durable Objects.
 */
import { applyD1Migrations, reset } from "cloudflare:test";
import { env } from "cloudflare:workers";

const bindings = env as unknown as Record<string, D1Database> & { TEST_MIGRATIONS: string; LEDGER_SHARDS: string };
const migrations = JSON.parse(bindings.TEST_MIGRATIONS);
await reset();
for (const name of new Set(["DB", ...bindings.LEDGER_SHARDS.split(",").map((s) => s.trim())])) await applyD1Migrations(bindings[name]!, migrations);
