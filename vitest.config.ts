import { generateKeyPairSync, randomBytes } from "node:crypto";
import { availableParallelism } from "node:os";
import { cloudflareTest } from "@cloudflare/vitest-plugin";
import { defineConfig } from "vitest/config";

// Two projects:
// - unit: pure modules (MIME, DKIM, SMTP protocol, parsers) in plain Node.
// - workers: the Worker itself inside the Workers runtime (workerd via Miniflare) with real local
//   D1, Queues, Durable Objects and R2, talking to real SMTP peers started by test/support/global-setup.ts.
export default defineConfig({
  test: {
    // Two test files at a time even on a 2-core machine (Vitest's default there is one): most of the suite waits
    // on SMTP peers, queues and retry delays rather than on the CPU, so two files overlap their waits.
    maxWorkers: Math.max(2, availableParallelism() - 1),
    projects: [
      {
        test: {
          name: "unit",
          include: ["test/unit/**/*.test.ts"],
          environment: "node",
          globalSetup: ["./test/support/global-setup.ts"],
          testTimeout: 30_000,
        },
      },
      {
        plugins: [
          cloudflareTest(async ({ inject }) => ({
            wrangler: { configPath: "./wrangler.toml" },
            miniflare: {
              bindings: {
                NEXT_HOP_URL: `smtp://127.0.0.1:${inject<number>("sinkPort")}`,
                DOH_URL: `http://127.0.0.1:${inject<number>("controlPort")}/dns-query`,
                PEERS_URL: `http://127.0.0.1:${inject<number>("controlPort")}`,
                // Test-only: MTA-STS policies from the control server over plain HTTP (workerd trusts no test CA).
                MTA_STS_POLICY_URL: `http://127.0.0.1:${inject<number>("controlPort")}/mta-sts/{domain}/.well-known/mta-sts.txt`,
                ADMIN_TOKEN: "test-admin-token",
                RETRY_SCHEDULE_SECONDS: "1",
                WEBHOOK_RETRY_SCHEDULE_SECONDS: "1",
                TEST_MIGRATIONS: JSON.stringify(await readMigrations()),
                // HMAC secret for VERP return paths and unsubscribe tokens; DKIM keys for signed.example (RSA + Ed25519).
                SIGNING_SECRET: "test-signing-secret-0123456789",
                // Keyed hashes of redaction mode "hash" (issue 21).
                REDACTION_HASH_KEY: "test-redaction-key-0123456789",
                DKIM_KEYS: JSON.stringify(testDkimKeys()),
                // Encryption at rest (issue 21) on for the whole workers suite: "k2" seals, "k1" (an older key) still opens.
                BODY_ENCRYPTION_KEYS: `k2:${randomBytes(32).toString("base64")},k1:${randomBytes(32).toString("base64")}`,
                // Upstream relay credentials referenced from a route URL as ${SMTP_TEST_USER}:${SMTP_TEST_PASS}.
                SMTP_TEST_USER: "relay-user",
                SMTP_TEST_PASS: "s3cret:with/odd@chars",
                // Local switches (issue 15): the peers are on loopback; test domains are never DNS-verified.
                ALLOW_PRIVATE_DESTINATIONS: "127.0.0.0/8,::1/128",
                REQUIRE_VERIFIED_DOMAINS: "false",
                // Two ledger shards (issue 17): DB (also the control plane) and LEDGER_1. Suites that read env.DB
                // directly place their tenants on DB (test/workers/helpers.ts); shards.test.ts uses both.
                LEDGER_SHARDS: "DB,LEDGER_1",
              },
              // A second, empty D1 database: the ledger migration test fills it under the old schema, then migrates it.
              // LEDGER_1: the second ledger shard, migrated like DB before each file (test/support/apply-migrations.ts).
              d1Databases: { MIGRATION_TEST_DB: "edge-relay-migration-test", LEDGER_1: "edge-relay-ledger-1" },
              // Cloudflare Email Service binding for the `cloudflare:` route kind (simulated locally by Miniflare).
              email: { send_email: [{ name: "EMAIL", allowed_destination_addresses: ["ok@cf-route.example", "also-ok@cf-route.example"] }] },
            },
          })),
        ],
        test: {
          name: "workers",
          include: ["test/workers/**/*.test.ts"],
          globalSetup: ["./test/support/global-setup.ts"],
          // One Workers runtime runs file after file (no workerd start and no Worker load per file, about two
          // thirds of this project's time); the setup file gives every file empty storage with `reset()`.
          isolate: false,
          setupFiles: ["./test/support/apply-migrations.ts"],
          testTimeout: 60_000,
        },
      },
      {
        // browser: the reporting page in Debian's Chromium (playwright-core), served by the real Worker that each
        // test file starts with wrangler's unstable_startWorker on local D1/Queues (skips, saying why, without Chromium).
        test: {
          name: "browser",
          include: ["test/browser/**/*.test.ts"],
          environment: "node",
          // The migrated local state every relay of the project copies (test/support/relay-state.ts).
          globalSetup: ["./test/support/relay-state.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
      {
        // bridge: the SMTP bridge (plain Node) in front of the real Worker, which each test file starts with
        // wrangler's unstable_startWorker on local D1/Queues/R2; Postfix joins in where it is installed.
        test: {
          name: "bridge",
          include: ["test/bridge/**/*.test.ts"],
          environment: "node",
          // The migrated local state every relay of the project copies (test/support/relay-state.ts).
          globalSetup: ["./test/support/relay-state.ts"],
          testTimeout: 120_000,
          hookTimeout: 120_000,
        },
      },
    ],
  },
});

/** Fresh test DKIM keys per run: the tests read the public halves back from GET /v1/domains/:domain/dns. */
function testDkimKeys() {
  const pem = (type: "rsa" | "ed25519") =>
    type === "rsa"
      ? generateKeyPairSync("rsa", { modulusLength: 2048 }).privateKey.export({ type: "pkcs8", format: "pem" }).toString()
      : generateKeyPairSync("ed25519").privateKey.export({ type: "pkcs8", format: "pem" }).toString();
  return [
    { domain: "signed.example", selector: "rsa1", privateKeyPem: pem("rsa") },
    { domain: "signed.example", selector: "ed1", privateKeyPem: pem("ed25519") },
  ];
}

async function readMigrations() {
  const { readD1Migrations } = await import("@cloudflare/vitest-plugin");
  return readD1Migrations("./migrations");
}
