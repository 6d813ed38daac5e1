/**
 * The SMTP client against real SMTP servers (smtp-server) on 127.0.0.1, scripted to reject, defer, drop,
 * stall, require AUTH and offer STARTTLS with a self-signed certificate. Node socket adapter.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync } from "node:fs";
import { createServer, type Server, type Socket } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { SMTPServer } from "smtp-server";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { openSmtpSession, validateHeloName, type SmtpClientOptions, type SmtpSession } from "../../src/smtp/client";
import { SmtpError } from "../../src/smtp/errors";
import { createNodeSocketFactory } from "../../src/smtp/node-socket";
import { startSmtpServer, type ScriptedServer, type SmtpServerScript } from "../support/peers";

const HELO = "relay.test.example";
const factory = createNodeSocketFactory();
// Test-only: accept the throw-away self-signed certificate of the test servers.
const insecureFactory = createNodeSocketFactory({ rejectUnauthorized: false });

let tlsKey = "";
let tlsCert = "";
const servers: ScriptedServer[] = [];

beforeAll(() => {
  const dir = mkdtempSync(join(tmpdir(), "smtp-tls-"));
  try {
    execFileSync("openssl", [
      "req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=mx.test.example",
      "-keyout", join(dir, "key.pem"), "-out", join(dir, "cert.pem"),
    ], { stdio: "ignore" });
    tlsKey = readFileSync(join(dir, "key.pem"), "utf8");
    tlsCert = readFileSync(join(dir, "cert.pem"), "utf8");
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
});
afterAll(async () => {
  await Promise.all(servers.map((s) => s.close()));
});

async function server(script: SmtpServerScript = {}): Promise<ScriptedServer> {
  const s = await startSmtpServer(script);
  servers.push(s);
  return s;
}

function options(port: number, extra: Partial<SmtpClientOptions> = {}): SmtpClientOptions {
  return { socketFactory: factory, host: "127.0.0.1", port, tls: "off", heloName: HELO, ...extra };
}

async function withSession<T>(opts: SmtpClientOptions, fn: (s: SmtpSession) => Promise<T>): Promise<T> {
  const session = await openSmtpSession(opts);
  try {
    return await fn(session);
  } finally {
    await session.quit();
  }
}

const raw = (s: ScriptedServer, i = 0) => Buffer.from(s.messages[i]!.raw, "latin1");
const message = (subject: string, body = "Hello.\r\n") => `From: a@sender.example\r\nTo: b@dest.example\r\nSubject: ${subject}\r\n\r\n${body}`;

/** Waits (up to 5 s) until the server saw `n` connections closed; the close travels asynchronously. */
async function closedSoon(s: ScriptedServer, n: number): Promise<void> {
  for (let i = 0; i < 100 && s.connections.filter((c) => c.closedAt).length < n; i++) await new Promise((r) => setTimeout(r, 50));
  expect(s.connections.filter((c) => c.closedAt)).toHaveLength(n);
}

async function rejection(p: Promise<unknown>): Promise<SmtpError> {
  try {
    await p;
  } catch (e) {
    expect(e).toBeInstanceOf(SmtpError);
    return e as SmtpError;
  }
  throw new Error("expected a rejection");
}

