/**
 * The SMTP bridge in front of the real relay: this repository's Worker on the local Workers runtime, with a
 * real SMTP server (test/support/peers.ts) as its next hop. What an SMTP client sees, and what arrives.
 */
import { execFile } from "node:child_process";
import { randomBytes } from "node:crypto";
import { domainToASCII } from "node:url";
import nodemailer from "nodemailer";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { startSmtpServer, type ReceivedMessage, type ScriptedServer } from "../support/peers";
import { selfSignedCertificate, startTestBridge, type TestBridge } from "./support/bridge";
import { startRelay, type TestRelay } from "./support/relay";
import { authPlain, message, SmtpDialog } from "./support/smtp-dialog";

/** The relay's MAX_MESSAGE_BYTES in this file; the main bridge allows more, so the relay's own 413 shows. */
const RELAY_MAX_BYTES = 60_000;

let sink: ScriptedServer;
let relay: TestRelay;
let bridge: TestBridge;
let tenant: { tenantId: string; key: string; domain: string };

const unique = (prefix: string) => `${prefix}-${randomBytes(4).toString("hex")}`;

async function newTenant() {
  const domain = `${unique("b")}.example`;
  return { ...(await relay.createTenant([domain])), domain };
}

async function arrived(subject: string, timeoutMs = 30_000): Promise<ReceivedMessage> {
  const until = Date.now() + timeoutMs;
  while (Date.now() < until) {
    const m = sink.messages.find((x) => x.raw.includes(`Subject: ${subject}`));
    if (m) return m;
    await new Promise((r) => setTimeout(r, 100));
  }
  throw new Error(`"${subject}" did not arrive at the sink within ${timeoutMs} ms`);
}

function transport(port: number, pass: string | null, extra: Record<string, unknown> = {}) {
  return nodemailer.createTransport({ host: "127.0.0.1", port, secure: false, ignoreTLS: true, ...(pass === null ? {} : { auth: { user: "apikey", pass } }), ...extra });
}

function smtpFailure(e: unknown): { responseCode?: number; response?: string } {
  return e as { responseCode?: number; response?: string };
}

beforeAll(async () => {
  sink = await startSmtpServer({ name: "sink.bridge.test" });
  relay = await startRelay({ NEXT_HOP_URL: `smtp://127.0.0.1:${sink.port}`, MAX_MESSAGE_BYTES: String(RELAY_MAX_BYTES) });
  tenant = await newTenant();
  bridge = await startTestBridge(["--relay", relay.url.href, "--max-size", "200000", "--max-recipients", "3", "--hostname", "bridge.test.example"]);
});

afterAll(async () => {
  await bridge?.close();
  await relay?.dispose();
  await sink?.close();
});

