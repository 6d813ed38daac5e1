/**
 * An upstream relay with its own (self-signed) certificate: what the delivery events say. The Workers runtime
 * verifies certificates against public CAs only, so `smtp+starttls://` cannot deliver there and must say why;
 * `smtp+opportunistic://` delivers in plaintext.
 */
import { describe, expect, it } from "vitest";
import testOnlyCert from "../fixtures/tls/test-only-cert.pem?raw";
import testOnlyKey from "../fixtures/tls/test-only-key.pem?raw";
import { addRoute, eventRows, waitAllFinal } from "../support/delivery-helpers";
import { call, createTenantWithKey, receivedAt, startSmtp, unique, waitFor } from "./helpers";

async function sendOne(key: string, from: string, to: string, subject: string): Promise<string> {
  const r = await call("/v1/messages", { method: "POST", key, json: { from, to: [to], subject, text: "x" } });
  expect(r.status).toBe(202);
  return ((await r.json()) as { id: string }).id;
}

/** Sends one message through a route `scheme://` to a scripted server with the self-signed test certificate. */
async function sendToSelfSigned(scheme: string, prefix: string, secure = false): Promise<{ port: number; id: string; key: string }> {
  const port = await startSmtp({ tls: { key: testOnlyKey, cert: testOnlyCert }, ...(secure ? { secure } : {}) });
  const dest = `${unique(prefix)}.example`;
  await addRoute({ match_recipient_domain: dest, next_hop_url: `${scheme}://127.0.0.1:${port}`, name: unique("private") });
  const fromDomain = `${unique("f")}.example`;
  const { key } = await createTenantWithKey([fromDomain]);
  const id = await sendOne(key, `app@${fromDomain}`, `u@${dest}`, scheme);
  return { port, id, key };
}

describe("STARTTLS to a relay with a self-signed certificate", () => {
  it("smtp+starttls:// defers with 4.7.5 and says the certificate is not trusted, not just 'internal error'", async () => {
    const { port, id, key } = await sendToSelfSigned("smtp+starttls", "tls");
    const deferred = await waitFor(async () => (await eventRows([id])).find((e) => e.type === "deferred"), 20_000, "a deferred event");
    expect(deferred.enhanced).toBe("4.7.5");
    expect(deferred.text).toMatch(/^TLS certificate not trusted: the TLS handshake with 127\.0\.0\.1:\d+ after STARTTLS failed\. The Workers runtime accepts only a certificate from a publicly trusted CA/);
    expect(deferred.text).toContain("(runtime: internal error");
    // Nothing was sent in the clear.
    expect((await receivedAt(port)).length).toBe(0);
    const view = (await (await call(`/v1/messages/${id}`, { key })).json()) as { recipients: { status: string }[] };
    expect(view.recipients[0]!.status).toBe("deferred");
  });

  it("smtps:// to a self-signed certificate: the deferral names both possible causes", async () => {
    const { port, id } = await sendToSelfSigned("smtps", "smtps", true);
    const deferred = await waitFor(async () => (await eventRows([id])).find((e) => e.type === "deferred"), 20_000, "a deferred event");
    expect(deferred.text).toMatch(/^TLS connection to 127\.0\.0\.1:\d+ failed: nothing accepted the connection, or its certificate is not trusted/);
    expect((await receivedAt(port)).length).toBe(0);
  });

  it("smtp+opportunistic:// falls back to plaintext and delivers (no TLS recorded)", async () => {
    const { port, id } = await sendToSelfSigned("smtp+opportunistic", "opp");
    const [row] = await waitAllFinal([id], 20_000);
    expect(row!.status).toBe("delivered");
    const delivered = (await eventRows([id])).find((e) => e.type === "delivered");
    expect(delivered?.tls).toBe(0);
    const [got] = await receivedAt(port);
    expect(got!.secure).toBe(false);
  });
});