describe("transactions", () => {
  it.each([true, false])("delivers to two of three recipients when one is rejected (pipelining %s)", async (pipelining) => {
    const s = await server({
      rules: [{ stage: "rcpt", match: "nobody", code: 550, message: "5.1.1 no such user" }],
      hide: pipelining ? [] : ["PIPELINING"],
    });
    const result = await withSession(options(s.port), async (session) => {
      expect(session.capabilities.pipelining).toBe(pipelining);
      return session.sendMail(
        { mailFrom: "a@sender.example", rcptTo: ["one@dest.example", "nobody@dest.example", "three@dest.example"] },
        message("three recipients"),
      );
    });
    expect(result.error).toBeUndefined();
    expect(result.recipients.map((r) => [r.address, r.accepted, r.delivered])).toEqual([
      ["one@dest.example", true, true],
      ["nobody@dest.example", false, false],
      ["three@dest.example", true, true],
    ]);
    const rejected = result.recipients[1]!;
    expect(rejected.reply).toMatchObject({ code: 550, enhanced: "5.1.1" });
    expect(rejected.error).toMatchObject({ kind: "reply", command: "RCPT", code: 550, enhanced: "5.1.1", recipient: "nobody@dest.example", temporary: false });
    expect(result.dataReply?.code).toBe(250);
    expect(s.messages).toHaveLength(1);
    expect(s.messages[0]!.rcptTo).toEqual(["one@dest.example", "three@dest.example"]);
    expect(s.messages[0]!.heloName).toBe(HELO);
  });

  it("carries several transactions over one connection", async () => {
    const s = await server();
    await withSession(options(s.port), async (session) => {
      for (let i = 0; i < 5; i++) {
        const r = await session.sendMail({ mailFrom: "a@sender.example", rcptTo: [`r${i}@dest.example`] }, message(`n${i}`));
        expect(r.error).toBeUndefined();
      }
      expect(session.messagesSent).toBe(5);
    });
    expect(s.messages.map((m) => m.rcptTo[0])).toEqual(["r0@dest.example", "r1@dest.example", "r2@dest.example", "r3@dest.example", "r4@dest.example"]);
    expect(new Set(s.messages.map((m) => m.sessionId)).size).toBe(1);
    expect(s.connections).toHaveLength(1);
  });

  it("sends SIZE, BODY=8BITMIME, SMTPUTF8 and DSN parameters, and no NOTIFY by default", async () => {
    const s = await server({ size: 1_000_000 });
    await withSession(options(s.port), async (session) => {
      const r = await session.sendMail(
        { mailFrom: "bounce@sender.example", rcptTo: ["jörg@dest.example"], dsn: { ret: "HDRS", envid: "id+1=x" } },
        message("Grüße", "Schöne Grüße\r\n"),
      );
      expect(r.error).toBeUndefined();
      await session.sendMail({ mailFrom: "", rcptTo: ["b@dest.example"], dsn: { notify: ["FAILURE", "DELAY"] } }, message("null sender"));
    });
    const first = s.messages[0]!;
    expect(first.mailParams).toMatchObject({ SIZE: String(Buffer.byteLength(message("Grüße", "Schöne Grüße\r\n"))), BODY: "8BITMIME", SMTPUTF8: true, RET: "HDRS", ENVID: "id+1=x" });
    expect(first.rcptTo).toEqual(["jörg@dest.example"]);
    expect(s.messages[1]!.mailFrom).toBe("");
    expect(s.messages[1]!.mailParams).not.toHaveProperty("BODY");
  });

  it("fails an oversized message locally and permanently, then sends the next", async () => {
    const s = await server({ size: 500 });
    await withSession(options(s.port), async (session) => {
      const r = await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message("big", `${"x".repeat(70)}\r\n`.repeat(20)));
      expect(r.error).toMatchObject({ kind: "protocol", code: 552, enhanced: "5.3.4", temporary: false });
      expect(r.recipients[0]).toMatchObject({ accepted: false, delivered: false });
      const ok = await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message("small"));
      expect(ok.error).toBeUndefined();
    });
    expect(s.messages).toHaveLength(1);
  });

  it("refuses addresses that could inject commands, without sending them", async () => {
    const s = await server();
    await withSession(options(s.port), async (session) => {
      const r = await session.sendMail(
        { mailFrom: "a@sender.example", rcptTo: ["ok@dest.example", "x@dest.example>\r\nRCPT TO:<evil@dest.example"] },
        message("inject"),
      );
      expect(r.recipients[0]!.delivered).toBe(true);
      expect(r.recipients[1]!.error).toMatchObject({ kind: "protocol", command: "RCPT", temporary: false });
      const bad = await session.sendMail({ mailFrom: "a@x.example>\r\nRSET", rcptTo: ["ok@dest.example"] }, message("inject"));
      expect(bad.error).toMatchObject({ kind: "protocol", command: "MAIL", temporary: false });
    });
    expect(s.messages).toHaveLength(1);
    expect(s.messages[0]!.rcptTo).toEqual(["ok@dest.example"]);
  });

  it("refuses a loopback or unqualified EHLO name", async () => {
    for (const name of ["127.0.0.1", "[127.0.0.1]", "localhost", "relay", ""]) expect(() => validateHeloName(name)).toThrow(TypeError);
    for (const name of ["relay.example.com", "[192.0.2.1]"]) expect(() => validateHeloName(name)).not.toThrow();
    await expect(openSmtpSession(options(1, { heloName: "127.0.0.1" }))).rejects.toThrow(TypeError);
  });
});