describe("SMTP bridge with the real relay", () => {
  it("advertises SIZE, PIPELINING, 8BITMIME, SMTPUTF8 and AUTH PLAIN LOGIN", async () => {
    const { dialog, greeting } = await SmtpDialog.open(bridge.port);
    expect(greeting.code).toBe(220);
    const ehlo = await dialog.command("EHLO client.test");
    expect(ehlo.code).toBe(250);
    for (const ext of ["SIZE 200000", "PIPELINING", "8BITMIME", "SMTPUTF8", "AUTH PLAIN LOGIN"]) expect(ehlo.text).toContain(ext);
    // No certificate configured: no STARTTLS with a library's bundled test certificate.
    expect(ehlo.text).not.toContain("STARTTLS");
    dialog.close();
  });

  it("relays a message from nodemailer to the SMTP server behind the relay, and 250 carries the relay's id", async () => {
    const subject = unique("hello");
    const info = await transport(bridge.port, tenant.key).sendMail({
      from: `app@${tenant.domain}`,
      to: "someone@example.net",
      subject,
      text: "It works through the bridge.",
    });
    expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as [0-9a-z]+$/);
    const id = /queued as ([0-9a-z]+)/.exec(info.response)![1]!;

    const got = await arrived(subject);
    expect(got.rcptTo).toEqual(["someone@example.net"]);
    expect(got.raw).toContain("It works through the bridge.");
    // The bridge's own trace line (with the client's address), under the relay's.
    expect(got.raw).toMatch(/Received: from \S+ \(\[127\.0\.0\.1\] \[127\.0\.0\.1\]\)\r\n\tby bridge\.test\.example \(Edge Relay SMTP bridge\) with ESMTPA/);

    const status = await relay.call("GET", `/v1/messages/${id}`, tenant.key);
    expect(status.status).toBe(200);
    expect(JSON.stringify(status.body)).toContain("someone@example.net");
    const line = bridge.logs.find((l) => l.includes(`id=${id}`));
    expect(line).toMatch(/edge-relay-bridge tx .* auth=auth .* from=<app@.*> rcpts=1 .* relay=202 .* reply="250 2\.0\.0 Ok: queued as/);
  });

  it("every 250 names a message the relay recorded (several transactions on one pipelined connection)", async () => {
    const t = transport(bridge.port, tenant.key, { pool: true, maxMessages: 10 });
    const subjects = Array.from({ length: 5 }, () => unique("many"));
    const infos = await Promise.all(subjects.map((subject) => t.sendMail({ from: `app@${tenant.domain}`, to: ["x@example.net", "y@example.org"], subject, text: subject })));
    t.close();
    for (const info of infos) {
      const id = /queued as ([0-9a-z]+)/.exec(info.response)?.[1];
      expect(id, info.response).toBeTruthy();
      expect((await relay.call("GET", `/v1/messages/${id}`, tenant.key)).status).toBe(200);
    }
    // One delivery per destination domain: each recipient arrives once.
    for (const s of subjects) {
      await arrived(s);
      await expect.poll(() => sink.messages.filter((m) => m.raw.includes(`Subject: ${s}`)).flatMap((m) => m.rcptTo).sort(), { timeout: 30_000 }).toEqual(["x@example.net", "y@example.org"]);
    }
  });

  it("carries 8-bit UTF-8 content and internationalized domains (SMTPUTF8)", async () => {
    const subject = unique("utf8");
    const { dialog } = await SmtpDialog.open(bridge.port);
    await dialog.command("EHLO client.test");
    expect((await dialog.command(`AUTH PLAIN ${authPlain("apikey", tenant.key)}`)).code).toBe(235);
    expect((await dialog.command(`MAIL FROM:<app@${tenant.domain}> BODY=8BITMIME SMTPUTF8`)).code).toBe(250);
    expect((await dialog.command("RCPT TO:<info@bücher.example>")).code).toBe(250);
    expect((await dialog.command("DATA")).code).toBe(354);
    dialog.write(Buffer.from(`From: app@${tenant.domain}\r\nTo: info@bücher.example\r\nSubject: ${subject} Grüße\r\nContent-Type: text/plain; charset=utf-8\r\nContent-Transfer-Encoding: 8bit\r\n\r\nSchöne Grüße aus Zürich\r\n.\r\n`, "utf8"));
    const reply = await dialog.next();
    expect(reply.code, reply.text).toBe(250);
    const got = await arrived(subject);
    // The bridge hands the relay the A-label; the relay may deliver either form of the same domain.
    expect(got.rcptTo.map((a) => `info@${domainToASCII(a.slice(5))}`)).toEqual(["info@xn--bcher-kva.example"]);
    expect(Buffer.from(got.raw, "latin1").toString("utf8")).toContain("Schöne Grüße aus Zürich");
    // A non-ASCII local part has no ASCII form the relay's API could carry: refused at RCPT, honestly.
    expect((await dialog.command(`MAIL FROM:<app@${tenant.domain}> SMTPUTF8`)).code).toBe(250);
    const local = await dialog.command("RCPT TO:<jörg@example.net>");
    expect([local.code, local.text.slice(0, 5)]).toEqual([553, "5.6.7"]);
    dialog.close();
  });

  it("answers 5xx, never 250, for a From that hides another domain (comment, list, group), and nothing arrives (issue 15)", async () => {
    const other = `${unique("bank")}.example`;
    await relay.createTenant([other]);
    const { dialog } = await SmtpDialog.open(bridge.port);
    await dialog.command("EHLO client.test");
    expect((await dialog.command(`AUTH PLAIN ${authPlain("apikey", tenant.key)}`)).code).toBe(235);
    const subjects: string[] = [];
    for (const from of [`ceo@${other} (<app@${tenant.domain}>)`, `ceo@${other}, <app@${tenant.domain}>`, `x: ceo@${other};`]) {
      const subject = unique("spoof");
      subjects.push(subject);
      expect((await dialog.command(`MAIL FROM:<app@${tenant.domain}>`)).code).toBe(250);
      expect((await dialog.command("RCPT TO:<victim@example.net>")).code).toBe(250);
      expect((await dialog.command("DATA")).code).toBe(354);
      dialog.write(`From: ${from}\r\nTo: victim@example.net\r\nSubject: ${subject}\r\n\r\nPlease wire the money.\r\n.\r\n`);
      const reply = await dialog.next();
      expect(reply.code, `${from}: ${reply.code} ${reply.text}`).toBeGreaterThanOrEqual(500);
    }
    dialog.close();
    await new Promise((r) => setTimeout(r, 1000));
    expect(sink.messages.filter((m) => subjects.some((s) => m.raw.includes(s)))).toEqual([]);
  });

  it("refuses a wrong API key at AUTH (535 5.7.8) and mail without AUTH (530 5.7.0)", async () => {
    const bad = await transport(bridge.port, "er_not-a-real-key").verify().catch((e: unknown) => e);
    expect(smtpFailure(bad).responseCode).toBe(535);
    expect(smtpFailure(bad).response).toMatch(/^535 5\.7\.8 /);

    const { dialog } = await SmtpDialog.open(bridge.port);
    await dialog.command("EHLO client.test");
    const mail = await dialog.command(`MAIL FROM:<app@${tenant.domain}>`);
    expect([mail.code, mail.text.slice(0, 5)]).toEqual([530, "5.7.0"]);
    dialog.close();
    // Refusals are logged like transactions (for operators and tools such as fail2ban).
    expect(bridge.logs.some((l) => /edge-relay-bridge refused stage=auth .* reply="535 5\.7\.8 /.test(l))).toBe(true);
    expect(bridge.logs.some((l) => /edge-relay-bridge refused stage=mail .* reply="530 5\.7\.0 /.test(l))).toBe(true);
  });

  it("lets trusted networks send without AUTH, with the fixed key", async () => {
    const trusted = await startTestBridge(["--relay", relay.url.href, "--trusted-networks", "127.0.0.0/8"], { EDGE_RELAY_BRIDGE_TRUSTED_KEY: tenant.key });
    try {
      const subject = unique("trusted");
      const info = await transport(trusted.port, null).sendMail({ from: `cron@${tenant.domain}`, to: "ops@example.net", subject, text: "from a printer" });
      expect(info.response).toMatch(/^250 2\.0\.0 Ok: queued as /);
      await arrived(subject);
      expect(trusted.logs.some((l) => l.includes("auth=trusted") && l.includes("relay=202"))).toBe(true);
    } finally {
      await trusted.close();
    }
  });

  it("answers 550 5.7.1 when the relay refuses the sender domain, then already at MAIL FROM", async () => {
    const subject = unique("foreign");
    const t = transport(bridge.port, tenant.key);
    const e = await t.sendMail({ from: "someone@not-ours.example", to: "x@example.net", subject, text: "no" }).catch((err: unknown) => err);
    expect(smtpFailure(e).responseCode).toBe(550);
    expect(smtpFailure(e).response).toMatch(/^550 5\.7\.1 sender refused by the relay: .*not-ours\.example/);
    // The refusal is remembered for this key: the next transaction is refused before DATA.
    const { dialog } = await SmtpDialog.open(bridge.port);
    await dialog.command("EHLO client.test");
    await dialog.command(`AUTH PLAIN ${authPlain("apikey", tenant.key)}`);
    const mail = await dialog.command("MAIL FROM:<other@not-ours.example>");
    expect([mail.code, mail.text.slice(0, 5)]).toEqual([550, "5.7.1"]);
    dialog.close();
    await new Promise((r) => setTimeout(r, 1500));
    expect(sink.messages.some((m) => m.raw.includes(subject))).toBe(false);
  });

  it("answers 552 5.3.4 for a message over the relay's limit (HTTP 413)", async () => {
    const subject = unique("big");
    const e = await transport(bridge.port, tenant.key)
      .sendMail({ from: `app@${tenant.domain}`, to: "x@example.net", subject, text: "x".repeat(70) + "\n".concat("y".repeat(76) + "\n").repeat(1000) })
      .catch((err: unknown) => err);
    expect(smtpFailure(e).responseCode).toBe(552);
    expect(smtpFailure(e).response).toMatch(/^552 5\.3\.4 /);
  });

  it("answers 552 5.3.4 for a message over the bridge's own limit and never hands it to the relay", async () => {
    const small = await startTestBridge(["--relay", relay.url.href, "--max-size", "4096"]);
    try {
      const subject = unique("toolarge");
      const { dialog } = await SmtpDialog.open(small.port);
      await dialog.command("EHLO client.test");
      await dialog.command(`AUTH PLAIN ${authPlain("apikey", tenant.key)}`);
      // A declared size over the limit is refused at MAIL FROM (RFC 1870).
      expect((await dialog.command(`MAIL FROM:<app@${tenant.domain}> SIZE=5000`)).code).toBe(552);
      expect((await dialog.command(`MAIL FROM:<app@${tenant.domain}>`)).code).toBe(250);
      expect((await dialog.command("RCPT TO:<x@example.net>")).code).toBe(250);
      expect((await dialog.command("DATA")).code).toBe(354);
      dialog.write(message(`app@${tenant.domain}`, "x@example.net", subject, "z".repeat(70).concat("\r\n").repeat(100)) + ".\r\n");
      const reply = await dialog.next();
      expect([reply.code, reply.text.slice(0, 5)]).toEqual([552, "5.3.4"]);
      // The connection stays usable.
      expect((await dialog.command("RSET")).code).toBe(250);
      dialog.close();
      expect(small.logs.some((l) => l.includes("reply=\"552 5.3.4") && l.includes("relay=aborted"))).toBe(true);
      await new Promise((r) => setTimeout(r, 1500));
      expect(sink.messages.some((m) => m.raw.includes(subject))).toBe(false);
    } finally {
      await small.close();
    }
  });

  it("checks recipients at RCPT: syntax (553 5.1.3) and count (452 4.5.3)", async () => {
    const { dialog } = await SmtpDialog.open(bridge.port);
    await dialog.command("EHLO client.test");
    await dialog.command(`AUTH PLAIN ${authPlain("apikey", tenant.key)}`);
    expect((await dialog.command(`MAIL FROM:<app@${tenant.domain}>`)).code).toBe(250);
    const bad = await dialog.command("RCPT TO:<no-domain@localhost>");
    expect([bad.code, bad.text.slice(0, 5)]).toEqual([553, "5.1.3"]);
    for (const n of [1, 2, 3]) expect((await dialog.command(`RCPT TO:<r${n}@example.net>`)).code).toBe(250);
    const fourth = await dialog.command("RCPT TO:<r4@example.net>");
    expect([fourth.code, fourth.text.slice(0, 5)]).toEqual([452, "4.5.3"]);
    dialog.close();
  });

  it("suppressed recipients: named in the 250 when some are, 550 5.7.1 when all are, then refused at RCPT", async () => {
    const own = await newTenant();
    const added = await relay.call("POST", "/v1/suppressions", own.key, { suppressions: [{ address: "gone@example.net" }] });
    expect(added.status).toBe(201);
    const t = transport(bridge.port, own.key);
    const some = await t.sendMail({ from: `app@${own.domain}`, to: ["gone@example.net", "here@example.net"], subject: unique("supp"), text: "x" });
    expect(some.response).toMatch(/^250 2\.0\.0 Ok: queued as \S+; not sent to suppressed gone@example\.net$/);

    const other = await newTenant();
    expect((await relay.call("POST", "/v1/suppressions", other.key, { suppressions: [{ address: "gone2@example.net" }] })).status).toBe(201);
    const all = await transport(bridge.port, other.key)
      .sendMail({ from: `app@${other.domain}`, to: "gone2@example.net", subject: unique("supp-all"), text: "x" })
      .catch((e: unknown) => e);
    expect(smtpFailure(all).responseCode).toBe(550);
    expect(smtpFailure(all).response).toMatch(/^550 5\.7\.1 every recipient is on the suppression list/);

    const { dialog } = await SmtpDialog.open(bridge.port);
    await dialog.command("EHLO client.test");
    await dialog.command(`AUTH PLAIN ${authPlain("apikey", other.key)}`);
    await dialog.command(`MAIL FROM:<app@${other.domain}>`);
    const rcpt = await dialog.command("RCPT TO:<Gone2@example.net>");
    expect([rcpt.code, rcpt.text.slice(0, 5)]).toEqual([550, "5.7.1"]);
    expect((await dialog.command("RCPT TO:<fine@example.net>")).code).toBe(250);
    dialog.close();
  });

  it("relay unreachable: 454 4.7.0 at AUTH, 451 4.4.1 after DATA; the client keeps the message", async () => {
    const down = await startTestBridge(["--relay", "http://127.0.0.1:9/", "--trusted-networks", "127.0.0.1/32"], { EDGE_RELAY_BRIDGE_TRUSTED_KEY: tenant.key });
    try {
      const auth = await transport(down.port, tenant.key).verify().catch((e: unknown) => e);
      expect(smtpFailure(auth).response).toMatch(/^454 4\.7\.0 /);
      const e = await transport(down.port, null)
        .sendMail({ from: `app@${tenant.domain}`, to: "x@example.net", subject: unique("down"), text: "later" })
        .catch((err: unknown) => err);
      expect(smtpFailure(e).responseCode).toBe(451);
      expect(smtpFailure(e).response).toMatch(/^451 4\.4\.1 the relay is unreachable/);
    } finally {
      await down.close();
    }
  });

  it("offers STARTTLS with the configured certificate, and implicit TLS; AUTH needs TLS off loopback", async () => {
    const tls = selfSignedCertificate();
    const secure = await startTestBridge([
      "--listen", "127.0.0.1:0",
      "--listen-tls", "127.0.0.1:0",
      "--relay", relay.url.href,
      "--tls-cert", tls.certFile,
      "--tls-key", tls.keyFile,
    ]);
    try {
      const subject = unique("starttls");
      const info = await nodemailer
        .createTransport({ host: "127.0.0.1", port: secure.port, secure: false, requireTLS: true, tls: { ca: tls.cert, servername: "bridge.test.example" }, auth: { user: "apikey", pass: tenant.key } })
        .sendMail({ from: `app@${tenant.domain}`, to: "tls@example.net", subject, text: "over STARTTLS" });
      expect(info.response).toMatch(/^250 /);
      expect((await arrived(subject)).raw).toMatch(/with ESMTPSA/);

      const implicitPort = secure.addresses.listenTls!.port;
      const subject2 = unique("smtps");
      const info2 = await nodemailer
        .createTransport({ host: "127.0.0.1", port: implicitPort, secure: true, tls: { ca: tls.cert, servername: "bridge.test.example" }, auth: { user: "apikey", pass: tenant.key } })
        .sendMail({ from: `app@${tenant.domain}`, to: "tls@example.net", subject: subject2, text: "over implicit TLS" });
      expect(info2.response).toMatch(/^250 /);
      await arrived(subject2);
    } finally {
      await secure.close();
    }

    // As on a public interface: AUTH only after STARTTLS (loopback listeners allow it in the clear).
    const strict = await startTestBridge(["--relay", relay.url.href, "--tls-cert", tls.certFile, "--tls-key", tls.keyFile], {}, {}, { allowInsecureAuth: false });
    try {
      const clear = await transport(strict.port, tenant.key).verify().catch((e: unknown) => e);
      expect(smtpFailure(clear).responseCode).toBe(538);
      const ok = await nodemailer
        .createTransport({ host: "127.0.0.1", port: strict.port, secure: false, requireTLS: true, tls: { ca: tls.cert, servername: "bridge.test.example" }, auth: { user: "apikey", pass: tenant.key } })
        .verify();
      expect(ok).toBe(true);
    } finally {
      await strict.close();
    }
  });
});

/** Python's smtplib, a client nobody here wrote; null when python3 is not installed. */
async function smtplibSend(port: number, key: string, from: string, to: string[], subject: string): Promise<{ ok: true } | { ok: false; error: string } | null> {
  const script = [
    "import json, smtplib, sys",
    "a = json.loads(sys.argv[1])",
    "s = smtplib.SMTP('127.0.0.1', a['port'], timeout=30)",
    "s.login('apikey', a['key'])",
    "msg = 'From: %s\\r\\nTo: %s\\r\\nSubject: %s\\r\\n\\r\\nvia smtplib\\r\\n' % (a['from'], ', '.join(a['to']), a['subject'])",
    "try:",
    "    s.sendmail(a['from'], a['to'], msg)",
    "    print(json.dumps({'ok': True}))",
    "except smtplib.SMTPException as e:",
    "    print(json.dumps({'ok': False, 'error': repr(e)}))",
    "s.quit()",
  ].join("\n");
  // Asynchronous: the bridge runs in this process and must keep answering while Python talks to it.
  const r = await new Promise<{ code: number | null; stdout: string; stderr: string } | null>((resolve, reject) => {
    const child = execFile("python3", ["-c", script, JSON.stringify({ port, key, from, to, subject })], { encoding: "utf8", timeout: 60_000 }, (error, stdout, stderr) => {
      if (error && (error as NodeJS.ErrnoException).code === "ENOENT") return resolve(null);
      resolve({ code: child.exitCode, stdout, stderr });
    });
    child.on("error", (e) => ((e as NodeJS.ErrnoException).code === "ENOENT" ? resolve(null) : reject(e)));
  });
  if (r === null) return null;
  if (r.code !== 0) throw new Error(`smtplib failed: ${r.stderr}`);
  return JSON.parse(r.stdout) as { ok: true } | { ok: false; error: string };
}

describe("issue 22: IDN, DSN parameters and address replies", () => {
  it("an A-label address passes as ASCII without SMTPUTF8; a U-label needs SMTPUTF8 (553 5.6.7)", async () => {
    const subject = unique("alabel");
    const { dialog } = await SmtpDialog.open(bridge.port);
    await dialog.command("EHLO client.test");
    expect((await dialog.command(`AUTH PLAIN ${authPlain("apikey", tenant.key)}`)).code).toBe(235);
    const mail = await dialog.command(`MAIL FROM:<app@${tenant.domain}>`);
    expect(mail.code, mail.text).toBe(250);
    const alabel = await dialog.command("RCPT TO:<info@xn--bcher-kva.example>");
    expect(alabel.code, alabel.text).toBe(250);
    const ulabel = await dialog.command("RCPT TO:<info@bücher.example>");
    expect([ulabel.code, ulabel.text.slice(0, 5)]).toEqual([553, "5.6.7"]);
    expect((await dialog.command("DATA")).code).toBe(354);
    dialog.write(`${message(`app@${tenant.domain}`, "info@xn--bcher-kva.example", subject)}.\r\n`);
    const done = await dialog.next();
    expect(done.code, done.text).toBe(250);
    const got = await arrived(subject);
    expect(got.rcptTo.map((a) => `info@${domainToASCII(a.slice(5))}`)).toEqual(["info@xn--bcher-kva.example"]);
    dialog.close();
  });

  it("an A-label sender domain passes too (MAIL FROM without SMTPUTF8)", async () => {
    const { key } = await relay.createTenant(["xn--mnchen-3ya.example"]);
    const { dialog } = await SmtpDialog.open(bridge.port);
    await dialog.command("EHLO client.test");
    await dialog.command(`AUTH PLAIN ${authPlain("apikey", key)}`);
    const mail = await dialog.command("MAIL FROM:<news@xn--mnchen-3ya.example>");
    expect(mail.code, mail.text).toBe(250);
    const subject = unique("asender");
    expect((await dialog.command("RCPT TO:<someone@example.net>")).code).toBe(250);
    expect((await dialog.command("DATA")).code).toBe(354);
    dialog.write(`${message("news@xn--mnchen-3ya.example", "someone@example.net", subject)}.\r\n`);
    const done = await dialog.next();
    expect(done.code, done.text).toBe(250);
    dialog.close();
  });

  it("Python's smtplib mails an internationalized domain by its A-label", async (ctx) => {
    const subject = unique("smtplib");
    const r = await smtplibSend(bridge.port, tenant.key, `app@${tenant.domain}`, ["kontakt@xn--mnchen-3ya.example"], subject);
    if (r === null) return ctx.skip("python3 is not installed");
    expect(r).toEqual({ ok: true });
    const got = await arrived(subject);
    expect(got.rcptTo.map((a) => `kontakt@${domainToASCII(a.slice(8))}`)).toEqual(["kontakt@xn--mnchen-3ya.example"]);
  });

  it("refuses the DSN parameters it does not offer: RET/ENVID at MAIL, NOTIFY/ORCPT at RCPT (555 5.5.4)", async () => {
    const { dialog } = await SmtpDialog.open(bridge.port);
    const ehlo = await dialog.command("EHLO client.test");
    expect(ehlo.text).not.toMatch(/^DSN$/m);
    await dialog.command(`AUTH PLAIN ${authPlain("apikey", tenant.key)}`);
    for (const params of ["RET=HDRS", "ENVID=abc123", "RET=FULL ENVID=x"]) {
      const r = await dialog.command(`MAIL FROM:<app@${tenant.domain}> ${params}`);
      expect([r.code, r.text.slice(0, 5)], params).toEqual([555, "5.5.4"]);
    }
    expect((await dialog.command(`MAIL FROM:<app@${tenant.domain}>`)).code).toBe(250);
    for (const params of ["NOTIFY=SUCCESS,FAILURE", "NOTIFY=NEVER", "ORCPT=rfc822;x@example.net"]) {
      const r = await dialog.command(`RCPT TO:<x@example.net> ${params}`);
      expect([r.code, r.text.slice(0, 5)], params).toEqual([555, "5.5.4"]);
    }
    expect((await dialog.command("RCPT TO:<x@example.net>")).code).toBe(250);
    dialog.close();
  });

  it("a bad address gets 553 with an enhanced code (5.1.3 recipient, 5.1.7 sender), not smtp-server's 501", async () => {
    const { dialog } = await SmtpDialog.open(bridge.port);
    await dialog.command("EHLO client.test");
    await dialog.command(`AUTH PLAIN ${authPlain("apikey", tenant.key)}`);
    for (const from of ["a..b@example.net", ".a@example.net", "a@-x.example", "a@x..example"]) {
      const r = await dialog.command(`MAIL FROM:<${from}>`);
      expect([r.code, r.text.slice(0, 5)], from).toEqual([553, "5.1.7"]);
    }
    expect((await dialog.command(`MAIL FROM:<app@${tenant.domain}>`)).code).toBe(250);
    for (const to of ["a..b@example.net", "a.@example.net", "a@x-.example", "a@[127.0.0.1]", `${"l".repeat(65)}@example.net`]) {
      const r = await dialog.command(`RCPT TO:<${to}>`);
      expect([r.code, r.text.slice(0, 5)], to).toEqual([553, "5.1.3"]);
    }
    // A line smtp-server cannot split into local part and domain, or without <...>, is a syntax error: its 501 stays.
    expect((await dialog.command("RCPT TO:x@example.net")).code).toBe(501);
    expect((await dialog.command("RCPT TO:<no-at-sign>")).code).toBe(501);
    dialog.close();
  });
});
