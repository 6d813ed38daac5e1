/**
 * Issue 21: encryption at rest. With BODY_ENCRYPTION_KEYS set (the workers suite sets "k2" to seal and "k1" as an
 * older key), bodies in R2 and bodies inside delivery jobs (queue messages; the job copies D1 holds for scheduled
 * sends) are AES-GCM ciphertext that does not contain the message, yet the next hop receives the message intact.
 */
import { describe, expect, it } from "vitest";
import { BodyKeyError, openInlineBody, putStoredBody, readStoredBody, sealInlineBody } from "../../src/store/body-crypto";
import { addRoute, waitAllFinal } from "../support/delivery-helpers";
import { call, createTenantWithKey, env, receivedAt, startSmtp, unique } from "./helpers";

const marker = () => `secret-${unique("m")}-lab-result`;

async function setup(): Promise<{ key: string; from: string; domain: string; port: number }> {
  const port = await startSmtp();
  const domain = `${unique("rest")}.example`;
  await addRoute({ match_recipient_domain: domain, next_hop_url: `smtp://127.0.0.1:${port}` });
  const fromDomain = `${unique("f")}.example`;
  const { key } = await createTenantWithKey([fromDomain]);
  return { key, from: `app@${fromDomain}`, domain, port };
}

function keysEnv(keys: string): Env {
  return { ...env, BODY_ENCRYPTION_KEYS: keys } as Env;
}
const rawKey = () => btoa(String.fromCharCode(...crypto.getRandomValues(new Uint8Array(32))));

describe("encryption at rest", () => {
  it("keeps a scheduled message's job body sealed in D1 and its large body sealed in R2", async () => {
    const { key, from, domain } = await setup();
    const secret = marker();
    const sendAt = new Date(Date.now() + 2 * 86400_000).toISOString();
    const small = await call("/v1/messages", { method: "POST", key, json: { from, to: [`a@${domain}`], subject: secret, text: `${secret} small`, send_at: sendAt } });
    expect(small.status).toBe(202);
    const smallId = ((await small.json()) as { id: string }).id;
    const row = await env.DB.prepare("SELECT job FROM scheduled_jobs WHERE message_id = ?").bind(smallId).first<{ job: string }>();
    const job = JSON.parse(row!.job) as { body: string };
    expect(job.body.startsWith("\0sealed:v1:k2:")).toBe(true);
    expect(row!.job).not.toContain(secret);
    expect(await openInlineBody(env, job.body, smallId)).toContain(`${secret} small`);

    const big = await call("/v1/messages", { method: "POST", key, json: { from, to: [`b@${domain}`], subject: "big", text: `${secret}\n${"x".repeat(90_000)}`, send_at: sendAt } });
    expect(big.status).toBe(202);
    const bigId = ((await big.json()) as { id: string }).id;
    const obj = await env.BODIES.get(`bodies/${bigId}`);
    expect(obj).not.toBeNull();
    expect(obj!.customMetadata).toEqual({ sealed: "v1:k2" });
    const stored = new Uint8Array(await obj!.arrayBuffer());
    const asText = new TextDecoder("latin1").decode(stored);
    expect(asText).not.toContain(secret);
    expect(asText).not.toContain("xxxxxxxx");
    expect(asText).not.toMatch(/Subject:/);
  });

  it("delivers sealed bodies intact: inline and from R2", async () => {
    const { key, from, domain, port } = await setup();
    const secret = marker();
    const ids: string[] = [];
    for (const text of [`${secret} inline`, `${secret} large\n${"y".repeat(90_000)}`]) {
      const r = await call("/v1/messages", { method: "POST", key, json: { from, to: [`c@${domain}`], subject: "s", text } });
      expect(r.status).toBe(202);
      ids.push(((await r.json()) as { id: string }).id);
    }
    expect((await waitAllFinal(ids, 30_000)).map((r) => r.status)).toEqual(["delivered", "delivered"]);
    const got = await receivedAt(port);
    expect(got.some((m) => m.raw.includes(`${secret} inline`))).toBe(true);
    expect(got.some((m) => m.raw.includes(`${secret} large`) && m.raw.includes("y".repeat(70)))).toBe(true);
  });

  it("rotates keys: bodies sealed under an older key still open; a retired key, a tampered body or a moved body do not", async () => {
    const k1 = rawKey();
    const k2 = rawKey();
    const old = keysEnv(`k1:${k1}`);
    const rotated = keysEnv(`k2:${k2},k1:${k1}`);
    const retired = keysEnv(`k2:${k2}`);
    const sealed = await sealInlineBody(old, "Subject: hi\r\n\r\nbody\r\n", "msg-1");
    expect(sealed.startsWith("\0sealed:v1:k1:")).toBe(true);
    expect(await openInlineBody(rotated, sealed, "msg-1")).toBe("Subject: hi\r\n\r\nbody\r\n");
    await expect(openInlineBody(retired, sealed, "msg-1")).rejects.toBeInstanceOf(BodyKeyError);
    await expect(openInlineBody(rotated, sealed, "msg-2")).rejects.toThrow(/does not open/);
    const tampered = sealed.slice(0, -6) + (sealed.endsWith("AAAA==") ? "BBBB==" : "AAAA==");
    await expect(openInlineBody(rotated, tampered, "msg-1")).rejects.toBeInstanceOf(BodyKeyError);
    // New bodies are sealed under the first key.
    expect((await sealInlineBody(rotated, "x", "m")).startsWith("\0sealed:v1:k2:")).toBe(true);
    // Bodies stored before encryption was turned on are delivered as they are.
    expect(await openInlineBody(rotated, "Subject: plain\r\n\r\nx", "m")).toBe("Subject: plain\r\n\r\nx");

    const r2key = `bodies/${unique("rot")}`;
    await putStoredBody(old, r2key, new TextEncoder().encode("Subject: r2\r\n\r\nbody\r\n"));
    const opened = await readStoredBody(rotated, r2key);
    expect(new TextDecoder().decode(opened as Uint8Array)).toBe("Subject: r2\r\n\r\nbody\r\n");
    await expect(readStoredBody(retired, r2key)).rejects.toBeInstanceOf(BodyKeyError);
    await expect(sealInlineBody(keysEnv("k1:c2hvcnQ="), "x", "m")).rejects.toThrow(/32 bytes/);
  });
});
