/**
 * Applies the D1 migrations from migrations/ to every ledger shard (LEDGER_SHARDS: DB, the control plane, and
 * LEDGER_1) before the tests of each file: the same migrations on every database (issue 17).
 */
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

const bindings = env as unknown as Record<string, D1Database> & { TEST_MIGRATIONS: string; LEDGER_SHARDS: string };
const migrations = JSON.parse(bindings.TEST_MIGRATIONS);
for (const name of new Set(["DB", ...bindings.LEDGER_SHARDS.split(",").map((s) => s.trim())])) await applyD1Migrations(bindings[name]!, migrations);
