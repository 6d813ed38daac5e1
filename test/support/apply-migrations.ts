/** Applies the D1 migrations from migrations/ to the test database before the tests of each file. */
import { applyD1Migrations } from "cloudflare:test";
import { env } from "cloudflare:workers";

const migrations = JSON.parse((env as unknown as { TEST_MIGRATIONS: string }).TEST_MIGRATIONS);
await applyD1Migrations(env.DB, migrations);
