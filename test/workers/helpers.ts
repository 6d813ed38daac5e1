/** Shared helpers for tests that run inside the Workers runtime. */
import { env, exports } from "cloudflare:workers";
import { inject } from "vitest";
import type { ReceivedMessage, SmtpServerScript } from "../support/peers";

export const ADMIN_TOKEN = "test-admin-token";
const control = () => `http://127.0.0.1:${inject("controlPort")}`;

/** Calls the Worker under test (the real fetch handler, in this runtime). */
export function call(path: string, init: RequestInit & { json?: unknown; key?: string } = {}): Promise<Response> {
  const headers = new Headers(init.headers);
  if (init.json !== undefined) headers.set("content-type", "application/json");
  if (init.key) headers.set("authorization", `Bearer ${init.key}`);
  return exports.default.fetch(
    new Request(`https://relay.test${path}`, {
      ...init,
      headers,
      body: init.json !== undefined ? JSON.stringify(init.json) : init.body,
    }),
  );
}

let counter = 0;
/** A unique token for ids, domains and addresses (storage is shared within a test file). */
export function unique(prefix = "t"): string {
  counter++;
  return `${prefix}${Date.now().toString(36)}${counter}${Math.random().toString(36).slice(2, 6)}`;
}

/**
 * Creates a tenant owning `domains` and an API key for it, through the admin API. Its ledger is on `shard`: DB by
 * default, since most suites read the ledger from env.DB directly (test/workers/shards.test.ts covers placement).
 */
export async function createTenantWithKey(domains: string[], shard = "DB"): Promise<{ tenantId: string; key: string; keyId: string }> {
  const t = await call("/admin/tenants", { method: "POST", key: ADMIN_TOKEN, json: { name: unique("tenant"), domains, shard } });
  if (t.status !== 201) throw new Error(`tenant: ${t.status} ${await t.text()}`);
  const { id: tenantId } = (await t.json()) as { id: string };
  const k = await call(`/admin/tenants/${tenantId}/keys`, { method: "POST", key: ADMIN_TOKEN, json: { name: "test" } });
  const { key, id: keyId } = (await k.json()) as { key: string; id: string };
  return { tenantId, key, keyId };
}

/** Starts a scripted SMTP server on 127.0.0.1 (in the test's global setup process). */
export async function startSmtp(script: SmtpServerScript = {}): Promise<number> {
  const r = await fetch(`${control()}/smtp`, { method: "POST", body: JSON.stringify(script) });
  return ((await r.json()) as { port: number }).port;
}

export async function receivedAt(port: number): Promise<ReceivedMessage[]> {
  const r = await fetch(`${control()}/smtp/${port}/messages`);
  return (await r.json()) as ReceivedMessage[];
}

export function sinkPort(): number {
  return inject("sinkPort");
}

/** Points a recipient domain at a next hop through the admin API. */
export async function routeDomain(domain: string, nextHopUrl: string): Promise<void> {
  const r = await call("/admin/routes", { method: "POST", key: ADMIN_TOKEN, json: { match_recipient_domain: domain, next_hop_url: nextHopUrl } });
  if (r.status !== 201) throw new Error(`route: ${r.status} ${await r.text()}`);
}

/** Starts a scripted SMTP server and routes a fresh recipient domain (`<prefix>….example`) to it. */
export async function routedDomain(script: SmtpServerScript = {}, prefix = "d"): Promise<{ port: number; domain: string }> {
  const port = await startSmtp(script);
  const domain = `${unique(prefix)}.example`;
  await routeDomain(domain, `smtp://127.0.0.1:${port}`);
  return { port, domain };
}

/** Polls until `check` returns a value that is not undefined, or fails after `timeoutMs`. */
export async function waitFor<T>(check: () => Promise<T | undefined>, timeoutMs = 15_000, what = "condition"): Promise<T> {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const v = await check();
    if (v !== undefined) return v;
    if (Date.now() > end) throw new Error(`timed out waiting for ${what}`);
    await new Promise((r) => setTimeout(r, 100));
  }
}

export { env };