const CODES = [421, 450, 451, 452, 550, 552, 554] as const;
// smtp-server puts its own enhanced status code in front of scripted texts; its class must match the reply.
const enhancedOf = (code: number) => expect.stringMatching(new RegExp(`^${String(code)[0]}\\.\\d+\\.\\d+$`));

describe.each(CODES)("server answers %i", (code) => {
  const temporary = code < 500;

  it("at the greeting", async () => {
    const s = await server({ rules: [{ stage: "connect", code, message: `go away` }] });
    const e = await rejection(openSmtpSession(options(s.port)));
    expect(e).toMatchObject({ kind: "reply", command: "GREETING", code, temporary });
  });

  it.each([true, false])("to MAIL FROM (pipelining %s)", async (pipelining) => {
    const s = await server({
      rules: [{ stage: "mail", code, message: `sender refused`, times: 1 }],
      hide: pipelining ? [] : ["PIPELINING"],
    });
    const session = await openSmtpSession(options(s.port));
    try {
      const p = session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example", "c@dest.example"] }, message("mail stage"));
      if (code === 421) {
        expect(await rejection(p)).toMatchObject({ command: "MAIL", code: 421, temporary: true });
        expect(session.usable).toBe(false);
        return;
      }
      const r = await p;
      expect(r.error).toMatchObject({ kind: "reply", command: "MAIL", code, enhanced: enhancedOf(code), temporary });
      expect(r.recipients.every((x) => !x.accepted && !x.delivered && x.error?.temporary === temporary)).toBe(true);
      expect(session.usable).toBe(true);
      const again = await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message("after failure"));
      expect(again.error).toBeUndefined();
    } finally {
      await session.quit();
    }
    expect(s.messages).toHaveLength(1);
  });

  it.each([true, false])("to one RCPT TO (pipelining %s)", async (pipelining) => {
    const s = await server({
      rules: [{ stage: "rcpt", match: "second", code, message: `recipient refused` }],
      hide: pipelining ? [] : ["PIPELINING"],
    });
    const session = await openSmtpSession(options(s.port));
    try {
      const p = session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["first@dest.example", "second@dest.example"] }, message("rcpt stage"));
      if (code === 421) {
        expect(await rejection(p)).toMatchObject({ command: "RCPT", code: 421, temporary: true, recipient: "second@dest.example" });
        expect(session.usable).toBe(false);
        return;
      }
      const r = await p;
      expect(r.error).toBeUndefined();
      expect(r.recipients[0]).toMatchObject({ accepted: true, delivered: true });
      // RFC 5321 4.5.3.1.10: 552 to RCPT is "too many recipients" and is retried like 452.
      expect(r.recipients[1]!.error).toMatchObject({ kind: "reply", command: "RCPT", code, temporary: temporary || code === 552 });
      // Only that recipient refused: a transaction with it alone fails as a whole and the session stays usable.
      const alone = await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["second@dest.example"] }, message("alone"));
      expect(alone.error).toMatchObject({ command: "RCPT", temporary: temporary || code === 552 });
      expect(session.usable).toBe(true);
    } finally {
      await session.quit();
    }
    expect(s.messages.map((m) => m.rcptTo)).toEqual([["first@dest.example"]]);
  });

  it("after the message data", async () => {
    const s = await server({ rules: [{ stage: "data", code, message: `content refused`, times: 1 }] });
    const session = await openSmtpSession(options(s.port));
    try {
      const p = session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message("data stage"));
      if (code === 421) {
        expect(await rejection(p)).toMatchObject({ command: "DATA", code: 421, temporary: true });
        expect(session.usable).toBe(false);
        return;
      }
      const r = await p;
      expect(r.error).toMatchObject({ kind: "reply", command: "DATA", code, enhanced: enhancedOf(code), temporary });
      expect(r.dataReply?.code).toBe(code);
      expect(r.recipients[0]).toMatchObject({ accepted: true, delivered: false });
      expect(session.usable).toBe(true);
      expect((await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message("next"))).error).toBeUndefined();
    } finally {
      await session.quit();
    }
  });
});

