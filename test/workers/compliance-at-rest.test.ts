/**
 * Issue 21: encryption at rest. With BODY_ENCRYPTION_KEYS set (the workers suite sets "k2" to seal and "k1" as an
 * older key), bodies in R2 and bodies inside delivery jobs (queue messages; the job copies D1 holds for scheduled
 * sends) are AES-GCM ciphertext that does not contain the message, yet the next hop receives the message intact.
 */
import { describe, expect, it } from "vitest";
import { BodyKeyError, openInlineBody, putStoredBody, readStoredBody, readStoredText, sealInlineBody } from "../../src/store/body-crypto";
import { addRoute, eventRows, waitAllFinal } from "../support/delivery-helpers";
import { call, createTenantWithKey, env, receivedAt, startSmtp, unique, waitFor } from "./helpers";

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
    expect(await readStoredText(rotated, r2key)).toBe("Subject: r2\r\n\r\nbody\r\n");
    await expect(readStoredBody(retired, r2key)).rejects.toBeInstanceOf(BodyKeyError);
    await expect(sealInlineBody(keysEnv("k1:c2hvcnQ="), "x", "m")).rejects.toThrow(/32 bytes/);
  });

  it("streams large sealed bodies record by record, and refuses truncated, reordered or emptied objects", async () => {
    const sealedEnv = keysEnv(`k1:${rawKey()}`);
    const key = `bodies/${unique("big")}`;
    const plain = new Uint8Array(200_000).map((_, i) => (i * 7) % 251);
    await putStoredBody(sealedEnv, key, plain);
    const stored = new Uint8Array(await (await env.BODIES.get(key))!.arrayBuffer());
    // 12-byte IV, four records (64 KiB x 3 + the rest), a 16-byte tag each.
    expect(stored.byteLength).toBe(12 + 200_000 + 4 * 16);
    const stream = (await readStoredBody(sealedEnv, key))!;
    const parts: Uint8Array[] = [];
    for await (const p of stream) parts.push(p);
    expect(parts.length).toBe(4);
    expect(Buffer.concat(parts).equals(Buffer.from(plain))).toBe(true);
    expect(await readStoredText(sealedEnv, key, 1000)).toHaveLength(1000);

    const record = 64 * 1024 + 16;
    const variants: [string, Uint8Array][] = [
      ["last record dropped", stored.subarray(0, 12 + 3 * record)],
      ["cut inside a record", stored.subarray(0, stored.byteLength - 100)],
      ["records swapped", Buffer.concat([stored.subarray(0, 12), stored.subarray(12 + record, 12 + 2 * record), stored.subarray(12, 12 + record), stored.subarray(12 + 2 * record)])],
      ["one bit flipped", stored.map((b, i) => (i === 5000 ? b ^ 1 : b))],
      ["only the IV", stored.subarray(0, 12)],
    ];
    for (const [what, bytes] of variants) {
      await env.BODIES.put(key, bytes, { customMetadata: { sealed: "v1:k1" } });
      await expect(readStoredText(sealedEnv, key), what).rejects.toBeInstanceOf(BodyKeyError);
    }
    // An empty body is one final record holding only its tag.
    await putStoredBody(sealedEnv, key, new Uint8Array(0));
    expect(await readStoredText(sealedEnv, key)).toBe("");
  });

  it("never delivers part of a body whose last record was tampered with: the connection drops before the final dot", async () => {
    const { key, from, domain, port } = await setup();
    const sendAt = new Date(Date.now() + 3000).toISOString();
    const r = await call("/v1/messages", { method: "POST", key, json: { from, to: [`t@${domain}`], subject: "tamper", text: `start\n${"z".repeat(150_000)}\nend`, send_at: sendAt } });
    expect(r.status).toBe(202);
    const id = ((await r.json()) as { id: string }).id;
    const obj = await env.BODIES.get(`bodies/${id}`);
    const bytes = new Uint8Array(await obj!.arrayBuffer());
    bytes[bytes.byteLength - 20]! ^= 1;
    await env.BODIES.put(`bodies/${id}`, bytes, { customMetadata: obj!.customMetadata! });
    const deferred = await waitFor(async () => (await eventRows([id])).find((e) => e.type === "deferred"), 30_000, "the deferral");
    expect(deferred.enhanced).toBe("4.3.0");
    expect(deferred.text).toMatch(/stored body cannot be opened/);
    expect(await receivedAt(port)).toHaveLength(0);
  });
});
