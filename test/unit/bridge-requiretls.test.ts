/** Issue 21: the bridge passes the client's REQUIRETLS (RFC 8689 MAIL FROM parameter) on as X-Require-TLS: yes. */
import { describe, expect, it } from "vitest";
import { postRawMessage } from "../../src/bridge/relay-client.js";

async function headersSent(requireTls: boolean | undefined): Promise<Headers> {
  let seen: Headers | undefined;
  const fetch = async (_url: string, init: { headers: Record<string, string> }) => {
    seen = new Headers(init.headers);
    return new Response(JSON.stringify({ id: "m1", status: "accepted", recipients: [] }), { status: 202, headers: { "content-type": "application/json" } });
  };
  await postRawMessage({
    relayUrl: new URL("http://relay.test/"),
    apiKey: "er_x",
    mailFrom: "a@example.com",
    recipients: ["b@example.net"],
    clientHelo: null,
    clientProtocol: null,
    ...(requireTls !== undefined ? { requireTls } : {}),
    body: (async function* () {
      yield new TextEncoder().encode("Subject: x\r\n\r\nx\r\n");
    })(),
    signal: new AbortController().signal,
    fetch: fetch as never,
  });
  return seen!;
}

describe("bridge REQUIRETLS", () => {
  it("sends X-Require-TLS: yes only for a REQUIRETLS transaction", async () => {
    expect((await headersSent(true)).get("x-require-tls")).toBe("yes");
    expect((await headersSent(false)).get("x-require-tls")).toBeNull();
    expect((await headersSent(undefined)).get("x-require-tls")).toBeNull();
  });
});