describe("broken connections", () => {
  it("reports a connection dropped mid-DATA as a temporary connection failure", async () => {
    const s = await server({ rules: [{ stage: "data", drop: true }] });
    const session = await openSmtpSession(options(s.port));
    try {
      const body = message("drop", `${"y".repeat(76)}\r\n`.repeat(20_000));
      const e = await rejection(session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, body));
      expect(e).toMatchObject({ kind: "connection", command: "DATA", temporary: true });
      expect(session.usable).toBe(false);
      expect(await rejection(session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, "x"))).toMatchObject({ kind: "connection" });
    } finally {
      await session.close();
    }
    expect(s.messages).toHaveLength(0);
  });

  it("times out a server that stalls after MAIL FROM", async () => {
    const s = await server({ rules: [{ stage: "mail", stallMs: 3_000 }] });
    const session = await openSmtpSession(options(s.port, { timeouts: { mailMs: 300 } }));
    try {
      const e = await rejection(session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message("stall")));
      expect(e).toMatchObject({ kind: "timeout", command: "MAIL", temporary: true });
      expect(session.usable).toBe(false);
    } finally {
      await session.close();
    }
  });

  it("lets a slow reply take its own deadline after shorter ones passed on the same connection", async () => {
    // One timer per connection: it was armed for the 200 ms deadlines of MAIL, RCPT and DATA; when it fires during
    // the 600 ms wait for the final reply it must re-arm for the rest of that reply's 3 s, not fail it.
    const s = await server({ rules: [{ stage: "data", stallMs: 600 }] });
    const session = await openSmtpSession(options(s.port, { timeouts: { mailMs: 200, rcptMs: 200, dataInitMs: 200, dataTerminationMs: 3_000 } }));
    try {
      for (const n of [1, 2]) {
        const r = await session.sendMail({ mailFrom: "a@sender.example", rcptTo: [`b${n}@dest.example`] }, message(`slow ${n}`));
        expect(r.error).toBeUndefined();
        expect(r.recipients[0]!.delivered).toBe(true);
      }
    } finally {
      await session.quit();
    }
    expect(s.messages).toHaveLength(2);
  });

  it("times out a server that stalls after the final dot", async () => {
    const s = await server({ rules: [{ stage: "data", stallMs: 3_000 }] });
    const session = await openSmtpSession(options(s.port, { timeouts: { dataTerminationMs: 300 } }));
    try {
      const e = await rejection(session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message("stall data")));
      expect(e).toMatchObject({ kind: "timeout", command: "DATA", temporary: true });
      expect(session.usable).toBe(false);
    } finally {
      await session.close();
    }
  });

  it("closes its socket after QUIT and after a failed open", async () => {
    const s = await server();
    await withSession(options(s.port), async () => undefined);
    await expect(openSmtpSession(options(s.port, { tls: "starttls-required" }))).rejects.toBeInstanceOf(SmtpError);
    await closedSoon(s, 2);
  });

  it("times out a server that never greets", async () => {
    const s = await server({ rules: [{ stage: "connect", stallMs: 3_000 }] });
    const e = await rejection(openSmtpSession(options(s.port, { timeouts: { greetingMs: 300 } })));
    expect(e).toMatchObject({ kind: "timeout", command: "GREETING", temporary: true });
  });

  it("reports a refused connection", async () => {
    const probe = createServer();
    await new Promise<void>((r) => probe.listen(0, "127.0.0.1", () => r()));
    const port = (probe.address() as { port: number }).port;
    await new Promise<void>((r) => probe.close(() => r()));
    const e = await rejection(openSmtpSession(options(port)));
    expect(e).toMatchObject({ kind: "connection", command: "CONNECT", temporary: true });
  });
});

