/**
 * Bridge behaviour that needs a relay to misbehave on cue (429, 5xx, stalls, revoked keys) or to show what
 * went over the wire: a small HTTP server that speaks the relay's raw-endpoint contract (the same answer and
 * error shapes as src/http). The happy path and the refusals are tested against the real Worker in
 * bridge-relay.test.ts.
 */
import { EventEmitter } from "node:events";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, beforeEach, describe, expect, it } from "vitest";
import { runCli } from "../../src/bridge/cli.js";
import { startTestBridge } from "./support/bridge";
import { authPlain, message, SmtpDialog } from "./support/smtp-dialog";

const GOOD_KEY = "er_fake_good_key";

interface RawRequest {
  headers: IncomingMessage["headers"];
  body: Buffer;
  /** The whole body arrived (false: the upload was cut off). */
  complete: boolean;
  /** When the first chunk of the body arrived. */
  firstChunkAt: number | null;
}

type Behaviour = { status: number; body: unknown; delayMs?: number; headers?: Record<string, string> } | { hang: true } | { acceptThenDrop: true };

let server: Server;
let relayUrl: string;
const requests: RawRequest[] = [];
let next: Behaviour[] | ((n: number) => Behaviour) = [];
let accepted = 0;
/** Ids of every message the fake relay accepted (answered 202 or meant to). */
const acceptedIds = new Set<string>();

function reply(res: import("node:http").ServerResponse, status: number, body: unknown, headers: Record<string, string> = {}) {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}

