/**
 * The real relay for bridge tests: this repository's Worker on the local Workers runtime (workerd through
 * wrangler's unstable_startWorker), with local D1/Queues/R2/Durable Objects persisted in a fresh temporary
 * directory whose D1 migrations were applied with `wrangler d1 migrations apply DB --local --persist-to` (once per
 * run, by test/support/relay-state.ts, whose template directory each relay copies).
 */
import { spawnSync } from "node:child_process";
import { randomBytes } from "node:crypto";
import { cpSync, mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, resolve } from "node:path";
import { inject } from "vitest";
import { unstable_startWorker } from "wrangler";

export interface TestRelay {
  url: URL;
  /** The directory holding the Worker's local D1/Queues/R2/Durable Object state (`wrangler ... --persist-to`). */
  persist: string;
  adminToken: string;
  /** Creates a tenant that may send from `domains` and returns one API key of it. */
  createTenant(domains: string[]): Promise<{ tenantId: string; key: string }>;
  /** A JSON call with an API key (or the admin token). */
  call(method: string, path: string, token: string, body?: unknown): Promise<{ status: number; body: unknown }>;
  dispose(): Promise<void>;
}

const WRANGLER = resolve("node_modules/wrangler/bin/wrangler.js");

/** Applies the D1 migrations to the local state in `persist` with the wrangler CLI, as an operator would. */
export function applyMigrationsWithWrangler(persist: string): void {
  // The wrangler CLI needs Node 22.12+; run it on the Node that runs the tests (node@22 from node_modules).
  const migrate = spawnSync(process.execPath, [WRANGLER, "d1", "migrations", "apply", "DB", "--local", "--persist-to", persist], {
    env: { ...process.env, CI: "1", WRANGLER_SEND_METRICS: "false" },
    encoding: "utf8",
  });
  if (migrate.status !== 0) throw new Error(`wrangler d1 migrations apply failed:\n${migrate.stdout}\n${migrate.stderr}`);
}

/**
 * Starts the Worker with `vars` over wrangler.toml's (NEXT_HOP_URL at least). With `persist`, on that state
 * directory (a restart of an earlier relay's runtime), which dispose() then leaves in place.
 */
export async function startRelay(vars: Record<string, string>, options: { persist?: string } = {}): Promise<TestRelay> {
  const persist = options.persist ?? mkdtempSync(join(tmpdir(), "edge-relay-bridge-test-"));
  // Fresh state starts as a copy of the run's migrated template; without one (a project without the global
  // setup), and on a restart of earlier state, the CLI applies what is missing.
  const template = inject("relayStateTemplate");
  if (template && readdirSync(persist).length === 0) cpSync(template, persist, { recursive: true });
  else applyMigrationsWithWrangler(persist);

  const adminToken = `bridge-test-admin-${randomBytes(8).toString("hex")}`;
  const bindings: Record<string, { type: "plain_text"; value: string }> = {};
  for (const [name, value] of Object.entries({
    ADMIN_TOKEN: adminToken,
    RETRY_SCHEDULE_SECONDS: "1",
    // Local switches (issue 15): peers on loopback, sender domains never DNS-verified.
    ALLOW_PRIVATE_DESTINATIONS: "127.0.0.0/8,::1/128",
    REQUIRE_VERIFIED_DOMAINS: "false",
    ...vars,
  })) {
    bindings[name] = { type: "plain_text", value };
  }
  const worker = await unstable_startWorker({
    config: "wrangler.toml",
    bindings,
    dev: { persist, server: { hostname: "127.0.0.1", port: 0 }, inspector: false, watch: false, logLevel: "error" },
  });
  await worker.ready;
  const url = await worker.url;

  const call: TestRelay["call"] = async (method, path, token, body) => {
    const res = await fetch(new URL(path, url), {
      method,
      headers: { authorization: `Bearer ${token}`, ...(body === undefined ? {} : { "content-type": "application/json" }) },
      ...(body === undefined ? {} : { body: JSON.stringify(body) }),
    });
    const text = await res.text();
    let parsed: unknown = text;
    try {
      parsed = JSON.parse(text);
    } catch {
      /* not JSON: keep the text */
    }
    return { status: res.status, body: parsed };
  };

  let tenants = 0;
  return {
    url,
    persist,
    adminToken,
    call,
    async createTenant(domains) {
      const id = `bridge-${process.pid}-${++tenants}-${randomBytes(3).toString("hex")}`;
      const t = await call("POST", "/admin/tenants", adminToken, { id, name: `Bridge test ${id}`, domains });
      if (t.status !== 201) throw new Error(`create tenant: ${t.status} ${JSON.stringify(t.body)}`);
      const k = await call("POST", `/admin/tenants/${id}/keys`, adminToken, { name: "bridge test" });
      if (k.status !== 201) throw new Error(`create key: ${k.status} ${JSON.stringify(k.body)}`);
      return { tenantId: id, key: (k.body as { key: string }).key };
    },
    async dispose() {
      await worker.dispose();
      if (!options.persist) rmSync(persist, { recursive: true, force: true });
    },
  };
}