describe("AUTH", () => {
  const creds = { user: "relay-user", pass: "s3cret" };

  it("does not need credentials when AUTH is advertised but optional", async () => {
    const s = await server({ auth: { ...creds, required: false } });
    await withSession(options(s.port), async (session) => {
      expect(session.capabilities.auth.length).toBeGreaterThan(0);
      expect(session.authenticated).toBe(false);
      expect((await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message("no auth"))).error).toBeUndefined();
    });
    expect(s.messages[0]!.authUser).toBeUndefined();
  });

  it("is refused by the server (530) when required and not configured", async () => {
    const s = await server({ auth: { ...creds, required: true } });
    await withSession(options(s.port), async (session) => {
      const r = await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message("no auth"));
      expect(r.error).toMatchObject({ command: "MAIL", code: 530 });
    });
    expect(s.messages).toHaveLength(0);
  });

  it("never sends credentials in cleartext unless allowed", async () => {
    const s = await server({ auth: { ...creds, required: true } });
    const e = await rejection(openSmtpSession(options(s.port, { auth: creds })));
    expect(e).toMatchObject({ kind: "auth", command: "AUTH", temporary: true });
    expect(e.message).toMatch(/unencrypted/);
  });

  it.each(["PLAIN", "LOGIN"] as const)("authenticates with %s when required", async (method) => {
    const s = await server({ auth: { ...creds, required: true } });
    await withSession(options(s.port, { auth: { ...creds, allowInsecure: true, methods: [method] } }), async (session) => {
      expect(session.authenticated).toBe(true);
      expect((await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message(method))).error).toBeUndefined();
    });
    expect(s.messages[0]!.authUser).toBe(creds.user);
  });

  it("authenticates over STARTTLS without allowInsecure", async () => {
    const s = await server({ auth: { ...creds, required: true }, tls: { key: tlsKey, cert: tlsCert } });
    await withSession(options(s.port, { socketFactory: insecureFactory, tls: "starttls-required", auth: creds }), async (session) => {
      expect(session.tls && session.authenticated).toBe(true);
      await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message("tls auth"));
    });
    expect(s.messages[0]).toMatchObject({ authUser: creds.user, secure: true });
  });

  it("authenticates with CRAM-MD5", async () => {
    const srv = new SMTPServer({
      authMethods: ["CRAM-MD5"],
      allowInsecureAuth: true,
      disabledCommands: ["STARTTLS"],
      logger: false,
      onAuth(auth, _session, cb) {
        const ok = auth.username === creds.user && (auth as unknown as { validatePassword(p: string): boolean }).validatePassword(creds.pass);
        cb(ok ? null : new Error("bad"), ok ? { user: auth.username } : undefined);
      },
      onData(stream, _session, cb) {
        stream.resume();
        stream.on("end", () => cb());
      },
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    try {
      const port = (srv.server.address() as { port: number }).port;
      await withSession(options(port, { auth: { ...creds, allowInsecure: true } }), async (session) => {
        expect(session.authenticated).toBe(true);
      });
      const e = await rejection(openSmtpSession(options(port, { auth: { ...creds, pass: "wrong", allowInsecure: true } })));
      expect(e).toMatchObject({ kind: "auth", command: "AUTH", code: 535, temporary: true });
    } finally {
      await new Promise<void>((r) => srv.close(() => r()));
    }
  });
});

describe("TLS", () => {
  it("upgrades opportunistically when STARTTLS is offered", async () => {
    const s = await server({ tls: { key: tlsKey, cert: tlsCert } });
    await withSession(options(s.port, { socketFactory: insecureFactory, tls: "starttls-opportunistic" }), async (session) => {
      expect(session.tls).toBe(true);
      expect(session.capabilities.startTls).toBe(false); // EHLO again after STARTTLS
      await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message("tls"));
    });
    expect(s.messages[0]!.secure).toBe(true);
  });

  it("continues in plaintext opportunistically when STARTTLS is not offered", async () => {
    const s = await server();
    await withSession(options(s.port, { tls: "starttls-opportunistic" }), async (session) => {
      expect(session.tls).toBe(false);
      await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message("plain"));
    });
    expect(s.messages[0]!.secure).toBe(false);
  });

  it("retries once in plaintext when the opportunistic handshake fails", async () => {
    const s = await server({ tls: { key: tlsKey, cert: tlsCert } });
    // The default factory verifies certificates, so the self-signed one fails the handshake.
    await withSession(options(s.port, { tls: "starttls-opportunistic" }), async (session) => {
      expect(session.tls).toBe(false);
      await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message("fallback"));
    });
    expect(s.connections).toHaveLength(2);
    expect(s.messages[0]!.secure).toBe(false);
  });

  it("fails clearly and temporarily when TLS is required but not offered", async () => {
    const s = await server();
    const e = await rejection(openSmtpSession(options(s.port, { tls: "starttls-required" })));
    expect(e).toMatchObject({ kind: "tls", command: "STARTTLS", temporary: true });
    expect(e.message).toMatch(/does not offer STARTTLS/);
    expect(s.messages).toHaveLength(0);
  });

  it("fails, never downgrades, when TLS is required and the handshake fails", async () => {
    const s = await server({ tls: { key: tlsKey, cert: tlsCert } });
    const e = await rejection(openSmtpSession(options(s.port, { tls: "starttls-required" })));
    expect(e).toMatchObject({ kind: "tls", command: "STARTTLS", temporary: true });
    expect(s.connections).toHaveLength(1);
  });

  it("speaks implicit TLS", async () => {
    const s = await server({ tls: { key: tlsKey, cert: tlsCert }, secure: true });
    await withSession(options(s.port, { socketFactory: insecureFactory, tls: "implicit" }), async (session) => {
      expect(session.tls).toBe(true);
      await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message("smtps"));
    });
    expect(s.messages[0]!.secure).toBe(true);
  });
});