beforeAll(async () => {
  server = createServer((req, res) => {
    const auth = req.headers.authorization ?? "";
    if (req.method === "GET" && req.url?.startsWith("/v1/messages/")) {
      return auth === `Bearer ${GOOD_KEY}` ? reply(res, 404, { error: { code: "not_found", message: "no such message" } }) : reply(res, 401, { error: { code: "unauthorized", message: "the API key is not valid" } });
    }
    if (req.method !== "POST" || req.url !== "/v1/messages/raw") return reply(res, 404, { error: { code: "not_found", message: "no such endpoint" } });
    const record: RawRequest = { headers: req.headers, body: Buffer.alloc(0), complete: false, firstChunkAt: null };
    requests.push(record);
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => {
      record.firstChunkAt ??= Date.now();
      chunks.push(c);
      record.body = Buffer.concat(chunks);
    });
    req.on("end", () => {
      record.complete = true;
      const b = (typeof next === "function" ? next(requests.length) : next.shift()) ?? { status: 202, body: null };
      if ("hang" in b) return;
      if ("acceptThenDrop" in b) {
        // Accepted, but the answer is lost on the way back: the bridge must not say 250.
        acceptedIds.add(`fake${++accepted}`);
        res.socket?.destroy();
        return;
      }
      const answer = () => {
        if (b.status === 202) {
          accepted++;
          acceptedIds.add(`fake${accepted}`);
          const to = String(req.headers["x-envelope-to"] ?? "").split(",").map((s) => s.trim());
          return reply(res, 202, { id: `fake${accepted}`, status: "accepted", recipients: to.map((address) => ({ address, status: "queued" })) }, b.headers);
        }
        reply(res, b.status, b.body, b.headers);
      };
      if (b.delayMs) setTimeout(answer, b.delayMs);
      else answer();
    });
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  relayUrl = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
});

afterAll(async () => {
  server.closeAllConnections();
  await new Promise((r) => server.close(r));
});

beforeEach(() => {
  requests.length = 0;
  next = [];
});

/** Opens a connection and walks it to DATA's 354 (EHLO, AUTH with the good key, MAIL, RCPT), checking each reply. */
async function openData(port: number, opts: { from?: string; to?: string[]; helo?: string } = {}): Promise<SmtpDialog> {
  const { dialog } = await SmtpDialog.open(port);
  await dialog.command(`EHLO ${opts.helo ?? "client.test"}`);
  expect((await dialog.command(`AUTH PLAIN ${authPlain("apikey", GOOD_KEY)}`)).code).toBe(235);
  expect((await dialog.command(`MAIL FROM:<${opts.from ?? "app@ours.example"}>`)).code).toBe(250);
  for (const to of opts.to ?? ["x@example.net"]) expect((await dialog.command(`RCPT TO:<${to}>`)).code).toBe(250);
  expect((await dialog.command("DATA")).code).toBe(354);
  return dialog;
}

async function transaction(port: number, body: string, opts: { from?: string; to?: string[]; helo?: string } = {}) {
  const dialog = await openData(port, opts);
  dialog.write(body + ".\r\n");
  const r = await dialog.next();
  dialog.close();
  return r;
}

describe("bridge against a scripted relay", () => {
  it("sends the envelope in headers and the dot-unstuffed message, streamed, with the bridge's Received line", async () => {
    const bridge = await startTestBridge(["--relay", relayUrl, "--hostname", "bridge.test.example"]);
    try {
      const dialog = await openData(bridge.port, { helo: "mta.client.test", from: "", to: ["a@example.net", "b@example.org"] });
      // The first part of a large message reaches the relay before the client has finished sending it.
      dialog.write(message("bounce@ours.example", "a@example.net", "streamed", "..a line that started with a dot\r\n" + "p".repeat(76).concat("\r\n").repeat(3000)));
      await expect.poll(() => requests[0]?.firstChunkAt ?? null, { timeout: 10_000 }).not.toBeNull();
      expect(requests[0]!.complete).toBe(false);
      dialog.write("tail\r\n.\r\n");
      const r = await dialog.next();
      dialog.close();
      expect(r.code).toBe(250);
      expect(r.text).toBe(`2.0.0 Ok: queued as fake${accepted}`);

      const req = requests[0]!;
      expect(req.complete).toBe(true);
      expect(req.headers["content-type"]).toBe("message/rfc822");
      expect(req.headers.authorization).toBe(`Bearer ${GOOD_KEY}`);
      expect(req.headers["x-envelope-from"]).toBe("");
      expect(req.headers["x-envelope-to"]).toBe("a@example.net, b@example.org");
      expect(req.headers["x-client-helo"]).toBe("mta.client.test");
      expect(req.headers["x-client-protocol"]).toBe("ESMTPA");
      const text = req.body.toString("latin1");
      expect(text).toMatch(/^Received: from mta\.client\.test \(\[127\.0\.0\.1\] \[127\.0\.0\.1\]\)\r\n\tby bridge\.test\.example \(Edge Relay SMTP bridge\) with ESMTPA\r\n\tid \S+;\r\n\t\w{3}, \d{2} \w{3} \d{4} \d{2}:\d{2}:\d{2} \+0000\r\nFrom: bounce@ours\.example\r\n/);
      expect(text).toContain("\r\n.a line that started with a dot\r\n");
      expect(text.endsWith("tail\r\n")).toBe(true);
    } finally {
      await bridge.close();
    }
  });

  it("takes AUTH LOGIN too, and sends untrusted clients without AUTH away with 530", async () => {
    const bridge = await startTestBridge(["--relay", relayUrl, "--trusted-networks", "10.0.0.0/8"], { EDGE_RELAY_BRIDGE_TRUSTED_KEY: GOOD_KEY });
    try {
      const { dialog } = await SmtpDialog.open(bridge.port);
      await dialog.command("EHLO client.test");
      // 127.0.0.1 is not in 10.0.0.0/8.
      const untrusted = await dialog.command("MAIL FROM:<app@ours.example>");
      expect(`${untrusted.code} ${untrusted.text.slice(0, 5)}`).toBe("530 5.7.0");
      expect((await dialog.command("AUTH LOGIN")).code).toBe(334);
      expect((await dialog.command(Buffer.from("printer").toString("base64"))).code).toBe(334);
      expect((await dialog.command(Buffer.from(GOOD_KEY).toString("base64"))).code).toBe(235);
      expect((await dialog.command("MAIL FROM:<app@ours.example>")).code).toBe(250);
      dialog.close();
    } finally {
      await bridge.close();
    }
  });

  it("answers 535 (not 454) for a key with CR, LF or other characters no key has, so the client stops retrying (issue 15)", async () => {
    const bridge = await startTestBridge(["--relay", relayUrl]);
    try {
      for (const key of [`${GOOD_KEY}\r\nX-Injected: 1`, `${GOOD_KEY}\n`, `er_ key`, "er_\u00e9"]) {
        const { dialog } = await SmtpDialog.open(bridge.port);
        await dialog.command("EHLO client.test");
        const r = await dialog.command(`AUTH PLAIN ${authPlain("apikey", key)}`);
        expect(`${r.code} ${r.text.slice(0, 5)}`, JSON.stringify(key)).toBe("535 5.7.8");
        dialog.close();
      }
      expect(requests).toHaveLength(0);
    } finally {
      await bridge.close();
    }
  });

  it("answers 4xx for 429, 5xx, non-JSON gateway errors and a revoked key, so the client retries", async () => {
    const bridge = await startTestBridge(["--relay", relayUrl]);
    try {
      const cases: [Behaviour, string][] = [
        [{ status: 429, body: { error: { code: "rate_limited", message: "slow down" } }, headers: { "retry-after": "30" } }, "451 4.7.0"],
        [{ status: 503, body: { error: { code: "unavailable", message: "the message could not be queued; retry later" } } }, "451 4.3.0"],
        [{ status: 500, body: { error: { code: "internal_error", message: "internal error" } } }, "451 4.3.0"],
        [{ status: 502, body: "<html>Bad gateway</html>" }, "451 4.3.0"],
        [{ status: 401, body: { error: { code: "key_revoked", message: "the API key has been revoked" } } }, "451 4.7.8"],
      ];
      for (const [behaviour, expected] of cases) {
        next = [behaviour];
        const r = await transaction(bridge.port, message("app@ours.example", "x@example.net", "temp"));
        expect(`${r.code} ${r.text.slice(0, 5)}`, JSON.stringify(behaviour)).toBe(expected);
      }
      expect(bridge.logs.filter((l) => / relay=(429|503|500|502|401) /.test(l))).toHaveLength(5);
    } finally {
      await bridge.close();
    }
  });

  it("answers 451 4.4.2 when the relay does not answer within --relay-timeout", async () => {
    const bridge = await startTestBridge(["--relay", relayUrl, "--relay-timeout", "0.5"]);
    try {
      next = [{ hang: true }];
      const r = await transaction(bridge.port, message("app@ours.example", "x@example.net", "slow"));
      expect(`${r.code} ${r.text.slice(0, 5)}`).toBe("451 4.4.2");
    } finally {
      await bridge.close();
    }
  });

  it("cuts the upload off when the client hangs up mid-message, so the relay never gets a message to accept", async () => {
    const bridge = await startTestBridge(["--relay", relayUrl]);
    try {
      const before = accepted;
      const dialog = await openData(bridge.port);
      dialog.write(message("app@ours.example", "x@example.net", "cut", "q".repeat(76).concat("\r\n").repeat(2000)));
      await expect.poll(() => requests.length, { timeout: 10_000 }).toBe(1);
      dialog.close();
      await expect.poll(() => bridge.logs.some((l) => l.includes("relay=aborted")), { timeout: 10_000 }).toBe(true);
      await new Promise((r) => setTimeout(r, 300));
      expect(requests[0]!.complete).toBe(false);
      expect(accepted).toBe(before);
    } finally {
      await bridge.close();
    }
  });

  it("on shutdown stops accepting connections, finishes the transaction in flight with 250, then says 421", async () => {
    const bridge = await startTestBridge(["--relay", relayUrl]);
    next = [{ status: 202, body: null, delayMs: 800 }];
    const idle = await SmtpDialog.open(bridge.port);
    await idle.dialog.command("EHLO idle.test");
    const dialog = await openData(bridge.port);
    dialog.write(message("app@ours.example", "x@example.net", "inflight") + ".\r\n");
    await expect.poll(() => requests.length).toBe(1);
    expect(bridge.inFlight()).toBe(1);

    const closing = bridge.close();
    await expect(SmtpDialog.open(bridge.port)).rejects.toThrow(/ECONNREFUSED/);
    const r = await dialog.next();
    expect(r.code).toBe(250);
    const bye = await idle.dialog.next();
    expect(`${bye.code} ${bye.text.slice(0, 5)}`).toBe("421 4.3.2");
    await closing;
    expect(bridge.inFlight()).toBe(0);
    dialog.close();
    idle.dialog.close();
  });

  it("never says 250 for a message the relay did not accept, whatever the relay does (60 transactions, 8 at a time)", async () => {
    // --refusal-memory 0: otherwise the scripted 403 would make later transactions fail at MAIL FROM already.
    const bridge = await startTestBridge(["--relay", relayUrl, "--relay-timeout", "1", "--refusal-memory", "0"]);
    try {
      const script: Behaviour[] = [
        { status: 202, body: null },
        { status: 202, body: null, delayMs: 50 },
        { status: 503, body: { error: { code: "unavailable", message: "retry later" } } },
        { status: 429, body: { error: { code: "rate_limited", message: "slow down" } } },
        { status: 500, body: "oops" },
        { acceptThenDrop: true },
        { hang: true },
        { status: 403, body: { error: { code: "sender_domain_not_allowed", message: "this key may not send from ours.example", field: "from" } } },
      ];
      // Each behaviour in turn, for the requests in the order they reach the relay.
      next = (n) => script[n % script.length]!;
      const replies: { code: number; text: string }[] = [];
      const queue = Array.from({ length: 60 }, (_, i) => i);
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          for (let i = queue.shift(); i !== undefined; i = queue.shift()) {
            replies.push(await transaction(bridge.port, message("app@ours.example", "x@example.net", `chaos-${i}`)));
          }
        }),
      );
      expect(replies).toHaveLength(60);
      const ok = replies.filter((r) => r.code === 250);
      expect(ok.length).toBeGreaterThan(0);
      for (const r of ok) expect(acceptedIds.has(/queued as (\S+)/.exec(r.text)?.[1] ?? "")).toBe(true);
      // Everything else is a definite SMTP failure the client acts on: 4xx (retry) or 5xx (bounce).
      for (const r of replies) expect([250, 451, 550]).toContain(r.code);
      expect(replies.some((r) => r.code === 451 && r.text.startsWith("4.4.2"))).toBe(true);
      expect(replies.some((r) => r.code === 451 && r.text.startsWith("4.4.1"))).toBe(true);
      expect(bridge.logs.filter((l) => l.includes("edge-relay-bridge tx"))).toHaveLength(60);
    } finally {
      await bridge.close();
    }
  });

  it("runs as a command: logs where it listens, relays, and exits 0 on SIGTERM", async () => {
    const signals = new EventEmitter();
    let out = "";
    const code = runCli(["bridge", "--listen", "127.0.0.1:0", "--relay", relayUrl], {}, { out: (t) => (out += t), err: (t) => (out += t), signals });
    await expect.poll(() => /listening smtp:\/\/127\.0\.0\.1:(\d+)/.exec(out)?.[1] ?? null, { timeout: 10_000 }).not.toBeNull();
    const port = Number(/listening smtp:\/\/127\.0\.0\.1:(\d+)/.exec(out)![1]);
    const info = await nodemailer
      .createTransport({ host: "127.0.0.1", port, secure: false, ignoreTLS: true, auth: { user: "apikey", pass: GOOD_KEY } })
      .sendMail({ from: "app@ours.example", to: "x@example.net", subject: "cli", text: "via the command" });
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as fake\d+$/);
    expect(out).toMatch(/edge-relay-bridge tx .* relay=202 .*reply="250 2\.0\.0 Ok: queued as fake\d+"/);
    signals.emit("SIGTERM");
    expect(await code).toBe(0);
    expect(out).toContain("edge-relay-bridge stopped");

    let help = "";
    expect(await runCli(["bridge", "--help"], {}, { out: (t) => (help += t) })).toBe(0);
    expect(help).toContain("Usage: edge-relay bridge");
    let err = "";
    expect(await runCli(["bridge", "--relay", relayUrl, "--nope"], {}, { err: (t) => (err += t) })).toBe(2);
    expect(err).toContain("unknown option --nope");
  });
});