describe("message bytes", () => {
  const send = async (body: Uint8Array | string | ReadableStream<Uint8Array>) => {
    const s = await server();
    await withSession(options(s.port), async (session) => {
      const r = await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, body);
      expect(r.error).toBeUndefined();
    });
    expect(s.messages).toHaveLength(1);
    return raw(s);
  };
  const latin1 = (s: string) => Buffer.from(s, "latin1");

  it("keeps lines that start with dots", async () => {
    const body = "Subject: dots\r\n\r\n.\r\n..\r\n.hidden\r\n...\r\nend\r\n";
    expect((await send(body)).toString("latin1")).toBe(body);
  });

  it("turns bare LF and bare CR into CRLF", async () => {
    expect((await send(latin1("Subject: lf\n\nline one\nline two\rline three\r\n"))).toString("latin1")).toBe(
      "Subject: lf\r\n\r\nline one\r\nline two\r\nline three\r\n",
    );
  });

  it("cannot be used to smuggle a second message", async () => {
    const s = await server();
    const evil = "Subject: smuggle\r\n\r\nhello\n.\r\nMAIL FROM:<evil@x.example>\r\nRCPT TO:<victim@dest.example>\r\nDATA\r\n\r\nspoofed\r\n";
    await withSession(options(s.port), async (session) => {
      expect((await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, evil)).error).toBeUndefined();
    });
    expect(s.messages).toHaveLength(1);
    expect(raw(s).toString("latin1")).toBe(evil.replace("hello\n.\r\n", "hello\r\n.\r\n"));
  });

  it("passes 8-bit UTF-8 through unchanged", async () => {
    const body = "Subject: =?UTF-8?Q?Gr=C3=BC=C3=9Fe?=\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSchöne Grüße, 日本語, emoji 📬\r\n";
    const got = await send(new TextEncoder().encode(body));
    expect(got.equals(Buffer.from(body, "utf8"))).toBe(true);
  });

  it("keeps lines of 997 and 998 octets intact", async () => {
    const l997 = "a".repeat(997);
    const l998 = `.${"b".repeat(997)}`; // a leading dot makes it 999 on the wire, 998 after unstuffing
    const lutf = "é".repeat(499); // 998 octets of UTF-8
    const body = `Subject: long lines\r\n\r\n${l997}\r\n${l998}\r\n${lutf}\r\n`;
    const got = await send(body);
    expect(got.equals(Buffer.from(body, "utf8"))).toBe(true);
    expect(got.toString("utf8").split("\r\n").map((l: string) => Buffer.byteLength(l))).toEqual([19, 0, 997, 998, 998, 0]);
  });

  it("streams a body from a ReadableStream in odd-sized chunks", async () => {
    const text = `Subject: streamed\n\n${Array.from({ length: 5000 }, (_, i) => `${i % 7 === 0 ? "." : ""}line ${i} ünïcödé`).join("\n")}\n`;
    const bytes = new TextEncoder().encode(text);
    let offset = 0;
    const stream = new ReadableStream<Uint8Array>({
      pull(c) {
        if (offset >= bytes.length) return c.close();
        const n = 1 + ((offset * 31) % 4093);
        c.enqueue(bytes.slice(offset, offset + n));
        offset += n;
      },
    });
    const got = await send(stream);
    expect(got.equals(Buffer.from(text.replace(/\n/g, "\r\n"), "utf8"))).toBe(true);
  });
});

describe("odd servers (raw TCP peer)", () => {
  /** A minimal scripted SMTP peer: answers each received line with the next canned reply. */
  async function rawPeer(greeting: string, answer: (line: string, socket: Socket) => string | undefined): Promise<{ port: number; lines: string[]; close(): Promise<void> }> {
    const lines: string[] = [];
    const srv: Server = createServer((socket) => {
      socket.write(greeting);
      let buf = "";
      let inData = false;
      socket.on("data", (d) => {
        buf += d.toString("latin1");
        let i: number;
        while ((i = buf.indexOf("\r\n")) >= 0) {
          const line = buf.slice(0, i);
          buf = buf.slice(i + 2);
          lines.push(line);
          if (inData) {
            if (line === ".") {
              inData = false;
              socket.write("250 ok\r\n");
            }
            continue;
          }
          if (line === "DATA") inData = true;
          const reply = answer(line, socket);
          if (reply !== undefined) socket.write(reply);
        }
      });
      socket.on("error", () => undefined);
    });
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", () => r()));
    return { port: (srv.address() as { port: number }).port, lines, close: () => new Promise((r) => srv.close(() => r())) };
  }

  it("falls back to HELO when EHLO is not understood, and sends replies byte by byte", async () => {
    const peer = await rawPeer("220 old.example\r\n", (line, socket) => {
      const reply = line.startsWith("EHLO")
        ? "500 5.5.1 command unrecognized\r\n"
        : line.startsWith("HELO")
          ? "250-old.example\r\n250 hi\r\n"
          : line === "DATA"
            ? "354 go ahead\r\n"
            : line === "QUIT"
              ? "221 bye\r\n"
              : "250 ok\r\n";
      const b = Buffer.from(reply);
      for (let i = 0; i < b.length; i++) socket.write(b.subarray(i, i + 1));
      return undefined;
    });
    try {
      await withSession(options(peer.port), async (session) => {
        expect(session.capabilities.esmtp).toBe(false);
        const r = await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"], eightBit: true }, message("helo"));
        expect(r.error).toBeUndefined();
      });
      expect(peer.lines).toContain(`HELO ${HELO}`);
      // No extensions without EHLO: plain MAIL FROM.
      expect(peer.lines).toContain("MAIL FROM:<a@sender.example>");
    } finally {
      await peer.close();
    }
  });

  it("refuses plaintext injected after the STARTTLS 220 (CVE-2011-0411)", async () => {
    const peer = await rawPeer("220 inject.example ESMTP\r\n", (line) =>
      line.startsWith("EHLO") ? "250-inject.example\r\n250 STARTTLS\r\n" : line === "STARTTLS" ? "220 go ahead\r\n250 injected\r\n" : "250 ok\r\n",
    );
    try {
      const e = await rejection(openSmtpSession(options(peer.port, { socketFactory: insecureFactory, tls: "starttls-required" })));
      expect(e).toMatchObject({ kind: "protocol", command: "STARTTLS" });
    } finally {
      await peer.close();
    }
  });

  it("goes on in plaintext when an opportunistic STARTTLS is declined with 454", async () => {
    const peer = await rawPeer("220 busy.example ESMTP\r\n", (line) =>
      line.startsWith("EHLO")
        ? "250-busy.example\r\n250-PIPELINING\r\n250 STARTTLS\r\n"
        : line === "STARTTLS"
          ? "454 4.7.0 TLS not available due to temporary reason\r\n"
          : line === "DATA"
            ? "354 go\r\n"
            : line === "QUIT"
              ? "221 bye\r\n"
              : "250 ok\r\n",
    );
    try {
      await withSession(options(peer.port, { tls: "starttls-opportunistic" }), async (session) => {
        expect(session.tls).toBe(false);
        expect((await session.sendMail({ mailFrom: "a@sender.example", rcptTo: ["b@dest.example"] }, message("454"))).error).toBeUndefined();
      });
      const e = await rejection(openSmtpSession(options(peer.port, { tls: "starttls-required" })));
      expect(e).toMatchObject({ kind: "tls", command: "STARTTLS", code: 454, temporary: true });
    } finally {
      await peer.close();
    }
  });

  it("reports a reply that is not SMTP as a protocol failure", async () => {
    const peer = await rawPeer("HTTP/1.1 400 Bad Request\r\n\r\n", () => undefined);
    try {
      expect(await rejection(openSmtpSession(options(peer.port)))).toMatchObject({ kind: "protocol", command: "GREETING", temporary: true });
    } finally {
      await peer.close();
    }
  });
});
